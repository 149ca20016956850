//! What the operator renders from a resource, checked without a cluster: golden YAML for `examples/`, the schemas a
//! cluster enforces (Kubernetes' own through `kubernetes-validate --strict`, prometheus-operator's CRDs), the
//! restricted Pod Security Standard, alert scoping and content, `promtool check rules`, and the `render` CLI.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use chatbot_operator::admission::openapi::violations;
use chatbot_operator::crd::ChatbotMonitoring;
use chatbot_operator::prometheus_operator::PrometheusRule;
use chatbot_operator::render::{Desired, PanelSet, RenderOptions, alert_names, render, to_yaml_stream};
use serde_json::{Value, json};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn example(name: &str) -> ChatbotMonitoring {
    serde_yaml::from_str(&std::fs::read_to_string(root().join("examples").join(name)).unwrap()).unwrap()
}

fn render_example(name: &str) -> Desired {
    render(&example(name), &RenderOptions::default()).unwrap()
}

fn docs(desired: &Desired) -> Vec<Value> {
    let stream = to_yaml_stream(desired).unwrap();
    serde_yaml::Deserializer::from_str(&stream)
        .map(|d| serde_yaml::from_value::<Value>(serde_yaml::Value::deserialize(d).unwrap()).unwrap())
        .collect()
}

use serde::Deserialize;

/// Golden files: `UPDATE_GOLDEN=1 cargo test -p chatbot-operator --test render` rewrites them after a deliberate
/// change, and the diff is reviewed like code.
#[test]
fn examples_render_as_their_golden_files() {
    for name in ["minimal", "full"] {
        let rendered = to_yaml_stream(&render_example(&format!("{name}.yaml"))).unwrap();
        let golden = root().join("operator/tests/golden").join(format!("{name}.yaml"));
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&golden, &rendered).unwrap();
        }
        let expected = std::fs::read_to_string(&golden).unwrap_or_default();
        assert!(
            rendered == expected,
            "{name}: the rendered children differ from {}; if the change is intended, run \
             UPDATE_GOLDEN=1 cargo test -p chatbot-operator --test render",
            golden.display()
        );
    }
}

#[test]
fn children_are_the_expected_kinds_and_names() {
    let kinds: Vec<(String, String)> = docs(&render_example("full.yaml"))
        .iter()
        .map(|d| {
            (
                d["kind"].as_str().unwrap().to_owned(),
                d["metadata"]["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("Deployment", "sav"),
        ("Service", "sav"),
        ("ServiceMonitor", "sav"),
        ("PrometheusRule", "sav"),
        ("NetworkPolicy", "sav"),
        ("AlertmanagerConfig", "sav"),
        ("ConfigMap", "sav-dashboard-overview"),
    ];
    let expected: Vec<(String, String)> = expected.iter().map(|(k, n)| (k.to_string(), n.to_string())).collect();
    assert_eq!(kinds, expected);
}

/// Kubernetes' own schemas, strictly (unknown fields refused), for the CRD and every core kind we render.
#[test]
fn core_kinds_and_the_crd_pass_kubernetes_validate_strict() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = vec![root().join("crds/monitoring.chatbot-sav.io_chatbotmonitorings.yaml")];
    for name in ["minimal", "full"] {
        let core: Vec<String> = docs(&render_example(&format!("{name}.yaml")))
            .into_iter()
            .filter(|d| {
                ["v1", "apps/v1", "networking.k8s.io/v1"].contains(&d["apiVersion"].as_str().unwrap_or_default())
            })
            .map(|d| serde_yaml::to_string(&d).unwrap())
            .collect();
        let path = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&path, core.join("---\n")).unwrap();
        files.push(path);
    }
    // In .venv, where scripts/install-deps.sh puts it, else wherever PATH finds it.
    let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/kubernetes-validate");
    let exe = if std::path::Path::new(venv).exists() {
        venv
    } else {
        "kubernetes-validate"
    };
    let out = Command::new(exe)
        .arg("--strict")
        .args(&files)
        .output()
        .expect("kubernetes-validate is missing: scripts/install-deps.sh installs it into .venv");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    // 1 CRD + 4 core objects per example (Deployment, Service, NetworkPolicy, dashboard ConfigMap).
    assert_eq!(text.matches(" passed for resource ").count(), 9, "{text}");
}

/// prometheus-operator v0.93's real CRDs, as a cluster with it installed would enforce them.
#[test]
fn service_monitor_and_prometheus_rule_match_the_prometheus_operator_crds() {
    let shared = root().join("../shared/crds/prometheus-operator");
    for (kind, file) in [
        ("ServiceMonitor", "monitoring.coreos.com_servicemonitors.yaml"),
        ("PrometheusRule", "monitoring.coreos.com_prometheusrules.yaml"),
    ] {
        let crd = std::fs::read_to_string(shared.join(file)).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (../shared beside the project holds it)",
                shared.join(file).display()
            )
        });
        let schema = testsupport::openapi::crd_schema(&crd);
        for name in ["minimal", "full"] {
            let doc = docs(&render_example(&format!("{name}.yaml")))
                .into_iter()
                .find(|d| d["kind"] == kind)
                .unwrap();
            assert_eq!(doc["apiVersion"], "monitoring.coreos.com/v1");
            // The API server's own rules (the operator's `admission`), unknown fields included.
            let errors = violations(&schema["properties"]["spec"], &doc["spec"], "spec");
            assert!(errors.is_empty(), "{name} {kind}: {errors:?}");
            // And the check can fail: a field prometheus-operator does not know.
            let mut typo = doc["spec"].clone();
            typo["jobLabell"] = json!("x");
            assert_eq!(
                violations(&schema["properties"]["spec"], &typo, "spec"),
                ["unknown field \"spec.jobLabell\""]
            );
        }
    }
}

