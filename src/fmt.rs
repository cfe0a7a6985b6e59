//! Logging through `log` (feature `log`, on by default) or `defmt`
//! (feature `defmt`), as smoltcp's `macros.rs` and embassy-net's `fmt.rs`
//! do; with neither, the messages compile to nothing (their arguments are
//! still type-checked, never formatted).
//!
//! With `log`, a record is made and handed to the logger in one function,
//! [`log`], not at every call site: a call site builds its message's
//! arguments and calls it, and records below `log`'s static maximum level
//! are compiled out there as by `log`'s own macros. Its target is the
//! calling module, as with `log`'s macros.
#![allow(unused_macros)]

#[cfg(all(feature = "log", feature = "defmt"))]
compile_error!("features `log` and `defmt` are mutually exclusive: turn off the default features to use `defmt`");

/// One message at a level: `log`'s `Level` variant and `defmt`'s macro.
macro_rules! log_at {
    ($level:ident, $defmt:ident, $($arg:tt)*) => {{
        #[cfg(feature = "log")]
        if ::log::Level::$level <= ::log::STATIC_MAX_LEVEL {
            $crate::fmt::log(
                ::log::Level::$level,
                ::core::module_path!(),
                ::core::format_args!($($arg)*),
            );
        }
        #[cfg(feature = "defmt")]
        ::defmt::$defmt!($($arg)*);
        #[cfg(not(any(feature = "log", feature = "defmt")))]
        let _ = ::core::format_args!($($arg)*);
    }};
}

macro_rules! debug {
    ($($arg:tt)*) => { log_at!(Debug, debug, $($arg)*) };
}

macro_rules! info {
    ($($arg:tt)*) => { log_at!(Info, info, $($arg)*) };
}

macro_rules! warn {
    ($($arg:tt)*) => { log_at!(Warn, warn, $($arg)*) };
}

/// Logs `args` at `level` with `target` (the calling module): what the
/// macros above expand to with `log`, so that the record is made once here
/// and not at every call site (flash on the boards).
#[cfg(feature = "log")]
#[inline(never)]
pub(crate) fn log(level: log::Level, target: &'static str, args: core::fmt::Arguments<'_>) {
    log::log!(target: target, level, "{}", args);
}
