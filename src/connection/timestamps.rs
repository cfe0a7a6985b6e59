//! The clock of TCP timestamps (RFC 7323).
//!
//! smoltcp takes the TSval of every segment from a plain `fn() -> u32`
//! ([`TcpTimestampGenerator`](smoltcp::wire::TcpTimestampGenerator)), which
//! cannot borrow a server or its caller's clock. So the clock is one per
//! program: every poll step (and every [`Server::walk`](crate::Server::walk))
//! stores its `now` here, and [`tsval`] reads it. Every server of a program
//! is driven by the same clock, so the value is the same whichever server
//! stored it last.

use core::sync::atomic::{AtomicU32, Ordering};

use smoltcp::time::Instant;

/// The `now` of the latest poll step, in milliseconds, modulo 2^32. Only
/// loaded and stored (no read-modify-write), which every target has.
static MILLIS: AtomicU32 = AtomicU32::new(0);

/// Note `now` as the time of the segments sent from here on. Called where
/// every poll step and every walk starts.
pub(crate) fn set_clock(now: Instant) {
    // Wraps after 2^32 ms (49.7 days), as RFC 7323 timestamps do.
    MILLIS.store(now.total_millis() as u32, Ordering::Relaxed);
}

/// The TSval of a segment sent now: the clock in 1 ms ticks (RFC 7323
/// allows 1 ms to 1 s per tick).
pub(crate) fn tsval() -> u32 {
    MILLIS.load(Ordering::Relaxed)
}
