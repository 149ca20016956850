//! The product on a real node (kubelet, containerd, runc, kube-proxy, CoreDNS; see `e2e_tests::node`): pods from
//! the product's own images, under Pod Security `restricted`, with probes a kubelet really executes, the operator
//! installed from its chart. One node for the whole scenario (it takes seconds to start, but one at a time), its
//! steps in order. Skipped, saying why, where the components are not (`KUBEBUILDER_ASSETS`, `NODE_ASSETS`, root;
//! README, "The components of a real node").

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use chatbot_operator::crd::ChatbotMonitoring;
use chatbot_operator::render::{RenderOptions, render};
use e2e_tests::image;
use e2e_tests::node::{Node, NodeAssets, wait_for};
use serde_json::{Value, json};

const CHATBOT_IMAGE: &str = "ghcr.io/chatbot-sav/chatbot:0.1.0";
const OPERATOR_IMAGE: &str = "ghcr.io/chatbot-sav/chatbot-operator:0.1.0";
/// The same operator under the next version's tag: an upgrade as `helm upgrade` makes it (a new image, a rollout).
const OPERATOR_NEXT_TAG: &str = "0.1.1";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The product's binary `name`, built by cargo as the tests are (debug profile).
fn binary(name: &str) -> PathBuf {
    let status = Command::new(env!("CARGO"))
        .current_dir(root())
        .args(["build", "-q", "-p", name])
        .status()
        .expect("cargo builds the binary");
    assert!(status.success(), "cargo build -p {name}");
    debug_binaries().join(name)
}

/// Where cargo puts the binaries of the debug profile.
fn debug_binaries() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or(root().join("target"));
    target.join("debug")
}

/// The image of the product's binary `name`, as its Dockerfile runs it, imported into the node.
fn import_product_image(node: &Node, package: &str, binary_name: &str, dockerfile: &str, reference: &str) {
    let run = image::run_config(&std::fs::read_to_string(root().join(dockerfile)).unwrap()).unwrap();
    let archive = node.run.join(format!("{binary_name}.oci.tar"));
    image::build(reference, &binary_of(package, binary_name), &run, &archive).unwrap();
    node.import_image(&archive).unwrap();
}

fn binary_of(package: &str, name: &str) -> PathBuf {
    let path = binary(package);
    path.with_file_name(name)
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn restricted_namespace(node: &Node, name: &str) {
    node.kubectl_apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n  labels:\n    \
         pod-security.kubernetes.io/enforce: restricted\n    pod-security.kubernetes.io/enforce-version: latest\n"
    ))
    .unwrap();
}

fn jsonpath(node: &Node, args: &[&str], path: &str) -> String {
    let mut all: Vec<&str> = args.to_vec();
    let path = format!("jsonpath={path}");
    all.extend(["-o", &path]);
    node.kubectl(&all).unwrap_or_default().trim().to_owned()
}

/// Waits, and on a timeout fails with what the namespace's pods and the component logs say.
fn wait_or_explain(node: &Node, ns: &str, what: &str, timeout: Duration, check: impl FnMut() -> bool) {
    if let Err(e) = wait_for(what, timeout, check) {
        let pods = node.kubectl(&["-n", ns, "describe", "pods"]).unwrap_or_default();
        let rs = node.kubectl(&["-n", ns, "describe", "replicasets"]).unwrap_or_default();
        panic!("{e}\n{pods}\n{rs}\nkubelet:\n{}", tail(&node.log("kubelet"), 30));
    }
}

#[test]
fn the_product_on_a_real_node() {
    let assets = match NodeAssets::from_env() {
        Ok(a) => a,
        Err(why) => {
            eprintln!("SKIPPED: no real node here: {why} (README, \"The components of a real node\")");
            return;
        }
    };
    let mut node = Node::start(&assets).unwrap_or_else(|e| panic!("the node did not start: {e:#}"));
    let up = node.started.elapsed();
    import_product_image(&node, "chatbot", "chatbot", "chatbot/Dockerfile", CHATBOT_IMAGE);
    import_product_image(
        &node,
        "chatbot-operator",
        "chatbot-operator",
        "operator/Dockerfile",
        OPERATOR_IMAGE,
    );

    let chatbot_ready = the_chatbot_image_runs_as_rendered_under_restricted_pod_security(&node);
    let installed = Instant::now();
    let operator_ready = the_operator_chart_installs_and_its_pod_becomes_ready_and_leader(&node);
    let resource_ready = a_chatbot_monitoring_runs_its_chatbot_and_says_why_refused_pods_are_refused(&node);
    let (started, first_sample_at, ready_at) =
        the_prometheus_operator_s_prometheus_scrapes_it_and_every_check_turns_true(&mut node, &assets);
    let (monitored, first_sample) = (ready_at - started, first_sample_at - started);
    the_routes_and_the_latency_objective_read_as_the_contract_says(&node);
    let (paged, paged_at) = a_fault_pages_the_teams_receiver_pod(&node);
    let fault_removed = Instant::now();
    a_team_with_edit_runs_its_chatbot_and_its_agents_read_tickets(&node);
    two_replicas_on_postgresql_share_their_conversations(&node);
    let resolved = the_page_resolves_once_the_fault_is_gone(&node, fault_removed);
    let handover = an_operator_upgrade_hands_its_lease_over_and_rewrites_no_child(&node);
    a_killed_pod_is_replaced_and_a_deleted_resource_leaves_nothing_behind(&node);
    eprintln!(
        "figures: node Ready {:.1} s after start; a rendered chatbot pod Ready {:.1} s after its apply; operator \
         chart applied to its pod Ready {:.1} s; ChatbotMonitoring applied to DeploymentReady {:.1} s; the Prometheus \
         Operator started to the resource Ready {:.1} s, its first sample {:.1} s; first failed chat to the \
         receiver pod paged {:.1} s, fault removed to resolved {:.1} s; operator upgrade to the new leader {:.1} s; from \
         the operator chart's install (this scenario installs the Prometheus Operator after it, and checks refused pods \
         and routes between): the resource Ready {:.1} s, its first sample {:.1} s, the first page {:.1} s; {:.0} s in \
         all",
        up.as_secs_f64(),
        chatbot_ready.as_secs_f64(),
        operator_ready.as_secs_f64(),
        resource_ready.as_secs_f64(),
        monitored.as_secs_f64(),
        first_sample.as_secs_f64(),
        paged.as_secs_f64(),
        resolved.as_secs_f64(),
        handover.as_secs_f64(),
        (ready_at - installed).as_secs_f64(),
        (first_sample_at - installed).as_secs_f64(),
        (paged_at - installed).as_secs_f64(),
        node.started.elapsed().as_secs_f64()
    );
}

