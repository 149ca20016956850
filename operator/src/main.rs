//! `chatbot-operator`: `run` the controller, print the `crd`, or `render` a resource's children without a cluster.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use chatbot_operator::crd::{ChatbotMonitoring, crd_yaml};
use chatbot_operator::render::{RenderOptions, render, to_yaml_stream};

#[derive(Parser)]
#[command(name = "chatbot-operator", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the ChatbotMonitoring CustomResourceDefinition as YAML.
    Crd,
    /// Print every child a ChatbotMonitoring would get, as a multi-document YAML stream (no cluster needed).
    Render {
        /// The ChatbotMonitoring YAML file (`-` for standard input).
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
        /// Namespace to assume when the file sets none.
        #[arg(short = 'n', long, default_value = "default")]
        namespace: String,
        /// Image used when the resource sets none.
        #[arg(long, env = "CHATBOT_IMAGE")]
        default_image: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Crd => write_stdout(&crd_yaml()),
        Command::Render {
            file,
            namespace,
            default_image,
        } => render_file(&file, &namespace, default_image),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chatbot-operator: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn render_file(file: &PathBuf, namespace: &str, default_image: Option<String>) -> anyhow::Result<()> {
    let text = if file.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        s
    } else {
        std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("reading {}: {e}", file.display()))?
    };
    let mut cbm: ChatbotMonitoring =
        serde_yaml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: not a ChatbotMonitoring: {e}", file.display()))?;
    if cbm.metadata.namespace.is_none() {
        cbm.metadata.namespace = Some(namespace.to_owned());
    }
    let mut options = RenderOptions::default();
    if let Some(image) = default_image {
        options.default_image = image;
    }
    let desired = render(&cbm, &options)?;
    write_stdout(&to_yaml_stream(&desired)?)
}

/// Writes to standard output; a closed pipe (`| head`) is not an error.
fn write_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
