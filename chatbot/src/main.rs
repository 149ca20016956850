//! The `chatbot` binary: parse the configuration, set up logging, serve until SIGTERM or Ctrl-C.

use clap::Parser;
use tracing_subscriber::EnvFilter;

use chatbot::config::{Config, LogFormat};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = Config::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    match config.log_format {
        LogFormat::Json => tracing_subscriber::fmt().json().with_env_filter(filter).init(),
        LogFormat::Text => tracing_subscriber::fmt().with_env_filter(filter).init(),
    }
    match run(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "chatbot failed");
            eprintln!("chatbot: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    let listeners = chatbot::app::Listeners::bind(&config).await?;
    chatbot::app::serve(config, listeners, chatbot::app::shutdown_signal()).await
}