/// The Deployment and Service `render` gives, applied as they are in a namespace enforcing `restricted`: the pod is
/// Ready by the kubelet's own probes, answers on its pod IP and through its Service's ClusterIP (kube-proxy), and
/// reads the rendered memory limit from its cgroup.
fn the_chatbot_image_runs_as_rendered_under_restricted_pod_security(node: &Node) -> Duration {
    restricted_namespace(node, "rendered");
    let cbm: ChatbotMonitoring = serde_json::from_value(json!({
        "apiVersion": "monitoring.chatbot-sav.io/v1alpha1", "kind": "ChatbotMonitoring",
        "metadata": {"name": "sav", "namespace": "rendered", "uid": "5e1f7a2c-0000-4000-8000-000000000001"},
        "spec": {"chatbot": {"image": CHATBOT_IMAGE, "imagePullPolicy": "Never"}},
    }))
    .unwrap();
    let desired = render(&cbm, &RenderOptions::default()).unwrap();
    let applied = Instant::now();
    for object in [
        serde_json::to_value(&desired.deployment).unwrap(),
        serde_json::to_value(&desired.service).unwrap(),
    ] {
        let mut object = object;
        // Applied by the test, not the operator: no owner to refer to.
        object["metadata"].as_object_mut().unwrap().remove("ownerReferences");
        node.kubectl_apply(&object.to_string()).unwrap();
    }
    wait_or_explain(
        node,
        "rendered",
        "the rendered chatbot pod Ready",
        Duration::from_secs(120),
        || {
            jsonpath(
                node,
                &["-n", "rendered", "get", "deployment", "sav"],
                "{.status.readyReplicas}",
            ) == "1"
        },
    );
    let to_ready = applied.elapsed();
    let pod_ip = jsonpath(
        node,
        &["-n", "rendered", "get", "pods", "-l", "app.kubernetes.io/instance=sav"],
        "{.items[0].status.podIP}",
    );
    let cluster_ip = jsonpath(node, &["-n", "rendered", "get", "service", "sav"], "{.spec.clusterIP}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let health = http.get(format!("http://{pod_ip}:8081/health")).send().await.unwrap();
        assert_eq!(health.status(), 200);
        let metrics = http
            .get(format!("http://{pod_ip}:8081/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        // The limit the operator renders (640Mi) is the one the chatbot reads from its cgroup.
        assert!(
            metrics.lines().any(|l| l == "memory_limit_bytes 671088640"),
            "{}",
            tail(&metrics, 80)
        );
        let chat = http
            .post(format!("http://{cluster_ip}:8000/chat"))
            .json(&json!({"message": "Où est ma commande ?"}))
            .send()
            .await
            .unwrap();
        assert_eq!(chat.status(), 200, "a chat through the Service's ClusterIP");
        let body: Value = chat.json().await.unwrap();
        assert_eq!(body["intent"], "order_tracking", "{body}");
    });
    let security = jsonpath(
        node,
        &["-n", "rendered", "get", "pods", "-l", "app.kubernetes.io/instance=sav"],
        "{.items[0].spec.containers[0].securityContext}",
    );
    let security: Value = serde_json::from_str(&security).unwrap();
    assert_eq!(security["readOnlyRootFilesystem"], true, "{security}");
    assert_eq!(security["allowPrivilegeEscalation"], false, "{security}");
    to_ready
}

/// The operator chart, rendered by Helm's engine with leader election on, applied server-side in a namespace
/// enforcing `restricted`: its pod runs from the operator image with in-cluster credentials, the kubelet's probes
/// pass, and it holds its Lease.
fn the_operator_chart_installs_and_its_pod_becomes_ready_and_leader(node: &Node) -> Duration {
    restricted_namespace(node, "chatbot-operator");
    let two = json!({"replicaCount": 2, "image": {"pullPolicy": "Never"}, "verify": {"period": "10s"}});
    let applied = Instant::now();
    let (deployment, first) = install_chart(node, &two, &[]);
    let replicas_ready = |n: &'static str| {
        let deployment = deployment.clone();
        move || {
            jsonpath(
                node,
                &["-n", "chatbot-operator", "get", "deployment", &deployment],
                "{.status.readyReplicas}/{.status.updatedReplicas}/{.status.replicas}",
            ) == format!("{n}/{n}/{n}")
        }
    };
    wait_or_explain(
        node,
        "chatbot-operator",
        "two operator pods Ready",
        Duration::from_secs(120),
        replicas_ready("2"),
    );
    let to_ready = applied.elapsed();
    wait_or_explain(
        node,
        "chatbot-operator",
        "the Lease held",
        Duration::from_secs(30),
        || {
            let holder = jsonpath(
                node,
                &["-n", "chatbot-operator", "get", "lease", "chatbot-operator-leader"],
                "{.spec.holderIdentity}",
            );
            holder.starts_with(&deployment)
        },
    );
    // Back to one replica without leader election (strategy Recreate), applied server-side by the same manager, as
    // `helm upgrade` does with Helm 4: refused before the chart wrote its strategy whole (issue 23, defect 1).
    let one = json!({"image": {"pullPolicy": "Never"}, "verify": {"period": "10s"}});
    install_chart(node, &one, &first);
    wait_or_explain(
        node,
        "chatbot-operator",
        "one operator pod Ready",
        Duration::from_secs(120),
        replicas_ready("1"),
    );
    let strategy = jsonpath(
        node,
        &["-n", "chatbot-operator", "get", "deployment", &deployment],
        "{.spec.strategy}",
    );
    assert_eq!(
        serde_json::from_str::<Value>(&strategy).unwrap(),
        json!({"type": "Recreate"})
    );
    to_ready
}

