//! The board layer's log macros: `log`'s, or `defmt`'s with the feature
//! `defmt` (as smoltcp's and embassy's `fmt` modules). The format strings
//! are the ones both accept: `{}` and values both can print. Declared
//! first in `lib.rs` with `#[macro_use]`, so every module has them.

/// Logs at info level.
macro_rules! info {
    ($($arg:tt)*) => {{
        #[cfg(feature = "defmt")]
        ::defmt::info!($($arg)*);
        #[cfg(not(feature = "defmt"))]
        ::log::info!($($arg)*);
    }};
}

/// Logs a warning.
macro_rules! warn {
    ($($arg:tt)*) => {{
        #[cfg(feature = "defmt")]
        ::defmt::warn!($($arg)*);
        #[cfg(not(feature = "defmt"))]
        ::log::warn!($($arg)*);
    }};
}

/// Logs an error.
macro_rules! error {
    ($($arg:tt)*) => {{
        #[cfg(feature = "defmt")]
        ::defmt::error!($($arg)*);
        #[cfg(not(feature = "defmt"))]
        ::log::error!($($arg)*);
    }};
}
