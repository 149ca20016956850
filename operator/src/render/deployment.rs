//! The chatbot Deployment: a pod that passes the `restricted` Pod Security Standard (unless the spec replaces its
//! security contexts), probes on /health and /ready,
//! the model and database settings as environment variables (secrets by reference, never copied).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource,
    HTTPGetAction, KeyToPath, PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements,
    SeccompProfile, SecretKeySelector, SecretVolumeSource, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{Context, METRICS_PORT_NAME, PORT_NAME, RenderOptions};
use crate::crd::{ChatbotMonitoringSpec, DatabaseType, ModelBackend, PricesSource, PullPolicy, SecretKeyRef};

const DATA_DIR: &str = "/data";
/// Where the price table's key is mounted: a directory, not a `subPath`, so that the kubelet's updates of the
/// ConfigMap or Secret reach the running chatbot, which reads the file again when it changes.
const PRICES_DIR: &str = "/etc/chatbot/prices";
const PRICES_FILE: &str = "prices.yaml";

pub(super) fn render(ctx: &Context, spec: &ChatbotMonitoringSpec, options: &RenderOptions) -> Deployment {
    let c = &spec.chatbot;
    let mut pod_labels = ctx.labels();
    pod_labels.extend(c.pod_labels.clone());
    let image = c
        .image
        .clone()
        .filter(|i| !i.is_empty())
        .unwrap_or_else(|| options.default_image.clone());

    Deployment {
        metadata: ctx.meta(&ctx.name, &BTreeMap::new()),
        spec: DeploymentSpec {
            replicas: Some(c.replicas),
            revision_history_limit: Some(5),
            selector: LabelSelector {
                match_labels: Some(ctx.selector_labels()),
                ..LabelSelector::default()
            },
            // SQLite lives in the pod: two pods would each have their own history, so never overlap them.
            strategy: Some(match c.database.type_ {
                DatabaseType::Sqlite => DeploymentStrategy {
                    type_: Some("Recreate".into()),
                    rolling_update: None,
                },
                DatabaseType::Postgres => DeploymentStrategy {
                    type_: Some("RollingUpdate".into()),
                    rolling_update: Some(RollingUpdateDeployment {
                        max_unavailable: Some(IntOrString::Int(0)),
                        max_surge: Some(IntOrString::Int(1)),
                    }),
                },
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    annotations: (!c.pod_annotations.is_empty()).then(|| c.pod_annotations.clone()),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod_spec(spec, image)),
            },
            ..DeploymentSpec::default()
        },
        status: None,
    }
}

fn pod_spec(spec: &ChatbotMonitoringSpec, image: String) -> PodSpec {
    let c = &spec.chatbot;
    let (mounts, volumes): (Vec<VolumeMount>, Vec<Volume>) = volumes(spec).into_iter().unzip();
    PodSpec {
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        termination_grace_period_seconds: Some(30),
        security_context: Some(
            c.pod_security_context
                .as_deref()
                .cloned()
                .unwrap_or_else(pod_security_context),
        ),
        containers: vec![Container {
            name: "chatbot".into(),
            image: Some(image),
            image_pull_policy: c.image_pull_policy.map(|p| {
                match p {
                    PullPolicy::Always => "Always",
                    PullPolicy::IfNotPresent => "IfNotPresent",
                    PullPolicy::Never => "Never",
                }
                .to_owned()
            }),
            ports: Some(vec![
                ContainerPort {
                    name: Some(PORT_NAME.into()),
                    container_port: c.port,
                    protocol: Some("TCP".into()),
                    ..ContainerPort::default()
                },
                ContainerPort {
                    name: Some(METRICS_PORT_NAME.into()),
                    container_port: c.metrics_port,
                    protocol: Some("TCP".into()),
                    ..ContainerPort::default()
                },
            ]),
            env: Some(env(spec)),
            resources: Some(c.resources.clone().unwrap_or_else(default_resources)),
            liveness_probe: Some(probe("/health", 10, 3)),
            readiness_probe: Some(probe("/ready", 5, 2)),
            startup_probe: Some(probe("/health", 2, 30)),
            security_context: Some(
                c.security_context
                    .as_deref()
                    .cloned()
                    .unwrap_or_else(container_security_context),
            ),
            volume_mounts: (!mounts.is_empty()).then_some(mounts),
            ..Container::default()
        }],
        volumes: (!volumes.is_empty()).then_some(volumes),
        ..PodSpec::default()
    }
}