/// The operator chart rendered by Helm's engine with `values` and applied server-side, the CRD first; what an earlier
/// install (`before`) had and this one does not is deleted, as `helm upgrade` does. The Deployment's name, and every
/// (kind, namespace, name) applied.
fn install_chart(
    node: &Node,
    values: &Value,
    before: &[(String, String, String)],
) -> (String, Vec<(String, String, String)>) {
    let docs = controlplane_tests::chart::render("op", "chatbot-operator", values).expect("the chart renders");
    let (crds, rest): (Vec<Value>, Vec<Value>) =
        docs.into_iter().partition(|d| d["kind"] == "CustomResourceDefinition");
    let id = |d: &Value| {
        let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        (s(&d["kind"]), s(&d["metadata"]["namespace"]), s(&d["metadata"]["name"]))
    };
    for doc in crds.iter().chain(rest.iter()) {
        node.kubectl_apply(&doc.to_string())
            .unwrap_or_else(|e| panic!("applying {} {}: {e}", doc["kind"], doc["metadata"]["name"]));
    }
    let applied: Vec<(String, String, String)> = crds.iter().chain(rest.iter()).map(id).collect();
    for (kind, ns, name) in before.iter().filter(|b| !applied.contains(b)) {
        let mut args = vec!["delete", kind.as_str(), name.as_str()];
        if !ns.is_empty() {
            args.extend(["-n", ns.as_str()]);
        }
        node.kubectl(&args).unwrap();
    }
    let deployment = applied
        .iter()
        .find(|(k, _, _)| k == "Deployment")
        .map(|(_, _, n)| n.clone())
        .unwrap();
    (deployment, applied)
}

/// A ChatbotMonitoring in a namespace enforcing `restricted`: the operator applies the chatbot, whose pod becomes
/// Ready (`DeploymentReady` True). One that asks for privilege escalation gets pods Pod Security refuses, and the
/// resource says so in the API server's words (`PodCreationFailed`) instead of "0/1 pods ready".
fn a_chatbot_monitoring_runs_its_chatbot_and_says_why_refused_pods_are_refused(node: &Node) -> Duration {
    restricted_namespace(node, "shop");
    let applied = Instant::now();
    node.kubectl_apply(
        &json!({"apiVersion": "monitoring.chatbot-sav.io/v1alpha1", "kind": "ChatbotMonitoring",
                "metadata": {"name": "sav", "namespace": "shop"},
                "spec": {"chatbot": {"imagePullPolicy": "Never"},
                         "alerts": {"slo": {"latency": {"target": 99, "threshold": 2}}}}})
        .to_string(),
    )
    .unwrap();
    let condition = |name: &str, type_: &str| {
        jsonpath(
            node,
            &["-n", "shop", "get", "chatbotmonitoring", name],
            &format!(
                "{{.status.conditions[?(@.type==\"{type_}\")].status}}/{{.status.conditions[?(@.type==\"{type_}\")].reason}}"
            ),
        )
    };
    wait_or_explain(node, "shop", "DeploymentReady True", Duration::from_secs(120), || {
        condition("sav", "DeploymentReady") == "True/Available"
    });
    let to_ready = applied.elapsed();

    node.kubectl_apply(
        &json!({"apiVersion": "monitoring.chatbot-sav.io/v1alpha1", "kind": "ChatbotMonitoring",
                "metadata": {"name": "escalating", "namespace": "shop"},
                "spec": {"chatbot": {"imagePullPolicy": "Never",
                                     "securityContext": {"allowPrivilegeEscalation": true}}}})
        .to_string(),
    )
    .unwrap();
    wait_or_explain(
        node,
        "shop",
        "DeploymentReady PodCreationFailed",
        Duration::from_secs(120),
        || condition("escalating", "DeploymentReady") == "False/PodCreationFailed",
    );
    let message = jsonpath(
        node,
        &["-n", "shop", "get", "chatbotmonitoring", "escalating"],
        "{.status.conditions[?(@.type==\"DeploymentReady\")].message}",
    );
    assert!(
        message.contains("violates PodSecurity \"restricted:latest\"") && message.contains("allowPrivilegeEscalation"),
        "{message}"
    );
    to_ready
}

/// What kube-prometheus-stack installs, reduced to what the chain needs: the Prometheus Operator (with the status
/// of configuration resources on) and a Prometheus selecting ServiceMonitors and PrometheusRules by
/// `release: kps` in every namespace, discovering through EndpointSlices, served under the route prefix `/prom`.
const MONITORING: &str = "apiVersion: v1
kind: Namespace
metadata: {name: monitoring}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: prometheus, namespace: monitoring}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: prometheus}
rules:
- apiGroups: ['']
  resources: [services, endpoints, pods]
  verbs: [get, list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: prometheus}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: prometheus}
subjects:
- {kind: ServiceAccount, name: prometheus, namespace: monitoring}
---
apiVersion: monitoring.coreos.com/v1
kind: Prometheus
metadata: {name: kps, namespace: monitoring}
spec:
  version: v3.12.0
  image: quay.io/prometheus/prometheus:v3.12.0
  imagePullPolicy: IfNotPresent
  replicas: 1
  serviceAccountName: prometheus
  routePrefix: /prom
  serviceDiscoveryRole: EndpointSlice
  serviceMonitorSelector: {matchLabels: {release: kps}}
  serviceMonitorNamespaceSelector: {}
  ruleSelector: {matchLabels: {release: kps}}
  ruleNamespaceSelector: {}
  scrapeInterval: 5s
  evaluationInterval: 5s
  alerting:
    alertmanagers: [{namespace: monitoring, name: alertmanager-operated, port: web, apiVersion: v2}]
  resources:
    requests: {cpu: 50m, memory: 128Mi}
