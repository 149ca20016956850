//! Test harness shared by the workspace's integration tests: real servers (PostgreSQL, Prometheus, Alertmanager)
//! started on 127.0.0.1 for one test and stopped with it, a fake OpenAI-compatible model, and a parser for the Prometheus text format so tests
//! compare series, not substrings.

pub mod alertmanager;
pub mod exposition;
pub mod fake_openai;
pub mod invalid;
pub mod openapi;
pub mod postgres;
pub mod prometheus;

pub use alertmanager::TestAlertmanager;
pub use exposition::Exposition;
pub use postgres::TestPostgres;
pub use prometheus::TestPrometheus;

/// A TCP port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
