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
//! The layers, one module each:
//!
//! - [`server`]: the socket pool, its select-like poll step and admission.
//! - [`services`]: several services (ports) on one loop, [`poll`].
//! - [`status`]: the status service, every socket and counter, live.
//! - [`connection`]: the state machine of one pool socket and its roles.
//! - [`service`]: the [`Service`] trait, the protocol spoken on every
//!   connection.
//! - [`reverse`]: the lecture's service, answering each message reversed;
//!   [`line`](mod@line): the line framing it uses.
//! - [`echo`]: the RFC 862 echo service.
//! - [`config`]: run-time settings; [`stats`]: counters.
//! - [`echo_limit`]: a device wrapper that bounds how fast ping is answered.
//! - `addressing` (feature `dhcpv4`): DHCPv4 with a static fallback, for
//!   boards.
//! - `driver` (feature `embassy-net-driver`): any embassy-net-driver
//!   `Driver` as a smoltcp `Device`.
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
//!   caller at start (socket buffers, two scratch buffers) or is part of the
//!   [`Server`] value, whose size is fixed by its const generic `N`.
//! - Nothing a peer sends can make the server panic: errors are values, and
//!   no index or arithmetic on a peer-controlled length is unchecked.
//! - No byte is dropped: received bytes are taken from a socket only once
//!   the service's answer to them fits in that socket's transmit buffer.
//!
//! [`tcp::Socket`]: smoltcp::socket::tcp::Socket
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[cfg(feature = "dhcpv4")]
pub mod addressing;
pub mod config;
pub mod connection;
#[cfg(feature = "embassy-net-driver")]
pub mod driver;
pub mod echo;
pub mod echo_limit;
mod ingress;
pub mod line;
pub mod reverse;
pub mod server;
pub mod service;
pub mod services;
pub mod stats;
pub mod status;

pub use config::{Config, FullPolicy, Peers};
#[cfg(feature = "embassy-net-driver")]
pub use driver::DriverDevice;
pub use echo::Echo;
pub use echo_limit::EchoLimiter;
#[cfg(feature = "embassy-net-driver")]
pub use embassy_net_driver;
pub use reverse::{Framing, Reverse};
pub use server::{Error, Resources, Server};
pub use service::{Output, Progress, Service};
pub use services::{poll, Services};
pub use stats::Stats;
pub use status::{Status, Watched};
