//! A throwaway PostgreSQL server: `initdb` into a temporary directory, `pg_ctl start` on 127.0.0.1 and a free port,
//! stopped and deleted on drop. Uses Debian's `postgresql` package (installed by `scripts/install-deps.sh`).

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, bail};

use crate::free_port;

/// A running PostgreSQL cluster owned by a test.
pub struct TestPostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    /// initdb refuses to run as root: when we are root, every command runs as the `postgres` system user.
    run_as: Option<&'static str>,
    listen: Listen,
}

/// Where the server listens and whom else it admits.
#[derive(Clone, Debug)]
pub struct Listen {
    /// A network namespace to run it in (`ip netns exec`), for clients that live there.
    pub netns: Option<String>,
    pub address: String,
    pub port: Option<u16>,
    /// Clients from this CIDR may log in as `chatbot` (password `chatbot-password`) to the `chatbot` database.
    pub clients: Option<String>,
}

impl Default for Listen {
    fn default() -> Self {
        Listen {
            netns: None,
            address: "127.0.0.1".into(),
            port: None,
            clients: None,
        }
    }
}

/// The password of the `chatbot` role that [`Listen::clients`] log in with.
pub const CLIENT_PASSWORD: &str = "chatbot-password";

impl TestPostgres {
    /// Creates and starts a cluster on 127.0.0.1. Fails with an explanation when PostgreSQL is not installed.
    pub fn start() -> anyhow::Result<TestPostgres> {
        Self::start_with(Listen::default())
    }

    /// Creates and starts a cluster listening as `listen` says.
    pub fn start_with(listen: Listen) -> anyhow::Result<TestPostgres> {
        let bin = find_bin_dir().context(
            "PostgreSQL server binaries not found (initdb, pg_ctl): install Debian's `postgresql` package, \
             e.g. with scripts/install-deps.sh",
        )?;
        let run_as = is_root().then_some("postgres");
        let dir = tempfile::Builder::new().prefix("chatbot-pg-").tempdir()?;
        if let Some(user) = run_as {
            run(Command::new("chown").args(["-R", user]).arg(dir.path()))?;
        }
        let port = match listen.port {
            Some(port) => port,
            None => free_port()?,
        };
        let pg = TestPostgres {
            bin,
            dir,
            port,
            run_as,
            listen,
        };
        pg.command("initdb")
            .args([
                "--auth=trust",
                "--username=postgres",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "-D",
            ])
            .arg(pg.data_dir())
            .output()
            .context("running initdb")
            .and_then(check)?;
        if let Some(cidr) = &pg.listen.clients {
            use std::io::Write;
            let mut hba = std::fs::OpenOptions::new()
                .append(true)
                .open(pg.data_dir().join("pg_hba.conf"))?;
            writeln!(hba, "host chatbot chatbot {cidr} scram-sha-256")?;
        }
        pg.start_server()?;
        if pg.listen.clients.is_some() {
            for sql in [
                format!("CREATE ROLE chatbot LOGIN PASSWORD '{CLIENT_PASSWORD}'"),
                "CREATE DATABASE chatbot OWNER chatbot".to_owned(),
            ] {
                pg.command("psql")
                    .args(["-h"])
                    .arg(pg.dir.path())
                    .args([
                        "-p",
                        &pg.port.to_string(),
                        "-U",
                        "postgres",
                        "-d",
                        "postgres",
                        "-c",
                        &sql,
                    ])
                    .output()
                    .context("running psql")
                    .and_then(check)?;
            }
        }
        Ok(pg)
    }

    /// The URL the admitted clients use: the `chatbot` database as its owner, over the network.
    pub fn client_url(&self) -> String {
        format!(
            "postgres://chatbot:{CLIENT_PASSWORD}@{}:{}/chatbot",
            self.listen.address, self.port
        )
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `program` as the server's user (`postgres` when we are root: initdb refuses root), in its network namespace.
    fn command(&self, program: &str) -> Command {
        let mut argv: Vec<std::ffi::OsString> = Vec::new();
        if let Some(netns) = &self.listen.netns {
            argv.extend(["ip", "netns", "exec", netns].map(Into::into));
        }
        if let Some(user) = self.run_as {
            argv.extend(["runuser", "-u", user, "--"].map(Into::into));
        }
        argv.push(self.bin.join(program).into());
        let mut c = Command::new(&argv[0]);
        c.args(&argv[1..]);
        c
    }

    /// Starts (or restarts) the server and waits until it accepts connections.
    pub fn start_server(&self) -> anyhow::Result<()> {
        let options = format!(
            "-h {} -p {} -k {} -c fsync=off -c full_page_writes=off",
            self.listen.address,
            self.port,
            self.dir.path().display()
        );
        self.command("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-w", "-t", "30", "-o", &options, "-l"])
            .arg(self.dir.path().join("server.log"))
            .arg("start")
            .output()
            .context("running pg_ctl start")
            .and_then(check)
            .with_context(|| format!("server log:\n{}", self.log()))?;
        Ok(())
    }

    /// Stops the server (fast shutdown: open connections are cut, as in an outage).
    pub fn stop_server(&self) -> anyhow::Result<()> {
        self.command("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-w", "-m", "fast", "stop"])
            .output()
            .context("running pg_ctl stop")
            .and_then(check)?;
        Ok(())
    }

    /// A URL for the `postgres` database as the `postgres` superuser.
    pub fn url(&self) -> String {
        format!("postgres://postgres@{}:{}/postgres", self.listen.address, self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

fn find_bin_dir() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .collect();
    // Newest major version first.
    candidates.sort_by_key(|p| std::cmp::Reverse(p.to_string_lossy().into_owned()));
    candidates.into_iter().find(|d| d.join("initdb").exists()).or_else(|| {
        std::env::var_os("PATH").and_then(|paths| std::env::split_paths(&paths).find(|d| d.join("initdb").exists()))
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn run(c: &mut Command) -> anyhow::Result<()> {
    check(c.output()?)
}

fn check(o: std::process::Output) -> anyhow::Result<()> {
    if o.status.success() {
        return Ok(());
    }
    bail!(
        "{}\n{}{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
