//! Ratios taken from alternating runs, for the targets that compare two figures on this shared two-core
//! machine.
//!
//! A criterion group measures one benchmark for seconds, then the next: two figures a target divides are
//! taken up to a minute apart, and the machine's speed moves within a minute (the other tenants of the
//! host, the memory the guest is given back). One map's one-thread run took 10–40 M operations/s in twenty
//! runs of one process, and with no map code changed a two-thread ratio (M6.exchange.scc) read 0.98 in one
//! quick tour and 2.97 in the next. Here the two sides run back to back, round after round, and the target is the median of the
//! rounds' ratios: a slow minute slows both runs of its round, and the median drops the rounds that a
//! burst hit in one run only. The quartiles of the ratios say how much the rounds agreed.

use std::time::Duration;

/// The ratio of two alternating measurements: the median over the rounds and its quartiles.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Paired {
    /// The median of the rounds' ratios.
    pub median: f64,
    /// The lower quartile of the rounds' ratios.
    pub low: f64,
    /// The upper quartile of the rounds' ratios.
    pub high: f64,
    /// The number of rounds.
    pub rounds: usize,
    /// The time of the first side's run in the median round (the round whose ratio is the median; the
    /// ratio's denominator, as a time): with [`second`](Paired::second), which side moved when a ratio
    /// moves between sittings. (Not the median of the first side's runs: where the machine's speed
    /// jumps between two levels, each side's median may come from a different level, and the two would
    /// not give the ratio.)
    pub first: Duration,
    /// The time of the second side's run in the median round.
    pub second: Duration,
}

impl Paired {
    /// The same ratio times `factor` (a positive constant): the median and quartiles of the rounds' ratios
    /// scaled, as scaling each round's ratio would give them. A two-thread run against a one-thread run of
    /// the same total work, scaled by 1/2, is the two-thread throughput over twice the one-thread one.
    ///
    /// # Panics
    /// If `factor` is not a positive finite number.
    #[must_use]
    pub fn scaled(self, factor: f64) -> Paired {
        assert!(
            factor.is_finite() && factor > 0.0,
            "a ratio scales by a positive finite factor, not {factor}"
        );
        Paired {
            median: self.median * factor,
            low: self.low * factor,
            high: self.high * factor,
            ..self
        }
    }
}