---
apiVersion: monitoring.coreos.com/v1
kind: Alertmanager
metadata: {name: kps, namespace: monitoring}
spec:
  version: v0.25.0
  image: quay.io/prometheus/alertmanager:v0.25.0
  imagePullPolicy: IfNotPresent
  replicas: 1
  alertmanagerConfigSelector: {}
  alertmanagerConfigNamespaceSelector: {}
  resources:
    requests: {cpu: 20m, memory: 32Mi}
";

/// The team's receiver: a webhook that keeps what it is sent (`webhook-recorder`), as restricted as the chatbot.
const RECEIVER: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: receiver, namespace: shop}
spec:
  replicas: 1
  selector: {matchLabels: {app: receiver}}
  template:
    metadata: {labels: {app: receiver}}
    spec:
      securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
      containers:
      - name: receiver
        image: ghcr.io/chatbot-sav/webhook-recorder:test
        imagePullPolicy: Never
        ports: [{name: http, containerPort: 8080}]
        readinessProbe: {httpGet: {path: /ready, port: http}, periodSeconds: 1}
        securityContext:
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          capabilities: {drop: [ALL]}
---
apiVersion: v1
kind: Service
metadata: {name: receiver, namespace: shop}
spec:
  selector: {app: receiver}
  ports: [{name: http, port: 8080, targetPort: http}]
---
apiVersion: v1
kind: Secret
metadata: {name: alerting, namespace: shop}
stringData:
  paging: http://receiver.shop.svc:8080/paging
  chat: http://receiver.shop.svc:8080/chat
";

/// The real Prometheus Operator runs a Prometheus that finds the chatbot through service discovery from what it
/// generated out of the resource's ServiceMonitor: the resource turns `Selected`, `Scraped 1/1`, `RulesLoaded` and
/// `DashboardMetricsPresent` True and `Ready`, and the Prometheus Operator's bindings agree. Nobody has chatted with
/// this chatbot (issue 23, defect 2: a quiet pod used to stay MetricsMissing), and the Prometheus serves under a
/// route prefix (defect 4: every check used to answer 404).
fn the_prometheus_operator_s_prometheus_scrapes_it_and_every_check_turns_true(
    node: &mut Node,
    assets: &NodeAssets,
) -> (Instant, Instant, Instant) {
    for crd in std::fs::read_dir(&assets.prometheus_operator_crds).unwrap().flatten() {
        node.kubectl_apply(&std::fs::read_to_string(crd.path()).unwrap())
            .unwrap();
    }
    // The Prometheus Operator looks for its kinds once, at its start, and leaves out the controller of any it does
    // not find served.
    node.kubectl(&[
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/prometheuses.monitoring.coreos.com",
        "crd/servicemonitors.monitoring.coreos.com",
        "crd/prometheusrules.monitoring.coreos.com",
        "crd/alertmanagers.monitoring.coreos.com",
        "crd/alertmanagerconfigs.monitoring.coreos.com",
    ])
    .unwrap();
    let started = Instant::now();
    install_the_prometheus_operator(node, assets);
    node.kubectl_apply(MONITORING).unwrap();
    let conditions = || {
        let text = jsonpath(
            node,
            &["-n", "shop", "get", "chatbotmonitoring", "sav"],
            "{.status.conditions}",
        );
        serde_json::from_str::<Vec<Value>>(&text).unwrap_or_default()
    };
    let explain = |what: &str| -> ! {
        panic!(
            "{what}: {:#}\nmonitoring:\n{}\n{}\nprometheus-operator:\n{}\nchatbot-operator:\n{}",
            Value::from(conditions()),
            node.kubectl(&["-n", "monitoring", "get", "all,prometheus,secrets,events"])
                .unwrap_or_else(|e| e.to_string()),
            node.kubectl(&["-n", "monitoring", "describe", "pods"])
                .map(|t| tail(&t, 40))
                .unwrap_or_default(),
            node.kubectl(&["-n", "default", "logs", "deployment/prometheus-operator", "--tail=200"])
                .unwrap_or_default()
                .lines()
                .filter(|l| !l.contains("level=info") || l.contains("kps") || l.contains("monitoring/"))
                .take(40)
                .collect::<Vec<_>>()
                .join("\n"),
            node.kubectl(&[
                "-n",
                "chatbot-operator",
                "logs",
                "-l",
                "app.kubernetes.io/name=chatbot-monitoring-operator",
                "--tail=30"
            ])
            .unwrap_or_default()
        )
    };
    let is_true = |type_: &str| conditions().iter().any(|c| c["type"] == type_ && c["status"] == "True");
    if wait_for("Scraped", Duration::from_secs(240), || is_true("Scraped")).is_err() {
        explain("not scraped");
    }
    let first_sample = Instant::now();
    if wait_for("the resource Ready", Duration::from_secs(240), || is_true("Ready")).is_err() {
        explain("not Ready");
    }
    let monitored = Instant::now();
    let all = conditions();
    for type_ in ["Selected", "Scraped", "RulesLoaded", "DashboardMetricsPresent"] {
        let c = all
            .iter()
            .find(|c| c["type"] == type_)
            .unwrap_or_else(|| panic!("no {type_}: {all:?}"));
        assert_eq!(c["status"], "True", "{type_}: {c}");
    }
    let scraped = all.iter().find(|c| c["type"] == "Scraped").unwrap();
    assert_eq!(scraped["message"], "1/1 up", "{scraped}");
    let selected = all.iter().find(|c| c["type"] == "Selected").unwrap();
    assert!(
        selected["message"]
            .as_str()
            .unwrap_or("")
            .contains("confirmed by the Prometheus Operator"),
        "{selected}"
    );
    // The Prometheus Operator itself: the ServiceMonitor bound and accepted by monitoring/kps.
    let binding = jsonpath(
        node,
        &["-n", "shop", "get", "servicemonitor", "sav"],
        "{.status.bindings[0].name}/{.status.bindings[0].conditions[?(@.type==\"Accepted\")].status}",
    );
    assert_eq!(binding, "kps/True");
    (started, first_sample, monitored)
}

