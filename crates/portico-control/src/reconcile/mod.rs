//! Reconcilers: background loops with no input that make the world match the store. Each is
//! woken by a committed write (the store's watch channel) or by its own period, and must be
//! idempotent: running it twice does what running it once does.

pub mod apigw;
mod ecs;
mod elbv2;
mod vpc_reach;

use crate::Control;
use std::future::Future;
use std::time::Duration;

/// Starts every reconciler. Called once by the binary after the store is open.
pub fn spawn_all(control: &Control) {
    ecs::spawn(control);
    elbv2::spawn(control);
    apigw::spawn(control);
}

/// Runs `step` now, then after every committed write and at least every `period`. Errors are
/// logged where they happen (inside `step`); the loop never ends while the process runs.
pub fn spawn_loop<F, Fut>(control: &Control, name: &'static str, period: Duration, mut step: F)
where
    F: FnMut(Control) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let control = control.clone();
    tokio::spawn(async move {
        let mut rx = control.store().watch();
        loop {
            step(control.clone()).await;
            tokio::select! {
                r = rx.changed() => if r.is_err() { tracing::debug!(reconciler = name, "store closed"); return; },
                _ = tokio::time::sleep(period) => {}
            }
        }
    });
}