/// The AlertmanagerConfig against prometheus-operator's v1alpha1 CRD, and the rules its operator applies beyond
/// the schema (it skips an object that breaks them, with only an event to say so).
#[test]
fn the_alertmanager_config_matches_the_prometheus_operator_crd() {
    let file = root().join("../shared/crds/prometheus-operator/monitoring.coreos.com_alertmanagerconfigs.yaml");
    let crd = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{}: {e} (../shared beside the project holds it)", file.display()));
    let schema = testsupport::openapi::crd_schema(&crd);
    let doc = docs(&render_example("full.yaml"))
        .into_iter()
        .find(|d| d["kind"] == "AlertmanagerConfig")
        .unwrap();
    assert_eq!(doc["apiVersion"], "monitoring.coreos.com/v1alpha1");
    let errors = violations(&schema["properties"]["spec"], &doc["spec"], "spec");
    assert!(errors.is_empty(), "{errors:?}");
    // Child routes are `x-kubernetes-preserve-unknown-fields` to the API server, but the Prometheus Operator decodes
    // them as routes, strictly: each must pass the route's own schema.
    let route_schema = &schema["properties"]["spec"]["properties"]["route"];
    for (i, child) in doc["spec"]["route"]["routes"].as_array().unwrap().iter().enumerate() {
        let errors = violations(route_schema, child, &format!("spec.route.routes[{i}]"));
        assert!(errors.is_empty(), "{errors:?}");
    }
    let mut typo = doc["spec"]["route"]["routes"][0].clone();
    typo["matcher"] = json!([]);
    assert_eq!(
        violations(route_schema, &typo, "spec.route.routes[0]"),
        ["unknown field \"spec.route.routes[0].matcher\""]
    );
    let mut typo = doc["spec"].clone();
    typo["receivers"][1]["pagerdutyConfigs"][0]["routingKeyy"] = json!("x");
    assert_eq!(
        violations(&schema["properties"]["spec"], &typo, "spec"),
        ["unknown field \"spec.receivers[1].pagerdutyConfigs[0].routingKeyy\""]
    );
    // The Prometheus Operator's own checks: the top route names a receiver, every receiver named exists once, and
    // each integration has its credential.
    let spec = &doc["spec"];
    let names: Vec<&str> = spec["receivers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["none", "paging", "chat", "leads", "teams", "ticketing"]);
    assert_eq!(spec["route"]["receiver"], "none");
    // Scoped to this chatbot by its namespace too, whatever the Alertmanager's matcher strategy (with `None` the
    // Prometheus Operator adds no namespace matcher, and a chatbot of the same name elsewhere would be routed here).
    let ours = json!([{"name": "namespace", "value": "shop", "matchType": "="},
                      {"name": "chatbot", "value": "sav", "matchType": "="}]);
    assert_eq!(spec["route"]["matchers"], ours);
    for rule in spec["inhibitRules"].as_array().unwrap() {
        for side in ["sourceMatch", "targetMatch"] {
            assert_eq!(
                rule[side].as_array().unwrap()[1..],
                ours.as_array().unwrap()[..],
                "{rule}"
            );
        }
    }
    for route in spec["route"]["routes"].as_array().unwrap() {
        assert!(names.contains(&route["receiver"].as_str().unwrap()), "{route}");
    }
    let receiver = |name: &str| {
        spec["receivers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap()
    };
    assert!(receiver("paging")["pagerdutyConfigs"][0]["routingKey"]["key"].is_string());
    assert!(receiver("chat")["slackConfigs"][0]["apiURL"]["key"].is_string());
    assert!(receiver("leads")["emailConfigs"][0]["to"].is_string());
    assert!(receiver("teams")["msteamsv2Configs"][0]["webhookURL"]["key"].is_string());
    assert!(receiver("ticketing")["webhookConfigs"][0]["urlSecret"]["key"].is_string());
    assert_eq!(receiver("leads")["emailConfigs"][0]["sendResolved"], false);
    assert_eq!(receiver("chat")["slackConfigs"][0]["sendResolved"], true);
}

#[test]
fn rendered_rules_pass_promtool_check_rules() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["minimal", "full"] {
        let rule = render_example(&format!("{name}.yaml")).prometheus_rule.unwrap();
        let path = dir.path().join(format!("{name}.rules.yaml"));
        let groups = serde_json::json!({"groups": rule.spec.groups});
        std::fs::write(&path, serde_yaml::to_string(&groups).unwrap()).unwrap();
        let out = Command::new("promtool")
            .args(["check", "rules"])
            .arg(&path)
            .output()
            .expect("promtool is missing: scripts/install-deps.sh installs Debian's prometheus");
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && text.contains("SUCCESS"), "{name}: {text}");
    }
}

