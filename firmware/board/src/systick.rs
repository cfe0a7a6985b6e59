//! A 1 kHz millisecond clock from SysTick, and a `wfi` sleep, for Cortex-M
//! boards (feature `cortex-m`).
//!
//! SysTick counts the core clock down from `core_hz / 1000 - 1` and raises
//! its exception once per millisecond; the handler counts milliseconds in a
//! 64-bit counter (no wrap in practice). Each tick also ends a `wfi`, which
//! is how [`sleep`] notices its deadline.

use core::cell::Cell;

use cortex_m::interrupt::Mutex;
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::SYST;
use cortex_m_rt::exception;
use smoltcp::time::Instant;

static MILLIS: Mutex<Cell<u64>> = Mutex::new(Cell::new(0));

/// Starts the millisecond tick. `core_hz` must be a multiple of 1000 and at
/// most 16.7 GHz (SysTick's reload register has 24 bits).
pub fn start(mut syst: SYST, core_hz: u32) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(core_hz / 1000 - 1);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

/// Milliseconds since [`start`].
pub fn now() -> Instant {
    let ms = cortex_m::interrupt::free(|cs| MILLIS.borrow(cs).get());
    Instant::from_millis(ms as i64)
}

#[exception]
fn SysTick() {
    cortex_m::interrupt::free(|cs| {
        let ms = MILLIS.borrow(cs);
        ms.set(ms.get().wrapping_add(1));
    });
}

/// Sleeps (`wfi`) until `deadline` or until `work()` is true; `None` waits
/// for `work()` alone, up to [`MAX_SLEEP`](crate::clock::MAX_SLEEP). `work` says whether the NIC has something for the
/// main loop (an interrupt flag its handler set, a frame waiting).
///
/// The checks and the `wfi` run with interrupts masked, so an interrupt
/// arriving between check and `wfi` still ends the `wfi` (it wakes on
/// pending interrupts) rather than being missed; its handler runs when the
/// mask is lifted, before the next check.
pub fn sleep(deadline: Option<Instant>, work: impl FnMut() -> bool) {
    sleep_by(now, deadline, work)
}

/// [`sleep`] by another clock than SysTick's count (`clock`), for boards
/// whose time comes from a free-running counter; SysTick's exception still
/// ends each `wfi` once a millisecond, and `clock` is read after each.
/// Without a deadline, or with a far one, the sleep ends after
/// [`MAX_SLEEP`](crate::clock::MAX_SLEEP) at the latest
/// ([`sleep_loop`](crate::clock::sleep_loop)), so that a 32-bit counter
/// behind `clock` is read at least that often.
pub fn sleep_by(clock: fn() -> Instant, deadline: Option<Instant>, work: impl FnMut() -> bool) {
    crate::clock::sleep_loop(clock, deadline, work, |check| {
        cortex_m::interrupt::free(|_| {
            if check() {
                return true;
            }
            cortex_m::asm::wfi();
            false
        })
    })
}