/// Chats to the chatbot's pod, then in the Prometheus Operator's Prometheus: the route in `endpoint` (the chatbot's
/// label, which the target's own `endpoint` would otherwise push aside into `exported_endpoint`), and the latency
/// objective recorded (its `le` matcher reads Prometheus 3's `le="2.0"`).
fn the_routes_and_the_latency_objective_read_as_the_contract_says(node: &Node) {
    let ip = jsonpath(
        node,
        &["-n", "shop", "get", "pods", "-l", "app.kubernetes.io/instance=sav"],
        "{.items[0].status.podIP}",
    );
    for _ in 0..5 {
        assert_eq!(chat(&ip, json!({"message": "Où est ma commande ?"})).0, 200);
    }
    let query = |q: &str| {
        let encoded: String = q
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' | b'.' | b':' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect();
        prometheus(node, &format!("query?query={encoded}"))["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    for q in [
        "http_requests_total{namespace=\"shop\", job=\"sav\", endpoint=\"/chat\"}",
        "chatbot:chat_slow_ratio:rate5m{namespace=\"shop\", job=\"sav\"}",
    ] {
        let found = wait_for(q, Duration::from_secs(120), || !query(q).is_empty());
        assert!(
            found.is_ok(),
            "{q}: nothing in Prometheus; {:?}",
            query("http_requests_total")
        );
    }
    let routes = query("http_requests_total{namespace=\"shop\", exported_endpoint!=\"\"}");
    assert!(routes.is_empty(), "a route left in exported_endpoint: {routes:?}");
}

/// The `sav` resource with notifications to the receiver pod, every chat failing while `faulty`.
fn notified_resource(faulty: bool) -> String {
    let env = if faulty {
        json!([{"name": "CHATBOT_FAULT_EVERY", "value": "1"}])
    } else {
        json!([])
    };
    json!({"apiVersion": "monitoring.chatbot-sav.io/v1alpha1", "kind": "ChatbotMonitoring",
           "metadata": {"name": "sav", "namespace": "shop"},
           "spec": {"chatbot": {"imagePullPolicy": "Never", "env": env},
                    "alerts": {"errorRate": {"threshold": 0.01, "for": "5s"},
                               "slo": {"latency": {"target": 99, "threshold": 2}}},
                    "notifications": {
                        "receivers": [
                            {"name": "paging", "webhook": {"urlSecretRef": {"name": "alerting", "key": "paging"}}},
                            {"name": "chat", "webhook": {"urlSecretRef": {"name": "alerting", "key": "chat"}}}],
                        "groupWait": "1s", "groupInterval": "5s"}}})
    .to_string()
}

/// `POST /chat` to the chatbot pod at `ip`: the status and the JSON answer (null when there is none).
fn chat(ip: &str, body: Value) -> (u16, Value) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let response = reqwest::Client::new()
            .post(format!("http://{ip}:8000/chat"))
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST http://{ip}:8000/chat: {e}"));
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    })
}