/// The pod's volumes with their mounts: the SQLite database's, and the price table's.
fn volumes(spec: &ChatbotMonitoringSpec) -> Vec<(VolumeMount, Volume)> {
    let c = &spec.chatbot;
    let mut volumes = Vec::new();
    if c.database.type_ == DatabaseType::Sqlite {
        volumes.push((
            VolumeMount {
                name: "data".into(),
                mount_path: DATA_DIR.into(),
                ..VolumeMount::default()
            },
            Volume {
                name: "data".into(),
                empty_dir: Some(EmptyDirVolumeSource {
                    size_limit: Some(Quantity("1Gi".into())),
                    ..EmptyDirVolumeSource::default()
                }),
                ..Volume::default()
            },
        ));
    }
    if let Some(prices) = prices(spec) {
        let items = |key: &str| {
            Some(vec![KeyToPath {
                key: key.to_owned(),
                path: PRICES_FILE.into(),
                ..KeyToPath::default()
            }])
        };
        let mut volume = Volume {
            name: "prices".into(),
            ..Volume::default()
        };
        match (&prices.config_map_key_ref, &prices.secret_key_ref) {
            (Some(cm), _) => {
                volume.config_map = Some(ConfigMapVolumeSource {
                    name: cm.name.clone(),
                    items: items(&cm.key),
                    optional: Some(false),
                    ..ConfigMapVolumeSource::default()
                })
            }
            (None, Some(secret)) => {
                volume.secret = Some(SecretVolumeSource {
                    secret_name: Some(secret.name.clone()),
                    items: items(&secret.key),
                    optional: Some(false),
                    ..SecretVolumeSource::default()
                })
            }
            // The CRD requires exactly one.
            (None, None) => return volumes,
        }
        volumes.push((
            VolumeMount {
                name: "prices".into(),
                mount_path: PRICES_DIR.into(),
                read_only: Some(true),
                ..VolumeMount::default()
            },
            volume,
        ));
    }
    volumes
}

/// The price table of an `openai` backend, when the resource names one.
fn prices(spec: &ChatbotMonitoringSpec) -> Option<&PricesSource> {
    let model = &spec.chatbot.model;
    match (&model.backend, &model.openai) {
        (ModelBackend::Openai, Some(o)) => o.prices.as_ref(),
        _ => None,
    }
}

/// Non-root without naming a user: the image's numeric `USER` satisfies `runAsNonRoot`, and a platform that assigns
/// users from a range (OpenShift's restricted-v2) can. The SQLite `emptyDir` is writable without an `fsGroup`.
fn pod_security_context() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        seccomp_profile: Some(runtime_default()),
        ..PodSecurityContext::default()
    }
}

fn container_security_context() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            add: None,
        }),
        seccomp_profile: Some(runtime_default()),
        ..SecurityContext::default()
    }
}

fn runtime_default() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".into(),
        localhost_profile: None,
    }
}

fn env(spec: &ChatbotMonitoringSpec) -> Vec<EnvVar> {
    let c = &spec.chatbot;
    let mut env = vec![
        value("CHATBOT_LISTEN", format!("0.0.0.0:{}", c.port)),
        value("CHATBOT_INTERNAL_LISTEN", format!("0.0.0.0:{}", c.metrics_port)),
        value("CHATBOT_LOG_FORMAT", "json".into()),
    ];
    match (&c.database.type_, &c.database.postgres) {
        (DatabaseType::Postgres, Some(pg)) => env.push(secret("DATABASE_URL", &pg.url_secret_ref)),
        // The CRD refuses postgres without its secret; fall back to the embedded database rather than crash.
        _ => env.push(value("DATABASE_URL", format!("sqlite://{DATA_DIR}/chatbot.db"))),
    }
    match (&c.model.backend, &c.model.openai) {
        (ModelBackend::Openai, Some(o)) => {
            env.push(value("CHATBOT_MODEL_BACKEND", "openai".into()));
            env.push(value("OPENAI_BASE_URL", o.endpoint.clone()));
            env.push(value("OPENAI_MODEL", o.model.clone()));
            env.push(secret("OPENAI_API_KEY", &o.api_key_secret_ref));
            if let Some(t) = &o.timeout {
                env.push(value("OPENAI_TIMEOUT", t.clone()));
            }
            if let Some(provider) = &o.provider_name {
                env.push(value("OPENAI_PROVIDER_NAME", provider.clone()));
            }
            if o.prices.is_some() {
                env.push(value("CHATBOT_PRICES_FILE", format!("{PRICES_DIR}/{PRICES_FILE}")));
            }
        }
        _ => env.push(value("CHATBOT_MODEL_BACKEND", "builtin".into())),
    }
    if let Some(tokens) = &c.agent_tokens_secret_ref {
        env.push(secret("CHATBOT_AGENT_TOKENS", tokens));
    }
    if let Some(retention) = &c.retention {
        env.push(value("CHATBOT_RETENTION", retention.clone()));
    }
    if let Some(idle) = &c.conversation_idle {
        env.push(value("CHATBOT_CONVERSATION_IDLE", idle.clone()));
    }
    // The user's variables come last so that they win over ours.
    env.extend(c.env.iter().cloned());
    env
}

fn value(name: &str, value: String) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value),
        value_from: None,
    }
}

fn secret(name: &str, r: &SecretKeyRef) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: None,
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: r.name.clone(),
                key: r.key.clone(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
    }
}

fn probe(path: &str, period: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            // The internal listener: a probe never depends on what the API's port lets through.
            port: IntOrString::String(METRICS_PORT_NAME.into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        timeout_seconds: Some(2),
        ..Probe::default()
    }
}

/// Measured: about 30 MiB resident under load. The limit stays above the HighMemoryUsage default (500 MiB) so that
/// the alert fires on a leak before the kernel kills the pod.
fn default_resources() -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".into(), Quantity("100m".into())),
            ("memory".into(), Quantity("64Mi".into())),
        ])),
        limits: Some(BTreeMap::from([("memory".into(), Quantity("640Mi".into()))])),
        ..ResourceRequirements::default()
    }
}
