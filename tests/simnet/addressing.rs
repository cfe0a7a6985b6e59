//! DHCPv4 with a static fallback (the boards' addressing), following the
//! link, against a small DHCP server on the other end of the wire. The
//! link is a switch on the wire: while it is off, every frame is lost both
//! ways and the board is told the link is down.

use smoltcp::iface::{Config as IfaceConfig, Interface, SocketSet};
use smoltcp::phy::{self, ChecksumCapabilities, Device};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    DhcpMessageType, DhcpPacket, DhcpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, IpAddress, IpCidr, IpProtocol, Ipv4Address, Ipv4Cidr, Ipv4Packet, Ipv4Repr,
    Ipv6Address, UdpPacket, UdpRepr,
};

use multiserve::{AddressChange, AddressState, Addressing};

use crate::wire::{wire, InFlight, Port};

const TIMEOUT: Duration = Duration::from_secs(4);
const FALLBACK: Ipv4Cidr = Ipv4Cidr::new(Ipv4Address::new(192, 168, 69, 1), 24);
const GATEWAY: Ipv4Address = Ipv4Address::new(192, 168, 69, 100);
const LEASE: Ipv4Cidr = Ipv4Cidr::new(Ipv4Address::new(10, 0, 2, 15), 24);
const DHCP_SERVER: Ipv4Address = Ipv4Address::new(10, 0, 2, 2);
const DHCP_SERVER_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);
const STEP: Duration = Duration::from_millis(10);

fn ipv6_addresses() -> [IpCidr; 2] {
    [
        IpCidr::new(
            IpAddress::Ipv6(Ipv6Address::new(0xfdaa, 0, 0, 0, 0, 0, 0, 1)),
            64,
        ),
        IpCidr::new(
            IpAddress::Ipv6(Ipv6Address::new(0xfe80, 0, 0, 0, 0, 0, 0, 1)),
            64,
        ),
    ]
}

/// A DHCP server that offers and acknowledges `LEASE` to whoever asks.
struct DhcpServer {
    answering: bool,
    lease_secs: u32,
    /// Discovers seen, with when.
    discovers: Vec<Instant>,
}

impl DhcpServer {
    /// The answer to `frame`, if it is a DHCP request to answer.
    fn answer(&mut self, now: Instant, frame: &[u8]) -> Option<Vec<u8>> {
        let eth = EthernetFrame::new_checked(frame).ok()?;
        if eth.ethertype() != EthernetProtocol::Ipv4 {
            return None;
        }
        let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
        if ip.next_header() != IpProtocol::Udp {
            return None;
        }
        let udp = UdpPacket::new_checked(ip.payload()).ok()?;
        if udp.dst_port() != 67 {
            return None;
        }
        let packet = DhcpPacket::new_checked(udp.payload()).ok()?;
        let request = DhcpRepr::parse(&packet).ok()?;
        let message_type = match request.message_type {
            DhcpMessageType::Discover => {
                self.discovers.push(now);
                DhcpMessageType::Offer
            }
            DhcpMessageType::Request => DhcpMessageType::Ack,
            _ => return None,
        };
        if !self.answering {
            return None;
        }
        let reply = DhcpRepr {
            message_type,
            transaction_id: request.transaction_id,
            secs: 0,
            client_hardware_address: request.client_hardware_address,
            client_ip: Ipv4Address::UNSPECIFIED,
            your_ip: LEASE.address(),
            server_ip: DHCP_SERVER,
            router: Some(DHCP_SERVER),
            subnet_mask: Some(Ipv4Address::new(255, 255, 255, 0)),
            relay_agent_ip: Ipv4Address::UNSPECIFIED,
            broadcast: false,
            requested_ip: None,
            client_identifier: None,
            server_identifier: Some(DHCP_SERVER),
            parameter_request_list: None,
            dns_servers: None,
            max_size: None,
            lease_duration: Some(self.lease_secs),
            renew_duration: None,
            rebind_duration: None,
            additional_options: &[],
        };
        Some(frame_of(&reply))
    }
}