/// `rounds` rounds of one run of `first` and one of `second`, back to back (`first` first in even
/// rounds, `second` first in odd ones, so that neither always runs in the other's wake), after one run of
/// each that is not counted (the first run of a process pays for its first pages). Each run returns its
/// own timed span. A round's ratio is the second's time over the first's: for a time ratio (ours over a
/// peer's, below 1 when ours is faster) the peer goes first; for a throughput ratio (above 1 when ours is
/// faster) ours does. The two run times of the median round come with the ratio.
///
/// # Panics
/// If `rounds` is 0, or a run reports no time at all.
pub fn alternate(
    rounds: usize,
    mut first: impl FnMut() -> Duration,
    mut second: impl FnMut() -> Duration,
) -> Paired {
    assert!(rounds > 0, "alternate needs at least one round");
    first();
    second();
    let mut runs: Vec<(Duration, Duration)> = (0..rounds)
        .map(|round| {
            let (a, b) = if round % 2 == 0 {
                let a = first();
                (a, second())
            } else {
                let b = second();
                (first(), b)
            };
            assert!(
                !a.is_zero() && !b.is_zero(),
                "round {round}: a run reported no time (the first side {a:?}, the second {b:?})"
            );
            (a, b)
        })
        .collect();
    let ratio = |(a, b): &(Duration, Duration)| b.as_secs_f64() / a.as_secs_f64();
    runs.sort_by(|x, y| ratio(x).total_cmp(&ratio(y)));
    let at = |q: f64| &runs[((runs.len() - 1) as f64 * q).round() as usize];
    let median_round = *at(0.5);
    Paired {
        median: ratio(&median_round),
        low: ratio(at(0.25)),
        high: ratio(at(0.75)),
        rounds,
        first: median_round.0,
        second: median_round.1,
    }
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};

    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_machine_that_slows_down_slows_both_runs_of_a_round_and_the_ratio_holds() {
        // The machine gets slower every round (speed 1, 2, 3, ... for the two runs of each): ours takes
        // 10 ms, the peer 20 ms at speed 1. Blocks (all of ours, then all of the peer's, as criterion
        // groups measure) would divide 10 * (2 + ... + 10) by 20 * (11 + ... + 19): the peer 3.4x slower.
        let calls = Cell::new(0u64);
        let run = |ms_at_speed_1: u64| {
            let speed = 1 + calls.get() / 2;
            calls.set(calls.get() + 1);
            ms(ms_at_speed_1 * speed)
        };
        let paired = alternate(9, || run(10), || run(20));
        assert_eq!((paired.low, paired.median, paired.high), (2.0, 2.0, 2.0));
        assert_eq!(paired.rounds, 9);
        // Rounds 0..9 run at speeds 2..=10 (the uncounted runs at 1); every ratio is 2, and the median
        // round of the sorted ratios is the fifth, at speed 6.
        assert_eq!((paired.first, paired.second), (ms(60), ms(120)));
    }

    #[test]
    fn the_run_times_given_are_those_of_the_median_round() {
        // The machine runs at two speeds, switching every third call: each side's own median would come
        // from whichever level most of its runs saw, and the two medians need not give the ratio.
        let calls = Cell::new(0u64);
        let run = |ms_at_speed_1: u64| {
            let slow = (calls.get() / 3) % 2 == 1;
            calls.set(calls.get() + 1);
            ms(ms_at_speed_1 * if slow { 3 } else { 1 })
        };
        let paired = alternate(11, || run(10), || run(11));
        let given = paired.second.as_secs_f64() / paired.first.as_secs_f64();
        assert!((given - paired.median).abs() < 1e-12, "{paired:?}");
    }

    #[test]
    fn a_burst_in_one_run_is_dropped_by_the_median() {
        let calls = Cell::new(0u32);
        let paired = alternate(
            7,
            || {
                calls.set(calls.get() + 1);
                // The fourth counted run of ours (the fifth call) is hit by a burst: 10x slower.
                if calls.get() == 5 { ms(100) } else { ms(10) }
            },
            || ms(10),
        );
        assert_eq!(paired.median, 1.0);
        assert_eq!(paired.high, 1.0);
    }

    #[test]
    fn the_two_sides_take_turns_to_go_first_after_one_uncounted_run_each() {
        let order = RefCell::new(String::new());
        alternate(
            4,
            || {
                order.borrow_mut().push('o');
                ms(1)
            },
            || {
                order.borrow_mut().push('p');
                ms(1)
            },
        );
        assert_eq!(*order.borrow(), ["op", "op", "po", "op", "po"].concat());
    }

    #[test]
    fn a_two_thread_run_against_a_one_thread_run_scaled_by_half_is_the_scaling() {
        // Two threads do the run's operations in 6 ms, one thread in 10 ms: 10 / (2 x 6) = 0.833.
        let mut one = 9;
        let paired = alternate(
            5,
            || ms(6),
            || {
                // 9, 10, 11, 9, 10, 11, ... ms: the median of the rounds is 10.
                one = if one == 11 { 9 } else { one + 1 };
                ms(one)
            },
        )
        .scaled(0.5);
        assert!((paired.median - 10.0 / 12.0).abs() < 1e-12, "{paired:?}");
        assert!(paired.low <= paired.median && paired.median <= paired.high);
        assert_eq!(paired.rounds, 5);
        // Scaling changes the ratio, not the runs' times.
        assert_eq!((paired.first, paired.second), (ms(6), ms(10)));
    }

    #[test]
    #[should_panic(expected = "positive finite factor, not 0")]
    fn a_zero_scale_is_refused() {
        let _ = alternate(1, || ms(1), || ms(1)).scaled(0.0);
    }

    #[test]
    #[should_panic(expected = "at least one round")]
    fn no_rounds_is_refused() {
        alternate(0, || ms(1), || ms(1));
    }

    #[test]
    #[should_panic(expected = "no time")]
    fn a_run_without_time_is_refused() {
        alternate(1, || ms(1), || Duration::ZERO);
    }
}
