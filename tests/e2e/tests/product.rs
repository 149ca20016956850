//! The product as users run it, one suite for two clusters: a real node on this machine (kubelet, containerd, runc,
//! kube-proxy, CoreDNS; see `e2e_tests::node`) and kind (`e2e_tests::kind`, the laptop's and the hosted CI's path).
//! Pods from the product's own images, under Pod Security `restricted`, with probes a kubelet really executes, the
//! operator installed from its chart, the real Prometheus Operator managing a Prometheus and an Alertmanager. One
//! cluster for the whole scenario, its steps in order. Each entry is skipped, saying why, where its cluster is not:
//! `on_a_real_node` without `KUBEBUILDER_ASSETS`, `NODE_ASSETS` or root (README, "The components of a real node"),
//! `on_kind` without `E2E_KIND_CLUSTER` (README, "The same suite on kind").

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use chatbot_operator::crd::ChatbotMonitoring;
use chatbot_operator::render::{RenderOptions, render};
use e2e_tests::cluster::{Cluster, Http, PrometheusOperatorAssets, wait_for};
use e2e_tests::image;
use e2e_tests::kind::Kind;
use e2e_tests::node::{Node, NodeAssets};
use serde_json::{Value, json};

const CHATBOT_IMAGE: &str = "ghcr.io/chatbot-sav/chatbot:0.1.0";
const OPERATOR_IMAGE: &str = "ghcr.io/chatbot-sav/chatbot-operator:0.1.0";
/// The same operator under the next version's tag: an upgrade as `helm upgrade` makes it (a new image, a rollout).
const OPERATOR_NEXT_TAG: &str = "0.1.1";
/// The previous release, which an upgrade comes from: the last commit before `chatbot.conversationIdle` and
/// `chatbot.model.openai.prices` entered the CRD.
const PREVIOUS_RELEASE: &str = "e7983d9";
const PREVIOUS_TAG: &str = "0.0.9";
/// On kind, the directory holding the Prometheus Operator's `prometheus-operator-crds/` and
/// `prometheus-operator-bundle/` (on the node they are in `NODE_ASSETS`).
const PROMETHEUS_OPERATOR_VAR: &str = "E2E_PROMETHEUS_OPERATOR";

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

/// The image of the product's binary `name`, as its Dockerfile runs it, imported into the cluster.
fn import_product_image(cluster: &dyn Cluster, package: &str, binary_name: &str, dockerfile: &str, reference: &str) {
    let run = image::run_config(&std::fs::read_to_string(root().join(dockerfile)).unwrap()).unwrap();
    let archive = cluster.workdir().join(format!("{binary_name}.oci.tar"));
    image::build(reference, &binary_of(package, binary_name), &run, &archive).unwrap();
    cluster.import_image(&archive).unwrap();
}

fn binary_of(package: &str, name: &str) -> PathBuf {
    let path = binary(package);
    path.with_file_name(name)
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn restricted_namespace(cluster: &dyn Cluster, name: &str) {
    cluster
        .kubectl_apply(&format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n  labels:\n    \
         pod-security.kubernetes.io/enforce: restricted\n    pod-security.kubernetes.io/enforce-version: latest\n"
        ))
        .unwrap();
}

fn jsonpath(cluster: &dyn Cluster, args: &[&str], path: &str) -> String {
    let mut all: Vec<&str> = args.to_vec();
    let path = format!("jsonpath={path}");
    all.extend(["-o", &path]);
    cluster.kubectl(&all).unwrap_or_default().trim().to_owned()
}

/// `field` (`status`, `reason`, `message`) of condition `type_` of the ChatbotMonitoring `namespace/name`.
fn condition(cluster: &dyn Cluster, namespace: &str, name: &str, type_: &str, field: &str) -> String {
    jsonpath(
        cluster,
        &["-n", namespace, "get", "chatbotmonitoring", name],
        &format!("{{.status.conditions[?(@.type==\"{type_}\")].{field}}}"),
    )
}

/// Condition `type_`'s status and reason, as `True/Available`.
fn status_reason(cluster: &dyn Cluster, namespace: &str, name: &str, type_: &str) -> String {
    format!(
        "{}/{}",
        condition(cluster, namespace, name, type_, "status"),
        condition(cluster, namespace, name, type_, "reason")
    )
}

/// Waits, and on a timeout fails with what the namespace's pods and the component logs say.
fn wait_or_explain(cluster: &dyn Cluster, ns: &str, what: &str, timeout: Duration, check: impl FnMut() -> bool) {
    if let Err(e) = wait_for(what, timeout, check) {
        let pods = cluster.kubectl(&["-n", ns, "describe", "pods"]).unwrap_or_default();
        let rs = cluster
            .kubectl(&["-n", ns, "describe", "replicasets"])
            .unwrap_or_default();
        panic!("{e}\n{pods}\n{rs}\nkubelet:\n{}", cluster.node_log());
    }
}

#[test]
fn on_a_real_node() {
    let assets = match NodeAssets::from_env() {
        Ok(a) => a,
        Err(why) => {
            eprintln!("SKIPPED: no real node here: {why} (README, \"The components of a real node\")");
            return;
        }
    };
    let node = Node::start(&assets).unwrap_or_else(|e| panic!("the node did not start: {e:#}"));
    let up = node.started.elapsed();
    let figures = the_product(&node, &assets.prometheus_operator);
    kinds_way_to_pods_works_through_this_kubelet(&node);
    eprintln!(
        "figures: node Ready {:.1} s after start; {figures}; {:.0} s in all",
        up.as_secs_f64(),
        node.started.elapsed().as_secs_f64()
    );
}

/// How the suite reaches pods on kind, a `kubectl port-forward` (which kind's entry cannot run here), proven against
/// this node's kubelet and containerd: two requests to the receiver pod through one forward (kubectl logs a line per
/// connection, which must not end it).
fn kinds_way_to_pods_works_through_this_kubelet(node: &Node) {
    let receiver = node
        .kubectl(&[
            "-n",
            "shop",
            "get",
            "pods",
            "-l",
            "app=receiver",
            "-o",
            "jsonpath={.items[0].metadata.name}",
        ])
        .unwrap();
    let mut kubectl = Command::new("kubectl");
    kubectl.arg(format!(
        "--kubeconfig={}",
        node.run.join("kubeconfig/admin.kubeconfig").display()
    ));
    let http = Http::forwarded(kubectl, "shop", &format!("pod/{}", receiver.trim()), 8080).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    for _ in 0..2 {
        let status = rt.block_on(async {
            reqwest::Client::new()
                .get(format!("{}/received", http.base))
                .send()
                .await
                .map(|r| r.status().as_u16())
        });
        assert!(matches!(status, Ok(200)), "through the port forward: {status:?}");
    }
}

