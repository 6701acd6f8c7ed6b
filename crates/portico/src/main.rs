//! The `portico` binary: command line, configuration from flags and environment, and the
//! start, supervision and shutdown of everything else. The only place that reads flags,
//! environment and files.

mod admin;
mod client;
mod console;
mod server;
mod tutorial;

use clap::{Args, Parser, Subcommand};

/// mimalloc: the data plane allocates a few small objects per request (hyper's header maps,
/// bodies, futures); mimalloc's thread-local free lists make those cheaper than glibc's malloc
/// (see docs/dataplane-performance.md for the numbers).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
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
    /// Run the AWS tutorial "HTTP API with a private integration to an ECS service" end to end.
    Tutorial(TutorialArgs),
    /// The built-in amazon/amazon-ecs-sample image (run by the task runtime, not by people).
    #[command(name = "__sample-app", hide = true)]
    SampleApp {
        /// Port to serve on 127.0.0.1 (the runtime sets PORT).
        #[arg(long, env = "PORT", default_value_t = 80)]
        port: u16,
    },
}

#[derive(Args, Clone)]
pub struct TutorialArgs {
    /// `cleanup` does Step 7 (same as --cleanup).
    #[arg(value_parser = ["cleanup"])]
    pub action: Option<String>,
    /// Delete what the tutorial created (Step 7) and verify nothing is left.
    #[arg(long)]
    pub cleanup: bool,
    /// Deploy the tutorial's "next steps" single template (API included) instead of Steps 1-5.
    #[arg(long)]
    pub all_in_one: bool,
    /// Exit after the steps instead of serving until Ctrl-C (when this command started Portico).
    #[arg(long)]
    pub exit: bool,
    /// A running Portico to use (default: http://127.0.0.1:<port>; started here if none answers).
    #[arg(long, env = "PORTICO_ENDPOINT")]
    pub endpoint: Option<String>,
    #[command(flatten)]
    pub serve: ServeArgs,
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
    /// Default 1 (AWS's timing) for `serve`; `tutorial` starts its own Portico at 0.01.
    #[arg(long, env = "PORTICO_TIME_SCALE")]
    pub time_scale: Option<f64>,
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
    trust_extra_ca()?;
    // The control plane (API calls, reconcilers, health checks) runs on a multi-threaded
    // runtime; data-plane connections on their own single-threaded workers.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    portico_dataplane::workers::start(dataplane_threads())?;
    match cli.command {
        Command::Serve(args) => rt.block_on(server::run(args, None, None)),
        Command::Tutorial(args) => rt.block_on(run_tutorial(args)),
        Command::SampleApp { .. } => Ok(()),
    }
}

/// The time scale `portico tutorial` gives the Portico it starts: the tutorial is about seeing
/// the architecture work in seconds, and AWS's waits (deregistration delay 300 s, health checks
/// every 30 s) would make its cleanup take minutes.
const TUTORIAL_TIME_SCALE: f64 = 0.01;

/// `PORTICO_EXTRA_CA_FILE`: a PEM bundle trusted besides the OS store by https integrations
/// and JWT authorizers' key fetches (tests use a self-signed CA).
#[allow(
    clippy::disallowed_methods,
    reason = "the binary is where the environment is read"
)]
fn trust_extra_ca() -> anyhow::Result<()> {
    if let Some(f) = std::env::var_os("PORTICO_EXTRA_CA_FILE").filter(|v| !v.is_empty()) {
        let pem = std::fs::read(&f)
            .map_err(|e| anyhow::anyhow!("PORTICO_EXTRA_CA_FILE {}: {e}", f.to_string_lossy()))?;
        let n = portico_dataplane::http_api::set_extra_ca_pem(&pem)
            .map_err(|e| anyhow::anyhow!("PORTICO_EXTRA_CA_FILE {}: {e}", f.to_string_lossy()))?;
        tracing::info!(file = %f.to_string_lossy(), certificates = n, "extra CA certificates trusted");
    }
    Ok(())
}