/// What the receiver pod was sent: (path, notification).
fn received(node: &Node) -> Vec<(String, Value)> {
    let receiver = jsonpath(
        node,
        &["-n", "shop", "get", "pods", "-l", "app=receiver"],
        "{.items[0].status.podIP}",
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let all: Value = rt.block_on(async {
        match reqwest::get(format!("http://{receiver}:8080/received")).await {
            Ok(r) => r.json().await.unwrap_or(Value::Null),
            Err(_) => Value::Null,
        }
    });
    all.as_array()
        .into_iter()
        .flatten()
        .map(|n| (n["path"].as_str().unwrap_or("").to_owned(), n["body"].clone()))
        .collect()
}

/// The notification to `path` with `alertname` in `status` (`firing`, `resolved`), if there was one.
fn notified(received: &[(String, Value)], path: &str, alertname: &str, status: &str) -> Option<Value> {
    received.iter().filter(|(p, _)| p == path).find_map(|(_, body)| {
        body["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|a| a["labels"]["alertname"] == alertname && a["status"] == status)
            .then(|| body.clone())
    })
}

/// The fault removed (the chatbot rolled back to healthy), the page resolves: once the failed chats leave
/// `HighErrorRate`'s 5-minute window, the receiver pod is told. Returns the time from the fault's removal.
fn the_page_resolves_once_the_fault_is_gone(node: &Node, removed: Instant) -> Duration {
    if wait_for("HighErrorRate resolved", Duration::from_secs(420), || {
        notified(&received(node), "/paging", "HighErrorRate", "resolved").is_some()
    })
    .is_err()
    {
        panic!(
            "no resolved page within 7 min of the fault's removal: {:?}",
            received(node)
        );
    }
    removed.elapsed()
}

/// The whole alerting chain: the resource gets notifications to the team's receiver pod and a fault (every chat
/// answered 503, through the chatbot's fault injection); the real Prometheus Operator loads the AlertmanagerConfig
/// into its Alertmanager (`Routed` True), Prometheus fires `HighErrorRate`, and the receiver pod gets the page with the
/// resource's labels. Returns the time from the first failed chat to the page, and when the page arrived.
fn a_fault_pages_the_teams_receiver_pod(node: &Node) -> (Duration, Instant) {
    let run = image::RunConfig {
        user: "65532".into(),
        working_dir: "/".into(),
        entrypoint: vec!["/webhook-recorder".into()],
        cmd: Vec::new(),
        exposed_ports: vec!["8080/tcp".into()],
        binary_path: "/webhook-recorder".into(),
    };
    let archive = node.run.join("webhook-recorder.oci.tar");
    image::build(
        "ghcr.io/chatbot-sav/webhook-recorder:test",
        &e2e_binary("webhook-recorder"),
        &run,
        &archive,
    )
    .unwrap();
    node.import_image(&archive).unwrap();
    node.kubectl_apply(RECEIVER).unwrap();
    node.kubectl_apply(&notified_resource(true)).unwrap();
    let status = |type_: &str| {
        jsonpath(
            node,
            &["-n", "shop", "get", "chatbotmonitoring", "sav"],
            &format!("{{.status.conditions[?(@.type==\"{type_}\")].status}}"),
        )
    };
    wait_or_explain(node, "shop", "Routed True", Duration::from_secs(240), || {
        status("Routed") == "True"
    });
    wait_or_explain(
        node,
        "shop",
        "the faulty chatbot rolled out",
        Duration::from_secs(120),
        || {
            status("DeploymentReady") == "True"
                && jsonpath(
                    node,
                    &["-n", "shop", "get", "pods", "-l", "app.kubernetes.io/instance=sav"],
                    "{.items[*].spec.containers[0].env}",
                )
                .contains("CHATBOT_FAULT_EVERY")
                && jsonpath(
                    node,
                    &["-n", "shop", "get", "pods", "-l", "app.kubernetes.io/instance=sav"],
                    "{.items[*].metadata.name}",
                )
                .split_whitespace()
                .count()
                    == 1
        },
    );
    let chatbot = jsonpath(
        node,
        &["-n", "shop", "get", "pods", "-l", "app.kubernetes.io/instance=sav"],
        "{.items[0].status.podIP}",
    );
    let faulted = Instant::now();
    let mut page = None;
    while page.is_none() && faulted.elapsed() < Duration::from_secs(180) {
        let (status, _) = chat(&chatbot, json!({"message": "Where is my order?"}));
        assert_eq!(status, 503, "the fault injection answers 503");
        page = notified(&received(node), "/paging", "HighErrorRate", "firing")
            .map(|body| (body, faulted.elapsed(), Instant::now()));
        std::thread::sleep(Duration::from_millis(500));
    }
    let Some((body, after, at)) = page else {
        panic!("no page within 180 s; the receiver pod got {:?}", received(node));
    };
    assert_eq!(body["receiver"], "shop/sav/paging", "{body}");
    let alert = body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"]["alertname"] == "HighErrorRate")
        .unwrap();
    for (label, value) in [
        ("namespace", "shop"),
        ("chatbot", "sav"),
        ("job", "sav"),
        ("severity", "critical"),
    ] {
        assert_eq!(alert["labels"][label], value, "{alert}");
    }
    assert!(
        alert["annotations"]["runbook_url"]
            .as_str()
            .unwrap_or("")
            .ends_with("/HighErrorRate.md"),
        "{alert}"
    );
    node.kubectl_apply(&notified_resource(false)).unwrap();
    (after, at)
}

/// A team holding only the namespace's `edit` role (the chart aggregates the kind into it) applies a resource whose
/// agent tokens Secret does not exist yet: the resource says `SecretMissing`; the team creates the Secret, the
/// chatbot runs, a customer's escalation opens a ticket, and an agent reads it with a token of the Secret (without
/// one, 401).
fn a_team_with_edit_runs_its_chatbot_and_its_agents_read_tickets(node: &Node) {
    restricted_namespace(node, "team");
    node.kubectl(&[
        "-n",
        "team",
        "create",
        "rolebinding",
        "alice-edit",
        "--clusterrole=edit",
        "--user=alice",
    ])
    .unwrap();
    let as_alice = |yaml: &str| {
        node.kubectl_apply_as("alice", yaml)
            .unwrap_or_else(|e| panic!("alice (edit) cannot apply: {e}"))
    };
    as_alice(
        &json!({"apiVersion": "monitoring.chatbot-sav.io/v1alpha1", "kind": "ChatbotMonitoring",
                "metadata": {"name": "helpdesk", "namespace": "team"},
                "spec": {"chatbot": {"imagePullPolicy": "Never",
                                     "agentTokensSecretRef": {"name": "agents", "key": "tokens"}},
                         "monitoring": {"prometheus": {"mode": "none"}}}})
        .to_string(),
    );
    let condition = || {
        jsonpath(
            node,
            &["-n", "team", "get", "chatbotmonitoring", "helpdesk"],
            "{.status.conditions[?(@.type==\"DeploymentReady\")].status}/\
             {.status.conditions[?(@.type==\"DeploymentReady\")].reason}",
        )
    };
    wait_or_explain(
        node,
        "team",
        "DeploymentReady False/SecretMissing",
        Duration::from_secs(120),
        || condition() == "False/SecretMissing",
    );
    as_alice(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: agents, namespace: team}\n\
         stringData: {tokens: \"first-agent-token-0123456789abcdef0123456789,second-agent-token-0123456789abcdef012345678\"}\n",
    );
    wait_or_explain(node, "team", "DeploymentReady True", Duration::from_secs(120), || {
        condition() == "True/Available"
    });
    let ip = jsonpath(
        node,
        &[
            "-n",
            "team",
            "get",
            "pods",
            "-l",
            "app.kubernetes.io/instance=helpdesk",
            "--field-selector=status.phase=Running",
        ],
        "{.items[0].status.podIP}",
    );
    let (_, answer) = chat(&ip, json!({"message": "Je veux parler à un conseiller"}));
    let ticket = answer["ticket_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no ticket: {answer}"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let http = reqwest::Client::new();
        let url = format!("http://{ip}:8000/tickets/{ticket}");
        let anonymous = http.get(&url).send().await.unwrap().status().as_u16();
        assert_eq!(anonymous, 401, "a ticket without an agent token");
        let agent = http
            .get(&url)
            .bearer_auth("second-agent-token-0123456789abcdef012345678")
            .send()
            .await
            .unwrap();
        assert_eq!(agent.status().as_u16(), 200, "a ticket with the Secret's second token");
        let read: Value = agent.json().await.unwrap();
        assert_eq!(read["ticket_id"], ticket, "{read}");
        assert_eq!(read["message"], "Je veux parler à un conseiller", "{read}");
    });
}

/// The second storage: a PostgreSQL server in the node's network (on the node's address, admitting the pod range
/// with a password), its URL in a Secret, and a resource with two replicas on it: both Ready, and a conversation begun
/// on one pod goes on on the other.
fn two_replicas_on_postgresql_share_their_conversations(node: &Node) {
    let pg = testsupport::postgres::TestPostgres::start_with(testsupport::postgres::Listen {
        netns: Some(e2e_tests::node::NETNS.into()),
        address: e2e_tests::node::config::ADDRESSES.node_ip.into(),
        port: Some(5432),
        clients: Some(e2e_tests::node::config::ADDRESSES.pod_cidr.into()),
    })
    .unwrap_or_else(|e| panic!("PostgreSQL in the node's network: {e:#}"));
    restricted_namespace(node, "store");
    node.kubectl_apply(
        &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "store"},
                "stringData": {"url": pg.client_url()}})
        .to_string(),
    )
    .unwrap();
    node.kubectl_apply(
        &json!({"apiVersion": "monitoring.chatbot-sav.io/v1alpha1", "kind": "ChatbotMonitoring",
                "metadata": {"name": "support", "namespace": "store"},
                "spec": {"chatbot": {"imagePullPolicy": "Never", "replicas": 2,
                                     "database": {"type": "postgres",
                                                  "postgres": {"urlSecretRef": {"name": "db", "key": "url"}}}},
                         "monitoring": {"prometheus": {"mode": "none"}}}})
        .to_string(),
    )
    .unwrap();
    wait_or_explain(
        node,
        "store",
        "two replicas on PostgreSQL Ready",
        Duration::from_secs(120),
        || {
            jsonpath(
                node,
                &["-n", "store", "get", "chatbotmonitoring", "support"],
                "{.status.replicas}/{.status.conditions[?(@.type==\"DeploymentReady\")].status}",
            ) == "2/2/True"
        },
    );
    let ips = jsonpath(
        node,
        &["-n", "store", "get", "pods", "-l", "app.kubernetes.io/instance=support"],
        "{.items[*].status.podIP}",
    );
    let ips: Vec<&str> = ips.split_whitespace().collect();
    assert_eq!(ips.len(), 2, "{ips:?}");
    let (_, first) = chat(ips[0], json!({"message": "Où est ma commande ?"}));
    let session = first["session_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no session: {first}"));
    let (status, next) = chat(
        ips[1],
        json!({"message": "Et mon remboursement ?", "session_id": session}),
    );
    assert_eq!(status, 200, "the other replica knows the session: {next}");
    assert_eq!(next["session_id"], session, "{next}");
    // Gone before its database, so that no pod is left failing against it.
    node.kubectl(&["-n", "store", "delete", "chatbotmonitoring", "support"])
        .unwrap();
    drop(pg);
}

