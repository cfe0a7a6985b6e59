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

macro_rules! debug {
    ($($arg:tt)*) => {{
        #[cfg(feature = "log")]
        if ::log::Level::Debug <= ::log::STATIC_MAX_LEVEL {
            $crate::fmt::log(
                ::log::Level::Debug,
                ::core::module_path!(),
                ::core::format_args!($($arg)*),
            );
        }
        #[cfg(feature = "defmt")]
        ::defmt::debug!($($arg)*);
        #[cfg(not(any(feature = "log", feature = "defmt")))]
        let _ = ::core::format_args!($($arg)*);
    }};
}

macro_rules! info {
    ($($arg:tt)*) => {{
        #[cfg(feature = "log")]
        if ::log::Level::Info <= ::log::STATIC_MAX_LEVEL {
            $crate::fmt::log(
                ::log::Level::Info,
                ::core::module_path!(),
                ::core::format_args!($($arg)*),
            );
        }
        #[cfg(feature = "defmt")]
        ::defmt::info!($($arg)*);
        #[cfg(not(any(feature = "log", feature = "defmt")))]
        let _ = ::core::format_args!($($arg)*);
    }};
}

macro_rules! warn {
    ($($arg:tt)*) => {{
        #[cfg(feature = "log")]
        if ::log::Level::Warn <= ::log::STATIC_MAX_LEVEL {
            $crate::fmt::log(
                ::log::Level::Warn,
                ::core::module_path!(),
                ::core::format_args!($($arg)*),
            );
        }
        #[cfg(feature = "defmt")]
        ::defmt::warn!($($arg)*);
        #[cfg(not(any(feature = "log", feature = "defmt")))]
        let _ = ::core::format_args!($($arg)*);
    }};
}

/// Logs `args` at `level` with `target` (the calling module): what the
/// macros above expand to with `log`, so that the record is made once here
/// and not at every call site (flash on the boards).
#[cfg(feature = "log")]
#[inline(never)]
pub(crate) fn log(level: log::Level, target: &'static str, args: core::fmt::Arguments<'_>) {
    log::log!(target: target, level, "{}", args);
}
