//! The device is reachable over IPv4 and IPv6: ICMP echo and TCP.

use std::net::SocketAddr;

use crate::conformance;
use crate::server::{DEVICE_V4, DEVICE_V6, PORT};

#[test]
fn answers_ping_over_ipv4() {
    let server = serve!();
    conformance::answers_ping(&server, DEVICE_V4);
}

#[test]
fn answers_ping_over_ipv6() {
    let server = serve!();
    conformance::answers_ping(&server, DEVICE_V6);
}

#[test]
fn serves_tcp_over_ipv4_and_ipv6() {
    let server = serve!();
    conformance::exchanges_over(&server, SocketAddr::new(DEVICE_V4, PORT));
    conformance::exchanges_over(&server, SocketAddr::new(DEVICE_V6, PORT));
}
