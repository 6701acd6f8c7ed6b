//! Runs containers. The only crate that spawns processes: each container is a local process
//! in its own process group, started with its environment, killed with its group, and set to
//! die with Portico (`PR_SET_PDEATHSIG`) so nothing outlives what owns it.
//!
//! The control plane talks to a [`Runtime`], which hands the work to an [`Engine`]. Today the
//! one engine is [`local::LocalEngine`] (processes on this machine); a container engine can be
//! another implementation of the same small trait.
#![allow(
    clippy::disallowed_methods,
    reason = "this crate is the one place that spawns processes (ARCHITECTURE.md)"
)]

pub mod images;
pub mod local;
pub mod sample_app;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the binary tells the runtime at start.
#[derive(Debug, Clone, Default)]
pub struct RuntimeConfig {
    /// The Portico executable itself (`std::env::current_exe()`, passed in by the binary): the
    /// built-in images run it with a hidden subcommand (`portico __sample-app`).
    pub program: Option<PathBuf>,
}

/// One container to start.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    /// The task definition's `entryPoint` (overrides the image's).
    pub entry_point: Option<Vec<String>>,
    /// The task definition's `command` (overrides the image's).
    pub command: Option<Vec<String>>,
    pub environment: Vec<(String, String)>,
    pub working_directory: Option<String>,
    /// `portMappings[].containerPort`: each gets a free loopback port.
    pub container_ports: Vec<u16>,
    pub essential: bool,
    /// SIGTERM, then SIGKILL after this long.
    pub stop_timeout: Duration,
    /// The container health check, if the task definition has one.
    pub health_check: Option<HealthCheckSpec>,
    /// `dependsOn`: (container name, condition) pairs that must hold before this one starts.
    pub depends_on: Vec<(String, Condition)>,
    /// The container's hard memory limit (`memory`, MiB): the process is killed beyond it.
    pub memory_limit_mib: Option<u64>,
}

/// A `dependsOn` condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// The dependency has started.
    Start,
    /// The dependency has exited (any code).
    Complete,
    /// The dependency has exited with code 0.
    Success,
    /// The dependency's health check passes.
    Healthy,
}

impl Condition {
    pub fn parse(s: &str) -> Option<Condition> {
        match s {
            "START" => Some(Condition::Start),
            "COMPLETE" => Some(Condition::Complete),
            "SUCCESS" => Some(Condition::Success),
            "HEALTHY" => Some(Condition::Healthy),
            _ => None,
        }
    }
}

/// A container health check (`healthCheck` of the container definition), durations already
/// scaled by the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheckSpec {
    /// `["CMD", exe, args…]` (exec) or `["CMD-SHELL", "command line"]` (run by `sh -c`).
    pub command: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    /// Consecutive failures that make the container UNHEALTHY.
    pub retries: u32,
    /// Failures during this period after start do not count.
    pub start_period: Duration,
}

/// What a container's health check says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// No health check, or none has passed or failed enough yet.
    Unknown,
    Healthy,
    Unhealthy,
}

/// One task to start: its containers, and where the image catalog lives.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSpec {
    /// The ECS task id (32 hex); also exported to each process as `PORTICO_TASK_ID`.
    pub task_id: String,
    pub containers: Vec<ContainerSpec>,
    /// The image catalog file (see docs/images.md); `None` means built-in images only.
    pub catalog: Option<PathBuf>,
}

/// Which output a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One line a container printed.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    pub task_id: String,
    pub container: String,
    pub stream: Stream,
    pub line: String,
    /// When the line was read, milliseconds since the epoch.
    pub at_ms: i64,
}

/// Receives every line every container prints, in order per container.
pub type LogSink = Arc<dyn Fn(LogLine) + Send + Sync>;

/// Where one container is in its life.
#[derive(Debug, Clone, PartialEq)]
pub enum ContainerState {
    /// Not started yet (image being resolved, or waiting for its turn).
    Pending,
    /// Its process runs.
    Running,
    /// Its process ended: exit status, or `128 + signal` when a signal ended it.
    Exited { code: i32 },
}

/// What the engine knows of one container.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerStatus {
    pub name: String,
    pub essential: bool,
    pub pid: Option<u32>,
    /// (containerPort, where it really listens).
    pub ports: Vec<(u16, SocketAddr)>,
    pub state: ContainerState,
    pub health: Health,
    /// Why it ended, when Portico ended it (`OutOfMemoryError: …`).
    pub reason: Option<String>,
}

