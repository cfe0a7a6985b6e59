//! # multiserve
//!
//! A concurrent TCP server in the style of a `select()` loop, for
//! [smoltcp](https://docs.rs/smoltcp) and no operating system.
//!
//! The classic way to serve many clients from one thread is I/O
//! multiplexing: keep a list of sockets, `select()` on it, accept new
//! clients on the listening socket and answer whichever client has data.
//! smoltcp has no listening socket and no backlog: one [`tcp::Socket`]
//! serves exactly one connection. multiserve therefore keeps a **fixed pool
//! of sockets on the service port**: as many as the clients it serves at
//! once plus spare ones, which keep a socket listening while others finish
//! closing or sit half-open. One call of [`Server::poll`] walks the whole
//! pool once, the way the classic loop walks the ready list that
//! `select()` returned.
//!
//! ```text
//!            ┌──────────────── Server::poll(now) ─────────────────┐
//!  frames →  │ receive each frame → walk the pool once → send      │ → frames
//!            │ (none listening:     · read → Service → write       │
//!            │  take one back)      · close what is done or idle   │
//!            │                      · give waiting clients places  │
//!            └──────── returns how long the caller may sleep ──────┘
//! ```
//!
//! ## Where things live
//!
//! A folder per concept; each module uses only those listed above it, so
//! a service never sees the server that runs it, and the server knows no
//! service but through the [`Service`] trait.
//!
//! - `config`, `stats`: run-time settings ([`Config`]) and counters
//!   ([`Stats`]).
//! - `service/`: the [`Service`] trait, the protocol spoken on every
//!   connection; [`Reverse`] (the lecture's service: every message
//!   answered reversed) with its line framing ([`LineFramer`]), and
//!   [`Echo`] (RFC 862).
//! - `connection/`: the state machine of one pool socket ([`Role`]), its
//!   TCP options and the clock of its timestamps, and the exchange of
//!   bytes between its socket and its service.
//! - `server/`: the [`Server`], its pool and its poll step; admission (who
//!   holds a client place, what is taken back for a SYN); [`Services`],
//!   several servers on one loop; the [`View`] a server reports of itself.
//! - `status/`: the status service ([`Status`]), every socket and counter
//!   live as text or JSON lines, and [`Watched`], which puts it beside the
//!   services it reports on.
//! - `phy/`: smoltcp devices: [`PingLimiter`], which bounds how fast ping
//!   is answered, and (feature `embassy-net-driver`) `DriverDevice`, any
//!   embassy-net-driver `Driver` as a smoltcp `Device`.
//! - `addressing` (feature `dhcpv4`): DHCPv4 with a static fallback, for
//!   boards.
//!
//! "The lecture" is the university lecture on serving many clients that
//! multiserve follows: iterative servers, threads and `fork`, and I/O
//! multiplexing, a `select()` loop over a list of sockets whose service
//! answers every message reversed, and whose client sends lines until
//! `EXIT`.
//!
//! ## Example
//!
//! [`Server::new`] shows the smallest complete use, a server and a client
//! over smoltcp's in-memory loopback; `cargo run --example loopback` runs
//! the same as a program; `cargo run --example watched` runs two services,
//! the reverse and the status service, on one loop.
//!
//!
//! ## Guarantees
//!
//! - `#![no_std]`, no allocator, no `unsafe`. All memory is given by the
//!   caller at start (socket buffers, one [`SlotStorage`] entry per pool
//!   socket, borrowed or owned, two scratch buffers) or is part of the
//!   [`Server`] value, whose size does not depend on the pool's. One
//!   4-byte `static` holds the clock of TCP timestamps
//!   ([`Config::timestamps`]): the latest poll's `now`, in milliseconds.
//! - Nothing a peer sends can make the server panic: errors are values, and
//!   no index or arithmetic on a peer-controlled length is unchecked.
//! - No byte is dropped: received bytes are taken from a socket only once
//!   the service's answer to them fits in that socket's transmit buffer.
//!
//! ## Features
//!
#![cfg_attr(
    feature = "document-features",
    doc = document_features::document_features!()
)]
#![cfg_attr(
    not(feature = "document-features"),
    doc = "The features are listed here when the docs are built with the \
           feature `document-features` (docs.rs does); otherwise see \
           `[features]` in `Cargo.toml`."
)]
//!
//! [`tcp::Socket`]: smoltcp::socket::tcp::Socket
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[macro_use]
mod fmt;

#[cfg(feature = "dhcpv4")]
mod addressing;
mod config;
mod connection;
mod phy;
mod server;
mod service;
mod stats;
mod status;

#[cfg(feature = "dhcpv4")]
#[cfg_attr(docsrs, doc(cfg(feature = "dhcpv4")))]
pub use addressing::{AddressChange, AddressState, Addressing};
pub use config::{Config, FullPolicy, Peers};
pub use connection::Role;
#[cfg(feature = "embassy-net-driver")]
#[cfg_attr(docsrs, doc(cfg(feature = "embassy-net-driver")))]
pub use embassy_net_driver;
pub use phy::{is_echo_request, PingLimiter};
#[cfg(feature = "embassy-net-driver")]
#[cfg_attr(docsrs, doc(cfg(feature = "embassy-net-driver")))]
pub use phy::{woken, DriverDevice, Woken};
pub use server::{
    Buffer, Error, Resources, Server, ServiceView, Services, SlotStorage, SocketView, View,
    MAX_SERVICES,
};
pub use service::{
    reverse_into, Echo, Framing, LineFrame, LineFramer, LineMode, Output, OutputFull, Progress,
    Reverse, Service,
};
pub use stats::Stats;
pub use status::{Status, StatusSession, Watched, MAX_STATUS_REQUEST};
