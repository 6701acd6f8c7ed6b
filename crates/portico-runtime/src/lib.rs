//! Runs containers. The only crate that spawns processes: each container is a local process
//! in its own process group, started with its environment, killed with its group, and set to
//! die with Portico (`PR_SET_PDEATHSIG`) so nothing outlives what owns it.

/// The task runtime handle.
#[derive(Clone, Default)]
pub struct Runtime {}

impl Runtime {
    /// Stops every running container (Portico is shutting down or state is being reset).
    pub async fn shutdown(&self) {}
}