/// Where a whole task is.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskPhase {
    /// Resolving images, spawning, waiting for ports to accept connections.
    Starting,
    /// Every container started (and every mapped port accepts connections).
    Running,
    /// It could not start; the reason begins as AWS's does (`CannotPullContainerError: …`).
    Failed { reason: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct TaskStatus {
    pub phase: TaskPhase,
    pub containers: Vec<ContainerStatus>,
    /// A stop was asked for.
    pub stopping: bool,
}

impl TaskStatus {
    /// Every process has ended (or none ever started).
    pub fn all_exited(&self) -> bool {
        self.containers
            .iter()
            .all(|c| !matches!(c.state, ContainerState::Running))
            && !matches!(self.phase, TaskPhase::Starting)
    }
}

/// The small interface a task engine offers. Every method returns at once; work that takes
/// time (spawning, waiting for ports, the stop timeout) runs in the background and shows in
/// [`Engine::status`].
pub trait Engine: Send + Sync {
    /// Starts a task. A second launch of a known task id does nothing.
    fn launch(&self, spec: TaskSpec, logs: LogSink);
    /// What the engine knows of a task; `None` if it never launched it (or forgot it).
    fn status(&self, task_id: &str) -> Option<TaskStatus>;
    /// SIGTERM to every container's process group, SIGKILL after its stop timeout.
    fn stop(&self, task_id: &str);
    /// Drops a task whose processes have all ended.
    fn forget(&self, task_id: &str);
    /// Ids of every task the engine knows.
    fn task_ids(&self) -> Vec<String>;
    /// Stops everything and waits until every process has ended.
    fn shutdown(&self) -> BoxFuture<'_, ()>;
    /// Kills processes left over from a previous Portico run for these tasks (children of
    /// task processes that outlived them when Portico was killed); returns how many.
    fn reap_strays(&self, task_ids: &[String]) -> usize;
}

/// Failures to start, rendered as AWS's stopped-reason prefixes.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum StartError {
    #[error("CannotPullContainerError: pull image manifest has been retried 1 time(s): failed to resolve ref {image}: not found (Portico knows no image by that name: add it to the image catalog, see docs/images.md)")]
    UnknownImage { image: String },
    #[error("CannotPullContainerError: the image catalog {path} cannot be read: {detail}")]
    BadCatalog { path: String, detail: String },
    #[error("CannotStartContainerError: failed to create containerd task: failed to start container {container}: {detail}")]
    Spawn { container: String, detail: String },
    #[error(
        "CannotStartContainerError: no free loopback port for container {container}: {detail}"
    )]
    NoPort { container: String, detail: String },
}

/// The task runtime handle the control plane holds; cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    engine: Arc<dyn Engine>,
}

impl Default for Runtime {
    fn default() -> Self {
        Runtime::new(RuntimeConfig::default())
    }
}

impl Runtime {
    /// The local-process runtime.
    pub fn new(config: RuntimeConfig) -> Runtime {
        Runtime {
            engine: Arc::new(local::LocalEngine::new(config)),
        }
    }

    /// A runtime over another engine (a container engine, a test double).
    pub fn with_engine(engine: Arc<dyn Engine>) -> Runtime {
        Runtime { engine }
    }

    pub fn launch(&self, spec: TaskSpec, logs: LogSink) {
        self.engine.launch(spec, logs)
    }

    pub fn status(&self, task_id: &str) -> Option<TaskStatus> {
        self.engine.status(task_id)
    }

    pub fn stop(&self, task_id: &str) {
        self.engine.stop(task_id)
    }

    pub fn forget(&self, task_id: &str) {
        self.engine.forget(task_id)
    }

    pub fn task_ids(&self) -> Vec<String> {
        self.engine.task_ids()
    }

    /// Kills leftovers of these tasks from a previous run (see [`Engine::reap_strays`]).
    pub fn reap_strays(&self, task_ids: &[String]) -> usize {
        self.engine.reap_strays(task_ids)
    }

    /// Stops every running container (Portico is shutting down or state is being reset).
    pub async fn shutdown(&self) {
        self.engine.shutdown().await
    }
}
