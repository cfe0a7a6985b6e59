//! What a board prints: one line per log record, the panic line, and the
//! last line before halting after a fatal set-up error.
//!
//! Where the lines go (semihosting, a UART, RTT) and how a board stops
//! (end the emulation with a failure status, reset the chip) are the
//! board's own; the lines are the same everywhere, so that a test reading
//! any board's log finds `serving on IP:PORT` at the start of a line.

use core::fmt;
use core::panic::PanicInfo;

use log::{Level, Record};

/// Displays a log record as one line (without the newline): info records
/// as they are, warnings and errors as `WARN: …` / `ERROR: …`, debug and
/// trace records with their target, `DEBUG target: …`.
pub struct RecordLine<'a>(pub &'a Record<'a>);

impl fmt::Display for RecordLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let record = self.0;
        match record.level() {
            Level::Info => write!(f, "{}", record.args()),
            Level::Error | Level::Warn => write!(f, "{}: {}", record.level(), record.args()),
            Level::Debug | Level::Trace => {
                write!(
                    f,
                    "{} {}: {}",
                    record.level(),
                    record.target(),
                    record.args()
                )
            }
        }
    }
}

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
