//! A simulated network for testing multiserve: the server on one smoltcp
//! interface, smoltcp clients on another, joined by an in-memory Ethernet
//! wire ([`wire`]) that can lose, record and inject frames, driven by a
//! virtual clock ([`net`]). No privileges, no kernel network.
//!
//! The simnet suite (`main.rs` beside this folder) and the fuzz targets
//! (`tests/fuzz`) run on it.

pub mod net;
pub mod wire;
