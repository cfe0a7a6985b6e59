//! The board layer's log macros: `log`'s, or `defmt`'s with the feature
//! `defmt` (as smoltcp's and embassy's `fmt` modules). The format strings
//! are the ones both accept: `{}` and values both can print. Declared
//! first in `lib.rs` with `#[macro_use]`, so every module has them.
//!
//! With `log`, a record is made and handed to the logger in one function,
//! [`log`], not at every call site (flash); its target is the calling
//! module, as with `log`'s macros.

/// Logs at info level.
macro_rules! info {
    ($($arg:tt)*) => {{
        #[cfg(feature = "defmt")]
        ::defmt::info!($($arg)*);
        #[cfg(not(feature = "defmt"))]
        if ::log::Level::Info <= ::log::STATIC_MAX_LEVEL {
            $crate::fmt::log(
                ::log::Level::Info,
                ::core::module_path!(),
                ::core::format_args!($($arg)*),
            );
        }
    }};
}

/// Logs a warning.
macro_rules! warn {
    ($($arg:tt)*) => {{
        #[cfg(feature = "defmt")]
        ::defmt::warn!($($arg)*);
        #[cfg(not(feature = "defmt"))]
        if ::log::Level::Warn <= ::log::STATIC_MAX_LEVEL {
            $crate::fmt::log(
                ::log::Level::Warn,
                ::core::module_path!(),
                ::core::format_args!($($arg)*),
            );
        }
    }};
}

/// Logs an error.
macro_rules! error {
    ($($arg:tt)*) => {{
        #[cfg(feature = "defmt")]
        ::defmt::error!($($arg)*);
        #[cfg(not(feature = "defmt"))]
        if ::log::Level::Error <= ::log::STATIC_MAX_LEVEL {
            $crate::fmt::log(
                ::log::Level::Error,
                ::core::module_path!(),
                ::core::format_args!($($arg)*),
            );
        }
    }};
}

/// Logs `args` at `level` with `target` (the calling module): what the
/// macros above expand to with `log`, so that the record is made once here
/// and not at every call site.
#[cfg(not(feature = "defmt"))]
#[inline(never)]
pub(crate) fn log(level: log::Level, target: &'static str, args: core::fmt::Arguments<'_>) {
    log::log!(target: target, level, "{}", args);
}
