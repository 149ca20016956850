//! `chatbot-operator`: `run` the controller, print the `crd`, or `render` a resource's children without a cluster.

use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use kube::Client;
use kube::runtime::events::{Recorder, Reporter};
use tokio::sync::watch;
use tracing_subscriber::EnvFilter;

use chatbot_operator::admission;
use chatbot_operator::controller::{self, Scope};
use chatbot_operator::crd::{ChatbotMonitoring, crd_yaml};
use chatbot_operator::http::{self, Probe};
use chatbot_operator::leader::{self, Lease, LeaseSettings};
use chatbot_operator::metrics::Metrics;
use chatbot_operator::reconcile::Context;
use chatbot_operator::render::{
    Desired, MANAGER, RenderOptions, local_alertmanager, local_prometheus, promtool_tests, render, to_yaml_stream,
};
use chatbot_operator::settled::Settled;
use chatbot_operator::verify;

#[derive(Parser)]
#[command(name = "chatbot-operator", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controller against the cluster of the current kubeconfig or in-cluster service account.
    Run(RunArgs),
    /// Print the ChatbotMonitoring CustomResourceDefinition as YAML.
    Crd,
    /// Print the RBAC the operator needs (a ClusterRole, and a Role for its leader-election Lease), and no more.
    Rbac {
        /// Include what `run --check-secrets` needs: `get` on Secrets.
        #[arg(long)]
        check_secrets: bool,
    },
    /// Check a resource against a Prometheus: is its chatbot scraped, are its rules loaded, does every dashboard
    /// panel find its metrics. Exit code 0 only when every check passes.
    Verify {
        /// The ChatbotMonitoring YAML file (`-` for standard input).
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
        /// Namespace to assume when the file sets none.
        #[arg(short = 'n', long, default_value = "default")]
        namespace: String,
        /// Prometheus' base URL, e.g. http://localhost:9090.
        #[arg(long, env = "PROMETHEUS_URL")]
        prometheus_url: String,
        /// Alertmanager's base URL, e.g. http://localhost:9093: with notifications in the resource, also check that
        /// Prometheus sends alerts to an Alertmanager and that this one loaded the routing (row Routed).
        #[arg(long, env = "ALERTMANAGER_URL")]
        alertmanager_url: Option<String>,
        /// `table` for people, `json` for scripts.
        #[arg(short = 'o', long, value_enum, default_value_t = Output::Table)]
        output: Output,
        /// Deadline of each request to Prometheus.
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
    },
    /// Print every child a ChatbotMonitoring would get, as a multi-document YAML stream (no cluster needed).
    Render {
        /// The ChatbotMonitoring YAML file (`-` for standard input).
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
        /// Namespace to assume when the file sets none.
        #[arg(short = 'n', long, default_value = "default")]
        namespace: String,
        #[command(flatten)]
        settings: RenderSettings,
        /// Instead of the children, write into DIR a prometheus.yml and rules.yml equivalent to what the Prometheus
        /// Operator makes of them, scraping --target: a real Prometheus without a cluster.
        #[arg(long, value_name = "DIR", requires = "target")]
        local_prometheus: Option<PathBuf>,
        /// host:port of the chatbot's internal listener (its /metrics) for --local-prometheus; several, separated by
        /// commas, for several pods.
        #[arg(long, requires = "local_prometheus", value_delimiter = ',')]
        target: Vec<String>,
        /// Scrape and evaluation interval for --local-prometheus, instead of the resource's.
        #[arg(long, requires = "local_prometheus")]
        scrape_interval: Option<String>,
        /// host:port of the Alertmanager the local Prometheus sends alerts to, when the resource has notifications.
        #[arg(
            long,
            value_name = "HOST:PORT",
            default_value = "localhost:9093",
            requires = "local_prometheus"
        )]
        alertmanager: String,
        /// Manifests of the Secrets the receivers reference (a YAML stream of v1 Secrets, `data` or `stringData`):
        /// --local-prometheus writes their values into alertmanager.yml, as the Prometheus Operator does.
        #[arg(long, value_name = "FILE", requires = "local_prometheus")]
        secrets: Option<PathBuf>,
        /// Also write into DIR the rules (rules.yml) and `promtool test rules` tests for them (rules.test.yml):
        /// for every alert, series that make it fire and series that keep it silent, at this resource's thresholds.
        /// With notifications, also the routing (alertmanager.routes.yml) and `amtool config routes test` cases
        /// (alertmanager.routes.test.sh): every alert with the receivers it must reach.
        #[arg(long, value_name = "DIR")]
        tests: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Output {
    Table,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Json,
    Text,
}

