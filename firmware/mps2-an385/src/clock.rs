//! The board's clock: the CMSDK APB timer 0 (at 0x4000_0000) counting the
//! 25 MHz peripheral clock down, free-running, extended to 64 bits.
//!
//! The time is read from the counter, not counted in interrupts: a tick
//! interrupt that comes late or not at all (QEMU drops SysTick periods
//! when the host is busy; a long critical section does the same on
//! hardware) costs a later wake-up, never time. SysTick still interrupts
//! every millisecond to end the `wfi` of [`sleep`].
//!
//! The counter wraps every 2^32 / 25 MHz = 171.8 s; [`now`] notes how far it
//! moved since its last call ([`DownCounter`]), so it must be called at
//! least that often. [`sleep`] calls it on every tick, and ends after
//! [`MAX_SLEEP`](multiserve_board::clock::MAX_SLEEP) (60 s) even without a
//! deadline, so the loop reads it at least every 60 s: a margin of 111.8 s.
//!
//! # `unsafe`
//!
//! [`Timer`] reads and writes the timer's three 32-bit registers at
//! `BASE + offset` with volatile accesses: `BASE` is the timer's fixed MMIO
//! window on the AN385, present whenever the board is, every offset is one
//! of the constants below, and nothing else on the board uses timer 0.

use core::cell::Cell;

use cortex_m::interrupt::Mutex;
use multiserve_board::clock::DownCounter;
use smoltcp::time::Instant;

/// Timer ticks per microsecond (the 25 MHz peripheral clock).
const TICKS_PER_MICRO: u64 = 25;

/// The counter, extended to 64 bits as of the last [`now`].
static COUNT: Mutex<Cell<DownCounter>> = Mutex::new(Cell::new(DownCounter::new()));

struct Timer;

impl Timer {
    const BASE: usize = 0x4000_0000;
    const CTRL: usize = 0x00;
    const VALUE: usize = 0x04;
    const RELOAD: usize = 0x08;

    fn read(offset: usize) -> u32 {
        // SAFETY: see the module docs.
        unsafe { core::ptr::read_volatile((Self::BASE + offset) as *const u32) }
    }

    fn write(offset: usize, value: u32) {
        // SAFETY: see the module docs.
        unsafe { core::ptr::write_volatile((Self::BASE + offset) as *mut u32, value) }
    }
}

/// Starts the counter from `u32::MAX`, reloading to it at 0, without an
/// interrupt.
pub fn start() {
    Timer::write(Timer::CTRL, 0);
    Timer::write(Timer::RELOAD, u32::MAX);
    Timer::write(Timer::VALUE, u32::MAX);
    Timer::write(Timer::CTRL, 1);
}

/// Time since [`start`], to the microsecond.
pub fn now() -> Instant {
    cortex_m::interrupt::free(|cs| {
        let count = COUNT.borrow(cs);
        let mut counter = count.get();
        let ticks = counter.advance(Timer::read(Timer::VALUE));
        count.set(counter);
        Instant::from_micros((ticks / TICKS_PER_MICRO) as i64)
    })
}

/// Sleeps (`wfi`) until `deadline` or until `work()` is true, by this
/// clock, for 60 s at most; see [`multiserve_board::systick::sleep_by`].
pub fn sleep(deadline: Option<Instant>, work: impl FnMut() -> bool) {
    multiserve_board::systick::sleep_by(now, deadline, work)
}