#[test]
fn the_pod_passes_the_restricted_pod_security_standard() {
    for name in ["minimal.yaml", "full.yaml"] {
        let d = render_example(name).deployment;
        let pod = d.spec.template.spec.unwrap();
        let psc = pod.security_context.unwrap();
        assert_eq!(psc.run_as_non_root, Some(true));
        assert_eq!(psc.seccomp_profile.unwrap().type_, "RuntimeDefault");
        assert_ne!(psc.run_as_user, Some(0));
        assert!(pod.host_network.is_none() && pod.host_pid.is_none() && pod.host_ipc.is_none());
        for v in pod.volumes.unwrap_or_default() {
            assert!(v.host_path.is_none(), "hostPath volumes are not allowed");
        }
        for c in pod.containers {
            let sc = c.security_context.unwrap();
            assert_eq!(sc.allow_privilege_escalation, Some(false));
            assert_eq!(sc.read_only_root_filesystem, Some(true));
            assert_eq!(sc.privileged, None);
            assert_eq!(sc.capabilities.unwrap().drop, Some(vec!["ALL".to_owned()]));
            assert_eq!(
                c.liveness_probe.unwrap().http_get.unwrap().path.as_deref(),
                Some("/health")
            );
            assert_eq!(
                c.readiness_probe.unwrap().http_get.unwrap().path.as_deref(),
                Some("/ready")
            );
            let resources = c.resources.unwrap();
            assert!(resources.requests.is_some() && resources.limits.is_some());
        }
    }
}

/// No fixed user by default (OpenShift's restricted-v2 assigns one); a spec's security contexts replace the
/// operator's, and removing them from the spec brings the operator's back.
#[test]
fn security_contexts_name_no_user_and_the_spec_can_replace_them() {
    let pod = |cbm: &ChatbotMonitoring| render(cbm, &RenderOptions::default()).unwrap().deployment.spec;
    let default = pod(&example("minimal.yaml")).template.spec.unwrap();
    let psc = default.security_context.clone().unwrap();
    assert_eq!((psc.run_as_user, psc.run_as_group, psc.fs_group), (None, None, None));
    assert_eq!(
        default.containers[0].security_context.as_ref().unwrap().run_as_user,
        None
    );

    let mut cbm = example("minimal.yaml");
    cbm.spec.chatbot.pod_security_context = Some(
        serde_json::from_value(json!({
        "runAsNonRoot": true, "runAsUser": 1000700000, "fsGroup": 1000700000,
        "seccompProfile": {"type": "RuntimeDefault"}}))
        .unwrap(),
    );
    cbm.spec.chatbot.security_context = Some(
        serde_json::from_value(json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}})).unwrap(),
    );
    let replaced = pod(&cbm).template.spec.unwrap();
    assert_eq!(
        replaced.security_context.as_ref().unwrap().run_as_user,
        Some(1000700000)
    );
    assert_eq!(replaced.security_context.as_ref().unwrap().fs_group, Some(1000700000));
    let container = replaced.containers[0].security_context.clone().unwrap();
    assert_eq!(container.read_only_root_filesystem, None, "replaced, not merged");

    cbm.spec.chatbot.pod_security_context = None;
    cbm.spec.chatbot.security_context = None;
    assert_eq!(pod(&cbm).template.spec.unwrap(), default);
}

#[test]
fn model_database_and_agent_secrets_are_referenced_never_copied() {
    let d = render_example("full.yaml").deployment;
    let env = d.spec.template.spec.unwrap().containers[0].env.clone().unwrap();
    let get = |name: &str| env.iter().find(|e| e.name == name).unwrap().clone();
    let key = get("OPENAI_API_KEY").value_from.unwrap().secret_key_ref.unwrap();
    assert_eq!((key.name.as_str(), key.key.as_str()), ("chatbot-openai", "api-key"));
    let url = get("DATABASE_URL").value_from.unwrap().secret_key_ref.unwrap();
    assert_eq!((url.name.as_str(), url.key.as_str()), ("chatbot-postgres", "url"));
    let tokens = get("CHATBOT_AGENT_TOKENS").value_from.unwrap().secret_key_ref.unwrap();
    assert_eq!(
        (tokens.name.as_str(), tokens.key.as_str()),
        ("chatbot-agents", "tokens")
    );
    assert_eq!(get("CHATBOT_RETENTION").value.as_deref(), Some("90d"));
    assert_eq!(get("CHATBOT_MODEL_BACKEND").value.as_deref(), Some("openai"));
    assert_eq!(get("OPENAI_TIMEOUT").value.as_deref(), Some("8s"));
    // The user's own variables come after ours, so they win.
    assert_eq!(env.last().unwrap().name, "CHATBOT_ANSWER_CACHE_SIZE");

    let minimal = render_example("minimal.yaml").deployment;
    let env = minimal.spec.template.spec.unwrap().containers[0].env.clone().unwrap();
    let url = env.iter().find(|e| e.name == "DATABASE_URL").unwrap();
    assert_eq!(url.value.as_deref(), Some("sqlite:///data/chatbot.db"));
}