/// `reply` in a broadcast UDP datagram from the DHCP server.
fn frame_of(reply: &DhcpRepr<'_>) -> Vec<u8> {
    let dhcp_len = reply.buffer_len();
    let udp = UdpRepr {
        src_port: 67,
        dst_port: 68,
    };
    let ip = Ipv4Repr {
        src_addr: DHCP_SERVER,
        dst_addr: Ipv4Address::BROADCAST,
        next_header: IpProtocol::Udp,
        payload_len: 8 + dhcp_len,
        hop_limit: 64,
    };
    let eth = EthernetRepr {
        src_addr: DHCP_SERVER_MAC,
        dst_addr: EthernetAddress::BROADCAST,
        ethertype: EthernetProtocol::Ipv4,
    };
    let caps = ChecksumCapabilities::default();
    let mut frame = vec![0; 14 + 20 + 8 + dhcp_len];
    eth.emit(&mut EthernetFrame::new_unchecked(&mut frame[..]));
    ip.emit(&mut Ipv4Packet::new_unchecked(&mut frame[14..]), &caps);
    udp.emit(
        &mut UdpPacket::new_unchecked(&mut frame[34..]),
        &IpAddress::Ipv4(DHCP_SERVER),
        &IpAddress::Ipv4(Ipv4Address::BROADCAST),
        dhcp_len,
        |buf| reply.emit(&mut DhcpPacket::new_unchecked(buf)).unwrap(),
        &caps,
    );
    frame
}

/// A board with its addressing on one end of the wire, the DHCP server on
/// the other, and a virtual clock in steps of `STEP`.
struct Board {
    now: Instant,
    iface: Interface,
    port: Port,
    sockets: SocketSet<'static>,
    addressing: Addressing,
    network: Port,
    dhcp: DhcpServer,
    in_flight: InFlight,
    link_up: bool,
    changes: Vec<(Instant, AddressChange)>,
}

impl Board {
    fn new(dhcp_answering: bool) -> Board {
        let (mut port, network, in_flight) = wire();
        let mut iface = Interface::new(
            IfaceConfig::new(EthernetAddress([2, 0, 0, 0, 0, 9]).into()),
            &mut port,
            Instant::ZERO,
        );
        iface.update_ip_addrs(|addrs| {
            for a in ipv6_addresses() {
                addrs.push(a).unwrap();
            }
        });
        let mut sockets = SocketSet::new(vec![]);
        let addressing = Addressing::new(&mut sockets, TIMEOUT, FALLBACK, Some(GATEWAY));
        let mut board = Board {
            now: Instant::ZERO,
            iface,
            port,
            sockets,
            addressing,
            network,
            dhcp: DhcpServer {
                answering: dhcp_answering,
                lease_secs: 3600,
                discovers: Vec::new(),
            },
            in_flight,
            link_up: true,
            changes: Vec::new(),
        };
        board.set_link(false);
        board
    }

    /// Switch the link: off, every frame is lost and the board is told.
    fn set_link(&mut self, up: bool) {
        self.link_up = up;
        if up {
            self.in_flight.clear_filter();
        } else {
            self.in_flight.set_filter(|_, _| false);
        }
    }

    /// One instant: poll until nothing moves. Returns the addressing's
    /// last wake-up time.
    fn tick(&mut self) -> Option<Instant> {
        let now = self.now;
        let mut wake;
        loop {
            self.iface.poll(now, &mut self.port, &mut self.sockets);
            let change;
            (change, wake) =
                self.addressing
                    .poll(now, self.link_up, &mut self.iface, &mut self.sockets);
            if change != AddressChange::None {
                self.changes.push((now, change));
            }
            while let Some((rx, _)) = self.network.receive(now) {
                let frame = phy::RxToken::consume(rx, |f| f.to_vec());
                if let Some(reply) = self.dhcp.answer(now, &frame) {
                    let tx = self.network.transmit(now).unwrap();
                    phy::TxToken::consume(tx, reply.len(), |buf| buf.copy_from_slice(&reply));
                }
            }
            if change == AddressChange::None && wake != Some(now) && self.in_flight.count() == 0 {
                return wake;
            }
        }
    }

    /// Run until `until`, checking `each` with the wake-up time at every
    /// step.
    fn run_until(&mut self, until: Instant, mut each: impl FnMut(&Board, Option<Instant>)) {
        while self.now < until {
            let wake = self.tick();
            each(self, wake);
            self.now += STEP;
        }
    }

    fn run(&mut self, until: Instant) {
        self.run_until(until, |_, _| {});
    }

    fn ipv6(&self) -> Vec<IpCidr> {
        self.iface
            .ip_addrs()
            .iter()
            .copied()
            .filter(|a| matches!(a, IpCidr::Ipv6(_)))
            .collect()
    }

    fn ipv4(&self) -> Option<Ipv4Address> {
        self.iface.ipv4_addr()
    }
}

fn at(secs: i64) -> Instant {
    Instant::from_secs(secs)
}

