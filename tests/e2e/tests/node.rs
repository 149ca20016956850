//! The product on a real node (kubelet, containerd, runc, kube-proxy, CoreDNS; see `e2e_tests::node`): pods from
//! the product's own images, under Pod Security `restricted`, with probes a kubelet really executes. Skipped, saying
//! why, where the components are not (`KUBEBUILDER_ASSETS`, `NODE_ASSETS`, root; README, "The components of a real
//! node").

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use chatbot_operator::crd::ChatbotMonitoring;
use chatbot_operator::render::{RenderOptions, render};
use e2e_tests::image;
use e2e_tests::node::{Node, NodeAssets, wait_for};
use serde_json::json;

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
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or(root().join("target"));
    target.join("debug").join(name)
}

/// The image of the product's binary `name`, as its Dockerfile runs it, imported into the node.
fn import_product_image(node: &Node, name: &str, dockerfile: &str, reference: &str) {
    let run = image::run_config(&std::fs::read_to_string(root().join(dockerfile)).unwrap()).unwrap();
    let archive = node.run.join(format!("{name}.oci.tar"));
    image::build(reference, &binary(name), &run, &archive).unwrap();
    node.import_image(&archive).unwrap();
}

#[test]
fn the_chatbot_image_runs_as_the_operator_renders_it_under_restricted_pod_security() {
    let assets = match NodeAssets::from_env() {
        Ok(a) => a,
        Err(why) => {
            eprintln!("SKIPPED: no real node here: {why} (README, \"The components of a real node\")");
            return;
        }
    };
    let node = Node::start(&assets).unwrap_or_else(|e| panic!("the node did not start: {e:#}"));
    let up = node.started.elapsed();
    import_product_image(
        &node,
        "chatbot",
        "chatbot/Dockerfile",
        "ghcr.io/chatbot-sav/chatbot:0.1.0",
    );

    node.kubectl_apply(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n  labels:\n    \
         pod-security.kubernetes.io/enforce: restricted\n    pod-security.kubernetes.io/enforce-version: latest\n",
    )
    .unwrap();
    let cbm: ChatbotMonitoring = serde_json::from_value(json!({
        "apiVersion": "monitoring.chatbot-sav.io/v1alpha1", "kind": "ChatbotMonitoring",
        "metadata": {"name": "sav", "namespace": "shop", "uid": "5e1f7a2c-0000-4000-8000-000000000001"},
        "spec": {"chatbot": {"image": "ghcr.io/chatbot-sav/chatbot:0.1.0", "imagePullPolicy": "Never"}},
    }))
    .unwrap();
    let desired = render(&cbm, &RenderOptions::default()).unwrap();
    let mut deployment = serde_json::to_value(&desired.deployment).unwrap();
    let mut service = serde_json::to_value(&desired.service).unwrap();
    // Applied by the test, not the operator: no owner to refer to.
    for object in [&mut deployment, &mut service] {
        object["metadata"].as_object_mut().unwrap().remove("ownerReferences");
    }
    let applied = Instant::now();
    for object in [&deployment, &service] {
        node.kubectl_apply(&serde_json::to_string(object).unwrap()).unwrap();
    }
    let ready = || {
        node.kubectl(&[
            "-n",
            "shop",
            "get",
            "deployment",
            "sav",
            "-o",
            "jsonpath={.status.readyReplicas}",
        ])
        .is_ok_and(|s| s.trim() == "1")
    };
    if let Err(e) = wait_for("the chatbot pod Ready", Duration::from_secs(120), ready) {
        let pods = node.kubectl(&["-n", "shop", "describe", "pods"]).unwrap_or_default();
        let rs = node
            .kubectl(&["-n", "shop", "describe", "replicasets"])
            .unwrap_or_default();
        panic!("{e}\n{pods}\n{rs}\nkubelet:\n{}", tail(&node.log("kubelet"), 40));
    }
    let to_ready = applied.elapsed();

    // The pod answers from its pod IP and through its Service's ClusterIP (kube-proxy), from the host over the
    // node's link; the API on 8000, the probes and metrics on 8081 only.
    let pod_ip = node
        .kubectl(&[
            "-n",
            "shop",
            "get",
            "pods",
            "-l",
            "app.kubernetes.io/instance=sav",
            "-o",
            "jsonpath={.items[0].status.podIP}",
        ])
        .unwrap();
    let cluster_ip = node
        .kubectl(&[
            "-n",
            "shop",
            "get",
            "service",
            "sav",
            "-o",
            "jsonpath={.spec.clusterIP}",
        ])
        .unwrap();
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
        let body: serde_json::Value = chat.json().await.unwrap();
        assert_eq!(body["intent"], "order_tracking", "{body}");
    });
    // The pod is what restricted Pod Security admits, as rendered: no mutation let it in.
    let security = node
        .kubectl(&[
            "-n",
            "shop",
            "get",
            "pods",
            "-l",
            "app.kubernetes.io/instance=sav",
            "-o",
            "jsonpath={.items[0].spec.containers[0].securityContext}",
        ])
        .unwrap();
    let security: serde_json::Value = serde_json::from_str(&security).unwrap();
    assert_eq!(security["readOnlyRootFilesystem"], true, "{security}");
    assert_eq!(security["allowPrivilegeEscalation"], false, "{security}");
    eprintln!(
        "figures: node Ready {:.1} s after start; chatbot pod Ready {:.1} s after its Deployment was applied",
        up.as_secs_f64(),
        to_ready.as_secs_f64()
    );
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