/// Every selector in every rule names this resource's namespace and job: two resources never share an alert.
#[test]
fn every_rule_is_scoped_to_its_own_chatbot() {
    for name in ["minimal.yaml", "full.yaml"] {
        let cbm = example(name);
        let rule = render(&cbm, &RenderOptions::default())
            .unwrap()
            .prometheus_rule
            .unwrap();
        let ns = cbm.metadata.namespace.clone().unwrap();
        let job = cbm.metadata.name.clone().unwrap();
        let scope = format!("namespace=\"{ns}\", job=\"{job}\"");
        for r in rule.spec.groups.iter().flat_map(|g| &g.rules) {
            let selectors: Vec<&str> = r
                .expr
                .split('{')
                .skip(1)
                .map(|s| s.split('}').next().unwrap())
                .collect();
            assert!(!selectors.is_empty(), "{}", r.expr);
            for s in selectors {
                assert!(
                    s.starts_with(&scope),
                    "{name}: selector {{{s}}} in {:?} is not scoped",
                    r.expr
                );
            }
        }
    }
}

#[test]
fn every_alert_has_severity_summary_description_and_an_existing_runbook() {
    let rule: PrometheusRule = render_example("full.yaml").prometheus_rule.unwrap();
    let names = alert_names(&rule);
    assert!(names.len() >= 11, "{names:?}");
    for r in rule
        .spec
        .groups
        .iter()
        .flat_map(|g| &g.rules)
        .filter(|r| r.alert.is_some())
    {
        let alert = r.alert.as_deref().unwrap();
        assert!(
            ["critical", "warning", "info"].contains(&r.labels["severity"].as_str()),
            "{alert}"
        );
        assert!(!r.annotations["summary"].is_empty(), "{alert}");
        assert!(
            r.annotations["description"].contains("$value") || alert.ends_with("Missing"),
            "{alert}"
        );
        assert_eq!(
            r.annotations["runbook_url"],
            format!("https://runbooks.example.com/chatbot-sav/{alert}.md"),
            "the runbook base URL comes from the spec"
        );
        let page = root().join("docs/runbooks").join(format!("{alert}.md"));
        assert!(page.exists(), "{alert}: no runbook at {}", page.display());
    }
}

#[test]
fn thresholds_come_from_the_spec() {
    let rule = render_example("full.yaml").prometheus_rule.unwrap();
    let by_name = |n: &str| {
        rule.spec
            .groups
            .iter()
            .flat_map(|g| &g.rules)
            .find(|r| r.alert.as_deref() == Some(n))
            .unwrap()
            .clone()
    };
    let r = by_name("HighErrorRate");
    assert!(r.expr.ends_with("> 0.5"), "{}", r.expr);
    assert_eq!(
        (r.for_.as_deref(), r.labels["severity"].as_str()),
        (Some("5m"), "critical")
    );
    assert!(by_name("HighResponseTime").expr.ends_with("> 1.5"));
    let memory = by_name("HighMemoryUsage").expr;
    assert!(
        memory.contains("> 209715200 unless on (namespace, job, pod) memory_limit_bytes"),
        "{memory}"
    );
    assert!(memory.contains("> on (namespace, job, pod) 0.85 * max by"), "{memory}");
    // A field left out of an alert takes that alert's own default (chatLatency's `for` is 5m, not latency's 2m).
    let chat = by_name("HighChatResponseTime");
    assert!(chat.expr.ends_with("> 4"), "{}", chat.expr);
    assert_eq!(
        (chat.for_.as_deref(), chat.labels["severity"].as_str()),
        (Some("5m"), "warning")
    );
    assert_eq!(by_name("HighMemoryUsage").labels["severity"], "warning");
    // The SLO adds the burn-rate alerts and their recording rules: 99.9% leaves a 0.001 budget.
    let fast = by_name("ErrorBudgetBurnFast");
    assert!(fast.expr.contains("> (14.4 * 0.001) and"), "{}", fast.expr);
    let records: BTreeSet<&str> = rule
        .spec
        .groups
        .iter()
        .flat_map(|g| &g.rules)
        .filter_map(|r| r.record.as_deref())
        .collect();
    // Four windows for each objective, availability and latency, and the spend over a day.
    assert_eq!(records.len(), 9, "{records:?}");
    let slow = by_name("LatencyBudgetBurnSlow");
    assert!(slow.expr.contains("> (6 * 0.01) and"), "{}", slow.expr);
    let ratio = rule
        .spec
        .groups
        .iter()
        .flat_map(|g| &g.rules)
        .find(|r| r.record.as_deref() == Some("chatbot:chat_slow_ratio:rate1h"))
        .unwrap();
    assert!(ratio.expr.contains("le=~\"2|2.0\""), "{}", ratio.expr);
    // The model's and the customers' alerts (issue 25).
    let over = by_name("ModelSpendOverBudget").expr;
    assert!(over.ends_with("currency=\"EUR\"} > 40"), "{over}");
    let forecast = by_name("ModelSpendForecast").expr;
    assert!(forecast.starts_with("predict_linear(chatbot:ai_model_spend:increase1d{namespace=\"shop\", job=\"sav\", currency=\"EUR\"}[1h], 21600) > 40 unless"), "{forecast}");
    let tokens = by_name("TokensPerChatHigh").expr;
    assert!(
        tokens.contains("> 3 * (") && tokens.contains("[168h]") && tokens.ends_with(">= 50"),
        "{tokens}"
    );
    let satisfaction = by_name("LowSatisfaction").expr;
    assert!(
        satisfaction.contains("[2h])) > 0.25 and") && satisfaction.ends_with(">= 30"),
        "{satisfaction}"
    );
    let containment = by_name("LowContainment");
    assert!(containment.expr.contains("[6h])) < 0.6 and"), "{}", containment.expr);
    assert_eq!(containment.for_.as_deref(), Some("30m"));
    // Without an SLO there is no burn-rate alert; with the builtin model, nothing reads tokens or spend; and what
    // only the shop can set (a budget, a containment floor) is off until it does.
    let minimal = render_example("minimal.yaml").prometheus_rule.unwrap();
    let names = alert_names(&minimal);
    for absent in [
        "ErrorBudgetBurnFast",
        "TokensPerChatHigh",
        "ModelSpendOverBudget",
        "LowContainment",
    ] {
        assert!(!names.contains(&absent), "{absent}: {names:?}");
    }
    assert!(names.contains(&"LowSatisfaction"), "{names:?}");
}

