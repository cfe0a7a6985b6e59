//! The board layer's log macros: `log`'s, or `defmt`'s with the feature
//! `defmt` (as smoltcp's and embassy's `fmt` modules). The format strings
//! are the ones both accept: `{}` and values both can print. Declared
//! first in `lib.rs` with `#[macro_use]`, so every module has them, and
//! exported for the boards' own lines (`multiserve_board::info!`).
//!
//! With `log`, a record is made and handed to the logger in one function,
//! [`log`], not at every call site (flash); its target is the calling
//! module, as with `log`'s macros.

/// Logs at info level.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::__log_at!(info, Info, $($arg)*) };
}

/// Logs a warning.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::__log_at!(warn, Warn, $($arg)*) };
}

/// Logs an error.
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::__log_at!(error, Error, $($arg)*) };
}

/// The macros above with `log`: the record is made by [`log`], and
/// compiled out at the call site below `log`'s static maximum level.
/// Defined for the board layer's own feature (a `cfg` in the expansion
/// would be the calling crate's).
#[cfg(not(feature = "defmt"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __log_at {
    ($defmt:ident, $level:ident, $($arg:tt)*) => {{
        if ::log::Level::$level <= ::log::STATIC_MAX_LEVEL {
            $crate::__log(
                ::log::Level::$level,
                ::core::module_path!(),
                ::core::format_args!($($arg)*),
            );
        }
    }};
}

/// The macros above with `defmt`: its own macro of the level.
#[cfg(feature = "defmt")]
#[doc(hidden)]
#[macro_export]
macro_rules! __log_at {
    ($defmt:ident, $level:ident, $($arg:tt)*) => {
        ::defmt::$defmt!($($arg)*)
    };
}

/// Logs `args` at `level` with `target` (the calling module): what the
/// macros above expand to with `log`, so that the record is made once here
/// and not at every call site.
#[cfg(not(feature = "defmt"))]
#[inline(never)]
pub fn log(level: log::Level, target: &'static str, args: core::fmt::Arguments<'_>) {
    log::log!(target: target, level, "{}", args);
}
