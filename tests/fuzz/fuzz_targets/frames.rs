//! Whole Ethernet frames of arbitrary bytes injected into the interface a
//! server runs on (the simulated network of `tests/simnet`), alternated
//! with a real client that must keep getting exact answers. Afterwards
//! every slot must listen again and the counters must add up.
//!
//! Input: records, each starting with a kind byte.
//! - `0`: a raw frame: one length byte (times 6), then that many bytes.
//! - `1`: a TCP segment built from the next bytes (source port, flags,
//!   sequence and acknowledgement numbers, window, payload) with valid
//!   checksums, from the client's address but never its port, so it reaches
//!   the TCP state machine of the pool.
//! - `2`: the client sends a line made of the next bytes and must get it
//!   back reversed, exactly.
//! - `3`: time passes (next byte modulo 50, times 100 ms).
//!
//! Out of scope, so filtered out: ARP claiming the client's address (that
//! moves the client, it is no fault of the server) and segments from the
//! client's own port (a forger who knows the 4-tuple may reset it).
#![no_main]

use libfuzzer_sys::fuzz_target;
use smoltcp::socket::tcp::State;
use smoltcp::time::Duration;
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, IpAddress, IpProtocol, Ipv4Packet, TcpPacket,
    TcpSeqNumber,
};

use multiserve::{Config, Reverse};

use multiserve_simnet::{net, wire};
use net::{Net, Setup, CLIENT_IP, PORT, SERVER_IP};
use wire::{tcp_segment, Dir};

const SERVER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];

fn take<'a>(data: &mut &'a [u8], n: usize) -> &'a [u8] {
    let n = n.min(data.len());
    let (head, tail) = data.split_at(n);
    *data = tail;
    head
}

fn byte(data: &mut &[u8]) -> u8 {
    take(data, 1).first().copied().unwrap_or(0)
}

/// A TCP/IPv4 frame to the server with correct checksums.
fn segment(data: &mut &[u8]) -> Vec<u8> {
    let f = take(data, 12);
    let get = |i: usize| f.get(i).copied().unwrap_or(0);
    let src_port = 40000 + u16::from(get(0) % 8);
    let dst_port = if get(0) & 0x80 != 0 {
        PORT
    } else {
        u16::from(get(0))
    };
    let flags = get(1);
    let seq = u32::from_be_bytes([get(2), get(3), get(4), get(5)]);
    let ack = u32::from_be_bytes([get(6), get(7), get(8), get(9)]);
    let window = u16::from_be_bytes([get(10), get(11)]);
    let len = usize::from(byte(data));
    let payload = take(data, len);

    let tcp_len = 20 + payload.len();
    let mut frame = vec![0u8; 14 + 20 + tcp_len];
    let mut eth = EthernetFrame::new_unchecked(&mut frame[..]);
    eth.set_dst_addr(EthernetAddress(SERVER_MAC));
    eth.set_src_addr(EthernetAddress(CLIENT_MAC));
    eth.set_ethertype(EthernetProtocol::Ipv4);
    let mut ip = Ipv4Packet::new_unchecked(eth.payload_mut());
    ip.set_version(4);
    ip.set_header_len(20);
    ip.set_total_len((20 + tcp_len) as u16);
    ip.set_hop_limit(64);
    ip.set_next_header(IpProtocol::Tcp);
    ip.set_src_addr(CLIENT_IP);
    ip.set_dst_addr(SERVER_IP);
    ip.set_dont_frag(true);
    ip.fill_checksum();
    let mut tcp = TcpPacket::new_unchecked(ip.payload_mut());
    tcp.set_src_port(src_port);
    tcp.set_dst_port(dst_port);
    tcp.set_seq_number(TcpSeqNumber(seq as i32));
    tcp.set_ack_number(TcpSeqNumber(ack as i32));
    tcp.set_header_len(20);
    tcp.set_fin(flags & 0x01 != 0);
    tcp.set_syn(flags & 0x02 != 0);
    tcp.set_rst(flags & 0x04 != 0);
    tcp.set_psh(flags & 0x08 != 0);
    tcp.set_ack(flags & 0x10 != 0);
    tcp.set_urg(flags & 0x20 != 0);
    tcp.set_window_len(window);
    tcp.payload_mut().copy_from_slice(payload);
    tcp.fill_checksum(&IpAddress::Ipv4(CLIENT_IP), &IpAddress::Ipv4(SERVER_IP));
    frame
}

/// An ARP frame whose sender claims to be the client.
fn spoofs_client_arp(frame: &[u8]) -> bool {
    frame.len() >= 42 && frame[12..14] == [0x08, 0x06] && frame[28..32] == CLIENT_IP.octets()
}

fuzz_target!(|data: &[u8]| {
    let config = Config {
        idle_timeout: Some(Duration::from_secs(20)),
        handshake_timeout: Duration::from_secs(5),
        ..Config::default()
    };
    let mut net: Net<Reverse, 4> = Net::new(config, Reverse::default(), Setup::default());
    let client = net.connect();
    let client_port = net.client(client).local_endpoint().map(|e| e.port);
    let mut data = data;
    let mut lines = 0u64;
    let mut last_exchange = net.now;
    while !data.is_empty() {
        match byte(&mut data) % 4 {
            0 => {
                let len = usize::from(byte(&mut data)) * 6;
                let frame = take(&mut data, len).to_vec();
                let own_port = tcp_segment(&frame).map(|s| s.src_port) == client_port;
                if !spoofs_client_arp(&frame) && !own_port {
                    net.in_flight.inject(Dir::ToServer, frame);
                    net.run_for(Duration::from_millis(1));
                }
            }
            1 => {
                let frame = segment(&mut data);
                net.in_flight.inject(Dir::ToServer, frame);
                net.run_for(Duration::from_millis(1));
            }
            2 => {
                let len = usize::from(byte(&mut data) % 64);
                let text: Vec<u8> = take(&mut data, len).iter().map(|b| b'a' + b % 26).collect();
                let line = String::from_utf8(text).unwrap_or_default();
                let sent = format!("{line}\n");
                let answer = net.exchange(client, sent.as_bytes(), sent.len());
                assert_eq!(answer, net::rev_line(&line), "wrong answer");
                lines += 1;
                last_exchange = net.now;
            }
            _ => {
                let ms = u64::from(byte(&mut data) % 50) * 100;
                net.run_for(Duration::from_millis(ms));
            }
        }
        // The client talks often enough not to be idle (the idle timeout
        // stays on, to free what injected frames opened).
        if net.now - last_exchange > Duration::from_secs(10) {
            assert_eq!(net.exchange(client, b"ping\n", 5), b"gnip\n");
            last_exchange = net.now;
        }
        assert_eq!(
            net.client(client).state(),
            State::Established,
            "the client lost its connection"
        );
    }
    // A last exchange, then the client leaves: every slot comes back.
    assert_eq!(net.exchange(client, b"end\n", 4), b"dne\n");
    net.client(client).close();
    let ok = net.run_until(Duration::from_secs(120), |n| {
        n.all_listening() && n.server.stats().active == 0
    });
    assert!(
        ok,
        "slots lost: {:?} {:?}",
        net.server_states(),
        net.phases()
    );
    let s = *net.server.stats();
    assert_eq!(s.accepted, s.ended() + u64::from(s.active));
    assert!(s.answered >= lines + 1);
});