#[test]
fn disabled_parts_render_nothing() {
    let mut cbm = example("minimal.yaml");
    cbm.spec.monitoring.enabled = false;
    cbm.spec.alerts.enabled = false;
    cbm.spec.dashboards.enabled = false;
    cbm.spec.network_policy.enabled = false;
    let d = render(&cbm, &RenderOptions::default()).unwrap();
    assert!(d.service_monitor.is_none() && d.prometheus_rule.is_none() && d.dashboards.is_empty());
    assert!(d.network_policy.is_none());
}

/// The ingress rules of a rendered NetworkPolicy, as (port, peers) pairs.
fn ingress_rules(np: &k8s_openapi::api::networking::v1::NetworkPolicy) -> Vec<(i32, Value)> {
    let spec = np.spec.as_ref().unwrap();
    assert_eq!(spec.policy_types, Some(vec!["Ingress".to_owned()]));
    spec.ingress
        .iter()
        .flatten()
        .map(|rule| {
            let ports = rule.ports.as_ref().unwrap();
            assert_eq!(ports.len(), 1);
            let port = match ports[0].port.as_ref().unwrap() {
                k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(p) => *p,
                other => panic!("port by name: {other:?}"),
            };
            (port, serde_json::to_value(rule.from.as_ref().unwrap()).unwrap())
        })
        .collect()
}

#[test]
fn the_network_policy_admits_the_namespace_and_the_ingress_controller_to_the_api_only() {
    let cbm = example("minimal.yaml");
    let d = render(&cbm, &RenderOptions::default()).unwrap();
    let np = d.network_policy.unwrap();
    // The chatbot's pods, by the Deployment's own selector.
    assert_eq!(
        np.spec.as_ref().unwrap().pod_selector.as_ref().unwrap().match_labels,
        d.deployment.spec.selector.match_labels
    );
    // No Prometheus is known without a cluster in auto mode: the metrics port gets no rule, which admits no one
    // (a rule with an empty `from` would admit everyone).
    assert_eq!(
        ingress_rules(&np),
        vec![(
            8000,
            json!([
                {"podSelector": {}},
                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
            ])
        )]
    );
    let options = RenderOptions {
        ingress_namespaces: vec!["traefik".into(), "haproxy".into()],
        ..RenderOptions::default()
    };
    let np = render(&cbm, &options).unwrap().network_policy.unwrap();
    let api = &ingress_rules(&np)[0].1;
    assert_eq!(api.as_array().unwrap().len(), 3);
    assert_eq!(
        api[2]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "haproxy"
    );
}

