//! The core, tested through a simulated network: two smoltcp interfaces
//! joined by an in-memory Ethernet wire, the server on one, smoltcp client
//! sockets on the other. No privileges, no kernel network.

// The simulated network is this package's library, which the fuzz targets
// (tests/fuzz) use too.
use multiserve_simnet::{net, wire};

#[cfg(feature = "dhcpv4")]
mod addressing;
mod admission;
mod bench;
#[cfg(feature = "embassy-net-driver")]
mod driver;
mod exchange;
mod faults;
mod garbage;
mod handshake;
mod hostile;
mod lifecycle;
mod matrix;
mod overload;
mod ping;
mod pool;
mod services;
mod soak;
mod timestamps;