#[test]
fn on_kind() {
    let started = Instant::now();
    let cluster = match Kind::from_env() {
        Ok(kind) => kind,
        Err(why) => {
            eprintln!(
                "SKIPPED: no kind cluster to run on: {why} (README, \"The same suite on kind\"; scripts/kind-e2e.sh)"
            );
            return;
        }
    };
    let assets = std::env::var_os(PROMETHEUS_OPERATOR_VAR)
        .ok_or(format!("{PROMETHEUS_OPERATOR_VAR} is not set"))
        .and_then(|dir| PrometheusOperatorAssets::in_dir(Path::new(&dir)))
        .unwrap_or_else(|why| panic!("the Prometheus Operator's manifests: {why} (scripts/kind-e2e.sh fetches them)"));
    let figures = the_product(&cluster, &assets);
    eprintln!("figures: {figures}; {:.0} s in all", started.elapsed().as_secs_f64());
}

/// The scenario, one step after another on one cluster; its figures, printed.
fn the_product(cluster: &dyn Cluster, prometheus_operator: &PrometheusOperatorAssets) -> String {
    import_product_image(cluster, "chatbot", "chatbot", "chatbot/Dockerfile", CHATBOT_IMAGE);
    import_product_image(
        cluster,
        "chatbot-operator",
        "chatbot-operator",
        "operator/Dockerfile",
        OPERATOR_IMAGE,
    );

    let chatbot_ready = the_chatbot_image_runs_as_rendered_under_restricted_pod_security(cluster);
    let field_handover = an_upgrade_from_the_previous_release_brings_a_new_crd_field(cluster);
    let installed = Instant::now();
    let operator_ready = the_operator_chart_installs_and_its_pod_becomes_ready_and_leader(cluster);
    let resource_ready = a_chatbot_monitoring_runs_its_chatbot_and_says_why_refused_pods_are_refused(cluster);
    let (started, first_sample_at, ready_at) =
        the_prometheus_operator_s_prometheus_scrapes_it_and_every_check_turns_true(cluster, prometheus_operator);
    let (monitored, first_sample) = (ready_at - started, first_sample_at - started);
    the_routes_and_the_latency_objective_read_as_the_contract_says(cluster);
    let (paged, paged_at) = a_fault_pages_the_teams_receiver_pod(cluster);
    let fault_removed = Instant::now();
    // While the failed chats leave HighErrorRate's window.
    let warned = one_pod_of_three_cut_off_warns_and_pages_no_one(cluster);
    a_team_with_edit_runs_its_chatbot_and_its_agents_read_tickets(cluster);
    two_replicas_on_postgresql_share_their_conversations(cluster);
    let resolved = the_page_resolves_once_the_fault_is_gone(cluster, fault_removed);
    let handover = an_operator_upgrade_hands_its_lease_over_and_rewrites_no_child(cluster);
    alerts_switched_off_take_the_rules_away(cluster);
    a_killed_pod_is_replaced_and_a_deleted_resource_leaves_nothing_behind(cluster);
    format!(
        "a rendered chatbot pod Ready {:.1} s after its apply; operator chart applied to its pod Ready {:.1} s; \
         ChatbotMonitoring applied to DeploymentReady {:.1} s; the Prometheus Operator started to the resource Ready \
         {:.1} s, its first sample {:.1} s; first failed chat to the receiver pod paged {:.1} s, fault removed to \
         resolved {:.1} s; operator upgrade to the new leader {:.1} s (from the previous release, with a new CRD \
         field: {:.1} s); from the operator chart's install (this \
         scenario installs the Prometheus Operator after it, and checks refused pods and routes between): the \
         resource Ready {:.1} s, its first sample {:.1} s, the first page {:.1} s; one chatbot pod of three cut off \
         from Prometheus to ChatbotTargetsDown at the team's chat receiver {:.1} s (partialFor 20s)",
        chatbot_ready.as_secs_f64(),
        operator_ready.as_secs_f64(),
        resource_ready.as_secs_f64(),
        monitored.as_secs_f64(),
        first_sample.as_secs_f64(),
        paged.as_secs_f64(),
        resolved.as_secs_f64(),
        handover.as_secs_f64(),
        field_handover.as_secs_f64(),
        (ready_at - installed).as_secs_f64(),
        (first_sample_at - installed).as_secs_f64(),
        (paged_at - installed).as_secs_f64(),
        warned.as_secs_f64(),
    )
}