#[test]
fn the_metrics_port_admits_the_selecting_prometheus_pods_and_the_named_sources() {
    use chatbot_operator::render::{network_policy_for, scrapers};
    use chatbot_operator::selection::verdict::PrometheusRef;
    let mut cbm = example("full.yaml");
    let kps = PrometheusRef {
        namespace: "monitoring".into(),
        name: "kps".into(),
    };
    let np = network_policy_for(
        &cbm,
        &RenderOptions::default(),
        &scrapers(&cbm, std::slice::from_ref(&kps)),
    )
    .unwrap()
    .unwrap();
    let rules = ingress_rules(&np);
    assert_eq!(rules.len(), 2);
    // The API: exactly the resource's apiFrom, not the operator's defaults.
    assert_eq!(rules[0].0, 8000);
    assert_eq!(
        rules[0].1,
        serde_json::to_value(cbm.spec.network_policy.api_from.clone().unwrap()).unwrap()
    );
    // The metrics port: the Prometheus pods the Prometheus Operator labels with its name, then metricsFrom.
    assert_eq!(rules[1].0, cbm.spec.chatbot.metrics_port);
    assert_eq!(
        rules[1].1[0],
        json!({
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus", "operator.prometheus.io/name": "kps"}}
        })
    );
    assert_eq!(
        rules[1].1[1]["podSelector"]["matchLabels"]["app.kubernetes.io/name"],
        "opentelemetry-collector"
    );

    // A referenced Prometheus is admitted without a cluster, and only once when it also selects the resource.
    cbm.spec.monitoring.prometheus.mode = chatbot_operator::crd::SelectionMode::Reference;
    cbm.spec.monitoring.prometheus.namespace = Some("monitoring".into());
    cbm.spec.monitoring.prometheus.name = Some("kps".into());
    assert_eq!(scrapers(&cbm, std::slice::from_ref(&kps)), vec![kps.clone()]);
    let np = render(&cbm, &RenderOptions::default()).unwrap().network_policy.unwrap();
    assert_eq!(ingress_rules(&np)[1].1.as_array().unwrap().len(), 2);

    // Whatever order selection finds them in, the same Prometheus servers give the same NetworkPolicy.
    let other = PrometheusRef {
        namespace: "aaa".into(),
        name: "zzz".into(),
    };
    assert_eq!(
        scrapers(&cbm, &[other.clone(), kps.clone()]),
        scrapers(&cbm, &[kps.clone(), other.clone()])
    );

    // An empty apiFrom admits no one: no rule for the port, never a rule with an empty `from`.
    cbm.spec.network_policy.api_from = Some(Vec::new());
    cbm.spec.network_policy.metrics_from.clear();
    let np = render(&cbm, &RenderOptions::default()).unwrap().network_policy.unwrap();
    let rules = ingress_rules(&np);
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].0, cbm.spec.chatbot.metrics_port);

    // Neither port admits anyone: no ingress list at all (the API server drops an empty one, and what is applied
    // must read back the same, or every pass would apply it again); Ingress in policyTypes still denies all.
    cbm.spec.monitoring.prometheus.mode = chatbot_operator::crd::SelectionMode::Auto;
    let np = render(&cbm, &RenderOptions::default()).unwrap().network_policy.unwrap();
    let spec = serde_json::to_value(np.spec.unwrap()).unwrap();
    assert!(spec.get("ingress").is_none(), "{spec}");
    assert_eq!(spec["policyTypes"], json!(["Ingress"]));
}

#[test]
fn children_are_owned_by_the_resource_when_it_has_a_uid() {
    let mut cbm = example("minimal.yaml");
    assert!(
        render(&cbm, &RenderOptions::default())
            .unwrap()
            .deployment
            .metadata
            .owner_references
            .is_none()
    );
    cbm.metadata.uid = Some("0b7c6e2c-1111-4a4a-9c9c-0123456789ab".into());
    let d = render(&cbm, &RenderOptions::default()).unwrap();
    let metas = [
        &d.deployment.metadata,
        &d.service.metadata,
        &d.service_monitor.as_ref().unwrap().metadata,
        &d.prometheus_rule.as_ref().unwrap().metadata,
        &d.dashboards[0].metadata,
        &d.network_policy.as_ref().unwrap().metadata,
    ];
    for m in metas {
        let owners = m.owner_references.as_ref().unwrap();
        assert_eq!(owners.len(), 1);
        assert_eq!(owners[0].kind, "ChatbotMonitoring");
        assert_eq!(owners[0].uid, "0b7c6e2c-1111-4a4a-9c9c-0123456789ab");
        assert_eq!(owners[0].controller, Some(true));
    }
}

#[test]
fn dashboard_config_map_is_for_the_grafana_sidecar() {
    let d = render_example("full.yaml");
    let cm = &d.dashboards[0];
    assert_eq!(cm.metadata.labels.as_ref().unwrap()["grafana_dashboard"], "1");
    assert_eq!(
        cm.metadata.annotations.as_ref().unwrap()["grafana_folder"],
        "Customer care"
    );
    let data = cm.data.as_ref().unwrap();
    assert_eq!(data.len(), 1, "one dashboard per ConfigMap");
    let (key, json) = data.iter().next().unwrap();
    assert_eq!(key, "shop-sav-overview.json");
    assert!(
        json.len() < 256 * 1024,
        "{} bytes: keep well under the 1 MiB object limit",
        json.len()
    );
    let dashboard: Value = serde_json::from_str(json).unwrap();
    let uid = dashboard["uid"].as_str().unwrap();
    assert!(uid.len() <= 40, "{uid}");
    let vars = dashboard["templating"]["list"].as_array().unwrap();
    let current = |n: &str| vars.iter().find(|v| v["name"] == n).unwrap()["current"]["value"].clone();
    assert_eq!(current("namespace"), "shop");
    assert_eq!(current("job"), "sav");
    // Another resource gets another uid: Grafana refuses two dashboards with one uid.
    let other = render_example("minimal.yaml");
    let other: Value =
        serde_json::from_str(other.dashboards[0].data.as_ref().unwrap().values().next().unwrap()).unwrap();
    assert_ne!(other["uid"], dashboard["uid"]);
}

