//! smoltcp devices: wrappers and adapters between a NIC and the
//! interface.

#[cfg(feature = "embassy-net-driver")]
mod driver;
mod ping_limit;

#[cfg(feature = "embassy-net-driver")]
pub use driver::{woken, DriverDevice, Woken};
pub use ping_limit::{is_echo_request, PingLimiter};