/// The operator's settings that the children depend on besides the resource: the same for `run` and `render`.
#[derive(clap::Args)]
struct RenderSettings {
    /// Chatbot image for resources that set none.
    #[arg(long, env = "CHATBOT_IMAGE")]
    default_image: Option<String>,
    /// The ingress controller's namespaces (comma-separated; "" for none), whose pods each resource's NetworkPolicy
    /// admits to the API port unless its spec.networkPolicy.apiFrom says otherwise.
    #[arg(
        long,
        env = "INGRESS_NAMESPACES",
        value_delimiter = ',',
        default_value = "ingress-nginx"
    )]
    ingress_namespaces: Vec<String>,
}

impl RenderSettings {
    fn options(self) -> RenderOptions {
        let defaults = RenderOptions::default();
        RenderOptions {
            default_image: self.default_image.unwrap_or(defaults.default_image),
            // `--ingress-namespaces ""` means none: clap reads it as one empty name.
            ingress_namespaces: self
                .ingress_namespaces
                .into_iter()
                .map(|n| n.trim().to_owned())
                .filter(|n| !n.is_empty())
                .collect(),
        }
    }
}

#[derive(clap::Args)]
struct RunArgs {
    /// Watch one namespace only (the Role-based install); all namespaces when empty.
    #[arg(long, env = "WATCH_NAMESPACE", default_value = "")]
    namespace: String,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "METRICS_ADDR", default_value = "0.0.0.0:8080")]
    metrics_addr: SocketAddr,
    /// `json` for log pipelines, `text` for people.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    log_format: LogFormat,
    #[command(flatten)]
    settings: RenderSettings,
    /// Compete for a Lease so that only one replica reconciles.
    #[arg(long, env = "LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    leader_election: bool,
    /// Name of the leader-election Lease.
    #[arg(long, env = "LEASE_NAME", default_value = "chatbot-operator-leader")]
    lease_name: String,
    /// Namespace of the Lease: the operator's own (from the downward API).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    lease_namespace: String,
    /// This replica's identity in the Lease (the pod name).
    #[arg(long, env = "POD_NAME", default_value = "chatbot-operator")]
    identity: String,
    /// How often each resource is checked against Prometheus' HTTP API (scraped, rules loaded, panels' metrics);
    /// 0s turns the checks off.
    #[arg(long, env = "VERIFY_PERIOD", default_value = "60s", value_parser = humantime::parse_duration)]
    verify_period: std::time::Duration,
    /// Prometheus URL for resources whose spec names none (instead of the chosen Prometheus' in-cluster Service).
    #[arg(long, env = "PROMETHEUS_URL")]
    prometheus_url: Option<String>,
    /// Alertmanager URL for resources whose spec names none (instead of the chosen Alertmanager's in-cluster
    /// Service).
    #[arg(long, env = "ALERTMANAGER_URL")]
    alertmanager_url: Option<String>,
    /// Check that the Secrets a resource references exist before applying anything (reason SecretMissing at once).
    /// Needs `get` on Secrets, which RBAC grants with their data; without it, the pods report a missing Secret.
    #[arg(long, env = "CHECK_SECRETS", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    check_secrets: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(args),
        Command::Crd => write_stdout(&crd_yaml()),
        Command::Rbac { check_secrets } => write_stdout(&chatbot_operator::rbac::to_yaml(check_secrets)),
        Command::Verify {
            file,
            namespace,
            prometheus_url,
            alertmanager_url,
            output,
            timeout,
        } => verify_file(
            &file,
            &namespace,
            &prometheus_url,
            alertmanager_url.as_deref(),
            output,
            timeout,
        ),
        Command::Render {
            file,
            namespace,
            settings,
            local_prometheus,
            target,
            scrape_interval,
            alertmanager,
            secrets,
            tests,
        } => render_file(&file, &namespace, &settings.options()).and_then(|(cbm, desired)| {
            if let Some(dir) = tests {
                write_promtool_tests(&dir, &cbm, &desired)?;
                write_amtool_tests(&dir, &cbm, &desired)?;
            }
            match local_prometheus {
                Some(dir) => {
                    let secrets = match secrets {
                        Some(path) => Some(read_secrets(&path)?),
                        None => None,
                    };
                    let alerting = secrets.as_ref().map(|secrets| local_prometheus::LocalAlerting {
                        alertmanager: &alertmanager,
                        secrets,
                    });
                    local_prometheus::write(&dir, &desired, &target, scrape_interval.as_deref(), alerting)
                        .with_context(|| format!("writing {}", dir.display()))
                }
                None => write_stdout(&to_yaml_stream(&desired)?),
            }
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "chatbot-operator failed");
            eprintln!("chatbot-operator: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn run(args: RunArgs) -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    match args.log_format {
        LogFormat::Json => tracing_subscriber::fmt().json().with_env_filter(filter).init(),
        LogFormat::Text => tracing_subscriber::fmt().with_env_filter(filter).init(),
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };

    let metrics = Arc::new(Metrics::new());
    let ready = Arc::new(AtomicBool::new(false));
    let watches = Arc::new(chatbot_operator::watch_health::WatchHealth::default());
    let probe = Probe {
        metrics: metrics.clone(),
        ready: ready.clone(),
        watches: watches.clone(),
    };
    let server = tokio::spawn(http::serve(args.metrics_addr, probe, stopped()));

    let client = Client::try_default()
        .await
        .context("connecting to the Kubernetes API")?;
    let version = client
        .apiserver_version()
        .await
        .context("reaching the Kubernetes API")?;
    tracing::info!(kubernetes = %version.git_version, "connected");
    ready.store(true, Ordering::Relaxed);

    let options = args.settings.options();
    let reporter = Reporter {
        controller: MANAGER.into(),
        instance: Some(args.identity.clone()),
    };
    let mut ctx = Context::new(
        client.clone(),
        Recorder::new(client.clone(), reporter),
        options,
        metrics.clone(),
    )
    .with_watch_health(watches)
    .with_secret_check(args.check_secrets);
    if !args.verify_period.is_zero() {
        ctx = ctx.with_verifier(
            verify::periodic::Verifier::new(
                args.verify_period,
                std::time::Duration::from_secs(5),
                args.prometheus_url.clone(),
            )
            .with_alertmanager_url(args.alertmanager_url.clone()),
        );
    }
    // Settled resources are not read again until the controller's watches see a change: see controller::run.
    let ctx = Arc::new(ctx.with_settled(Settled::default()));
    let scope = if args.namespace.is_empty() {
        Scope::All
    } else {
        Scope::Namespace(args.namespace.clone())
    };

    let result = if args.leader_election {
        let settings = LeaseSettings {
            name: args.lease_name,
            namespace: args.lease_namespace,
            identity: args.identity,
            duration_seconds: 15,
            grace_seconds: 5,
        };
        let lease = Lease::start(client, &settings)
            .await
            .context("starting leader election")?;
        tracing::info!(lease = %settings.name, identity = %settings.identity, "waiting to lead");
        let result = leader::lead(
            lease.is_leader.clone(),
            || controller::run(ctx, scope, stopped()),
            stopped(),
            |leading| metrics.leader.set(i64::from(leading)),
        )
        .await;
        lease.release().await;
        result
    } else {
        metrics.leader.set(1);
        controller::run(ctx, scope, stopped()).await;
        Ok(())
    };
    server.abort();
    tracing::info!("stopped");
    result
}

