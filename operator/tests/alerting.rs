//! The notification path without a cluster: the `alertmanager.yml` that `render --local-prometheus` writes passes
//! `amtool check-config`, and the route tests that `render --tests` writes pass under `amtool config routes test`
//! and fail when a route is changed. Needs Debian's prometheus-alertmanager (scripts/install-deps.sh).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_chatbot-operator")
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

fn amtool(args: &[&str], dir: &Path) -> Output {
    Command::new("amtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("amtool is missing: scripts/install-deps.sh installs Debian's prometheus-alertmanager")
}

/// amtool's version as (major, minor): Debian bookworm's 0.25 has no Microsoft Teams integration.
fn amtool_version() -> (u32, u32) {
    let out = amtool(&["--version"], Path::new("."));
    let text = text(&out);
    let version = text.split_whitespace().nth(2).unwrap_or_default();
    let mut parts = version.split('.').map(|p| p.parse().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

const RESOURCE: &str = "apiVersion: monitoring.chatbot-sav.io/v1alpha1
kind: ChatbotMonitoring
metadata: {name: bot, namespace: support}
spec:
  notifications:
    receivers:
      - name: paging
        pagerduty:
          routingKeySecretRef: {name: alerting, key: pagerduty}
      - name: chat
        slack:
          apiUrlSecretRef: {name: alerting, key: slack}
          channel: '#support'
      - name: mail
        sendResolved: false
        email:
          to: oncall@example.com
          from: alertmanager@example.com
          smarthost: smtp.example.com:587
          authUsername: am
          authPasswordSecretRef: {name: smtp, key: password}
      - name: hook
        webhook:
          urlSecretRef: {name: alerting, key: hook}
    routes:
      critical: [paging, hook]
      warning: [chat]
      info: [mail]
";

const SECRETS: &str = "apiVersion: v1
kind: Secret
metadata: {name: alerting}
stringData:
  pagerduty: 0123456789abcdef0123456789abcdef
  slack: https://hooks.slack.com/services/T000/B000/XXXX
---
apiVersion: v1
kind: Secret
metadata: {name: alerting-more}
data: {}
---
apiVersion: v1
kind: Secret
metadata: {name: alerting}
data:
  hook: aHR0cDovLzEyNy4wLjAuMTo1MDAxL2hvb2s=
---
apiVersion: v1
kind: Secret
metadata: {name: smtp}
stringData: {password: s3cret}
";

fn render_local(dir: &Path, resource: &str, secrets: Option<&str>) -> Output {
    std::fs::write(dir.join("cbm.yaml"), resource).unwrap();
    let mut cmd = Command::new(bin());
    cmd.args([
        "render",
        "-f",
        "cbm.yaml",
        "--local-prometheus",
        "out",
        "--target",
        "127.0.0.1:8081",
    ])
    .args(["--alertmanager", "127.0.0.1:19093"])
    .current_dir(dir);
    if let Some(secrets) = secrets {
        std::fs::write(dir.join("secrets.yaml"), secrets).unwrap();
        cmd.args(["--secrets", "secrets.yaml"]);
    }
    cmd.output().unwrap()
}

fn yaml(path: &Path) -> Value {
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn the_local_alertmanager_yml_passes_amtool_check_config_with_the_secrets_inline() {
    let dir = tempfile::tempdir().unwrap();
    let out = render_local(dir.path(), RESOURCE, Some(SECRETS));
    assert!(out.status.success(), "{}", text(&out));
    let out_dir = dir.path().join("out");
    let check = amtool(&["check-config", "alertmanager.yml"], &out_dir);
    assert!(check.status.success(), "{}", text(&check));
    // null, none and the resource's four.
    assert!(text(&check).contains(" - 6 receivers"), "{}", text(&check));

    let config = yaml(&out_dir.join("alertmanager.yml"));
    let receiver = |name: &str| {
        config["receivers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("no receiver {name} in {config}"))
            .clone()
    };
    // The Secrets' values, from stringData and from base64 data alike, as the Prometheus Operator inlines them.
    assert_eq!(
        receiver("support/bot/paging")["pagerduty_configs"][0]["routing_key"],
        "0123456789abcdef0123456789abcdef"
    );
    assert_eq!(
        receiver("support/bot/hook")["webhook_configs"][0]["url"],
        "http://127.0.0.1:5001/hook"
    );
    assert_eq!(
        receiver("support/bot/mail")["email_configs"][0]["auth_password"],
        "s3cret"
    );
    assert_eq!(receiver("support/bot/mail")["email_configs"][0]["send_resolved"], false);
    assert_eq!(receiver("support/bot/chat")["slack_configs"][0]["send_resolved"], true);
    assert_eq!(
        receiver("support/bot/none"),
        serde_json::json!({"name": "support/bot/none"})
    );

    // The first-level route as the Prometheus Operator makes it: its namespace matcher appended after ours (which
    // holds under every matcher strategy), and it continues.
    let route = &config["route"]["routes"][0];
    assert_eq!(config["route"]["receiver"], "null");
    assert_eq!(
        route["matchers"],
        serde_json::json!(["namespace=\"support\"", "chatbot=\"bot\"", "namespace=\"support\""])
    );
    let mode = std::fs::metadata(out_dir.join("alertmanager.yml"))
        .unwrap()
        .permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600,
        "it holds the Secrets' values"
    );
    assert_eq!(route["continue"], true);
    for rule in config["inhibit_rules"].as_array().unwrap() {
        for side in ["source_matchers", "target_matchers"] {
            assert!(
                rule[side].as_array().unwrap().contains(&"namespace=\"support\"".into()),
                "{rule}"
            );
        }
    }

    // And the Prometheus beside it sends its alerts there.
    let prometheus = yaml(&out_dir.join("prometheus.yml"));
    assert_eq!(
        prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"][0],
        "127.0.0.1:19093"
    );
    let check = Command::new("promtool")
        .args(["check", "config", "prometheus.yml"])
        .current_dir(&out_dir)
        .output()
        .expect("promtool");
    assert!(check.status.success(), "{}", text(&check));
}

#[test]
fn a_missing_secret_value_or_no_secrets_at_all_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let out = render_local(dir.path(), RESOURCE, None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("pass their manifests with --secrets FILE"),
        "{}",
        text(&out)
    );
    assert!(!dir.path().join("out/prometheus.yml").exists(), "nothing half written");

    let without_smtp = SECRETS.split("---").take(3).collect::<Vec<_>>().join("---");
    let out = render_local(dir.path(), RESOURCE, Some(&without_smtp));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("no value for key password of Secret smtp"),
        "{}",
        text(&out)
    );

    let out = render_local(
        dir.path(),
        RESOURCE,
        Some("apiVersion: v1\nkind: Secret\nmetadata: {}\n"),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("a Secret has no metadata.name"), "{}", text(&out));
}

/// Microsoft Teams (Workflows) needs Alertmanager 0.28: checked where amtool is that recent.
#[test]
fn a_teams_receiver_passes_check_config_where_alertmanager_has_teams() {
    let version = amtool_version();
    if version < (0, 28) {
        eprintln!(
            "skipped: amtool {}.{} has no msteamsv2_configs (Alertmanager 0.28 or later has)",
            version.0, version.1
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let resource = RESOURCE.replace(
        "      - name: hook\n",
        "      - name: teams\n        msteams:\n          webhookUrlSecretRef: {name: alerting, key: hook}\n      - name: hook\n",
    );
    let out = render_local(dir.path(), &resource, Some(SECRETS));
    assert!(out.status.success(), "{}", text(&out));
    let check = amtool(&["check-config", "alertmanager.yml"], &dir.path().join("out"));
    assert!(check.status.success(), "{}", text(&check));
}

fn render_tests(file: &Path, dir: &Path) {
    let out = Command::new(bin())
        .args(["render", "-f"])
        .arg(file)
        .arg("--tests")
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
}

fn run_route_tests(dir: &Path) -> Output {
    Command::new("sh")
        .arg(dir.join("alertmanager.routes.test.sh"))
        .output()
        .unwrap()
}

/// `render --tests`: every alert of the resource with the receivers its severity is routed to, under amtool.
#[test]
fn generated_route_tests_pass_for_the_example_and_other_routes() {
    let dir = tempfile::tempdir().unwrap();
    let custom = dir.path().join("custom.yaml");
    std::fs::write(&custom, RESOURCE).unwrap();
    for (i, file) in [root().join("examples/full.yaml"), custom].iter().enumerate() {
        let out_dir = dir.path().join(format!("tests-{i}"));
        render_tests(file, &out_dir);
        let check = amtool(&["check-config", "alertmanager.routes.yml"], &out_dir);
        assert!(check.status.success(), "{}", text(&check));
        let out = run_route_tests(&out_dir);
        let report = text(&out);
        assert!(out.status.success(), "{report}");
        // Every alert and the two alerts of others (another chatbot, another namespace).
        assert!(
            report.lines().filter(|l| l.starts_with("ok ")).count() >= 12,
            "{report}"
        );
        assert!(!report.contains("FAIL"), "{report}");
    }
    let report = text(&run_route_tests(&dir.path().join("tests-1")));
    assert!(
        report.contains("alertname=HighErrorRate chatbot=bot job=bot namespace=support severity=critical -> support/bot/paging,support/bot/hook"),
        "{report}"
    );
    assert!(
        report.contains(
            "alertname=HighEscalationRate chatbot=bot job=bot namespace=support severity=info -> support/bot/mail"
        ),
        "{report}"
    );
    assert!(
        report
            .contains("alertname=HighErrorRate chatbot=bot job=bot namespace=support-other severity=critical -> null"),
        "{report}"
    );
}

#[test]
fn generated_route_tests_catch_a_changed_route() {
    let dir = tempfile::tempdir().unwrap();
    render_tests(&root().join("examples/full.yaml"), dir.path());
    let routes = dir.path().join("alertmanager.routes.yml");
    let original = std::fs::read_to_string(&routes).unwrap();
    // Warnings routed to no one any more: the route tests must say so.
    let changed = original.replace("severity=\"warning\"", "severity=\"warn\"");
    assert_ne!(changed, original);
    std::fs::write(&routes, changed).unwrap();
    let out = run_route_tests(dir.path());
    let report = text(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(
        report.contains("FAIL alertname=HighResponseTime chatbot=sav job=sav namespace=shop severity=warning -> shop/sav/none, want shop/sav/chat,shop/sav/teams"),
        "{report}"
    );
    // And with no notifications, nothing of Alertmanager is written.
    let off = dir.path().join("off.yaml");
    std::fs::write(
        &off,
        "apiVersion: monitoring.chatbot-sav.io/v1alpha1\nkind: ChatbotMonitoring\nmetadata: {name: quiet}\nspec: {}\n",
    )
    .unwrap();
    let quiet = dir.path().join("quiet");
    render_tests(&off, &quiet);
    assert!(quiet.join("rules.test.yml").exists());
    assert!(!quiet.join("alertmanager.routes.yml").exists());
}