/// The Deployment and Service `render` gives, applied as they are in a namespace enforcing `restricted`: the pod is
/// Ready by the kubelet's own probes, answers on its pod IP and through its Service's ClusterIP (kube-proxy), and
/// reads the rendered memory limit from its cgroup.
fn the_chatbot_image_runs_as_rendered_under_restricted_pod_security(cluster: &dyn Cluster) -> Duration {
    restricted_namespace(cluster, "rendered");
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
        cluster.kubectl_apply(&object.to_string()).unwrap();
    }
    wait_or_explain(
        cluster,
        "rendered",
        "the rendered chatbot pod Ready",
        Duration::from_secs(120),
        || {
            jsonpath(
                cluster,
                &["-n", "rendered", "get", "deployment", "sav"],
                "{.status.readyReplicas}",
            ) == "1"
        },
    );
    let to_ready = applied.elapsed();
    let pod = jsonpath(
        cluster,
        &["-n", "rendered", "get", "pods", "-l", "app.kubernetes.io/instance=sav"],
        "{.items[0].metadata.name}",
    );
    let metrics_port = cluster.http("rendered", &format!("pod/{pod}"), 8081).unwrap();
    let service = cluster.http("rendered", "service/sav", 8000).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let health = http.get(format!("{}/health", metrics_port.base)).send().await.unwrap();
        assert_eq!(health.status(), 200);
        let metrics = http
            .get(format!("{}/metrics", metrics_port.base))
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
            .post(format!("{}/chat", service.base))
            .json(&json!({"message": "Où est ma commande ?"}))
            .send()
            .await
            .unwrap();
        assert_eq!(chat.status(), 200, "a chat through the Service's ClusterIP");
        let body: Value = chat.json().await.unwrap();
        assert_eq!(body["intent"], "order_tracking", "{body}");
    });
    let security = jsonpath(
        cluster,
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
fn the_operator_chart_installs_and_its_pod_becomes_ready_and_leader(cluster: &dyn Cluster) -> Duration {
    restricted_namespace(cluster, "chatbot-operator");
    let two = json!({"replicaCount": 2, "image": {"pullPolicy": "Never"}, "verify": {"period": "10s"}});
    let applied = Instant::now();
    let (deployment, first) = install_chart(cluster, &two, &[]);
    let replicas_ready = |n: &'static str| {
        let deployment = deployment.clone();
        move || {
            jsonpath(
                cluster,
                &["-n", "chatbot-operator", "get", "deployment", &deployment],
                "{.status.readyReplicas}/{.status.updatedReplicas}/{.status.replicas}",
            ) == format!("{n}/{n}/{n}")
        }
    };
    wait_or_explain(
        cluster,
        "chatbot-operator",
        "two operator pods Ready",
        Duration::from_secs(120),
        replicas_ready("2"),
    );
    let to_ready = applied.elapsed();
    wait_or_explain(
        cluster,
        "chatbot-operator",
        "the Lease held",
        Duration::from_secs(30),
        || lease_holder(cluster).starts_with(&deployment),
    );
    // Back to one replica without leader election (strategy Recreate), applied server-side by the same manager, as
    // `helm upgrade` does with Helm 4: refused before the chart wrote its strategy whole (issue 23, defect 1).
    let one = json!({"image": {"pullPolicy": "Never"}, "verify": {"period": "10s"}});
    install_chart(cluster, &one, &first);
    wait_or_explain(
        cluster,
        "chatbot-operator",
        "one operator pod Ready",
        Duration::from_secs(120),
        replicas_ready("1"),
    );
    let strategy = jsonpath(
        cluster,
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
    cluster: &dyn Cluster,
    values: &Value,
    before: &[(String, String, String)],
) -> (String, Vec<(String, String, String)>) {
    install_chart_from(
        cluster,
        &root().join("charts/chatbot-monitoring-operator"),
        values,
        before,
    )
}

/// The same with the operator chart in `chart` (the previous release's, say).
fn install_chart_from(
    cluster: &dyn Cluster,
    chart: &Path,
    values: &Value,
    before: &[(String, String, String)],
) -> (String, Vec<(String, String, String)>) {
    let docs =
        controlplane_tests::chart::render_chart(chart, "op", "chatbot-operator", values).expect("the chart renders");
    let (crds, rest): (Vec<Value>, Vec<Value>) =
        docs.into_iter().partition(|d| d["kind"] == "CustomResourceDefinition");
    let id = |d: &Value| {
        let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        (s(&d["kind"]), s(&d["metadata"]["namespace"]), s(&d["metadata"]["name"]))
    };
    for doc in crds.iter().chain(rest.iter()) {
        cluster
            .kubectl_apply(&doc.to_string())
            .unwrap_or_else(|e| panic!("applying {} {}: {e}", doc["kind"], doc["metadata"]["name"]));
    }
    let applied: Vec<(String, String, String)> = crds.iter().chain(rest.iter()).map(id).collect();
    for (kind, ns, name) in before.iter().filter(|b| !applied.contains(b)) {
        let mut args = vec!["delete", kind.as_str(), name.as_str()];
        if !ns.is_empty() {
            args.extend(["-n", ns.as_str()]);
        }
        cluster.kubectl(&args).unwrap();
    }
    let deployment = applied
        .iter()
        .find(|(k, _, _)| k == "Deployment")
        .map(|(_, _, n)| n.clone())
        .unwrap();
    (deployment, applied)
}

/// The previous release of the operator, checked out from this repository's history at [`PREVIOUS_RELEASE`] and built
/// as the tests are: its chart, and its image imported under [`PREVIOUS_TAG`].
struct PreviousRelease {
    chart: PathBuf,
    binary: PathBuf,
}

fn previous_release(cluster: &dyn Cluster) -> PreviousRelease {
    let checkout = cluster.workdir().join("previous-release");
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .current_dir(root())
            .args(args)
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?}: {} (the upgrade step builds the previous release from this repository's history)",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    };
    git(&[
        "worktree",
        "add",
        "--detach",
        checkout.to_str().unwrap(),
        PREVIOUS_RELEASE,
    ]);
    // The same target directory as the tests': only the operator's own crates build again, not its dependencies.
    let status = Command::new(env!("CARGO"))
        .current_dir(&checkout)
        .env("CARGO_TARGET_DIR", debug_binaries().parent().unwrap())
        .args(["build", "-q", "-p", "chatbot-operator"])
        .status()
        .expect("cargo builds the previous release");
    assert!(
        status.success(),
        "cargo build -p chatbot-operator at {PREVIOUS_RELEASE}"
    );
    // Kept aside, and taken out of the target directory: cargo puts a binary there again only when it is missing
    // (a fresh build of this checkout's operator would otherwise leave the previous one in its place).
    let binary = cluster.workdir().join("previous-chatbot-operator");
    std::fs::copy(debug_binaries().join("chatbot-operator"), &binary).unwrap();
    std::fs::remove_file(debug_binaries().join("chatbot-operator")).unwrap();
    let chart = cluster.workdir().join("previous-chart");
    let copied = Command::new("cp")
        .arg("-r")
        .arg(checkout.join("charts/chatbot-monitoring-operator"))
        .arg(&chart)
        .status()
        .unwrap();
    assert!(copied.success());
    let run = image::run_config(&std::fs::read_to_string(checkout.join("operator/Dockerfile")).unwrap()).unwrap();
    git(&["worktree", "remove", "--force", checkout.to_str().unwrap()]);
    let archive = cluster.workdir().join("previous-chatbot-operator.oci.tar");
    image::build(
        &format!("ghcr.io/chatbot-sav/chatbot-operator:{PREVIOUS_TAG}"),
        &binary,
        &run,
        &archive,
    )
    .unwrap();
    cluster.import_image(&archive).unwrap();
    PreviousRelease { chart, binary }
}

/// Every child `binary` renders for the resource in `file`, by (kind, name).
fn rendered_children(binary: &Path, file: &Path) -> std::collections::BTreeMap<(String, String), Value> {
    let out = Command::new(binary)
        .args(["render", "-f"])
        .arg(file)
        .output()
        .expect("the operator renders");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_yaml::Deserializer::from_str(&String::from_utf8_lossy(&out.stdout))
        .filter_map(|doc| {
            let value: Value = serde::Deserialize::deserialize(doc).ok()?;
            let key = (
                value["kind"].as_str()?.to_owned(),
                value["metadata"]["name"].as_str()?.to_owned(),
            );
            Some((key, value))
        })
        .collect()
}

/// An upgrade from the previous release, whose CRD lacks `chatbot.conversationIdle`: the previous chart with two
/// replicas and leader election runs a resource; the chart of this version is applied over it (its CRD first, then
/// a rolling update of the operator). The Lease passes to a pod of the new version, which rewrites exactly the
/// children whose rendering changed between the two versions, once, and leaves the others (the chatbot's
/// Deployment among them: no chatbot restarts); the new field, refused before, is then accepted and reaches the
/// chatbot. The operator is uninstalled afterwards (its CRD stays), for the next step's fresh install. Returns the
/// time from the upgrade to the new leader.
fn an_upgrade_from_the_previous_release_brings_a_new_crd_field(cluster: &dyn Cluster) -> Duration {
    let previous = previous_release(cluster);
    restricted_namespace(cluster, "chatbot-operator");
    let values = |tag: &str| json!({"replicaCount": 2, "image": {"pullPolicy": "Never", "tag": tag}, "verify": {"period": "10s"}});
    let (_, previous_objects) = install_chart_from(cluster, &previous.chart, &values(PREVIOUS_TAG), &[]);
    wait_or_explain(
        cluster,
        "chatbot-operator",
        "two pods of the previous release, one leading",
        Duration::from_secs(120),
        || {
            let pods = operator_pods(cluster, PREVIOUS_TAG);
            pods.len() == 2 && pods.contains(&lease_holder(cluster))
        },
    );
    restricted_namespace(cluster, "legacy");
    let resource = |spec: Value| {
        json!({"apiVersion": "monitoring.chatbot-sav.io/v1alpha1", "kind": "ChatbotMonitoring",
               "metadata": {"name": "sav", "namespace": "legacy"}, "spec": spec})
        .to_string()
    };
    let spec = json!({"chatbot": {"imagePullPolicy": "Never"}, "monitoring": {"prometheus": {"mode": "none"}}});
    cluster.kubectl_apply(&resource(spec.clone())).unwrap();
    let deployment_ready = || condition(cluster, "legacy", "sav", "DeploymentReady", "status") == "True";
    wait_or_explain(
        cluster,
        "legacy",
        "the previous release runs its chatbot",
        Duration::from_secs(120),
        deployment_ready,
    );
    let mut with_field = spec.clone();
    with_field["chatbot"]["conversationIdle"] = json!("45m");
    let refused = cluster
        .kubectl_apply(&resource(with_field.clone()))
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("conversationIdle"),
        "the previous CRD has no such field: {refused}"
    );

    // What each version makes of the resource as stored: the children it should leave alone, and those it should
    // rewrite.
    let stored = cluster.workdir().join("legacy-sav.json");
    std::fs::write(
        &stored,
        cluster
            .kubectl(&["-n", "legacy", "get", "chatbotmonitoring", "sav", "-o", "json"])
            .unwrap(),
    )
    .unwrap();
    let before = rendered_children(&previous.binary, &stored);
    let after = rendered_children(&binary("chatbot-operator"), &stored);
    let version = |(kind, name): &(String, String)| {
        cluster
            .kubectl(&[
                "-n",
                "legacy",
                "get",
                &format!("{kind}/{name}"),
                "--ignore-not-found",
                "-o",
                "jsonpath={.metadata.resourceVersion}",
            ])
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    };
    // Children the cluster has (those of kinds not served here, the Prometheus Operator's before it is installed,
    // were never applied).
    let children: Vec<(String, String)> = after.keys().filter(|k| !version(k).is_empty()).cloned().collect();
    let versions_before: Vec<String> = children.iter().map(version).collect();
    assert!(children.iter().any(|(kind, _)| kind == "Deployment"), "{children:?}");

    install_chart(cluster, &values("0.1.0"), &previous_objects);
    let handover = the_new_version_leads_and_reconciled_everything(cluster, "0.1.0", PREVIOUS_TAG);
    let versions_after: Vec<String> = children.iter().map(version).collect();
    let (changed, same): (Vec<_>, Vec<_>) = children.iter().partition(|key| before.get(*key) != after.get(*key));
    eprintln!("upgrade from {PREVIOUS_RELEASE}: renders changed {changed:?}, the same {same:?}");
    for ((key, was), now) in children.iter().zip(&versions_before).zip(&versions_after) {
        if before.get(key) == after.get(key) {
            assert_eq!(
                was, now,
                "{key:?} renders the same in both versions, yet the upgrade rewrote it"
            );
        } else {
            assert_ne!(
                was, now,
                "{key:?} renders differently in this version, yet the upgrade left it"
            );
        }
    }
    // Rewritten once: one more verification period changes nothing.
    std::thread::sleep(Duration::from_secs(11));
    assert_eq!(
        children.iter().map(version).collect::<Vec<_>>(),
        versions_after,
        "the new operator kept rewriting {children:?}"
    );

    cluster.kubectl_apply(&resource(with_field)).unwrap();
    wait_or_explain(
        cluster,
        "legacy",
        "the new field reaches the chatbot",
        Duration::from_secs(120),
        || {
            jsonpath(
                cluster,
                &["-n", "legacy", "get", "pods", "-l", "app.kubernetes.io/instance=sav"],
                "{range .items[*]}{.spec.containers[0].env[?(@.name==\"CHATBOT_CONVERSATION_IDLE\")].value}={.status.conditions[?(@.type==\"Ready\")].status} {end}",
            )
            .trim()
                == "45m=True"
        },
    );

    cluster.kubectl(&["delete", "namespace", "legacy"]).unwrap();
    let deployment = previous_objects
        .iter()
        .find(|(kind, _, _)| kind == "Deployment")
        .map(|(_, _, name)| name.clone())
        .unwrap();
    cluster
        .kubectl(&[
            "-n",
            "chatbot-operator",
            "delete",
            "deployment",
            &deployment,
            "--cascade=foreground",
        ])
        .unwrap();
    // Its pods gone, so is their claim: the next install starts with no Lease, as a first install does.
    cluster
        .kubectl(&["-n", "chatbot-operator", "delete", "lease", "chatbot-operator-leader"])
        .unwrap();
    handover
}

