//! What a cluster does to an operator: kube-apiserver killed and restarted, watches expired by etcd's compaction,
//! the leader replica stopped, and the long quiet of a steady state. Each test has a control plane of its own (they watch the API server's own
//! counters, or kill it), one at a time.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chatbot_operator::controller::Scope;
use controlplane_tests::binary::OperatorProcess;
use controlplane_tests::env::{Env, install_everything, state};
use controlplane_tests::operator::{Operator, Settings};
use controlplane_tests::relay::Relay;
use controlplane_tests::{ControlPlane, eventually, requests, require_control_plane};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, ListParams, WatchEvent, WatchParams};
use serde_json::json;
use tokio::sync::Mutex;

/// Control planes are started one at a time: two cores.
static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

const NAMES: [&str; 5] = ["a", "b", "c", "d", "e"];

/// A control plane of the test's own with every CRD and kube-prometheus-stack's Prometheus.
async fn fresh_cluster(assets: &std::path::Path) -> Arc<ControlPlane> {
    let cp = Arc::new(ControlPlane::start(assets).await);
    install_everything(&cp.admin().await).await;
    cp
}

/// Changes every resource of `NAMES`: an env var `marker` whose value is the resource's name.
async fn change_all(env: &Env, marker: &str) {
    for name in NAMES {
        env.apply(name, json!({"chatbot": {"env": [{"name": marker, "value": name}]}}))
            .await;
    }
}

