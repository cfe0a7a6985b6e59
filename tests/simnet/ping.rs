//! Ping through `PingLimiter`: a flood of echo requests faster than the
//! clock's millisecond is answered at the configured rate, not cut off.

use smoltcp::iface::{Config as IfaceConfig, Interface, SocketSet};
use smoltcp::phy::{ChecksumCapabilities, Device, RxToken};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, Icmpv4Packet, Icmpv4Repr, IpAddress, IpCidr, IpProtocol, Ipv4Packet, Ipv4Repr,
};

use multiserve::PingLimiter;

use crate::net::{CLIENT_IP, SERVER_IP};
use crate::wire::{wire, Dir, Port};

const SERVER_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);
const CLIENT_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);

/// An Ethernet frame from the client to the server carrying `payload`.
fn frame(ethertype: EthernetProtocol, payload_len: usize, emit: impl FnOnce(&mut [u8])) -> Vec<u8> {
    let eth = EthernetRepr {
        src_addr: CLIENT_MAC,
        dst_addr: SERVER_MAC,
        ethertype,
    };
    let mut buf = vec![0u8; eth.buffer_len() + payload_len];
    let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
    eth.emit(&mut f);
    emit(f.payload_mut());
    buf
}

/// The client asks who has the server's address: the server learns the
/// client's, so its echo replies need no ARP of their own.
fn arp_request() -> Vec<u8> {
    let arp = ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Request,
        source_hardware_addr: CLIENT_MAC,
        source_protocol_addr: CLIENT_IP,
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: SERVER_IP,
    };
    frame(EthernetProtocol::Arp, arp.buffer_len(), |b| {
        arp.emit(&mut ArpPacket::new_unchecked(b))
    })
}

/// An echo request with sequence number `seq`.
fn echo_request(seq: u16) -> Vec<u8> {
    let icmp = Icmpv4Repr::EchoRequest {
        ident: 0x1234,
        seq_no: seq,
        data: b"ping",
    };
    let ip = Ipv4Repr {
        src_addr: CLIENT_IP,
        dst_addr: SERVER_IP,
        next_header: IpProtocol::Icmp,
        payload_len: icmp.buffer_len(),
        hop_limit: 64,
    };
    let caps = ChecksumCapabilities::default();
    frame(
        EthernetProtocol::Ipv4,
        ip.buffer_len() + icmp.buffer_len(),
        |b| {
            let mut packet = Ipv4Packet::new_unchecked(b);
            ip.emit(&mut packet, &caps);
            icmp.emit(
                &mut Icmpv4Packet::new_unchecked(packet.payload_mut()),
                &caps,
            );
        },
    )
}

fn is_echo_reply(frame: &[u8]) -> bool {
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        return false;
    };
    let Ok(ip) = Ipv4Packet::new_checked(eth.payload()) else {
        return false;
    };
    let Ok(icmp) = Icmpv4Packet::new_checked(ip.payload()) else {
        return false;
    };
    ip.next_header() == IpProtocol::Icmp
        && matches!(
            Icmpv4Repr::parse(&icmp, &ChecksumCapabilities::default()),
            Ok(Icmpv4Repr::EchoReply { .. })
        )
}

/// 2,000 pings a second for 10 s against a limit of 100 a second (bursts
/// of 10) get about 1,000 answers.
///
/// The bound, from the token bucket: in any span of `T` seconds a bucket
/// of rate `r` and capacity `b` lets through at most `b + r·T` requests,
/// here 10 + 100 × 10 = 1,010. It lets through at least `r·T` less what
/// is lost to waiting for a whole token: with requests every 0.5 ms, a
/// token becomes whole at most 0.5 ms before a request takes it, so each
/// of the ~1,000 tokens waits at most 0.5 ms, and over 10 s that is at most
/// 0.5 s (50 tokens) of refill time: at least 950 (95 % of `r·T`).
#[test]
fn a_ping_flood_faster_than_a_millisecond_is_answered_at_the_limit() {
    const RATE: u32 = 100;
    const BURST: u32 = 10;
    const PERIOD: Duration = Duration::from_micros(500);
    const RUN: Duration = Duration::from_secs(10);

    let (server_port, mut client_port, in_flight) = wire();
    let mut device = PingLimiter::new(server_port, RATE, BURST);
    let mut iface = Interface::new(
        IfaceConfig::new(SERVER_MAC.into()),
        &mut device,
        Instant::ZERO,
    );
    iface.update_ip_addrs(|addrs| {
        addrs
            .push(IpCidr::new(IpAddress::Ipv4(SERVER_IP), 24))
            .unwrap()
    });
    let mut sockets = SocketSet::new(vec![]);
    // Echo replies that reached the client.
    let drain = |client_port: &mut Port, now| {
        let mut replies = 0u64;
        while let Some((rx, _)) = client_port.receive(now) {
            replies += u64::from(rx.consume(is_echo_reply));
        }
        replies
    };

    in_flight.inject(Dir::ToServer, arp_request());
    iface.poll(Instant::ZERO, &mut device, &mut sockets);
    assert_eq!(drain(&mut client_port, Instant::ZERO), 0);

    let pings = (RUN.total_micros() / PERIOD.total_micros()) as u16;
    let mut now = Instant::ZERO;
    let mut replies = 0u64;
    for seq in 0..pings {
        in_flight.inject(Dir::ToServer, echo_request(seq));
        iface.poll(now, &mut device, &mut sockets);
        replies += drain(&mut client_port, now);
        now += PERIOD;
    }
    let limit = u64::from(RATE) * RUN.secs();
    println!(
        "{pings} pings in {RUN}: {replies} answered, {} dropped",
        device.dropped()
    );
    assert_eq!(replies + device.dropped(), u64::from(pings));
    assert!(
        replies <= limit + u64::from(BURST),
        "{replies} answers exceed the bucket's bound"
    );
    assert!(
        replies >= limit * 95 / 100,
        "{replies} answers: the limiter stopped refilling"
    );
}
