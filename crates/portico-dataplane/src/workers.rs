//! HOT PATH. Data-plane worker threads: each runs a single-threaded tokio runtime, and every
//! accepted data-plane connection is handed to one of them (round-robin) and lives there for
//! good: its requests, the upstream connections they use (the pools keep idle connections per
//! thread) and their timers all run on that one thread. This removes the cross-thread wake-ups
//! and work stealing of a multi-threaded runtime, which cost more CPU per request than hyper's
//! own work (see docs/dataplane-performance.md).
//!
//! Until [`start`] is called (unit tests, or zero workers configured) connections are served
//! on the caller's runtime, as before.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use tokio::net::TcpStream;
use tokio::runtime::Handle;

struct Workers {
    handles: Vec<Handle>,
    next: AtomicUsize,
}

static WORKERS: OnceLock<Workers> = OnceLock::new();

thread_local! {
    /// On a worker thread: the time of its last tick (at most `TICK` old).
    static COARSE_NOW: std::cell::Cell<Option<std::time::Instant>> = const { std::cell::Cell::new(None) };
}

/// The time, at most `TICK` (500 ms) old, on a data-plane worker thread; `None` elsewhere. For
/// checks that a half second does not change (an upstream connection's 50 s idle expiry), where
/// a clock read per request cost ~1% of its CPU on a VM.
pub(crate) fn coarse_now() -> Option<std::time::Instant> {
    COARSE_NOW.with(std::cell::Cell::get)
}

/// How often an idle worker wakes (see `start`).
const TICK: std::time::Duration = std::time::Duration::from_millis(500);

/// Starts `n` worker threads (at most once per process; later calls do nothing). With `n == 0`
/// connections keep being served on the runtime that accepted them.
pub fn start(n: usize) -> std::io::Result<()> {
    if n == 0 || WORKERS.get().is_some() {
        return Ok(());
    }
    let mut handles = Vec::with_capacity(n);
    for i in 0..n {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name(format!("portico-dp-{i}"))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                match rt {
                    Ok(rt) => {
                        let _ = tx.send(Ok(rt.handle().clone()));
                        // Serves spawned connections until the process exits. The loop keeps
                        // one timer due within TICK at all times: tokio's time driver writes to
                        // its eventfd (a syscall, and a spurious `epoll_wait` return) whenever a
                        // new timer is due before every registered one, which every request's
                        // timeout was after an idle moment. Request timeouts (1 s and more)
                        // are never earlier than this one, so they no longer unpark.
                        rt.block_on(async {
                            loop {
                                COARSE_NOW.with(|c| c.set(Some(std::time::Instant::now())));
                                tokio::time::sleep(TICK).await;
                            }
                        });
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            })?;
        let handle = rx
            .recv()
            .map_err(|_| std::io::Error::other("data-plane worker thread died at start"))??;
        handles.push(handle);
    }
    let _ = WORKERS.set(Workers {
        handles,
        next: AtomicUsize::new(0),
    });
    Ok(())
}

/// Serves an accepted connection with `serve`: on a worker thread when workers run (the
/// socket moves to that thread's reactor), else on the current runtime.
pub fn spawn_connection<F, Fut>(stream: TcpStream, serve: F)
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(w) = WORKERS.get() else {
        tokio::spawn(serve(stream));
        return;
    };
    let handle = &w.handles[w.next.fetch_add(1, Ordering::Relaxed) % w.handles.len()];
    // Deregister from this runtime's reactor; the worker registers it with its own.
    let std = match stream.into_std() {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot hand a connection to a data-plane worker");
            return;
        }
    };
    handle.spawn(async move {
        match TcpStream::from_std(std) {
            Ok(s) => serve(s).await,
            Err(e) => tracing::warn!(error = %e, "data-plane worker cannot adopt a connection"),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn connections_are_served_on_a_worker_thread() {
        start(1).unwrap();
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = l.local_addr().unwrap();
        let client = tokio::spawn(async move {
            let mut c = TcpStream::connect(a).await.unwrap();
            let mut name = String::new();
            c.read_to_string(&mut name).await.unwrap();
            name
        });
        let (s, _) = l.accept().await.unwrap();
        spawn_connection(s, |mut s| async move {
            let name = std::thread::current().name().unwrap_or("").to_string();
            let _ = s.write_all(name.as_bytes()).await;
        });
        assert_eq!(client.await.unwrap(), "portico-dp-0");
    }
}