#[test]
fn render_cli_prints_every_child_and_refuses_bad_files() {
    let bin = env!("CARGO_BIN_EXE_chatbot-operator");
    let out = Command::new(bin)
        .args(["render", "-f"])
        .arg(root().join("examples/minimal.yaml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout,
        to_yaml_stream(&render_example("minimal.yaml")).unwrap(),
        "same code as the reconciler"
    );

    // Refused as the API server refuses it (the real-control-plane tier compares the words): every violation, one
    // per line, and nothing on standard output.
    let dir = tempfile::tempdir().unwrap();
    let header = "apiVersion: monitoring.chatbot-sav.io/v1alpha1\nkind: ChatbotMonitoring\nmetadata: {name: bot}\n";
    for (spec, said) in [
        (
            "spec:\n  chatbot:\n    replicas: many\n",
            vec![
                "spec.chatbot.replicas: Invalid value: \"string\": spec.chatbot.replicas in body must be of type integer: \"string\"",
            ],
        ),
        (
            "spec:\n  chatbot:\n    replica: 2\n  monitoring:\n    interval: 10 seconds\n",
            vec![
                "unknown field \"spec.chatbot.replica\"",
                "spec.monitoring.interval: Invalid value: \"10 seconds\": spec.monitoring.interval in body should match",
            ],
        ),
        (
            "spec:\n  chatbot:\n    replicas: 2\n",
            vec!["spec.chatbot.replicas: Forbidden: SQLite lives inside each pod"],
        ),
    ] {
        let bad = dir.path().join("bad.yaml");
        std::fs::write(&bad, format!("{header}{spec}")).unwrap();
        let out = Command::new(bin).args(["render", "-f"]).arg(&bad).output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert!(out.stdout.is_empty());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("bad.yaml: the API server would refuse"), "{stderr}");
        for line in said {
            assert!(stderr.contains(line), "{spec}: {line} not in {stderr}");
        }
    }

    let out = Command::new(bin)
        .args(["render", "-f", "/no/such/file.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/file.yaml"));
}

