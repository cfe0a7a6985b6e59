//! What every multiserve board shares, so that a board crate is its
//! Ethernet driver, its pins and clocks, and a short `main`.
//!
//! - [`memory`]: the static socket buffers, scratch buffers and socket set,
//!   sized from the service the boards run.
//! - [`serve`](mod@serve): the server, DHCPv4 with a static fallback, and the main
//!   loop that polls them and sleeps until the earliest deadline, blocking
//!   or as an async task ([`Stack::run_async`]).
//! - [`output`]: the lines a board prints (log records, the panic line),
//!   the [`Console`] logger that prints them through the board's printer,
//!   the body of a board's panic handler, and halting after a fatal
//!   set-up error.
//! - [`clock`]: a 32-bit counter extended to 64 bits, and the sleep loop
//!   that reads the clock at least every [`clock::MAX_SLEEP`].
//! - [`mdio`]: finding a PHY on an MDIO bus, at any address, for a while.
//! - With the feature `defmt`, the board layer's own lines go through
//!   `defmt` instead of `log`, and [`halt`] takes a `defmt::Format`.
//! - [`wifi`]: the security a Wi-Fi station requires, from its password.
//! - `systick` (feature `cortex-m`): a 1 kHz clock from SysTick and a
//!   `wfi` sleep that cannot miss an interrupt.
//!
//! Every board serves the [`Reverse`](multiserve::Reverse) service on
//! [`PORT`] with [`Framing::Line`], lines of up
//! to [`MAX_LINE`] bytes, [`CLIENTS`] clients at once, and logs one line
//! `serving on IP:PORT` once it has an address. With the feature `status`
//! (on by default) the same loop also serves the status service on
//! [`STATUS_PORT`] to [`STATUS_CLIENTS`] client, and the line names that
//! port too: `serving on IP:PORT, status on IP:STATUS_PORT`.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]
#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod fmt;

pub mod clock;
pub mod mdio;
pub mod memory;
pub mod output;
mod rx_frame;
pub mod serve;
#[cfg(feature = "cortex-m")]
pub mod systick;
pub mod wifi;

/// The log macros' one call (`log` feature): not for direct use.
#[cfg(not(feature = "defmt"))]
#[doc(hidden)]
pub use fmt::log as __log;
pub use output::{halt, Console, PanicLine, RecordLine};
pub use rx_frame::RxFrame;
pub use serve::{serve, Board, Error, Link, Stack, Wait};

use multiserve::Framing;
use smoltcp::time::Duration;

/// The service port.
pub const PORT: u16 = 7000;
/// Clients served at once: the server's capacity.
pub const CLIENTS: usize = 8;
/// Spare sockets beyond the capacity: they keep a socket listening while
/// others finish closing or sit half-open, and give the busy answer. The
/// core's default for 8 clients (half the capacity).
pub const SPARE: usize = 4;
/// Sockets in the server's pool, each with a client's buffers.
pub const POOL: usize = CLIENTS + SPARE;
/// How messages are framed: lines ending in `\n`.
pub const FRAMING: Framing = Framing::Line;
/// Longest line the reverse service answers, in bytes (without its ending).
pub const MAX_LINE: usize = 1024;
/// Receive buffer of each pool socket, in bytes. It must hold one line and
/// its ending; it stays small because QEMU's LAN9118 model has only ~10 KiB
/// of receive FIFO for all connections together (`mps2-an385`).
pub const SOCKET_RX: usize = 2048;
/// Transmit buffer of each pool socket, in bytes; at least one answer.
pub const SOCKET_TX: usize = 2048;
/// The status service's port (feature `status`).
pub const STATUS_PORT: u16 = 7001;
/// Status clients served at once (feature `status`).
pub const STATUS_CLIENTS: usize = 1;
/// Spare status sockets: one keeps listening while the other closes, and
/// tells a second client `busy: …` (feature `status`).
pub const STATUS_SPARE: usize = 1;
/// Sockets in the status server's pool (feature `status`).
pub const STATUS_POOL: usize = STATUS_CLIENTS + STATUS_SPARE;
/// Receive buffer of each status socket, in bytes: requests are short
/// lines (at least 128 bytes, the status service's minimum).
pub const STATUS_SOCKET_RX: usize = 256;
/// Transmit buffer of each status socket, in bytes (at least 1024, the
/// status service's minimum): a snapshot longer than the free space goes
/// out row by row over several poll steps.
pub const STATUS_SOCKET_TX: usize = 2048;
/// Socket rows a status snapshot lists: every socket in use, the reverse
/// pool's and the status pool's (feature `status`).
pub const STATUS_ROWS: usize = POOL + STATUS_POOL;
/// How long to wait for a DHCP lease before taking the static address.
pub const DHCP_TIMEOUT: Duration = Duration::from_secs(4);

/// The idle timeout: 300 s, or the seconds in `MULTISERVE_IDLE_TIMEOUT_SECS`
/// when the image was built (the tests build one with a short timeout).
pub fn idle_timeout() -> Duration {
    let secs = option_env!("MULTISERVE_IDLE_TIMEOUT_SECS")
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(300);
    Duration::from_secs(secs)
}