/// The operator upgraded (two replicas with leader election, a new image tag, a rolling update): the Lease passes to
/// a pod of the new version, which reconciles every resource again and rewrites none of the children, so an upgrade
/// neither restarts a chatbot nor touches its monitoring. Returns the time from the upgrade to the new leader.
fn an_operator_upgrade_hands_its_lease_over_and_rewrites_no_child(node: &Node) -> Duration {
    let values = |tag: &str| json!({"replicaCount": 2, "image": {"pullPolicy": "Never", "tag": tag}, "verify": {"period": "10s"}});
    let (_, before_upgrade) = install_chart(node, &values("0.1.0"), &[]);
    let pods = |tag: &str| -> Vec<String> {
        let all = jsonpath(
            node,
            &[
                "-n",
                "chatbot-operator",
                "get",
                "pods",
                "-l",
                "app.kubernetes.io/name=chatbot-monitoring-operator",
            ],
            "{range .items[*]}{.metadata.name}={.spec.containers[0].image}={.status.conditions[?(@.type==\"Ready\")].status} {end}",
        );
        all.split_whitespace()
            .filter_map(|p| {
                let mut parts = p.split('=');
                let (name, image, ready) = (parts.next()?, parts.next()?, parts.next()?);
                (image.ends_with(&format!(":{tag}")) && ready == "True").then(|| name.to_owned())
            })
            .collect()
    };
    let holder = || {
        jsonpath(
            node,
            &["-n", "chatbot-operator", "get", "lease", "chatbot-operator-leader"],
            "{.spec.holderIdentity}",
        )
    };
    wait_or_explain(
        node,
        "chatbot-operator",
        "two pods of 0.1.0, one leading",
        Duration::from_secs(120),
        || {
            let current = pods("0.1.0");
            current.len() == 2 && current.contains(&holder())
        },
    );
    let children = [
        "deployment/sav",
        "service/sav",
        "servicemonitor/sav",
        "prometheusrule/sav",
        "networkpolicy/sav",
        "configmap/sav-dashboard-overview",
        "alertmanagerconfig/sav",
    ];
    let mut args = vec!["-n", "shop", "get"];
    args.extend(children);
    let versions = || {
        jsonpath(
            node,
            &args,
            "{range .items[*]}{.kind}/{.metadata.name}={.metadata.resourceVersion} {end}",
        )
    };
    let before = versions();
    assert_eq!(before.split_whitespace().count(), children.len(), "{before}");

    let next = format!("ghcr.io/chatbot-sav/chatbot-operator:{OPERATOR_NEXT_TAG}");
    import_product_image(
        node,
        "chatbot-operator",
        "chatbot-operator",
        "operator/Dockerfile",
        &next,
    );
    let upgraded = Instant::now();
    install_chart(node, &values(OPERATOR_NEXT_TAG), &before_upgrade);
    wait_or_explain(
        node,
        "chatbot-operator",
        "a pod of the new version leading",
        Duration::from_secs(180),
        || {
            let current = pods(OPERATOR_NEXT_TAG);
            current.len() == 2 && current.contains(&holder()) && pods("0.1.0").is_empty()
        },
    );
    let handover = upgraded.elapsed();
    // The new leader has reconciled every resource of the cluster at least once (its own count).
    let resources = node
        .kubectl(&["get", "chatbotmonitorings", "-A", "-o", "name"])
        .unwrap()
        .lines()
        .count() as f64;
    let leader_ip = jsonpath(
        node,
        &["-n", "chatbot-operator", "get", "pod", &holder()],
        "{.status.podIP}",
    );
    let reconciled = || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let text = rt.block_on(async {
            match reqwest::get(format!("http://{leader_ip}:8080/metrics")).await {
                Ok(r) => r.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            }
        });
        text.lines()
            .filter(|l| l.starts_with("chatbot_operator_reconciliations_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    wait_or_explain(
        node,
        "chatbot-operator",
        "every resource reconciled by the new leader",
        Duration::from_secs(120),
        || reconciled() >= resources,
    );
    // Its count does not say which resources it reconciled: one verification period (10 s, after which each
    // resource is looked at again) more makes sure shop/sav was among them.
    std::thread::sleep(Duration::from_secs(11));
    assert_eq!(versions(), before, "an operator upgrade rewrote children of shop/sav");
    handover
}

/// A binary of the test crate itself, built as the tests are.
fn e2e_binary(name: &str) -> PathBuf {
    let status = Command::new(env!("CARGO"))
        .current_dir(root())
        .args(["build", "-q", "-p", "e2e-tests", "--bin", name])
        .status()
        .expect("cargo builds the binary");
    assert!(status.success(), "cargo build -p e2e-tests --bin {name}");
    debug_binaries().join(name)
}

/// The Prometheus Operator as its own bundle installs it (ServiceAccount, ClusterRole and binding, Deployment in
/// `default`), a pod from its image, with one flag added: the status of the configuration resources (`bindings`).
fn install_the_prometheus_operator(node: &Node, assets: &NodeAssets) {
    let mut files: Vec<_> = std::fs::read_dir(&assets.prometheus_operator_bundle)
        .unwrap()
        .flatten()
        .map(|f| f.path())
        .collect();
    files.sort();
    for file in files {
        let mut object: Value = serde_yaml::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        if object["kind"] == "Deployment" {
            object["spec"]["template"]["spec"]["containers"][0]["args"]
                .as_array_mut()
                .unwrap()
                .push(json!("--feature-gates=StatusForConfigurationResources=true"));
        }
        node.kubectl_apply(&object.to_string())
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    }
    wait_or_explain(
        node,
        "default",
        "the Prometheus Operator's pod Ready",
        Duration::from_secs(120),
        || {
            jsonpath(
                node,
                &["-n", "default", "get", "deployment", "prometheus-operator"],
                "{.status.readyReplicas}",
            ) == "1"
        },
    );
}

/// Prometheus' API of monitoring/kps, from the host over the node's link (under its route prefix).
fn prometheus(node: &Node, path: &str) -> Value {
    let ip = jsonpath(
        node,
        &["-n", "monitoring", "get", "pod", "prometheus-kps-0"],
        "{.status.podIP}",
    );
    let url = format!("http://{ip}:9090/prom/api/v1/{path}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        match reqwest::get(&url).await {
            Ok(r) => r
                .json::<Value>()
                .await
                .map(|v| v["data"].clone())
                .unwrap_or(Value::Null),
            Err(_) => Value::Null,
        }
    })
}

