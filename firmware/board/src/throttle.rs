//! A log line at most once per interval, for events that may come once per
//! frame (a frame received with an error): the first one is logged, the
//! following ones within the interval are counted and reported with the
//! next line.

use smoltcp::time::{Duration, Instant};

/// Lets an event through at most once per interval, counting the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    interval: Duration,
    /// When the next event may go through (`None`: now).
    next: Option<Instant>,
    /// Events held back since the last one that went through.
    held: u32,
}

impl Throttle {
    /// At most one event per `interval`.
    pub const fn new(interval: Duration) -> Self {
        Throttle {
            interval,
            next: None,
            held: 0,
        }
    }

    /// An event at `now`: `Some(held)` if it goes through (log it, and that
    /// `held` more came since the last one that did), `None` if it is held
    /// back (counted).
    pub fn event(&mut self, now: Instant) -> Option<u32> {
        if self.next.is_some_and(|next| now < next) {
            self.held = self.held.saturating_add(1);
            return None;
        }
        self.next = Some(now + self.interval);
        Some(core::mem::take(&mut self.held))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_event_per_interval_goes_through_with_the_count_held() {
        let mut throttle = Throttle::new(Duration::from_secs(10));
        let at = Instant::from_secs;
        assert_eq!(throttle.event(at(100)), Some(0));
        for second in 100..110 {
            assert_eq!(throttle.event(at(second)), None);
        }
        assert_eq!(throttle.event(at(110)), Some(10));
        assert_eq!(throttle.event(at(119)), None);
        assert_eq!(throttle.event(at(500)), Some(1));
    }
}
