//! Retries: how many, and how long to wait before each (exponential backoff with jitter, capped).

use std::time::Duration;

/// A node's retry policy: up to `max_retries` more attempts after the first, the n-th waiting
/// `initial · multiplier^(n-1)`, capped at `max_delay`, and with jitter a random part of that wait taken
/// off (so retries of many nodes that failed together spread out).
///
/// ```
/// use std::time::Duration;
///
/// use flowmem_engine::RetryPolicy;
///
/// let policy = RetryPolicy::exponential(3, Duration::from_millis(10))
///     .max_delay(Duration::from_millis(25))
///     .jitter(false);
/// let waits: Vec<_> = (1..=3).map(|n| policy.delay(n, 0)).collect();
/// assert_eq!(
///     waits,
///     [Duration::from_millis(10), Duration::from_millis(20), Duration::from_millis(25)]
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    max_retries: u32,
    initial: Duration,
    multiplier: f64,
    max_delay: Duration,
    jitter: bool,
}

impl RetryPolicy {
    /// No retry: the first failure fails the node (the default).
    pub const NONE: RetryPolicy = RetryPolicy {
        max_retries: 0,
        initial: Duration::ZERO,
        multiplier: 2.0,
        max_delay: Duration::ZERO,
        jitter: false,
    };

    /// Up to `max_retries` retries, the first after `initial`, each wait twice the one before, capped at
    /// 30 s, with jitter.
    pub fn exponential(max_retries: u32, initial: Duration) -> Self {
        RetryPolicy {
            max_retries,
            initial,
            multiplier: 2.0,
            max_delay: Duration::from_secs(30),
            jitter: true,
        }
    }

    /// Up to `max_retries` retries with no wait between them.
    pub fn immediate(max_retries: u32) -> Self {
        RetryPolicy {
            max_retries,
            ..RetryPolicy::NONE
        }
    }

    /// The factor from one wait to the next (values below 1 are taken as 1).
    pub fn multiplier(mut self, multiplier: f64) -> Self {
        self.multiplier = if multiplier.is_finite() {
            multiplier.max(1.0)
        } else {
            1.0
        };
        self
    }

    /// The longest wait.
    pub fn max_delay(mut self, max_delay: Duration) -> Self {
        self.max_delay = max_delay;
        self
    }

    /// Whether to take a random part (up to half) off each wait.
    pub fn jitter(mut self, jitter: bool) -> Self {
        self.jitter = jitter;
        self
    }

    /// The first wait, the factor between waits, the longest wait and whether there is jitter (for a
    /// JSON definition written back).
    pub(crate) fn parts(&self) -> (Duration, f64, Duration, bool) {
        (self.initial, self.multiplier, self.max_delay, self.jitter)
    }

    /// Retries allowed after the first attempt.
    pub fn max_retries(&self) -> u32 {
        self.max_retries
    }

    /// The wait before retry `n` (1 = the first retry), given `random` bits for the jitter.
    pub fn delay(&self, n: u32, random: u64) -> Duration {
        if n == 0 || self.initial.is_zero() {
            return Duration::ZERO;
        }
        let factor = self.multiplier.powi(n.saturating_sub(1).min(1024) as i32);
        let base = self.initial.as_secs_f64() * factor;
        let capped = base.min(self.max_delay.as_secs_f64());
        let wait = if self.jitter {
            // Equal jitter: half fixed, half random.
            let fraction = (random >> 11) as f64 / (1u64 << 53) as f64;
            capped * (0.5 + 0.5 * fraction)
        } else {
            capped
        };
        Duration::try_from_secs_f64(wait).unwrap_or(self.max_delay)
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::NONE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_then_stop_at_the_cap() {
        let p = RetryPolicy::exponential(10, Duration::from_millis(1))
            .max_delay(Duration::from_millis(100))
            .jitter(false);
        let waits: Vec<u128> = (1..=10).map(|n| p.delay(n, 0).as_millis()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 100, 100, 100]);
        assert_eq!(p.delay(u32::MAX, 0), Duration::from_millis(100));
    }

    #[test]
    fn jitter_stays_between_half_and_all_of_the_wait() {
        let p = RetryPolicy::exponential(3, Duration::from_millis(100));
        let mut x = 1u64;
        let mut seen = (Duration::MAX, Duration::ZERO);
        for _ in 0..1000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            let d = p.delay(1, x);
            assert!(
                d >= Duration::from_millis(50) && d <= Duration::from_millis(100),
                "{d:?}"
            );
            seen = (seen.0.min(d), seen.1.max(d));
        }
        assert!(
            seen.1 - seen.0 > Duration::from_millis(40),
            "the jitter spreads: {seen:?}"
        );
    }

    #[test]
    fn odd_settings_do_not_panic() {
        let p = RetryPolicy::exponential(2, Duration::from_secs(1))
            .multiplier(f64::NAN)
            .max_delay(Duration::MAX);
        assert_eq!(p.jitter(false).delay(2, 0), Duration::from_secs(1));
        assert_eq!(RetryPolicy::immediate(5).delay(3, 7), Duration::ZERO);
        let huge = RetryPolicy::exponential(2, Duration::MAX).max_delay(Duration::MAX);
        let _ = huge.delay(u32::MAX, u64::MAX);
    }
}