async fn all_converged(env: &Env, names: &[&str], within: Duration, what: &str) {
    for name in names {
        eventually(&format!("{what}: {name}"), within, || env.converged(name)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_apiserver_killed_and_restarted_while_resources_change() {
    let assets = require_control_plane!();
    let _serial = ONE_AT_A_TIME.lock().await;
    let cp = fresh_cluster(&assets).await;
    let env = Env::new(cp.clone(), "shop", true, None).await;
    for name in NAMES {
        env.apply(name, json!({})).await;
    }
    all_converged(&env, &NAMES, Duration::from_secs(60), "before the restart").await;

    // Changes land while the API server is down for 10 s: some reconciles fail, watches break.
    cp.restart_apiserver(Duration::from_secs(10)).await;
    let restarted = Instant::now();
    change_all(&env, "AFTER_RESTART").await;
    all_converged(&env, &NAMES, Duration::from_secs(90), "after the restart").await;
    eprintln!(
        "changes made after a kube-apiserver restart applied within {:.1} s",
        restarted.elapsed().as_secs_f64()
    );

    // Nothing duplicated or lost, and the conditions end right.
    let deployments = Api::<Deployment>::namespaced(env.admin.clone(), "shop")
        .list(&ListParams::default().labels("app.kubernetes.io/managed-by=chatbot-operator"))
        .await
        .unwrap();
    let mut names: Vec<String> = deployments
        .items
        .iter()
        .map(|d| d.metadata.name.clone().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, NAMES);
    let has_gc = cp.has_controller_manager();
    for name in NAMES {
        let ready = env.wait_status(name, "Ready after the restart", Duration::from_secs(90), |c| {
            state(c, "Selected").0 == "True" && (!has_gc || state(c, "Ready").0 == "True")
        });
        if tokio::time::timeout(Duration::from_secs(95), ready).await.is_err() {
            panic!("{name} not Ready after the restart:\n{}", env.describe_pods().await);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_takes_over_within_15_s_when_the_leader_stops() {
    let assets = require_control_plane!();
    let _serial = ONE_AT_A_TIME.lock().await;
    let cp = fresh_cluster(&assets).await;
    let (env, installed) = Env::without_operator(cp.clone(), "shop", true).await;
    let mut replicas = [
        OperatorProcess::start(&cp, &installed, "replica-a", "debug", None),
        OperatorProcess::start(&cp, &installed, "replica-b", "debug", None),
    ];
    let leader = eventually("one replica leads", Duration::from_secs(30), || async {
        let leading = [replicas[0].is_leader().await, replicas[1].is_leader().await];
        match leading {
            [true, false] => Ok(0),
            [false, true] => Ok(1),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    env.apply("bot", json!({})).await;
    all_converged(&env, &["bot"], Duration::from_secs(60), "reconciled by the leader").await;
    // Never both: the standby stays a standby while the leader renews.
    for _ in 0..20 {
        let leading = [replicas[0].is_leader().await, replicas[1].is_leader().await];
        assert_ne!(leading, [true, true], "both replicas lead");
        assert!(leading[leader], "the leader kept its lease");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    replicas[leader].stop();
    let stopped = Instant::now();
    let standby = &replicas[1 - leader];
    eventually("the standby leads", Duration::from_secs(15), || async {
        standby.is_leader().await.then_some(()).ok_or_default()
    })
    .await;
    let took_over = stopped.elapsed();
    env.apply(
        "bot",
        json!({"chatbot": {"env": [{"name": "AFTER_FAILOVER", "value": "1"}]}}),
    )
    .await;
    all_converged(&env, &["bot"], Duration::from_secs(15), "reconciled by the new leader").await;
    eprintln!(
        "leader stopped: the standby led after {:.1} s and applied a change {:.1} s after the stop",
        took_over.as_secs_f64(),
        stopped.elapsed().as_secs_f64()
    );
    assert!(stopped.elapsed() < Duration::from_secs(15) + Duration::from_secs(15));
}

/// Issue 16 on the real control plane: with leader election, as deployed, the operator turns unready while the API
/// server is away and applies changes made after its return within seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_leader_election_the_operator_is_unready_while_the_apiserver_is_away_and_catches_up() {
    let assets = require_control_plane!();
    let _serial = ONE_AT_A_TIME.lock().await;
    let cp = fresh_cluster(&assets).await;
    let (env, installed) = Env::without_operator(cp.clone(), "shop", true).await;
    let operator = OperatorProcess::start(&cp, &installed, "only", "debug", None);
    eventually("the operator leads", Duration::from_secs(30), || async {
        operator.is_leader().await.then_some(()).ok_or_default()
    })
    .await;
    for name in NAMES {
        env.apply(name, json!({})).await;
    }
    all_converged(&env, &NAMES, Duration::from_secs(60), "before the restart").await;
    assert_eq!(operator.readyz().await, Some(200));

    let watching = {
        let url = operator.url.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            let client = reqwest::Client::new();
            for _ in 0..100 {
                let code = client
                    .get(format!("{url}/readyz"))
                    .send()
                    .await
                    .map(|r| r.status().as_u16());
                seen.push(code.unwrap_or(0));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            seen
        })
    };
    cp.restart_apiserver(Duration::from_secs(10)).await;
    let restarted = Instant::now();
    change_all(&env, "AFTER_RESTART").await;
    all_converged(&env, &NAMES, Duration::from_secs(30), "changes after the restart").await;
    let caught_up = restarted.elapsed();
    let seen = watching.await.unwrap();
    assert!(seen.contains(&503), "unready while the API server was away: {seen:?}");
    eventually("ready again", Duration::from_secs(30), || async {
        (operator.readyz().await == Some(200)).then_some(()).ok_or_default()
    })
    .await;
    assert!(operator.is_leader().await, "the same process still leads");
    eprintln!(
        "with leader election: changes made after a kube-apiserver restart applied within {:.1} s",
        caught_up.as_secs_f64()
    );
}

/// Issue 16: a watch that expires while the API server stays up (the operator cut off by the network while etcd
/// compacts its history) is listed again, and what changed meanwhile is applied within seconds of the return.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_expired_by_etcd_compaction_are_listed_again() {
    let assets = require_control_plane!();
    let _serial = ONE_AT_A_TIME.lock().await;
    // Without the watch cache, a resumed watch reads etcd's history, which compaction removes.
    let cp = Arc::new(ControlPlane::start_with(&assets, &["--watch-cache=false"]).await);
    install_everything(&cp.admin().await).await;
    let (mut env, installed) = Env::without_operator(cp.clone(), "shop", true).await;
    let relay = Relay::start(cp.apiserver_port).await;
    let client = cp
        .service_account_via(&installed.namespace, &installed.service_account, &relay.url)
        .await;
    env.operator = Some(Operator::start(
        client,
        Settings {
            scope: Scope::All,
            verify: None,
        },
    ));
    for name in NAMES {
        env.apply(name, json!({})).await;
    }
    all_converged(&env, &NAMES, Duration::from_secs(60), "before the cut").await;
    let before = env
        .api()
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();

    relay.cut();
    change_all(&env, "AFTER_COMPACTION").await;
    cp.compact_etcd().await;
    // The server itself now answers a watch from before the cut with 410 Expired.
    let mut watch = env.api().watch(&WatchParams::default(), &before).await.unwrap().boxed();
    match watch.next().await {
        Some(Ok(WatchEvent::Error(status))) => assert_eq!(status.code, 410, "{status:?}"),
        other => panic!("a watch from before the compaction is told 410 Expired, not {other:?}"),
    }

    relay.restore();
    let restored = Instant::now();
    all_converged(&env, &NAMES, Duration::from_secs(30), "changes made during the cut").await;
    eprintln!(
        "watches expired by etcd's compaction: changes made meanwhile applied {:.1} s after the network returned",
        restored.elapsed().as_secs_f64()
    );
}

/// Writes to the kinds the operator writes, from kube-apiserver's own `apiserver_request_total`.
fn writes(metrics: &str) -> BTreeMap<String, f64> {
    let ours = requests::operator_resources(&["create", "patch", "delete"]);
    requests::counts(metrics)
        .into_iter()
        .filter(|(r, _)| r.is_write() && ours.contains(r.resource.as_str()))
        .map(|(r, v)| (r.to_string(), v))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_steady_state_costs_no_write_for_a_minute() {
    let assets = require_control_plane!();
    let _serial = ONE_AT_A_TIME.lock().await;
    let cp = fresh_cluster(&assets).await;
    let env = Env::new(cp.clone(), "shop", true, None).await;
    for name in NAMES {
        env.apply(name, json!({"alerts": {"slo": {"availabilityTarget": 99.5}}}))
            .await;
    }
    all_converged(&env, &NAMES, Duration::from_secs(60), "first reconcile").await;
    let has_gc = cp.has_controller_manager();
    for name in NAMES {
        env.wait_status(name, "Ready", Duration::from_secs(60), |c| {
            !has_gc || state(c, "Ready").0 == "True"
        })
        .await;
    }
    // Let the last status writes and events of the first reconciles land.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let before = writes(&cp.apiserver_metrics().await);
    assert!(!before.is_empty(), "the counters are read");
    tokio::time::sleep(Duration::from_secs(60)).await;
    let after = writes(&cp.apiserver_metrics().await);
    assert_eq!(after, before, "writes during a minute of steady state");
    let total = requests::total(after.values()) - requests::total(before.values());
    eprintln!("steady state: {total} writes in 60 s for {} resources", NAMES.len());
}

trait OkOrDefault {
    fn ok_or_default(self) -> Result<(), String>;
}

impl OkOrDefault for Option<()> {
    fn ok_or_default(self) -> Result<(), String> {
        self.ok_or_else(|| "not yet".to_owned())
    }
}
