//! Reconcilers: background loops with no input that make the world match the store. Each is
//! woken by a committed write (the store's watch channel) or by its own period, and must be
//! idempotent: running it twice does what running it once does.

mod accesslog;
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
    accesslog::spawn(control);
}

/// Runs `step` now, then after every committed write and at least every `period`. Errors are
/// logged where they happen (inside `step`); the loop never ends while the process runs.
pub fn spawn_loop<F, Fut>(control: &Control, name: &'static str, period: Duration, step: F)
where
    F: FnMut(Control) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    spawn_loop_on(control, name, period, &[], step)
}

/// Like [`spawn_loop`], but woken only by commits that write a kind starting with one of
/// `prefixes` (`"ecs."`); other commits do not run `step` (its `period` still does). A
/// reconciler that re-reads its kinds on every pass should follow only those kinds: woken by
/// every commit, each reconciler re-read everything on every unrelated write.
pub fn spawn_loop_on<F, Fut>(
    control: &Control,
    name: &'static str,
    period: Duration,
    prefixes: &[&str],
    mut step: F,
) where
    F: FnMut(Control) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let control = control.clone();
    let wake = control.store().wake_on(prefixes);
    tokio::spawn(async move {
        tracing::debug!(reconciler = name, "started");
        loop {
            step(control.clone()).await;
            tokio::select! {
                _ = wake.changed() => {},
                _ = tokio::time::sleep(period) => {}
            }
        }
    });
}
