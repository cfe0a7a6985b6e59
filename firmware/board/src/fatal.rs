//! Ending for good: the panic line, and halting after a fatal set-up error.
//!
//! How a board stops is its own (end the emulation with a failure status,
//! reset the chip, spin); what it prints first is the same everywhere.

use core::fmt;
use core::panic::PanicInfo;

/// Displays a panic as one line, `panic: <location>: <message>`, for a
/// board's `#[panic_handler]` to print on its log output.
pub struct PanicLine<'a>(pub &'a PanicInfo<'a>);

impl fmt::Display for PanicLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.location() {
            Some(location) => write!(f, "panic: {}: {}", location, self.0.message()),
            None => write!(f, "panic: {}", self.0.message()),
        }
    }
}

/// Logs `halted: <why>`, then stops the board the board's way.
pub fn halt(why: impl fmt::Display, stop: fn() -> !) -> ! {
    log::error!("halted: {}", why);
    stop()
}