fn render_tests(file: &Path, dir: &Path) {
    let bin = env!("CARGO_BIN_EXE_chatbot-operator");
    let out = Command::new(bin)
        .args(["render", "-f"])
        .arg(file)
        .arg("--tests")
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn promtool_test(dir: &Path) -> (bool, String) {
    let out = Command::new("promtool")
        .args(["test", "rules", "rules.test.yml"])
        .current_dir(dir)
        .output()
        .expect("promtool is missing: scripts/install-deps.sh installs Debian's prometheus");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// `render --tests`: for every alert a firing and a silent case at the resource's thresholds, which promtool runs.
#[test]
fn generated_promtool_tests_pass_for_the_examples_and_other_thresholds() {
    let dir = tempfile::tempdir().unwrap();
    let custom = dir.path().join("custom.yaml");
    std::fs::write(
        &custom,
        "apiVersion: monitoring.chatbot-sav.io/v1alpha1\nkind: ChatbotMonitoring\nmetadata: {name: odd, namespace: qa}\n\
         spec:\n  alerts:\n    errorRate: {threshold: 2.5, for: 90s, severity: warning}\n\
         \x20   latency: {threshold: 0.3}\n\
         \x20   memory: {threshold: 104857600, for: 10m, severity: info}\n\
         \x20   chatLatency: {threshold: 12, for: 5m, severity: warning}\n\
         \x20   slo: {availabilityTarget: 99.5, latency: {target: 99, threshold: 0.5}}\n\
         \x20 chatbot: {replicas: 3, database: {type: postgres, postgres: {urlSecretRef: {name: db, key: url}}}}\n",
    )
    .unwrap();
    // Five pods, ChatbotDown under 70 % up (two down), a warning after 5 minutes for one down.
    let shares = dir.path().join("shares.yaml");
    std::fs::write(
        &shares,
        "apiVersion: monitoring.chatbot-sav.io/v1alpha1\nkind: ChatbotMonitoring\nmetadata: {name: five, namespace: qa}\n\
         spec:\n  alerts:\n    availability: {minUpPercent: 70, for: 1m, partialFor: 5m}\n\
         \x20   slo: {latency: {target: 95, threshold: 1}}\n\
         \x20 chatbot: {replicas: 5, database: {type: postgres, postgres: {urlSecretRef: {name: db, key: url}}}}\n",
    )
    .unwrap();
    for file in [
        root().join("examples/minimal.yaml"),
        root().join("examples/full.yaml"),
        custom,
        shares,
    ] {
        let out = dir.path().join(file.file_stem().unwrap());
        render_tests(&file, &out);
        let tests: Value = serde_yaml::from_str(&std::fs::read_to_string(out.join("rules.test.yml")).unwrap()).unwrap();
        let names: Vec<&str> = tests["tests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        let rule = render(
            &serde_yaml::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap(),
            &RenderOptions::default(),
        )
        .unwrap()
        .prometheus_rule
        .unwrap();
        for alert in alert_names(&rule) {
            assert!(
                names.iter().any(|n| n.starts_with(&format!("{alert} stays silent"))),
                "{file:?}: {alert} has no silent case"
            );
            // A p95 threshold above the largest bucket (chatLatency 12 s here) can never be crossed, and one pod
            // cannot be partly down: no firing case.
            let impossible = (alert == "HighChatResponseTime" && file.ends_with("custom.yaml"))
                || (alert == "ChatbotTargetsDown" && file.ends_with("minimal.yaml"));
            if !impossible {
                assert!(
                    names.iter().any(|n| n.starts_with(&format!("{alert} fires"))),
                    "{file:?}: {alert} has no firing case"
                );
            }
        }
        let (ok, output) = promtool_test(&out);
        assert!(ok, "{file:?}:\n{output}");
    }
}

/// The generated tests are not decoration: rules whose threshold drifted from the resource fail them.
#[test]
fn generated_promtool_tests_catch_a_wrong_threshold() {
    let dir = tempfile::tempdir().unwrap();
    render_tests(&root().join("examples/minimal.yaml"), dir.path());
    let rules = std::fs::read_to_string(dir.path().join("rules.yml")).unwrap();
    let broken = rules.replace("[5m])) > 0.1", "[5m])) > 10");
    assert_ne!(broken, rules);
    std::fs::write(dir.path().join("rules.yml"), broken).unwrap();
    let (ok, output) = promtool_test(dir.path());
    assert!(!ok, "{output}");
    assert!(output.contains("HighErrorRate fires"), "{output}");
}

/// Issue 24: `ChatbotDown` used to be `up == 0` per target, so one pod of three down paged (and muted the others'
/// alerts). The generated tests for a three-replica resource refuse that rule.
#[test]
fn generated_promtool_tests_refuse_a_chatbot_down_per_pod() {
    let dir = tempfile::tempdir().unwrap();
    render_tests(&root().join("examples/full.yaml"), dir.path());
    let rules: Value = serde_yaml::from_str(&std::fs::read_to_string(dir.path().join("rules.yml")).unwrap()).unwrap();
    let mut per_pod = rules.clone();
    for group in per_pod["groups"].as_array_mut().unwrap() {
        for rule in group["rules"].as_array_mut().unwrap() {
            if rule["alert"] == "ChatbotDown" {
                rule["expr"] = json!("up{namespace=\"shop\", job=\"sav\"} == 0");
            }
        }
    }
    assert_ne!(per_pod, rules);
    std::fs::write(dir.path().join("rules.yml"), serde_yaml::to_string(&per_pod).unwrap()).unwrap();
    let (ok, output) = promtool_test(dir.path());
    assert!(!ok, "{output}");
    assert!(
        output.contains("ChatbotDown stays silent with 1 of 3 targets down"),
        "{output}"
    );
}

/// Issue 25: a resource's dashboards hold only panels its chatbot can fill, and verification checks those.
#[test]
fn dashboards_hold_the_panels_the_backend_can_fill() {
    assert_eq!(render_example("minimal.yaml").dashboard_panels, PanelSet::Builtin);
    assert_eq!(
        render_example("full.yaml").dashboard_panels,
        PanelSet::RemoteModelPriced
    );
    let mut cbm: ChatbotMonitoring =
        serde_yaml::from_str(&std::fs::read_to_string(root().join("examples/full.yaml")).unwrap()).unwrap();
    cbm.spec.alerts.spend = None;
    cbm.spec.chatbot.model.openai.as_mut().unwrap().prices = None;
    let desired = render(&cbm, &RenderOptions::default()).unwrap();
    assert_eq!(desired.dashboard_panels, PanelSet::RemoteModel);
    let dashboard = |d: &Desired| d.dashboards[0].data.as_ref().unwrap().values().next().unwrap().clone();
    let json = dashboard(&desired);
    assert!(json.contains("gen_ai_client_token_usage") && !json.contains("ai_model_estimated_cost_total"));
    let json = dashboard(&render_example("minimal.yaml"));
    assert!(!json.contains("gen_ai_client_") && json.contains("chat_conversations_total"));
}

/// The spend forecast's horizon in seconds, whatever the shape of its duration.
#[test]
fn the_spend_forecast_horizon_reads_compound_durations() {
    let mut cbm: ChatbotMonitoring =
        serde_yaml::from_str(&std::fs::read_to_string(root().join("examples/full.yaml")).unwrap()).unwrap();
    cbm.spec.alerts.spend.as_mut().unwrap().forecast = "1h30m".into();
    let rule = render(&cbm, &RenderOptions::default())
        .unwrap()
        .prometheus_rule
        .unwrap();
    let forecast = rule
        .spec
        .groups
        .iter()
        .flat_map(|g| &g.rules)
        .find(|r| r.alert.as_deref() == Some("ModelSpendForecast"))
        .unwrap();
    assert!(forecast.expr.contains("[1h], 5400) > 40"), "{}", forecast.expr);
}