#[test]
fn the_fallback_timer_counts_from_link_up() {
    let mut board = Board::new(false);
    // The link comes up 3 s after reset, as a real PHY's does.
    board.run_until(at(3), |b, wake| {
        assert_eq!(b.addressing.state(), AddressState::LinkDown);
        assert_eq!(wake, None, "nothing to wait for with the link down");
    });
    board.set_link(true);
    board.run_until(at(7), |b, wake| {
        if b.now > at(3) {
            assert_eq!(wake, Some(at(7)), "waits for link-up + timeout");
        }
    });
    board.run(at(8));
    assert_eq!(board.changes, [(at(7), AddressChange::Fallback(FALLBACK))]);
    assert_eq!(board.ipv4(), Some(FALLBACK.address()));
    assert_eq!(board.addressing.state(), AddressState::Fallback);
    assert_eq!(board.ipv6(), ipv6_addresses());
}

#[test]
fn a_link_that_comes_up_late_gets_a_lease() {
    let mut board = Board::new(true);
    board.run(at(3));
    assert!(board.changes.is_empty());
    assert_eq!(board.ipv4(), None);
    board.set_link(true);
    board.run(at(20));
    // The DHCP socket asks again the moment the link is up.
    assert_eq!(board.changes, [(at(3), AddressChange::Leased(LEASE))]);
    assert_eq!(board.dhcp.discovers.first(), Some(&at(3)));
    assert_eq!(board.ipv4(), Some(LEASE.address()));
    assert_eq!(board.addressing.state(), AddressState::Leased(LEASE));
    assert_eq!(board.ipv6(), ipv6_addresses());
}

#[test]
fn after_the_fallback_dhcp_keeps_asking_and_a_late_lease_replaces_the_static_address() {
    let mut board = Board::new(false);
    board.set_link(true);
    board.run(at(6));
    assert_eq!(board.changes, [(at(4), AddressChange::Fallback(FALLBACK))]);
    // The DHCP server comes up at 6 s; the next discover gets a lease.
    board.dhcp.answering = true;
    board.run(at(30));
    let (leased_at, change) = board.changes[1];
    assert_eq!(change, AddressChange::Leased(LEASE));
    assert_eq!(board.changes.len(), 2);
    assert!(leased_at > at(6), "leased at {leased_at}");
    assert_eq!(board.dhcp.discovers.last(), Some(&leased_at));
    assert_eq!(board.ipv4(), Some(LEASE.address()));
    assert_eq!(board.ipv6(), ipv6_addresses());
}

#[test]
fn link_down_takes_the_ipv4_address_and_link_up_asks_again() {
    let mut board = Board::new(true);
    board.set_link(true);
    board.run(at(5));
    assert_eq!(board.changes, [(at(0), AddressChange::Leased(LEASE))]);

    board.set_link(false);
    board.run(at(8));
    assert_eq!(board.changes[1..], [(at(5), AddressChange::Lost)]);
    assert_eq!(board.ipv4(), None);
    assert!(board.iface.routes().get_default_ipv4_route().is_none());
    assert_eq!(
        board.ipv6(),
        ipv6_addresses(),
        "IPv6 kept through link down"
    );

    board.set_link(true);
    board.run(at(10));
    assert_eq!(board.changes[2..], [(at(8), AddressChange::Leased(LEASE))]);
    assert_eq!(board.ipv6(), ipv6_addresses());

    // A static address goes with the link too, and comes back the same
    // way: a timeout after link-up.
    board.dhcp.answering = false;
    board.set_link(false);
    board.run(at(11));
    board.set_link(true);
    board.run(at(16));
    assert_eq!(
        board.changes[3..],
        [
            (at(10), AddressChange::Lost),
            (at(15), AddressChange::Fallback(FALLBACK))
        ]
    );
    board.set_link(false);
    board.run(at(17));
    assert_eq!(board.changes[5..], [(at(16), AddressChange::Lost)]);
    assert_eq!(board.ipv4(), None);
    assert_eq!(board.ipv6(), ipv6_addresses());
}

#[test]
fn a_lost_lease_keeps_ipv6_and_falls_back_a_timeout_later() {
    let mut board = Board::new(true);
    board.dhcp.lease_secs = 20;
    board.set_link(true);
    board.run(at(1));
    assert_eq!(board.changes, [(at(0), AddressChange::Leased(LEASE))]);
    // The DHCP server goes away: renewals go unanswered, the lease ends.
    board.dhcp.answering = false;
    board.run(at(30));
    assert_eq!(
        board.changes[1..],
        [
            (at(20), AddressChange::Lost),
            (at(24), AddressChange::Fallback(FALLBACK))
        ]
    );
    assert_eq!(board.ipv4(), Some(FALLBACK.address()));
    assert_eq!(board.ipv6(), ipv6_addresses());
}