#[tokio::main(flavor = "current_thread")]
async fn verify_file(
    file: &Path,
    namespace: &str,
    prometheus_url: &str,
    alertmanager_url: Option<&str>,
    output: Output,
    timeout: std::time::Duration,
) -> anyhow::Result<()> {
    let (_, desired) = render_file(file, namespace, &RenderOptions::default())?;
    let api = verify::prometheus_api::PrometheusApi::new(prometheus_url, timeout);
    let mut report = verify::run::verify(&desired, &api).await;
    match (&desired.alertmanager_config, alertmanager_url) {
        (Some(amc), Some(url)) => report
            .checks
            .push(verify::routing::check(amc, &api, url, timeout).await),
        (Some(_), None) => eprintln!(
            "chatbot-operator: the resource has notifications: --alertmanager-url also checks that they are routed"
        ),
        (None, _) => {}
    }
    match output {
        Output::Table => write_stdout(&verify::run::table(&report))?,
        Output::Json => write_stdout(&(serde_json::to_string_pretty(&report)? + "\n"))?,
    }
    let failed: Vec<&str> = report.checks.iter().filter(|c| !c.ok).map(|c| c.name).collect();
    anyhow::ensure!(failed.is_empty(), "failed checks: {}", failed.join(", "));
    Ok(())
}

/// Completes on SIGTERM (Kubernetes) or Ctrl-C.
async fn shutdown_signal() {
    shutdown::requested().await;
    tracing::info!("shutdown requested: finishing reconciles in flight");
}