/// A ChatbotMonitoring in a namespace enforcing `restricted`: the operator applies the chatbot, whose pod becomes
/// Ready (`DeploymentReady` True). One that asks for privilege escalation gets pods Pod Security refuses, and the
/// resource says so in the API server's words (`PodCreationFailed`) instead of "0/1 pods ready".
fn a_chatbot_monitoring_runs_its_chatbot_and_says_why_refused_pods_are_refused(cluster: &dyn Cluster) -> Duration {
    restricted_namespace(cluster, "shop");
    let applied = Instant::now();
    cluster
        .kubectl_apply(
            &json!({"apiVersion": "monitoring.chatbot-sav.io/v1alpha1", "kind": "ChatbotMonitoring",
                "metadata": {"name": "sav", "namespace": "shop"},
                "spec": {"chatbot": {"imagePullPolicy": "Never"},
                         "alerts": {"slo": {"latency": {"target": 99, "threshold": 2}}}}})
            .to_string(),
        )
        .unwrap();
    wait_or_explain(
        cluster,
        "shop",
        "DeploymentReady True",
        Duration::from_secs(120),
        || status_reason(cluster, "shop", "sav", "DeploymentReady") == "True/Available",
    );
    let to_ready = applied.elapsed();

    cluster
        .kubectl_apply(
            &json!({"apiVersion": "monitoring.chatbot-sav.io/v1alpha1", "kind": "ChatbotMonitoring",
                "metadata": {"name": "escalating", "namespace": "shop"},
                "spec": {"chatbot": {"imagePullPolicy": "Never",
                                     "securityContext": {"allowPrivilegeEscalation": true}}}})
            .to_string(),
        )
        .unwrap();
    wait_or_explain(
        cluster,
        "shop",
        "DeploymentReady PodCreationFailed",
        Duration::from_secs(120),
        || status_reason(cluster, "shop", "escalating", "DeploymentReady") == "False/PodCreationFailed",
    );
    let message = condition(cluster, "shop", "escalating", "DeploymentReady", "message");
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
    cluster: &dyn Cluster,
    assets: &PrometheusOperatorAssets,
) -> (Instant, Instant, Instant) {
    for crd in std::fs::read_dir(&assets.crds).unwrap().flatten() {
        cluster
            .kubectl_apply(&std::fs::read_to_string(crd.path()).unwrap())
            .unwrap();
    }
    // The Prometheus Operator looks for its kinds once, at its start, and leaves out the controller of any it does
    // not find served.
    cluster
        .kubectl(&[
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
    install_the_prometheus_operator(cluster, assets);
    cluster.kubectl_apply(MONITORING).unwrap();
    let conditions = || {
        let text = jsonpath(
            cluster,
            &["-n", "shop", "get", "chatbotmonitoring", "sav"],
            "{.status.conditions}",
        );
        serde_json::from_str::<Vec<Value>>(&text).unwrap_or_default()
    };
    let explain = |what: &str| -> ! {
        panic!(
            "{what}: {:#}\nmonitoring:\n{}\n{}\nprometheus-operator:\n{}\nchatbot-operator:\n{}",
            Value::from(conditions()),
            cluster
                .kubectl(&["-n", "monitoring", "get", "all,prometheus,secrets,events"])
                .unwrap_or_else(|e| e.to_string()),
            cluster
                .kubectl(&["-n", "monitoring", "describe", "pods"])
                .map(|t| tail(&t, 40))
                .unwrap_or_default(),
            cluster
                .kubectl(&["-n", "default", "logs", "deployment/prometheus-operator", "--tail=200"])
                .unwrap_or_default()
                .lines()
                .filter(|l| !l.contains("level=info") || l.contains("kps") || l.contains("monitoring/"))
                .take(40)
                .collect::<Vec<_>>()
                .join("\n"),
            cluster
                .kubectl(&[
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
    let message = selected["message"].as_str().unwrap_or("");
    // No labels on the resource: auto mode found the only Prometheus and added the label it selects on.
    assert!(
        message.contains("confirmed by the Prometheus Operator") && message.contains("labels added: release=kps"),
        "{selected}"
    );
    // The Prometheus Operator itself: the ServiceMonitor bound and accepted by monitoring/kps.
    let binding = jsonpath(
        cluster,
        &["-n", "shop", "get", "servicemonitor", "sav"],
        "{.status.bindings[0].name}/{.status.bindings[0].conditions[?(@.type==\"Accepted\")].status}",
    );
    assert_eq!(binding, "kps/True");
    (started, first_sample, monitored)
}

/// Chats to the chatbot's pod, then in the Prometheus Operator's Prometheus: the route in `endpoint` (the chatbot's
/// label, which the target's own `endpoint` would otherwise push aside into `exported_endpoint`), and the latency
/// objective recorded (its `le` matcher reads Prometheus 3's `le="2.0"`).
fn the_routes_and_the_latency_objective_read_as_the_contract_says(cluster: &dyn Cluster) {
    let pod = jsonpath(
        cluster,
        &["-n", "shop", "get", "pods", "-l", "app.kubernetes.io/instance=sav"],
        "{.items[0].metadata.name}",
    );
    for _ in 0..5 {
        assert_eq!(
            chat(cluster, "shop", &pod, json!({"message": "Où est ma commande ?"})).0,
            200
        );
    }
    let query = |q: &str| {
        let encoded: String = q
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' | b'.' | b':' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect();
        prometheus(cluster, &format!("query?query={encoded}"))["result"]
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

/// `POST /chat` to the chatbot pod `pod` of `namespace`: the status and the JSON answer (null when there is none).
fn chat(cluster: &dyn Cluster, namespace: &str, pod: &str, body: Value) -> (u16, Value) {
    let api = cluster.http(namespace, &format!("pod/{pod}"), 8000).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let response = reqwest::Client::new()
            .post(format!("{}/chat", api.base))
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST /chat to {namespace}/{pod}: {e}"));
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    })
}

/// What the receiver pod was sent: (path, notification).
fn received(cluster: &dyn Cluster) -> Vec<(String, Value)> {
    let receiver = jsonpath(
        cluster,
        &["-n", "shop", "get", "pods", "-l", "app=receiver"],
        "{.items[0].metadata.name}",
    );
    let Ok(http) = cluster.http("shop", &format!("pod/{receiver}"), 8080) else {
        return Vec::new();
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let all: Value = rt.block_on(async {
        match reqwest::get(format!("{}/received", http.base)).await {
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
fn the_page_resolves_once_the_fault_is_gone(cluster: &dyn Cluster, removed: Instant) -> Duration {
    if wait_for("HighErrorRate resolved", Duration::from_secs(420), || {
        notified(&received(cluster), "/paging", "HighErrorRate", "resolved").is_some()
    })
    .is_err()
    {
        panic!(
            "no resolved page within 7 min of the fault's removal: {:?}",
            received(cluster)
        );
    }
    removed.elapsed()
}

/// The whole alerting chain: the resource gets notifications to the team's receiver pod and a fault (every chat
/// answered 503, through the chatbot's fault injection); the real Prometheus Operator loads the AlertmanagerConfig
/// into its Alertmanager (`Routed` True), Prometheus fires `HighErrorRate`, and the receiver pod gets the page with the
/// resource's labels. Returns the time from the first failed chat to the page, and when the page arrived.
fn a_fault_pages_the_teams_receiver_pod(cluster: &dyn Cluster) -> (Duration, Instant) {
    let run = image::RunConfig {
        user: "65532".into(),
        working_dir: "/".into(),
        entrypoint: vec!["/webhook-recorder".into()],
        cmd: Vec::new(),
        exposed_ports: vec!["8080/tcp".into()],
        binary_path: "/webhook-recorder".into(),
    };
    let archive = cluster.workdir().join("webhook-recorder.oci.tar");
    image::build(
        "ghcr.io/chatbot-sav/webhook-recorder:test",
        &e2e_binary("webhook-recorder"),
        &run,
        &archive,
    )
    .unwrap();
    cluster.import_image(&archive).unwrap();
    cluster.kubectl_apply(RECEIVER).unwrap();
    cluster.kubectl_apply(&notified_resource(true)).unwrap();
    let status = |type_: &str| condition(cluster, "shop", "sav", type_, "status");
    wait_or_explain(cluster, "shop", "Routed True", Duration::from_secs(240), || {
        status("Routed") == "True"
    });
    wait_or_explain(
        cluster,
        "shop",
        "the faulty chatbot rolled out",
        Duration::from_secs(120),
        || {
            status("DeploymentReady") == "True"
                && jsonpath(
                    cluster,
                    &["-n", "shop", "get", "pods", "-l", "app.kubernetes.io/instance=sav"],
                    "{.items[*].spec.containers[0].env}",
                )
                .contains("CHATBOT_FAULT_EVERY")
                && jsonpath(
                    cluster,
                    &["-n", "shop", "get", "pods", "-l", "app.kubernetes.io/instance=sav"],
                    "{.items[*].metadata.name}",
                )
                .split_whitespace()
                .count()
                    == 1
        },
    );
    let chatbot = jsonpath(
        cluster,
        &["-n", "shop", "get", "pods", "-l", "app.kubernetes.io/instance=sav"],
        "{.items[0].metadata.name}",
    );
    let faulted = Instant::now();
    let mut page = None;
    while page.is_none() && faulted.elapsed() < Duration::from_secs(180) {
        let (status, _) = chat(cluster, "shop", &chatbot, json!({"message": "Where is my order?"}));
        assert_eq!(status, 503, "the fault injection answers 503");
        page = notified(&received(cluster), "/paging", "HighErrorRate", "firing")
            .map(|body| (body, faulted.elapsed(), Instant::now()));
        std::thread::sleep(Duration::from_millis(500));
    }
    let Some((body, after, at)) = page else {
        panic!("no page within 180 s; the receiver pod got {:?}", received(cluster));
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
    cluster.kubectl_apply(&notified_resource(false)).unwrap();
    (after, at)
}

/// A team holding only the namespace's `edit` role (the chart aggregates the kind into it) applies a resource whose
/// agent tokens Secret does not exist yet: the resource says `SecretMissing`; the team creates the Secret, the
/// chatbot runs, a customer's escalation opens a ticket, and an agent reads it with a token of the Secret (without
/// one, 401).
fn a_team_with_edit_runs_its_chatbot_and_its_agents_read_tickets(cluster: &dyn Cluster) {
    restricted_namespace(cluster, "team");
    cluster
        .kubectl(&[
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
        cluster
            .kubectl_apply_as("alice", yaml)
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
    let deployment_ready = || status_reason(cluster, "team", "helpdesk", "DeploymentReady");
    wait_or_explain(
        cluster,
        "team",
        "DeploymentReady False/SecretMissing",
        Duration::from_secs(120),
        || deployment_ready() == "False/SecretMissing",
    );
    as_alice(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: agents, namespace: team}\n\
         stringData: {tokens: \"first-agent-token-0123456789abcdef0123456789,second-agent-token-0123456789abcdef012345678\"}\n",
    );
    wait_or_explain(
        cluster,
        "team",
        "DeploymentReady True",
        Duration::from_secs(120),
        || deployment_ready() == "True/Available",
    );
    let pod = jsonpath(
        cluster,
        &[
            "-n",
            "team",
            "get",
            "pods",
            "-l",
            "app.kubernetes.io/instance=helpdesk",
            "--field-selector=status.phase=Running",
        ],
        "{.items[0].metadata.name}",
    );
    let (_, answer) = chat(
        cluster,
        "team",
        &pod,
        json!({"message": "Je veux parler à un conseiller"}),
    );
    let ticket = answer["ticket_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no ticket: {answer}"));
    let api = cluster.http("team", &format!("pod/{pod}"), 8000).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let http = reqwest::Client::new();
        let url = format!("{}/tickets/{ticket}", api.base);
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

/// The second storage: a PostgreSQL server the cluster's pods reach (on the node, Debian's in the node's network,
/// admitting the pod range with a password; on kind, the official image as a pod), its URL in a Secret, and a resource with two replicas on it: both Ready, and a conversation begun
/// on one pod goes on on the other.
fn two_replicas_on_postgresql_share_their_conversations(cluster: &dyn Cluster) {
    let pg = cluster
        .postgres()
        .unwrap_or_else(|e| panic!("PostgreSQL for the cluster's pods: {e:#}"));
    restricted_namespace(cluster, "store");
    cluster
        .kubectl_apply(
            &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "store"},
                "stringData": {"url": pg.url}})
            .to_string(),
        )
        .unwrap();
    cluster
        .kubectl_apply(
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
        cluster,
        "store",
        "two replicas on PostgreSQL Ready",
        Duration::from_secs(120),
        || {
            jsonpath(
                cluster,
                &["-n", "store", "get", "chatbotmonitoring", "support"],
                "{.status.replicas}/{.status.conditions[?(@.type==\"DeploymentReady\")].status}",
            ) == "2/2/True"
        },
    );
    let pods = jsonpath(
        cluster,
        &["-n", "store", "get", "pods", "-l", "app.kubernetes.io/instance=support"],
        "{.items[*].metadata.name}",
    );
    let pods: Vec<&str> = pods.split_whitespace().collect();
    assert_eq!(pods.len(), 2, "{pods:?}");
    let (_, first) = chat(cluster, "store", pods[0], json!({"message": "Où est ma commande ?"}));
    let session = first["session_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no session: {first}"));
    let (status, next) = chat(
        cluster,
        "store",
        pods[1],
        json!({"message": "Et mon remboursement ?", "session_id": session}),
    );
    assert_eq!(status, 200, "the other replica knows the session: {next}");
    assert_eq!(next["session_id"], session, "{next}");
    // Gone before its database, so that no pod is left failing against it.
    cluster
        .kubectl(&["-n", "store", "delete", "chatbotmonitoring", "support"])
        .unwrap();
    drop(pg);
}

/// The operator upgraded (two replicas with leader election, a new image tag, a rolling update): the Lease passes to
/// a pod of the new version, which reconciles every resource again and rewrites none of the children, so an upgrade
/// neither restarts a chatbot nor touches its monitoring. Returns the time from the upgrade to the new leader.
fn an_operator_upgrade_hands_its_lease_over_and_rewrites_no_child(cluster: &dyn Cluster) -> Duration {
    let values = |tag: &str| json!({"replicaCount": 2, "image": {"pullPolicy": "Never", "tag": tag}, "verify": {"period": "10s"}});
    let (_, before_upgrade) = install_chart(cluster, &values("0.1.0"), &[]);
    wait_or_explain(
        cluster,
        "chatbot-operator",
        "two pods of 0.1.0, one leading",
        Duration::from_secs(120),
        || {
            let current = operator_pods(cluster, "0.1.0");
            current.len() == 2 && current.contains(&lease_holder(cluster))
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
            cluster,
            &args,
            "{range .items[*]}{.kind}/{.metadata.name}={.metadata.resourceVersion} {end}",
        )
    };
    let before = versions();
    assert_eq!(before.split_whitespace().count(), children.len(), "{before}");

    let next = format!("ghcr.io/chatbot-sav/chatbot-operator:{OPERATOR_NEXT_TAG}");
    import_product_image(
        cluster,
        "chatbot-operator",
        "chatbot-operator",
        "operator/Dockerfile",
        &next,
    );
    install_chart(cluster, &values(OPERATOR_NEXT_TAG), &before_upgrade);
    let handover = the_new_version_leads_and_reconciled_everything(cluster, OPERATOR_NEXT_TAG, "0.1.0");
    assert_eq!(versions(), before, "an operator upgrade rewrote children of shop/sav");
    handover
}

/// The operator's pods of image tag `tag` that are Ready.
fn operator_pods(cluster: &dyn Cluster, tag: &str) -> Vec<String> {
    let all = jsonpath(
        cluster,
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
}

/// The pod holding the operator's Lease.
fn lease_holder(cluster: &dyn Cluster) -> String {
    jsonpath(
        cluster,
        &["-n", "chatbot-operator", "get", "lease", "chatbot-operator-leader"],
        "{.spec.holderIdentity}",
    )
}

/// Waits for a rolling update of the operator from tag `old` to `new`: two pods of `new`, one holding the Lease, none
/// of `old` left; then for the new leader to have reconciled every resource of the cluster (its own count), and one
/// verification period more (10 s, after which each resource is looked at again), since the count does not say
/// which. Returns the time to the new leader.
fn the_new_version_leads_and_reconciled_everything(cluster: &dyn Cluster, new: &str, old: &str) -> Duration {
    let upgraded = Instant::now();
    wait_or_explain(
        cluster,
        "chatbot-operator",
        "a pod of the new version leading",
        Duration::from_secs(180),
        || {
            let current = operator_pods(cluster, new);
            current.len() == 2 && current.contains(&lease_holder(cluster)) && operator_pods(cluster, old).is_empty()
        },
    );
    let handover = upgraded.elapsed();
    let resources = cluster
        .kubectl(&["get", "chatbotmonitorings", "-A", "-o", "name"])
        .unwrap()
        .lines()
        .count() as f64;
    let leader = cluster
        .http("chatbot-operator", &format!("pod/{}", lease_holder(cluster)), 8080)
        .unwrap();
    let reconciled = || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let text = rt.block_on(async {
            match reqwest::get(format!("{}/metrics", leader.base)).await {
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
        cluster,
        "chatbot-operator",
        "every resource reconciled by the new leader",
        Duration::from_secs(120),
        || reconciled() >= resources,
    );
    std::thread::sleep(Duration::from_secs(11));
    handover
}

/// Alerts switched off on a running resource: the PrometheusRule goes, `PrometheusRuleReady` says `Disabled`, and
/// Prometheus unloads the rules; switched on again, they come back.
fn alerts_switched_off_take_the_rules_away(cluster: &dyn Cluster) {
    let mut off: Value = serde_json::from_str(&notified_resource(false)).unwrap();
    off["spec"]["alerts"]["enabled"] = json!(false);
    cluster.kubectl_apply(&off.to_string()).unwrap();
    let rule_groups = || sav_rule_groups(cluster).map(|groups| groups.len());
    let state = || {
        let rule = cluster
            .kubectl(&[
                "-n",
                "shop",
                "get",
                "prometheusrule",
                "sav",
                "--ignore-not-found",
                "-o",
                "name",
            ])
            .map(|o| o.trim().to_owned());
        let reason = condition(cluster, "shop", "sav", "PrometheusRuleReady", "reason");
        (rule, reason, rule_groups())
    };
    let mut last = state();
    let off = wait_for(
        "the PrometheusRule gone, Disabled, unloaded",
        Duration::from_secs(300),
        || {
            last = state();
            matches!(&last, (Ok(rule), reason, Some(0)) if rule.is_empty() && reason == "Disabled")
        },
    );
    assert!(
        off.is_ok(),
        "alerts switched off: (PrometheusRules, PrometheusRuleReady's reason, rule groups loaded) = {last:?}"
    );
    cluster.kubectl_apply(&notified_resource(false)).unwrap();
    wait_or_explain(
        cluster,
        "shop",
        "the rules loaded again",
        Duration::from_secs(180),
        || rule_groups().is_some_and(|n| n > 0),
    );
}

/// Availability judged by share (`docs/runbooks/ChatbotTargetsDown.md`): the chatbot on three replicas, one pod cut off
/// from Prometheus by the network while it still runs and passes its probes. The resource says `Scraped` 2/3, naming
/// the pod's target; after `partialFor` (20 s here) `ChatbotTargetsDown` reaches the team's chat receiver (warning),
/// `ChatbotDown` pages no one; the partition healed, the warning resolves. Several replicas need PostgreSQL (SQLite lives in each pod, which
/// the CRD enforces); back to one replica on SQLite afterwards. Returns the time from the cut to the warning.
fn one_pod_of_three_cut_off_warns_and_pages_no_one(cluster: &dyn Cluster) -> Duration {
    let pg = cluster
        .postgres()
        .unwrap_or_else(|e| panic!("PostgreSQL for the cluster's pods: {e:#}"));
    cluster
        .kubectl_apply(
            &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "shop"},
                    "stringData": {"url": pg.url}})
            .to_string(),
        )
        .unwrap();
    let mut three: Value = serde_json::from_str(&notified_resource(false)).unwrap();
    three["spec"]["chatbot"]["replicas"] = json!(3);
    three["spec"]["chatbot"]["database"] =
        json!({"type": "postgres", "postgres": {"urlSecretRef": {"name": "db", "key": "url"}}});
    three["spec"]["monitoring"] = json!({"interval": "5s", "scrapeTimeout": "3s"});
    three["spec"]["alerts"]["availability"] = json!({"partialFor": "20s"});
    cluster.kubectl_apply(&three.to_string()).unwrap();
    let scraped = || condition(cluster, "shop", "sav", "Scraped", "message");
    // Settled: three pods (the rollout's old one gone), all scraped, Prometheus running the rule with this `for`, and
    // no availability alert left from the rollout, so that what follows comes from the cut alone.
    let pods = || {
        jsonpath(
            cluster,
            &["-n", "shop", "get", "pods", "-l", "app.kubernetes.io/instance=sav"],
            "{.items[*].metadata.name}",
        )
    };
    let rule_for = || {
        sav_rule_groups(cluster)
            .unwrap_or_default()
            .iter()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .find(|r| r["name"] == "ChatbotTargetsDown")
            .and_then(|r| r["duration"].as_f64())
    };
    let availability_alerts = || {
        prometheus(cluster, "alerts")["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| {
                a["labels"]["namespace"] == "shop"
                    && a["labels"]["job"] == "sav"
                    && a["labels"]["alertname"]
                        .as_str()
                        .is_some_and(|n| n.starts_with("ChatbotTarget") || n == "ChatbotDown")
            })
            .map(|a| format!("{}={}", a["labels"]["alertname"], a["state"]))
            .collect::<Vec<_>>()
    };
    let state = || (scraped(), pods(), rule_for(), availability_alerts());
    let mut last = state();
    let settled = wait_for("settled", Duration::from_secs(300), || {
        last = state();
        let (scraped, pods, rule_for, alerts) = &last;
        scraped == "3/3 up" && pods.split_whitespace().count() == 3 && *rule_for == Some(20.0) && alerts.is_empty()
    });
    assert!(
        settled.is_ok(),
        "three pods scraped, partialFor 20s loaded, no availability alert of shop/sav, within 300 s: (Scraped, pods, \
         ChatbotTargetsDown's for, alerts) = {last:?}"
    );
    let seen = received(cluster).len();
    // The receiver's notifications after the cut (none when it could not be asked).
    let since_cut = || received(cluster).get(seen..).map(<[_]>::to_vec).unwrap_or_default();
    let victim = jsonpath(
        cluster,
        &["-n", "shop", "get", "pods", "-l", "app.kubernetes.io/instance=sav"],
        "{.items[0].metadata.name} {.items[0].status.podIP}",
    );
    let (victim, victim_ip) = victim.split_once(' ').unwrap();
    let prometheus_ip = jsonpath(
        cluster,
        &["-n", "monitoring", "get", "pod", "prometheus-kps-0"],
        "{.status.podIP}",
    );
    let cut = Instant::now();
    let partition = cluster.cut_off(&prometheus_ip, victim_ip).unwrap();
    let mut warning = None;
    while warning.is_none() && cut.elapsed() < Duration::from_secs(180) {
        warning = notified(&since_cut(), "/chat", "ChatbotTargetsDown", "firing").map(|_| cut.elapsed());
        std::thread::sleep(Duration::from_millis(500));
    }
    let Some(warned) = warning else {
        panic!(
            "no ChatbotTargetsDown at the chat receiver within 180 s of cutting {victim} off; Scraped: {}; received: {:?}",
            scraped(),
            since_cut()
        );
    };
    assert!(
        warned >= Duration::from_secs(20),
        "ChatbotTargetsDown {warned:?} after the cut, before its partialFor of 20 s"
    );
    let message = scraped();
    assert!(
        // Within 3 min of the rollout to three replicas it is said Pending, with the same count.
        message.contains("2/3 up; ") && message.contains(&format!("http://{victim_ip}:")),
        "Scraped: {message}"
    );
    let received_so_far = since_cut();
    for path in ["/paging", "/chat"] {
        assert!(
            notified(&received_so_far, path, "ChatbotDown", "firing").is_none(),
            "one pod of three down is not the chatbot down: {received_so_far:?}"
        );
    }
    drop(partition);
    let resolved = wait_for("ChatbotTargetsDown resolved", Duration::from_secs(180), || {
        notified(&since_cut(), "/chat", "ChatbotTargetsDown", "resolved").is_some()
    });
    if resolved.is_err() {
        let targets: Vec<Value> = prometheus(cluster, "targets?state=active")["activeTargets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["labels"]["namespace"] == "shop" && t["labels"]["job"] == "sav")
            .map(|t| json!([t["labels"]["pod"], t["health"], t["lastError"], t["lastScrape"]]))
            .collect();
        panic!(
            "ChatbotTargetsDown not resolved at the chat receiver within 180 s of healing the partition; targets: \
             {targets:?}; alerts: {}; Scraped: {}; received: {:?}",
            prometheus(cluster, "alerts"),
            scraped(),
            received(cluster)
        );
    }
    cluster.kubectl_apply(&notified_resource(false)).unwrap();
    wait_or_explain(
        cluster,
        "shop",
        "back to one pod scraped",
        Duration::from_secs(180),
        || scraped() == "1/1 up",
    );
    // Gone after the pods that used it.
    drop(pg);
    warned
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
fn install_the_prometheus_operator(cluster: &dyn Cluster, assets: &PrometheusOperatorAssets) {
    let mut files: Vec<_> = std::fs::read_dir(&assets.bundle)
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
        cluster
            .kubectl_apply(&object.to_string())
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    }
    wait_or_explain(
        cluster,
        "default",
        "the Prometheus Operator's pod Ready",
        Duration::from_secs(120),
        || {
            jsonpath(
                cluster,
                &["-n", "default", "get", "deployment", "prometheus-operator"],
                "{.status.readyReplicas}",
            ) == "1"
        },
    );
}

/// Prometheus' API of monitoring/kps, from the host over the node's link (under its route prefix).
fn prometheus(cluster: &dyn Cluster, path: &str) -> Value {
    let Ok(http) = cluster.http("monitoring", "pod/prometheus-kps-0", 9090) else {
        return Value::Null;
    };
    let url = format!("{}/prom/api/v1/{path}", http.base);
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

/// The rule groups Prometheus loaded from the PrometheusRule of shop/sav, or `None` when Prometheus could not be
/// asked (so that "no rules" is never read from an error).
fn sav_rule_groups(cluster: &dyn Cluster) -> Option<Vec<Value>> {
    let groups = prometheus(cluster, "rules")["groups"].as_array()?.clone();
    Some(
        groups
            .into_iter()
            .filter(|g| g["file"].as_str().is_some_and(|f| f.contains("shop-sav-")))
            .collect(),
    )
}

/// The pods of the chatbot's active targets in Prometheus with their health (`up`), or `None` when Prometheus
/// could not be asked (so that "no target" is never read from an error).
fn chatbot_targets(cluster: &dyn Cluster) -> Option<Vec<(String, String)>> {
    let answer = prometheus(cluster, "targets?state=active");
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
fn a_killed_pod_is_replaced_and_a_deleted_resource_leaves_nothing_behind(cluster: &dyn Cluster) {
    let selector = "app.kubernetes.io/instance=sav";
    let old = jsonpath(
        cluster,
        &["-n", "shop", "get", "pods", "-l", selector],
        "{.items[0].metadata.name}",
    );
    cluster
        .kubectl(&["-n", "shop", "delete", "pod", &old, "--wait=false"])
        .unwrap();
    wait_or_explain(
        cluster,
        "shop",
        "a new chatbot pod Ready",
        Duration::from_secs(120),
        || {
            let pods = jsonpath(
                cluster,
                &["-n", "shop", "get", "pods", "-l", selector],
                "{range .items[*]}{.metadata.name}={.status.conditions[?(@.type==\"Ready\")].status} {end}",
            );
            pods.split_whitespace()
                .any(|p| !p.starts_with(&old) && p.ends_with("=True"))
        },
    );
    wait_or_explain(cluster, "shop", "the new pod scraped", Duration::from_secs(120), || {
        condition(cluster, "shop", "sav", "Scraped", "message") == "1/1 up"
            && chatbot_targets(cluster).is_some_and(|t| t.len() == 1 && t[0].0 != old && t[0].1 == "up")
    });

    cluster
        .kubectl(&["-n", "shop", "delete", "chatbotmonitoring", "sav"])
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
        cluster,
        "shop",
        "every child garbage-collected",
        Duration::from_secs(120),
        || {
            children.iter().all(|c| {
                cluster
                    .kubectl(&["-n", "shop", "get", c, "--ignore-not-found", "-o", "name"])
                    .is_ok_and(|o| o.trim().is_empty())
            })
        },
    );
    wait_or_explain(
        cluster,
        "monitoring",
        "Prometheus forgets the chatbot",
        Duration::from_secs(180),
        || {
            sav_rule_groups(cluster).is_some_and(|groups| groups.is_empty())
                && chatbot_targets(cluster).is_some_and(|t| t.is_empty())
        },
    );
}
