//! What a board prints: one line per log record, the panic line, and the
//! last line before halting after a fatal set-up error.
//!
//! Where the lines go (semihosting, a UART) and how a board stops (end the
//! emulation with a failure status, reset the chip) are the board's own:
//! a board gives a [`Console`] its line printer, installs it as the
//! logger with [`init`], and its `#[panic_handler]` calls
//! [`Console::panic`] with its way of stopping. The lines are the same
//! everywhere, so that a test reading any board's log finds
//! `serving on IP:PORT` at the start of a line.

use core::fmt;
use core::panic::PanicInfo;

use log::{Level, LevelFilter, Log, Metadata, Record};

/// A board's log and panic output: every record as one [`RecordLine`],
/// a panic as one [`PanicLine`], each handed to the board's printer.
pub struct Console {
    /// Prints one line, adding the line ending.
    print: fn(fmt::Arguments<'_>),
    /// A target prefix whose info, debug and trace records are left out.
    quiet: Option<&'static str>,
}

impl Console {
    /// A console that prints each line with `print` (which adds the line
    /// ending; it must not log, nor panic).
    pub const fn new(print: fn(fmt::Arguments<'_>)) -> Self {
        Console { print, quiet: None }
    }

    /// Leaves out the records below warnings of the targets that start
    /// with `target` (a chatty driver's).
    pub const fn quiet(self, target: &'static str) -> Self {
        Console {
            quiet: Some(target),
            ..self
        }
    }

    /// Prints the panic line, then stops the board with `stop`: the body of
    /// a board's `#[panic_handler]`.
    pub fn panic(&self, info: &PanicInfo<'_>, stop: fn() -> !) -> ! {
        (self.print)(format_args!("{}", PanicLine(info)));
        stop()
    }
}

impl Log for Console {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        let quiet = self
            .quiet
            .is_some_and(|target| metadata.target().starts_with(target));
        metadata.level() <= log::max_level() && (!quiet || metadata.level() <= Level::Warn)
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            (self.print)(format_args!("{}", RecordLine(record)));
        }
    }

    fn flush(&self) {}
}

/// Installs `console` as the logger, records up to `level`. If a logger
/// is already installed, that one keeps logging.
#[cfg(target_has_atomic = "ptr")]
pub fn init(console: &'static Console, level: LevelFilter) {
    if log::set_logger(console).is_ok() {
        log::set_max_level(level);
    }
}

/// [`init`] for a target without atomic instructions (RV32IMC), where
/// `log` offers only its racy set-up calls.
///
/// # Safety
///
/// Nothing else may use `log` while this runs: call it first thing in
/// `main`, before any interrupt handler or task that logs can run.
#[cfg(not(target_has_atomic = "ptr"))]
#[allow(unsafe_code)]
pub unsafe fn init_racy(console: &'static Console, level: LevelFilter) {
    // SAFETY: the caller's promise: nothing else uses `log` meanwhile.
    if unsafe { log::set_logger_racy(console) }.is_ok() {
        // SAFETY: as above.
        unsafe { log::set_max_level_racy(level) };
    }
}

/// Displays a log record as one line (without the newline): info records
/// as they are, warnings and errors as `WARN: …` / `ERROR: …`, debug and
/// trace records with their target, `DEBUG target: …`.
pub struct RecordLine<'a>(pub &'a Record<'a>);

impl fmt::Display for RecordLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let record = self.0;
        match record.level() {
            Level::Info => {}
            level @ (Level::Error | Level::Warn) => write!(f, "{level}: ")?,
            level @ (Level::Debug | Level::Trace) => write!(f, "{level} {}: ", record.target())?,
        }
        f.write_fmt(*record.args())
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
#[cfg(not(feature = "defmt"))]
pub fn halt(why: impl fmt::Display, stop: fn() -> !) -> ! {
    error!("halted: {}", why);
    stop()
}

/// Logs `halted: <why>`, then stops the board the board's way.
#[cfg(feature = "defmt")]
pub fn halt(why: impl defmt::Format, stop: fn() -> !) -> ! {
    error!("halted: {}", why);
    stop()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `record`'s line, as a board prints it.
    fn line(level: Level, target: &str, args: fmt::Arguments<'_>) -> String {
        let record = Record::builder()
            .level(level)
            .target(target)
            .args(args)
            .build();
        RecordLine(&record).to_string()
    }

    #[test]
    fn info_as_it_is_others_with_their_level() {
        let port = 7000;
        let info = line(
            Level::Info,
            "t",
            format_args!("serving on 10.0.2.15:{port}"),
        );
        assert_eq!(info, "serving on 10.0.2.15:7000");
        let warn = line(Level::Warn, "t", format_args!("link down"));
        assert_eq!(warn, "WARN: link down");
        let error = line(Level::Error, "t", format_args!("halted: {}", "why"));
        assert_eq!(error, "ERROR: halted: why");
        let debug = line(Level::Debug, "a::b", format_args!("n {}", 2));
        assert_eq!(debug, "DEBUG a::b: n 2");
        let trace = line(Level::Trace, "a", format_args!("t"));
        assert_eq!(trace, "TRACE a: t");
    }
}