fn render_file(file: &Path, namespace: &str, options: &RenderOptions) -> anyhow::Result<(ChatbotMonitoring, Desired)> {
    let text = if file.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        s
    } else {
        std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("reading {}: {e}", file.display()))?
    };
    let object: serde_json::Value =
        serde_yaml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: not YAML: {e}", file.display()))?;
    // What a cluster would refuse is refused here, in its words, rather than rendered.
    let mut cbm = admission::admit(&object).map_err(|refused| {
        let lines: Vec<String> = refused.0.iter().map(|e| format!("  {e}")).collect();
        anyhow::anyhow!(
            "{}: the API server would refuse this ChatbotMonitoring:\n{}",
            file.display(),
            lines.join("\n")
        )
    })?;
    if cbm.metadata.namespace.is_none() {
        cbm.metadata.namespace = Some(namespace.to_owned());
    }
    let desired = render(&cbm, options)?;
    Ok((cbm, desired))
}

/// Writes rules.yml and rules.test.yml into `dir`; `promtool test rules dir/rules.test.yml` runs them.
fn write_promtool_tests(dir: &Path, cbm: &ChatbotMonitoring, desired: &Desired) -> anyhow::Result<()> {
    let rule = desired
        .prometheus_rule
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("alerts are disabled in this resource: there are no rules to test"))?;
    std::fs::create_dir_all(dir)?;
    let ns = desired.service.metadata.namespace.clone().unwrap_or_default();
    let name = desired.service.metadata.name.clone().unwrap_or_default();
    let tests = promtool_tests::tests(&cbm.spec, rule, &ns, &name);
    std::fs::write(
        dir.join(local_prometheus::RULES_FILE),
        serde_yaml::to_string(&local_prometheus::rules(rule))?,
    )?;
    std::fs::write(dir.join(promtool_tests::TESTS_FILE), serde_yaml::to_string(&tests)?)?;
    Ok(())
}

/// With notifications, writes the routing (receivers without integrations, so no Secret is needed) and the
/// `amtool config routes test` script into `dir`.
fn write_amtool_tests(dir: &Path, cbm: &ChatbotMonitoring, desired: &Desired) -> anyhow::Result<()> {
    let (Some(amc), Some(rule), Some(notifications)) = (
        &desired.alertmanager_config,
        &desired.prometheus_rule,
        &cbm.spec.notifications,
    ) else {
        return Ok(());
    };
    let routing = local_alertmanager::config(amc, local_alertmanager::Integrations::Omitted)
        .map_err(|e| anyhow::anyhow!("spec.notifications: {e}"))?;
    std::fs::write(
        dir.join(local_alertmanager::ROUTES_FILE),
        serde_yaml::to_string(&routing)?,
    )?;
    let ns = desired.service.metadata.namespace.clone().unwrap_or_default();
    let name = desired.service.metadata.name.clone().unwrap_or_default();
    let cases = local_alertmanager::route_cases(&ns, &name, notifications, rule);
    let script = dir.join(local_alertmanager::ROUTES_TEST_FILE);
    std::fs::write(&script, local_alertmanager::routes_test_script(&cases))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

fn read_secrets(path: &Path) -> anyhow::Result<local_alertmanager::SecretValues> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    local_alertmanager::SecretValues::from_manifests(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Writes to standard output; a closed pipe (`| head`) is not an error.
fn write_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn every_flag_says_what_it_is_for() {
        Cli::command().debug_assert();
        let mut missing = Vec::new();
        for sub in Cli::command().get_subcommands() {
            for arg in sub.get_arguments() {
                if arg.get_help().is_none() && !matches!(arg.get_id().as_str(), "help" | "version") {
                    missing.push(format!("{} --{}", sub.get_name(), arg.get_id()));
                }
            }
        }
        assert!(missing.is_empty(), "flags without help: {missing:?}");
    }

    #[test]
    fn local_prometheus_options_need_local_prometheus() {
        for flag in [["--target", "localhost:8000"], ["--scrape-interval", "5s"]] {
            let args = ["chatbot-operator", "render", "-f", "x.yaml", flag[0], flag[1]];
            let err = Cli::try_parse_from(args)
                .err()
                .expect("refused without --local-prometheus");
            assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument, "{err}");
        }
        let ok = [
            "chatbot-operator",
            "render",
            "-f",
            "x.yaml",
            "--local-prometheus",
            "d",
            "--target",
            "h:1",
        ];
        assert!(Cli::try_parse_from(ok).is_ok());
    }
}
