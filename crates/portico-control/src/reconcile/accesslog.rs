//! Ships HTTP API access-log lines from the data plane's queue
//! (`portico_dataplane::http_api::accesslog`) into CloudWatch Logs: lines are gathered for up
//! to [`GATHER`] after the first one arrives, grouped by log group and stream, and appended in
//! one transaction per stream (`services::logs::append_events`, which creates the stream).
//! A log group that does not exist drops its lines, as AWS does; they are counted.

use crate::services::logs;
use crate::Control;
use portico_dataplane::http_api::accesslog::Destination;
use portico_store::Scope;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long lines are gathered into one write after the first arrives.
const GATHER: Duration = Duration::from_millis(200);
/// Most lines taken into one round of writes.
const MAX_ROUND: usize = 20_000;

/// (epoch ms, message) pairs bound for one stream.
type Events = Vec<(i64, String)>;

/// Lines dropped because their log group does not exist (or the write failed).
static UNDELIVERED: AtomicU64 = AtomicU64::new(0);

pub(super) fn spawn(control: &Control) {
    let Some(mut rx) = control.dataplane().http_api.access_logs().take_receiver() else {
        return;
    };
    let control = control.clone();
    tokio::spawn(async move {
        let mut warned: std::collections::HashSet<(String, String, String)> = Default::default();
        while let Some(first) = rx.recv().await {
            tokio::time::sleep(GATHER).await;
            let mut lines = vec![first];
            while lines.len() < MAX_ROUND {
                match rx.try_recv() {
                    Ok(l) => lines.push(l),
                    Err(_) => break,
                }
            }
            // by value: equal destinations from different snapshots merge
            let mut by_dest: HashMap<Arc<Destination>, Events> = HashMap::new();
            for l in lines {
                by_dest
                    .entry(l.destination)
                    .or_default()
                    .push((l.timestamp, l.message));
            }
            let c = control.clone();
            let results = tokio::task::spawn_blocking(move || {
                by_dest
                    .into_iter()
                    .map(|(d, events)| {
                        let n = events.len();
                        let scope = Scope::new(d.account.clone(), d.region.clone());
                        let r = logs::append_events(c.store(), &scope, &d.group, &d.stream, events);
                        ((d.account.clone(), d.region.clone(), d.group.clone()), n, r)
                    })
                    .collect::<Vec<_>>()
            })
            .await;
            let Ok(results) = results else { continue };
            for (key, n, r) in results {
                match r {
                    Ok(Some(_)) => {
                        warned.remove(&key);
                    }
                    Ok(None) => {
                        let total = UNDELIVERED.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
                        if warned.insert(key.clone()) {
                            tracing::debug!(account = %key.0, region = %key.1, group = %key.2, undelivered = total, "access-log group does not exist: lines dropped");
                        }
                    }
                    Err(e) => {
                        let total = UNDELIVERED.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
                        tracing::warn!(group = %key.2, error = %e, cause = ?e.cause, undelivered = total, "access-log delivery failed");
                    }
                }
            }
        }
    });
}