/// Data-plane worker threads: `PORTICO_DATAPLANE_THREADS` (0 serves connections on the control
/// plane's runtime), else one per core but one (at least one). The processes Portico proxies to
/// (ECS tasks, targets) and its clients run on the same machine and need a core: on 2 cores,
/// one worker gave the same CPU per request as two and a fixed-rate p50 like nginx's, where two
/// workers' p50 was 3-4x nginx's (docs/dataplane-performance.md, session 4).
#[allow(
    clippy::disallowed_methods,
    reason = "the binary is where the environment is read"
)]
fn dataplane_threads() -> usize {
    std::env::var("PORTICO_DATAPLANE_THREADS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| {
            default_dataplane_threads(std::thread::available_parallelism().map_or(1, usize::from))
        })
}

fn default_dataplane_threads(cores: usize) -> usize {
    cores.saturating_sub(1).max(1)
}

async fn healthy(endpoint: &str) -> bool {
    let c = client::AwsClient::new(endpoint, "us-east-1");
    matches!(c.send("GET", "/_portico/health", None, &[], Default::default()).await, Ok(r) if r.status == 200)
}

/// `portico tutorial`: uses a running Portico or starts one in this process.
async fn run_tutorial(args: TutorialArgs) -> anyhow::Result<()> {
    use std::sync::Arc;
    let cleanup = args.cleanup || args.action.as_deref() == Some("cleanup");
    let endpoint = args
        .endpoint
        .clone()
        .unwrap_or_else(|| format!("http://127.0.0.1:{}", args.serve.port));
    let mut server = None;
    let (endpoint, port) = if healthy(&endpoint).await {
        let port = endpoint
            .rsplit(':')
            .next()
            .and_then(|p| p.trim_end_matches('/').parse().ok())
            .unwrap_or(args.serve.port);
        println!("Using the Portico running at {endpoint}");
        (endpoint, port)
    } else {
        if args.endpoint.is_some() {
            anyhow::bail!("no Portico answers at {endpoint}: start one with `portico serve`, or leave out --endpoint to let the tutorial start one");
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let stop = Arc::new(tokio::sync::Notify::new());
        let mut serve = args.serve.clone();
        if serve.time_scale.is_none() {
            serve.time_scale = Some(TUTORIAL_TIME_SCALE);
            println!(
                "AWS's waits run {}x faster here (the ALB's 300 s deregistration delay takes 3 s); pass --time-scale 1 for AWS's timing",
                (1.0 / TUTORIAL_TIME_SCALE).round()
            );
        }
        let handle = tokio::spawn(server::run(serve, Some(tx), Some(stop.clone())));
        let bound = match rx.await {
            Ok(a) => a,
            Err(_) => {
                return match handle.await {
                    Ok(Err(e)) => Err(e),
                    _ => Err(anyhow::anyhow!("Portico failed to start")),
                }
            }
        };
        println!("Started Portico on http://{bound}");
        server = Some((handle, stop));
        (format!("http://{bound}"), bound.port())
    };
    let mut t = tutorial::Tutorial::new(&endpoint, &args.serve.region, port);
    let result = if cleanup {
        t.cleanup().await.and_then(|r| {
            println!("{r}");
            if r.is_empty() {
                Ok(())
            } else {
                Err(anyhow::anyhow!("cleanup left resources behind: {r}"))
            }
        })
    } else {
        t.run(args.all_in_one).await.map(|_| ())
    };
    if let Some((handle, stop)) = server {
        if result.is_ok() && !cleanup && !args.exit {
            println!("\nPortico keeps serving at {endpoint}. Press Ctrl-C to stop it (its tasks stop with it).");
        } else {
            stop.notify_one();
        }
        handle.await??;
    }
    result
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_core_is_left_to_the_processes_portico_proxies_to() {
        let n: Vec<usize> = [0, 1, 2, 4, 16]
            .into_iter()
            .map(super::default_dataplane_threads)
            .collect();
        assert_eq!(n, [1, 1, 1, 3, 15]);
    }
}
