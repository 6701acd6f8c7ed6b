//! HOT PATH. Token buckets for stage and route throttling: `burst` is the bucket size, `rate`
//! the refill per second. A bucket starts full. The lock is held for a few arithmetic
//! operations, never across an await.

use super::Throttle;
use parking_lot::Mutex;
use std::time::Instant;

/// AWS's account-level defaults, used for a member a stage leaves unset.
const ACCOUNT_BURST: u32 = 5000;
const ACCOUNT_RATE: f64 = 10000.0;

#[derive(Debug)]
pub struct Bucket {
    burst: u32,
    rate: f64,
    state: Mutex<(f64, Instant)>,
}

impl Bucket {
    /// A bucket for these limits; `None` when neither is set (unthrottled beyond the account).
    pub(crate) fn for_limits(t: Throttle) -> Option<Bucket> {
        if t.burst.is_none() && t.rate.is_none() {
            return None;
        }
        Some(Bucket::new(
            t.burst.unwrap_or(ACCOUNT_BURST),
            t.rate.unwrap_or(ACCOUNT_RATE),
            Instant::now(),
        ))
    }

    fn new(burst: u32, rate: f64, now: Instant) -> Bucket {
        Bucket {
            burst,
            rate: rate.max(0.0),
            state: Mutex::new((f64::from(burst), now)),
        }
    }

    pub(crate) fn same_limits(&self, other: &Bucket) -> bool {
        self.burst == other.burst && self.rate == other.rate
    }

    /// Takes one token at `now`; `false` means throttle (429).
    pub(crate) fn take(&self, now: Instant) -> bool {
        let mut s = self.state.lock();
        let elapsed = now.saturating_duration_since(s.1).as_secs_f64();
        s.0 = (s.0 + elapsed * self.rate).min(f64::from(self.burst));
        s.1 = now;
        if s.0 >= 1.0 {
            s.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_refill() {
        let t0 = Instant::now();
        let b = Bucket::new(2, 1.0, t0);
        assert!(b.take(t0));
        assert!(b.take(t0));
        assert!(!b.take(t0));
        assert!(!b.take(t0 + Duration::from_millis(500)));
        assert!(b.take(t0 + Duration::from_millis(1000)));
        // never more than burst
        assert!(b.take(t0 + Duration::from_secs(100)));
        assert!(b.take(t0 + Duration::from_secs(100)));
        assert!(!b.take(t0 + Duration::from_secs(100)));
    }

    #[test]
    fn zero_blocks_everything() {
        let t0 = Instant::now();
        let b = Bucket::new(0, 0.0, t0);
        assert!(!b.take(t0));
        assert!(!b.take(t0 + Duration::from_secs(5)));
    }
}
