//! The `portico` binary: command line, configuration from flags and environment, and the
//! start, supervision and shutdown of everything else. The only place that reads flags,
//! environment and files.

mod admin;
mod server;

use clap::{Args, Parser, Subcommand};
use std::net::IpAddr;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "portico",
    version,
    about = "AWS HTTP API -> VPC link -> load balancer -> ECS, for real, on one machine"
)]
struct Cli {
    /// Log level: error, warn, info, debug, trace (or a tracing filter).
    #[arg(long, global = true, env = "PORTICO_LOG_LEVEL", default_value = "info")]
    log_level: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve every emulated AWS service on one port.
    Serve(ServeArgs),
    /// The built-in amazon/amazon-ecs-sample image (run by the task runtime, not by people).
    #[command(name = "__sample-app", hide = true)]
    SampleApp {
        /// Port to serve on 127.0.0.1 (the runtime sets PORT).
        #[arg(long, env = "PORT", default_value_t = 80)]
        port: u16,
    },
}

#[derive(Args, Clone)]
pub struct ServeArgs {
    /// Address to bind. Anything but loopback requires --credentials and turns on SigV4
    /// verification.
    #[arg(long, env = "PORTICO_HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// The one port every service answers on.
    #[arg(long, env = "PORTICO_PORT", default_value_t = 4566)]
    pub port: u16,
    /// Where state lives (SQLite). Default: a per-user data directory.
    #[arg(long, env = "PORTICO_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Keep state in memory only; nothing survives a restart.
    #[arg(long, env = "PORTICO_EPHEMERAL")]
    pub ephemeral: bool,
    /// Account for requests whose access key is not itself a 12-digit account id.
    #[arg(long, env = "PORTICO_ACCOUNT", default_value = "000000000000")]
    pub account: String,
    /// Region for requests that carry no SigV4 credential scope.
    #[arg(long, env = "PORTICO_REGION", default_value = "us-east-1")]
    pub region: String,
    /// Access keys as KEY:SECRET (repeat or comma-separate). Required off loopback.
    #[arg(long, env = "PORTICO_CREDENTIALS", value_delimiter = ',')]
    pub credentials: Vec<String>,
    /// Verify SigV4 signatures even on loopback.
    #[arg(long, env = "PORTICO_VERIFY_SIGNATURES")]
    pub verify_signatures: bool,
    /// Hand out endpoints in AWS's exact shape (https://{id}.execute-api.{region}.amazonaws.com).
    #[arg(long, env = "PORTICO_AWS_ENDPOINTS")]
    pub aws_endpoints: bool,
    /// Multiply AWS's waits (deregistration delay, health-check intervals) by this factor.
    #[arg(long, env = "PORTICO_TIME_SCALE", default_value_t = 1.0)]
    pub time_scale: f64,
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

/// The per-user data directory: $XDG_DATA_HOME/portico or ~/.local/share/portico.
#[allow(
    clippy::disallowed_methods,
    reason = "the binary is where the environment is read"
)]
pub fn default_state_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("portico");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    home.join(".local").join("share").join("portico")
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Command::SampleApp { port } = cli.command {
        // No logging setup and no async runtime: a task process stays small.
        portico_runtime::sample_app::run(std::net::SocketAddr::from(([127, 0, 0, 1], port)))?;
        return Ok(());
    }
    init_logging(&cli.log_level);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Serve(args) => rt.block_on(server::run(args)),
        Command::SampleApp { .. } => Ok(()),
    }
}
