//! A resource's life on a real API server, each test in its own namespace of one shared control plane, with the
//! operator installed for that namespace (the chart's one-namespace RBAC) and running as its ServiceAccount:
//! defaults, validation, creation, changes (nothing stale may remain), drift, and condition messages.

use std::time::Duration;

use chatbot_operator::crd::ChatbotMonitoring;
use controlplane_tests::env::{Env, get, owned_by, state};
use controlplane_tests::{chart, eventually, require_control_plane};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};

const SETTLE: Duration = Duration::from_secs(60);

/// Every child of a resource named `bot` with every part on.
const CHILDREN: [(&str, &str); 6] = [
    ("Deployment", "bot"),
    ("Service", "bot"),
    ("ServiceMonitor", "bot"),
    ("PrometheusRule", "bot"),
    ("NetworkPolicy", "bot"),
    ("ConfigMap", "bot-dashboard-overview"),
];

fn ready(cbm: &ChatbotMonitoring) -> bool {
    state(cbm, "Ready").0 == "True"
}

async fn converged(env: &Env, name: &str) {
    controlplane_tests::eventually("every child equal to render's output", SETTLE, || env.converged(name)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resource_with_an_empty_spec_gets_the_defaults_render_assumes() {
    let assets = require_control_plane!();
    let env = Env::namespaced(&assets, "defaults", None).await;
    let stored = env.apply("bot", json!({})).await;
    // What the server stored, read back, is what `render` reads: every default filled in by the server.
    let defaults: ChatbotMonitoring = serde_json::from_value(json!({
        "apiVersion": "monitoring.chatbot-sav.io/v1alpha1", "kind": "ChatbotMonitoring",
        "metadata": {"name": "bot", "namespace": "defaults"}, "spec": {}}))
    .unwrap();
    assert_eq!(
        stored.spec, defaults.spec,
        "the CRD's defaults and the Rust defaults agree"
    );
    let raw: Value = serde_json::to_value(&stored).unwrap();
    for field in ["chatbot", "monitoring", "alerts", "dashboards", "networkPolicy"] {
        assert!(
            raw["spec"][field].is_object(),
            "spec.{field} defaulted by the server: {raw}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_resources_are_refused_by_the_server_naming_the_field_as_the_cli_does() {
    let assets = require_control_plane!();
    let env = Env::namespaced(&assets, "validation", None).await;
    for (i, (spec, refusal)) in testsupport::invalid::invalid_specs().into_iter().enumerate() {
        // As `kubectl create` sends it: strict field validation, so that an unknown field is an error too.
        let body = json!({"apiVersion": "monitoring.chatbot-sav.io/v1alpha1", "kind": "ChatbotMonitoring",
                          "metadata": {"name": format!("bad-{i}"), "namespace": env.ns}, "spec": spec});
        let request = http::Request::post(format!(
            "/apis/monitoring.chatbot-sav.io/v1alpha1/namespaces/{}/chatbotmonitorings?fieldValidation=Strict",
            env.ns
        ))
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&body).unwrap())
        .unwrap();
        // `chatbot-operator render` and `verify` refuse the same file in the same words.
        let cli = chatbot_operator::admission::admit(&body)
            .expect_err("the CLI refuses it too")
            .0;
        match env.admin.request::<Value>(request).await {
            Err(kube::Error::Api(s)) => {
                assert!(
                    (s.code == 422 || s.code == 400) && refusal.said_by(&s.message),
                    "{spec} should be refused with {refusal:?}, got {} {}",
                    s.code,
                    s.message
                );
                for line in &cli {
                    assert!(
                        s.message.contains(line.as_str()),
                        "the CLI says {line:?}, the server {:?}",
                        s.message
                    );
                }
            }
            other => panic!("{spec} should be refused, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_are_render_s_output_owned_by_the_resource() {
    let assets = require_control_plane!();
    let env = Env::namespaced(&assets, "create", None).await;
    env.apply("bot", json!({})).await;
    let has_gc = env.cp.has_controller_manager();
    let cbm = env.wait_status("bot", "Ready", SETTLE, |c| !has_gc || ready(c)).await;
    converged(&env, "bot").await;
    for (kind, name) in CHILDREN {
        let child = get(&env.admin, &env.ns, kind, name).await.unwrap();
        assert!(owned_by(&child, &cbm), "{kind} {name} has a controller owner reference");
        // One field manager, server-side apply only.
        let managers: Vec<(&str, &str)> = child["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["manager"] == "chatbot-operator")
            .map(|m| {
                (
                    m["operation"].as_str().unwrap(),
                    m["subresource"].as_str().unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(managers, [("Apply", "")], "{kind} {name}");
    }
    assert_eq!(state(&cbm, "Selected"), ("True".into(), "Selected".into()));
    // The NetworkPolicy as the server stored it: the metrics port admits the selecting Prometheus' pods only.
    assert_eq!(state(&cbm, "NetworkPolicyReady"), ("True".into(), "Applied".into()));
    let np = get(&env.admin, &env.ns, "NetworkPolicy", "bot").await.unwrap();
    assert_eq!(np["spec"]["ingress"][1]["ports"][0]["port"], 8081);
    assert_eq!(
        np["spec"]["ingress"][1]["from"],
        json!([{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus",
                                                "operator.prometheus.io/name": "kps"}}}])
    );
    // The chart's RBAC is enough: the API server refused nothing to anyone on this control plane.
    let metrics = env.cp.apiserver_metrics().await;
    let forbidden: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total{") && l.contains("code=\"403\""))
        .collect();
    assert!(forbidden.is_empty(), "{forbidden:#?}");
}

/// Issue 11, defect 1: fields, list entries, map keys and whole parts removed from the spec are removed from the
/// children, as well as added and changed ones applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_leaves_the_children_exactly_as_rendered() {
    let assets = require_control_plane!();
    let env = Env::namespaced(&assets, "change", None).await;
    let full = json!({
        "chatbot": {"env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                    "podLabels": {"team": "sav", "tier": "front"}},
        "monitoring": {"interval": "15s"},
        "alerts": {"slo": {"availabilityTarget": 99.9}},
    });
    env.apply("bot", full).await;
    converged(&env, "bot").await;
    let groups = |rule: Value| rule["spec"]["groups"].as_array().unwrap().len();
    let with_slo = groups(get(&env.admin, &env.ns, "PrometheusRule", "bot").await.unwrap());

    let steps = [
        // An env entry, a pod label, a field and the SLO removed; an env value changed; an env entry added.
        json!({"chatbot": {"env": [{"name": "A", "value": "changed"}, {"name": "C", "value": "3"}],
                           "podLabels": {"team": "sav"}}}),
        // Whole parts switched off.
        json!({"chatbot": {"env": [{"name": "A", "value": "changed"}]}, "alerts": {"enabled": false},
               "dashboards": {"enabled": false}}),
        json!({"monitoring": {"enabled": false}, "alerts": {"enabled": false}}),
        // The NetworkPolicy's sources named, then the NetworkPolicy switched off.
        json!({"networkPolicy": {"apiFrom": [{"namespaceSelector": {"matchLabels": {"team": "web"}}}],
                                 "metricsFrom": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}}),
        // Nobody admitted at all: the policy denies every ingress, and reads back as applied.
        json!({"monitoring": {"enabled": false}, "networkPolicy": {"apiFrom": []}}),
        json!({"networkPolicy": {"enabled": false}}),
        // Notifications on, a receiver and a route changed, grouping and inhibitions changed, then off.
        json!({"notifications": {"receivers": [
            {"name": "paging", "pagerduty": {"routingKeySecretRef": {"name": "alerting", "key": "pd"}}},
            {"name": "chat", "slack": {"apiUrlSecretRef": {"name": "alerting", "key": "slack"}, "channel": "#sav"}},
            {"name": "mail", "email": {"to": "a@example.com", "from": "am@example.com", "smarthost": "smtp:587"}},
        ], "routes": {"info": ["mail"]}, "labels": {"team": "sav"}}}),
        json!({"notifications": {"receivers": [
            {"name": "paging", "webhook": {"urlSecretRef": {"name": "alerting", "key": "hook"}, "maxAlerts": 5}},
            {"name": "chat", "msteams": {"webhookUrlSecretRef": {"name": "alerting", "key": "teams"}}},
        ], "groupBy": ["alertname"], "groupWait": "10s", "inhibit": false}}),
        json!({"notifications": {"enabled": false, "receivers": []}}),
        // And back on.
        json!({}),
    ];
    for spec in steps {
        env.apply("bot", spec.clone()).await;
        controlplane_tests::eventually(&format!("the children of {spec}"), SETTLE, || env.converged("bot")).await;
    }
    let deployment = get(&env.admin, &env.ns, "Deployment", "bot").await.unwrap();
    let pod = &deployment["spec"]["template"];
    assert!(pod["metadata"]["labels"].get("team").is_none(), "{pod}");
    let env_names: Vec<&str> = pod["spec"]["containers"][0]["env"]
        .as_array()
        .map(|e| e.iter().filter_map(|e| e["name"].as_str()).collect())
        .unwrap_or_default();
    assert!(!env_names.contains(&"A") && !env_names.contains(&"B"), "{env_names:?}");
    let rule = get(&env.admin, &env.ns, "PrometheusRule", "bot").await.unwrap();
    assert_eq!(groups(rule), with_slo - 1, "the SLO rule group is gone");
}

/// The AlertmanagerConfig as the server stores it (the real v1alpha1 CRD), owned, by one field manager, and the
/// Alertmanager that selects it named in `Routed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_become_an_owned_alertmanager_config_that_the_alertmanager_selects() {
    let assets = require_control_plane!();
    let env = Env::namespaced(&assets, "notify", None).await;
    env.apply(
        "bot",
        json!({"notifications": {"receivers": [
            {"name": "paging", "pagerduty": {"routingKeySecretRef": {"name": "alerting", "key": "pd"}}},
            {"name": "chat", "webhook": {"urlSecretRef": {"name": "alerting", "key": "hook"}}},
        ]}}),
    )
    .await;
    let cbm = env
        .wait_status("bot", "Routed", SETTLE, |c| state(c, "Routed").0 == "True")
        .await;
    converged(&env, "bot").await;
    assert_eq!(
        state(&cbm, "AlertmanagerConfigReady"),
        ("True".into(), "Applied".into())
    );
    assert_eq!(state(&cbm, "Routed"), ("True".into(), "Selected".into()));
    let message = controlplane_tests::env::condition(&cbm, "Routed").unwrap().message;
    assert_eq!(message, "selected by Alertmanager monitoring/kps");
    let amc = get(&env.admin, &env.ns, "AlertmanagerConfig", "bot").await.unwrap();
    assert!(owned_by(&amc, &cbm));
    let managers: Vec<&str> = amc["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert_eq!(managers, ["chatbot-operator"]);
    assert_eq!(
        amc["spec"]["receivers"][1]["pagerdutyConfigs"][0]["routingKey"]["key"],
        "pd"
    );

    // Deleted by hand: restored. Switched off: removed.
    let api: Api<DynamicObject> = Api::namespaced_with(
        env.admin.clone(),
        &env.ns,
        &controlplane_tests::env::resource_of("AlertmanagerConfig"),
    );
    api.delete("bot", &Default::default()).await.unwrap();
    eventually("the AlertmanagerConfig restored", SETTLE, || env.converged("bot")).await;
    env.apply("bot", json!({"notifications": {"enabled": false, "receivers": []}}))
        .await;
    eventually("the AlertmanagerConfig removed", SETTLE, || env.converged("bot")).await;
    assert!(get(&env.admin, &env.ns, "AlertmanagerConfig", "bot").await.is_none());
    let forbidden: Vec<String> = env
        .cp
        .apiserver_metrics()
        .await
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total{") && l.contains("code=\"403\""))
        .map(str::to_owned)
        .collect();
    assert!(forbidden.is_empty(), "{forbidden:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_edits_and_deleted_children_are_restored() {
    let assets = require_control_plane!();
    let env = Env::namespaced(&assets, "drift", None).await;
    env.apply("bot", json!({})).await;
    converged(&env, "bot").await;

    let edit = PatchParams::default();
    let deployments: kube::Api<k8s_openapi::api::apps::v1::Deployment> =
        kube::Api::namespaced(env.admin.clone(), &env.ns);
    deployments
        .patch("bot", &edit, &Patch::Merge(json!({"spec": {"replicas": 5}})))
        .await
        .unwrap();
    let rules: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(
        env.admin.clone(),
        &env.ns,
        &controlplane_tests::env::resource_of("PrometheusRule"),
    );
    let mut rule = get(&env.admin, &env.ns, "PrometheusRule", "bot").await.unwrap();
    rule["spec"]["groups"][0]["rules"][0]["expr"] = json!("vector(0)");
    rules
        .patch("bot", &edit, &Patch::Merge(json!({"spec": rule["spec"]})))
        .await
        .unwrap();
    let services: kube::Api<k8s_openapi::api::core::v1::Service> = kube::Api::namespaced(env.admin.clone(), &env.ns);
    services.delete("bot", &Default::default()).await.unwrap();
    converged(&env, "bot").await;
}

/// Issue 11, defect 3: a condition message is a sentence, not a request URL with its query.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_prometheus_is_told_in_one_sentence() {
    let assets = require_control_plane!();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let env = Env::namespaced(&assets, "messages", Some((Duration::from_secs(1), closed.clone()))).await;
    env.apply("bot", json!({})).await;
    let cbm = env
        .wait_status("bot", "DashboardMetricsPresent", SETTLE, |c| {
            state(c, "DashboardMetricsPresent").1 == "PrometheusUnavailable"
        })
        .await;
    for type_ in ["Scraped", "RulesLoaded", "DashboardMetricsPresent"] {
        let c = controlplane_tests::env::condition(&cbm, type_).unwrap();
        assert!(
            c.message
                .starts_with(&format!("Prometheus at {closed} could not be reached: "))
                && !c.message.contains("/api/v1")
                && !c.message.contains("match")
                && c.message.len() < 200,
            "{type_}: {}",
            c.message
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_resource_removes_every_child() {
    let assets = require_control_plane!();
    let env = Env::namespaced(&assets, "deletion", None).await;
    if !env.cp.has_controller_manager() {
        eprintln!("skipped: no kube-controller-manager in KUBEBUILDER_ASSETS, so no garbage collector");
        return;
    }
    env.apply("bot", json!({})).await;
    converged(&env, "bot").await;
    env.api().delete("bot", &Default::default()).await.unwrap();
    controlplane_tests::eventually("every child garbage-collected", SETTLE, || async {
        let mut left = Vec::new();
        for (kind, name) in CHILDREN {
            if get(&env.admin, &env.ns, kind, name).await.is_some() {
                left.push(kind);
            }
        }
        left.is_empty().then_some(()).ok_or_else(|| format!("{left:?}"))
    })
    .await;
    // And the operator forgot it: nothing is recreated.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(get(&env.admin, &env.ns, "Deployment", "bot").await.is_none());
}

/// Issue 14: a team holding Kubernetes' `edit` role in its namespace manages its own ChatbotMonitorings there (the
/// chart's aggregated ClusterRoles), `view` reads them and cannot write, and neither reaches another namespace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_with_edit_in_its_namespace_manages_its_chatbot_monitorings() {
    let assets = require_control_plane!();
    // A control plane of its own: the 403s this test provokes would count against the test that expects none.
    let cp = std::sync::Arc::new(controlplane_tests::ControlPlane::start(&assets).await);
    controlplane_tests::env::install_everything(&cp.admin().await).await;
    let (env, _) = Env::without_operator(cp, "team-a", false).await;
    if !env.cp.has_controller_manager() {
        eprintln!(
            "skipped: the view/edit/admin aggregation needs kube-controller-manager, which KUBEBUILDER_ASSETS lacks"
        );
        return;
    }
    for (user, role) in [("alice", "edit"), ("bob", "view")] {
        let binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                             "metadata": {"name": format!("{user}-{role}"), "namespace": "team-a"},
                             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                             "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]});
        controlplane_tests::chart::apply(&env.admin, &binding).await.unwrap();
    }
    let cbm = |ns: &str| {
        json!({"apiVersion": "monitoring.chatbot-sav.io/v1alpha1", "kind": "ChatbotMonitoring",
               "metadata": {"name": "shop", "namespace": ns}, "spec": {}})
    };
    let as_user = |client: kube::Client, ns: &'static str| Api::<ChatbotMonitoring>::namespaced(client, ns);
    let alice = env.cp.user("alice").await;
    let bob = env.cp.user("bob").await;
    // The aggregation controller folds the chart's rules into `edit` within moments.
    eventually("alice creates a ChatbotMonitoring", Duration::from_secs(30), || {
        let api = as_user(alice.clone(), "team-a");
        let cbm = cbm("team-a");
        async move {
            api.patch("shop", &PatchParams::apply("alice"), &Patch::Apply(&cbm))
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        }
    })
    .await;
    let code = |r: Result<ChatbotMonitoring, kube::Error>| match r {
        Ok(_) => 200,
        Err(kube::Error::Api(s)) => s.code,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(
        code(as_user(bob.clone(), "team-a").get("shop").await),
        200,
        "view reads"
    );
    let patch = Patch::Apply(cbm("team-a"));
    assert_eq!(
        code(
            as_user(bob, "team-a")
                .patch("shop", &PatchParams::apply("bob"), &patch)
                .await
        ),
        403,
        "view cannot write"
    );
    chart::ensure_namespace(&env.admin, "team-b").await.unwrap();
    let elsewhere = Patch::Apply(cbm("team-b"));
    assert_eq!(
        code(
            as_user(alice.clone(), "team-b")
                .patch("shop", &PatchParams::apply("alice"), &elsewhere)
                .await
        ),
        403,
        "edit in team-a is nothing in team-b"
    );
    as_user(alice, "team-a")
        .delete("shop", &Default::default())
        .await
        .expect("edit deletes");
}

/// One field of an alert may be written alone: the server fills in that alert's own defaults for the others (before,
/// `latency: {threshold: 3}` was refused with `spec.alerts.latency.for: Required value`), the CLI reads the file the
/// same way, and `kubectl explain` shows each default.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_field_of_an_alert_is_enough_and_the_others_keep_that_alerts_defaults() {
    let assets = require_control_plane!();
    let env = Env::namespaced(&assets, "partial", None).await;
    let spec = json!({
        "alerts": {
            "latency": {"threshold": 3},
            "chatLatency": {"severity": "critical"},
            "memory": {"limitPercent": 80},
            "availability": {"partialFor": "10m"},
            // YAML's `2` is an integer: the bucket-bound rule must take it.
            "slo": {"latency": {"target": 99, "threshold": 2}},
        },
        "monitoring": {"interval": "30s"},
    });
    let stored = env.apply("bot", spec.clone()).await;
    let a = &stored.spec.alerts;
    assert_eq!(
        (
            a.latency.threshold,
            a.latency.for_.as_str(),
            a.latency.severity.as_str()
        ),
        (3.0, "2m", "warning")
    );
    assert_eq!(
        (
            a.chat_latency.threshold,
            a.chat_latency.for_.as_str(),
            a.chat_latency.severity.as_str()
        ),
        (3.0, "5m", "critical"),
        "chatLatency keeps its own `for`, not latency's"
    );
    assert_eq!(
        (
            a.memory.limit_percent,
            a.memory.alert.threshold,
            a.memory.alert.for_.as_str()
        ),
        (80.0, 500.0 * 1024.0 * 1024.0, "5m")
    );
    assert_eq!(
        (
            a.availability.min_up_percent,
            a.availability.for_.as_str(),
            a.availability.partial_for.as_str()
        ),
        (50.0, "2m", "10m")
    );
    assert_eq!(a.error_rate, Default::default(), "an alert left out is all defaults");
    assert_eq!(stored.spec.monitoring.scrape_timeout, "5s");
    // `render` and `verify` read the same file into the same spec.
    let file = json!({"apiVersion": "monitoring.chatbot-sav.io/v1alpha1", "kind": "ChatbotMonitoring",
                      "metadata": {"name": "bot", "namespace": env.ns}, "spec": spec});
    assert_eq!(chatbot_operator::admission::admit(&file).unwrap().spec, stored.spec);

    let kubeconfig = env.cp.dir().join("kubeconfig");
    let explain = |field: &str| {
        let out = std::process::Command::new("kubectl")
            .args(["explain", field, "--kubeconfig"])
            .arg(&kubeconfig)
            .output();
        match out {
            Ok(out) if out.status.success() => Some(String::from_utf8_lossy(&out.stdout).into_owned()),
            Ok(out) => panic!("kubectl explain {field}: {}", String::from_utf8_lossy(&out.stderr)),
            Err(_) => None,
        }
    };
    match explain("cbm.spec.alerts.latency.for") {
        None => eprintln!("SKIP kubectl explain: no kubectl on PATH"),
        Some(text) => {
            assert!(text.contains("Default: `2m`."), "{text}");
            let chat = explain("cbm.spec.alerts.chatLatency.for").unwrap();
            assert!(chat.contains("Default: `5m`."), "{chat}");
        }
    }
}
