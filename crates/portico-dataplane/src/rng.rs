//! HOT PATH. Per-request randomness (trace ids, request ids, weighted picks): a per-thread
//! `SmallRng` seeded once from `thread_rng()`. These values need to be unique, not
//! unpredictable; `rand::random()` (ChaCha12 behind `ThreadRng`) cost ~580 instructions per
//! call, several calls per request (docs/dataplane-performance.md, "Session 4").

use rand::distributions::{Distribution, Standard};
use rand::rngs::SmallRng;
use rand::{Rng, RngCore, SeedableRng};
use std::cell::RefCell;

thread_local! {
    static RNG: RefCell<SmallRng> = RefCell::new({
        let mut seed = <SmallRng as SeedableRng>::Seed::default();
        rand::thread_rng().fill_bytes(&mut seed);
        SmallRng::from_seed(seed)
    });
}

/// A random value of `T`, like `rand::random()` but from this thread's fast generator.
pub(crate) fn random<T>() -> T
where
    Standard: Distribution<T>,
{
    RNG.with(|r| r.borrow_mut().gen())
}

/// Fills `out` with random bytes from this thread's fast generator.
pub(crate) fn fill(out: &mut [u8]) {
    RNG.with(|r| r.borrow_mut().fill_bytes(out));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_differ() {
        let a: [u64; 4] = std::array::from_fn(|_| random());
        assert!(a.windows(2).all(|w| w[0] != w[1]));
    }

    #[test]
    fn threads_get_different_streams() {
        let here: u128 = random();
        let there: u128 = std::thread::spawn(random::<u128>).join().unwrap();
        assert_ne!(here, there);
    }
}
