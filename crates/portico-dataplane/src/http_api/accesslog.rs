//! HOT PATH. Access-log lines on their way to CloudWatch Logs: the request path renders a
//! stage's line and hands it to a bounded queue without waiting ([`Sink::push`]); the control
//! plane drains the queue ([`Sink::take_receiver`]) and writes batches into the log group. A
//! full queue drops the line and counts it ([`Sink::dropped`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Lines waiting for the control plane at most; more are dropped.
pub const QUEUE: usize = 10_000;

/// Where a stage's access logs go: a CloudWatch Logs group, from `destinationArn`, and the
/// stream in it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Destination {
    pub account: String,
    pub region: String,
    pub group: String,
    pub stream: String,
}

impl Destination {
    /// Parses `arn:{partition}:logs:{region}:{account}:log-group:{name}[:*]`; the stream is
    /// [`stream_name`] of the API and stage.
    pub fn from_arn(arn: &str, api_id: &str, stage: &str) -> Option<Destination> {
        let mut p = arn.splitn(7, ':');
        let (Some("arn"), Some(_), Some("logs"), Some(region), Some(account), Some("log-group")) =
            (p.next(), p.next(), p.next(), p.next(), p.next(), p.next())
        else {
            return None;
        };
        let name = p.next()?;
        let name = name.strip_suffix(":*").unwrap_or(name);
        if name.is_empty() || region.is_empty() || account.is_empty() {
            return None;
        }
        Some(Destination {
            account: account.to_string(),
            region: region.to_string(),
            group: name.to_string(),
            stream: stream_name(api_id, stage),
        })
    }
}

/// A stage's access logging (`accessLogSettings`).
#[derive(Debug, Clone)]
pub struct AccessLog {
    /// The line format (`$context.*` variables).
    pub format: String,
    /// The log group; `None` when `destinationArn` is not a log-group ARN (the line then goes
    /// to the server log only).
    pub destination: Option<Arc<Destination>>,
}

/// One rendered line.
#[derive(Debug)]
pub struct Line {
    pub destination: Arc<Destination>,
    /// Epoch milliseconds of the request.
    pub timestamp: i64,
    pub message: String,
}

/// The log-stream name for a stage's access logs (Portico's choice: AWS does not document its
/// naming; one stable stream per API and stage).
pub fn stream_name(api_id: &str, stage: &str) -> String {
    format!("{api_id}_{stage}")
}

struct Inner {
    tx: mpsc::Sender<Line>,
    rx: parking_lot::Mutex<Option<mpsc::Receiver<Line>>>,
    dropped: AtomicU64,
}

/// The queue between the request path and the control plane.
#[derive(Clone)]
pub struct Sink(Arc<Inner>);

impl Default for Sink {
    fn default() -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        Sink(Arc::new(Inner {
            tx,
            rx: parking_lot::Mutex::new(Some(rx)),
            dropped: AtomicU64::new(0),
        }))
    }
}

impl Sink {
    /// Queues a line without waiting; a full queue (or no reader left) drops it.
    pub fn push(&self, line: Line) {
        if self.0.tx.try_send(line).is_err() {
            let n = self.0.dropped.fetch_add(1, Ordering::Relaxed);
            if n == 0 {
                tracing::warn!("access-log queue full: lines are being dropped");
            }
        }
    }

    /// The receiving end, once (the control plane's shipper takes it at start).
    pub fn take_receiver(&self) -> Option<mpsc::Receiver<Line>> {
        self.0.rx.lock().take()
    }

    /// Lines dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.0.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destination_arns() {
        let d = Destination::from_arn(
            "arn:aws:logs:us-east-1:123456789012:log-group:my/group:*",
            "abc",
            "dev",
        );
        assert_eq!(
            d,
            Some(Destination {
                account: "123456789012".into(),
                region: "us-east-1".into(),
                group: "my/group".into(),
                stream: "abc_dev".into(),
            })
        );
        let from = |arn: &str| Destination::from_arn(arn, "a", "s").map(|d| d.group);
        assert_eq!(
            from("arn:aws:logs:eu-west-1:1:log-group:g"),
            Some("g".into())
        );
        assert_eq!(from("arn:aws:s3:::bucket"), None);
        assert_eq!(from("arn:aws:logs:r:a:log-group:"), None);
    }

    #[test]
    fn full_queue_drops_and_counts() {
        let s = Sink::default();
        let d = Arc::new(Destination {
            account: "a".into(),
            region: "r".into(),
            group: "g".into(),
            stream: stream_name("api", "$default"),
        });
        let line = || Line {
            destination: d.clone(),
            timestamp: 1,
            message: "m".into(),
        };
        for _ in 0..QUEUE + 3 {
            s.push(line());
        }
        assert_eq!(s.dropped(), 3);
        let mut rx = s.take_receiver().unwrap();
        assert!(s.take_receiver().is_none());
        assert_eq!(rx.try_recv().unwrap().destination.stream, "api_$default");
    }
}
