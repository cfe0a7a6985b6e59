//! Time from a free-running 32-bit counter, and the sleep loop every
//! Cortex-M board runs (the `wfi` itself is in `systick`).
//!
//! A 32-bit counter wraps (the AN385's timer at 25 MHz every
//! 2^32 / 25 MHz = 171.8 s); [`DownCounter`] extends it to 64 bits by
//! noting how far it moved since the last reading, which is right only if
//! it is read at least once per wrap. [`sleep_loop`] therefore reads the
//! clock on every wake-up and ends a sleep after [`MAX_SLEEP`] at the
//! latest, even without a deadline: the board's loop then turns and reads
//! the clock again.

use smoltcp::time::{Duration, Instant};

/// The longest sleep, with or without a deadline: 60 s. The clock is read
/// at least this often, which leaves a 32-bit counter's wrap (171.8 s on
/// the AN385) a margin of 111.8 s for the loop turn between two sleeps.
pub const MAX_SLEEP: Duration = Duration::from_secs(60);

/// A 32-bit counter that counts down and reloads from `u32::MAX` at 0,
/// extended to 64 bits of ticks. Read it ([`DownCounter::advance`]) at
/// least once per 2^32 ticks, or a wrap is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DownCounter {
    /// The counter's value at the last reading.
    last: u32,
    /// Ticks counted up to the last reading.
    ticks: u64,
}

impl DownCounter {
    /// A counter started at `u32::MAX`, no ticks counted.
    pub const fn new() -> Self {
        DownCounter {
            last: u32::MAX,
            ticks: 0,
        }
    }

    /// Takes the counter's current `value` and returns the ticks counted
    /// since it started: the ticks since the last reading are
    /// `last - value`, modulo 2^32 across a reload.
    pub fn advance(&mut self, value: u32) -> u64 {
        self.ticks = self
            .ticks
            .wrapping_add(u64::from(self.last.wrapping_sub(value)));
        self.last = value;
        self.ticks
    }
}

impl Default for DownCounter {
    fn default() -> Self {
        Self::new()
    }
}

/// When a sleep that starts at `now` ends at the latest: at `deadline`
/// (`None`: none), and no later than [`MAX_SLEEP`] after `now`.
pub fn sleep_end(now: Instant, deadline: Option<Instant>) -> Instant {
    let cap = now + MAX_SLEEP;
    deadline.map_or(cap, |at| at.min(cap))
}

/// Sleeps until `deadline` (capped by [`MAX_SLEEP`]) or until `work()` is
/// true, reading `clock` once at the start and after every wake-up.
///
/// `wait` runs one check and, if the check says "not yet", waits for the
/// next interrupt; it returns the check's result. On Cortex-M it runs both
/// with interrupts masked (`systick::sleep_by`), so that an interrupt
/// between check and `wfi` still ends the `wfi`.
pub fn sleep_loop(
    mut clock: impl FnMut() -> Instant,
    deadline: Option<Instant>,
    mut work: impl FnMut() -> bool,
    mut wait: impl FnMut(&mut dyn FnMut() -> bool) -> bool,
) {
    let end = sleep_end(clock(), deadline);
    while !wait(&mut || clock() >= end || work()) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ticks per microsecond of the AN385's timer (25 MHz).
    const TICKS_PER_MICRO: u64 = 25;

    /// A down counter at 25 MHz that a test moves by hand, read through
    /// [`DownCounter`] as the AN385's clock reads its timer.
    struct Fake {
        /// Microseconds since the start, the truth.
        micros: u64,
        extended: DownCounter,
    }

    impl Fake {
        fn value(&self) -> u32 {
            // The counter starts at u32::MAX and counts down.
            u32::MAX.wrapping_sub((self.micros * TICKS_PER_MICRO) as u32)
        }

        fn now(&mut self) -> Instant {
            let value = self.value();
            Instant::from_micros((self.extended.advance(value) / TICKS_PER_MICRO) as i64)
        }
    }

    #[test]
    fn counter_extends_across_reloads_when_read_once_per_wrap() {
        let mut counter = DownCounter::new();
        assert_eq!(counter.advance(u32::MAX - 10), 10);
        assert_eq!(counter.advance(5), u64::from(u32::MAX) - 5);
        // Across the reload, 10 ticks: 5 down to 0, the reload to u32::MAX
        // (one tick), then down to u32::MAX - 4.
        assert_eq!(counter.advance(u32::MAX - 4), u64::from(u32::MAX) + 5);
    }

    #[test]
    fn sleep_end_is_the_deadline_or_max_sleep() {
        let now = Instant::from_secs(1000);
        assert_eq!(sleep_end(now, None), now + MAX_SLEEP);
        let soon = now + Duration::from_millis(5);
        assert_eq!(sleep_end(now, Some(soon)), soon);
        let late = now + Duration::from_secs(3600);
        assert_eq!(sleep_end(now, Some(late)), now + MAX_SLEEP);
    }

    /// A board loop with nothing to do and no deadline (`None`), as on the
    /// AN385 with a static address and no client: 1 ms ticks end each
    /// `wfi`; after 400 s of this (more than two wraps of the 32-bit
    /// counter) the clock must still read the true time.
    #[test]
    fn idle_without_deadline_keeps_the_clock_across_wraps() {
        let idle = Duration::from_secs(400);
        let fake = core::cell::RefCell::new(Fake {
            micros: 0,
            extended: DownCounter::new(),
        });
        let mut turns = 0;
        while fake.borrow().micros < idle.total_micros() {
            // The loop turn reads the clock (the server's poll step).
            let started = fake.borrow_mut().now();
            turns += 1;
            sleep_loop(
                || fake.borrow_mut().now(),
                None,
                || false,
                |check| {
                    if check() {
                        return true;
                    }
                    let mut f = fake.borrow_mut();
                    // `wfi` until the next 1 ms tick; an interrupt
                    // (`work`) ends the test's idle time.
                    f.micros += 1000;
                    f.micros >= idle.total_micros()
                },
            );
            // The next loop turn reads the clock: it must be the truth.
            let now = fake.borrow_mut().now();
            let truth = fake.borrow().micros;
            assert_eq!(
                now.total_micros() as u64,
                truth,
                "the clock lost time while idle (loop turn {turns})"
            );
            let slept = truth - started.total_micros() as u64;
            assert!(
                slept <= MAX_SLEEP.total_micros() + 1000,
                "a sleep without deadline lasted {slept} us, more than MAX_SLEEP"
            );
        }
    }
}