/// The pods of the chatbot's active targets in Prometheus with their health (`up`), or `None` when Prometheus
/// could not be asked (so that "no target" is never read from an error).
fn chatbot_targets(node: &Node) -> Option<Vec<(String, String)>> {
    let answer = prometheus(node, "targets?state=active");
    let targets = answer["activeTargets"].as_array()?;
    Some(
        targets
            .iter()
            .filter(|t| t["labels"]["namespace"] == "shop" && t["labels"]["job"] == "sav")
            .map(|t| {
                (
                    t["labels"]["pod"].as_str().unwrap_or("").to_owned(),
                    t["health"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect(),
    )
}

/// Day two: the chatbot's pod killed is replaced and scraped again; the resource deleted, everything it made is
/// garbage-collected and the Prometheus Operator's generated configuration forgets the chatbot's target and rules.
fn a_killed_pod_is_replaced_and_a_deleted_resource_leaves_nothing_behind(node: &Node) {
    let selector = "app.kubernetes.io/instance=sav";
    let old = jsonpath(
        node,
        &["-n", "shop", "get", "pods", "-l", selector],
        "{.items[0].metadata.name}",
    );
    node.kubectl(&["-n", "shop", "delete", "pod", &old, "--wait=false"])
        .unwrap();
    wait_or_explain(
        node,
        "shop",
        "a new chatbot pod Ready",
        Duration::from_secs(120),
        || {
            let pods = jsonpath(
                node,
                &["-n", "shop", "get", "pods", "-l", selector],
                "{range .items[*]}{.metadata.name}={.status.conditions[?(@.type==\"Ready\")].status} {end}",
            );
            pods.split_whitespace()
                .any(|p| !p.starts_with(&old) && p.ends_with("=True"))
        },
    );
    wait_or_explain(node, "shop", "the new pod scraped", Duration::from_secs(120), || {
        jsonpath(
            node,
            &["-n", "shop", "get", "chatbotmonitoring", "sav"],
            "{.status.conditions[?(@.type==\"Scraped\")].message}",
        ) == "1/1 up"
            && chatbot_targets(node).is_some_and(|t| t.len() == 1 && t[0].0 != old && t[0].1 == "up")
    });

    node.kubectl(&["-n", "shop", "delete", "chatbotmonitoring", "sav"])
        .unwrap();
    let children = [
        "deployment/sav",
        "service/sav",
        "servicemonitor/sav",
        "prometheusrule/sav",
        "networkpolicy/sav",
        "configmap/sav-dashboard-overview",
    ];
    wait_or_explain(
        node,
        "shop",
        "every child garbage-collected",
        Duration::from_secs(120),
        || {
            children.iter().all(|c| {
                node.kubectl(&["-n", "shop", "get", c, "--ignore-not-found", "-o", "name"])
                    .is_ok_and(|o| o.trim().is_empty())
            })
        },
    );
    wait_or_explain(
        node,
        "monitoring",
        "Prometheus forgets the chatbot",
        Duration::from_secs(180),
        || {
            let rules = prometheus(node, "rules");
            let groups = rules["groups"].as_array().cloned().unwrap_or_default();
            rules.is_object()
                && chatbot_targets(node).is_some_and(|t| t.is_empty())
                && !groups
                    .iter()
                    .any(|g| g["file"].as_str().is_some_and(|f| f.contains("shop-sav-")))
        },
    );
}
