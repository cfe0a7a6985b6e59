//! DHCPv4 with a static fallback (the boards' addressing), on a wire where
//! no DHCP server answers.

use smoltcp::iface::{Config as IfaceConfig, Interface, SocketSet};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, Ipv4Address, Ipv4Cidr};

use multiserve::addressing::{Addressing, Change};

use crate::wire::wire;

#[test]
fn without_a_lease_the_static_address_comes_after_the_timeout() {
    let (mut port, _nobody, in_flight) = wire();
    let mut iface = Interface::new(
        IfaceConfig::new(EthernetAddress([2, 0, 0, 0, 0, 9]).into()),
        &mut port,
        Instant::ZERO,
    );
    let mut sockets = SocketSet::new(vec![]);
    let fallback = Ipv4Cidr::new(Ipv4Address::new(192, 168, 69, 1), 24);
    let gateway = Ipv4Address::new(192, 168, 69, 100);
    let mut addressing = Addressing::new(
        &mut sockets,
        Instant::ZERO,
        Duration::from_secs(4),
        fallback,
        Some(gateway),
    );

    let mut now = Instant::ZERO;
    let mut changes = Vec::new();
    while now < Instant::from_secs(10) {
        iface.poll(now, &mut port, &mut sockets);
        let (change, wake) = addressing.poll(now, &mut iface, &mut sockets);
        if change != Change::None {
            changes.push((now, change));
        }
        if iface.ipv4_addr().is_none() {
            assert_eq!(wake, Some(Instant::from_secs(4)), "waits for the deadline");
        }
        now += Duration::from_millis(100);
    }
    assert_eq!(
        changes,
        [(Instant::from_secs(4), Change::Fallback(fallback))]
    );
    assert_eq!(iface.ipv4_addr(), Some(fallback.address()));
    // It asked for a lease meanwhile (DHCP discovers went out on the wire).
    assert!(in_flight.count() > 0, "no DHCP discover was sent");
    // And it stops asking: the DHCP socket is gone.
    assert_eq!(sockets.iter().count(), 0);
}
