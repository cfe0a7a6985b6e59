//! ICMP echo ("ping") over a raw socket, built by hand: no `ping` program
//! needed.

use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use socket2::{SockAddr, Socket};

const ECHO_REQUEST_V4: u8 = 8;
const ECHO_REPLY_V4: u8 = 0;
const ECHO_REQUEST_V6: u8 = 128;
const ECHO_REPLY_V6: u8 = 129;

/// The Internet checksum (RFC 1071).
fn checksum(bytes: &[u8]) -> u16 {
    let mut sum = 0u32;
    for pair in bytes.chunks(2) {
        let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn echo_request(ip: IpAddr, id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let kind = if ip.is_ipv4() {
        ECHO_REQUEST_V4
    } else {
        ECHO_REQUEST_V6
    };
    let mut packet = vec![kind, 0, 0, 0];
    packet.extend_from_slice(&id.to_be_bytes());
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend_from_slice(payload);
    if ip.is_ipv4() {
        // The kernel fills in the ICMPv6 checksum (it covers a pseudo
        // header); the ICMPv4 one is ours to compute.
        let sum = checksum(&packet);
        packet[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    packet
}

/// One datagram from `socket`, or `None` when its read timeout passed.
fn read_datagram(mut socket: &Socket, buf: &mut [u8]) -> io::Result<Option<usize>> {
    match socket.read(buf) {
        Ok(n) => Ok(Some(n)),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The ICMP message in what a raw socket for `ip`'s family delivered: a
/// raw IPv4 socket delivers the IP header too, IPv6 does not.
fn icmp_of(ip: IpAddr, datagram: &[u8]) -> &[u8] {
    if ip.is_ipv4() {
        let header = usize::from(datagram.first().copied().unwrap_or(0) & 0x0f) * 4;
        &datagram[header.min(datagram.len())..]
    } else {
        datagram
    }
}

/// The sequence number of `icmp` if it is an echo reply (for `ip`'s
/// family) with identifier `id`.
fn echo_reply_seq(ip: IpAddr, icmp: &[u8], id: u16) -> Option<u16> {
    let reply = if ip.is_ipv4() {
        ECHO_REPLY_V4
    } else {
        ECHO_REPLY_V6
    };
    (icmp.len() >= 8 && icmp[0] == reply && u16::from_be_bytes([icmp[4], icmp[5]]) == id)
        .then(|| u16::from_be_bytes([icmp[6], icmp[7]]))
}

/// Sends one echo request to `ip` and waits (at most 5 s) for the matching
/// reply: same identifier, sequence number and payload.
pub fn ping(socket: &Socket, ip: IpAddr, id: u16, seq: u16) -> io::Result<()> {
    let payload = format!("multiserve ping {seq:05} abcdefghijklmnopqrstuvwxyz").into_bytes();
    let request = echo_request(ip, id, seq, &payload);
    socket.set_read_timeout(Some(Duration::from_millis(500)))?;
    socket.send_to(&request, &SockAddr::from(SocketAddr::new(ip, 0)))?;
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut buf = [0u8; 2048];
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        let Some(n) = read_datagram(socket, &mut buf)? else {
            continue;
        };
        let icmp = icmp_of(ip, &buf[..n]);
        if echo_reply_seq(ip, icmp, id) != Some(seq) {
            seen.push(icmp.first().copied().unwrap_or(0));
            continue;
        }
        if icmp[8..] != payload[..] {
            return Err(io::Error::other(format!(
                "echo reply #{seq} with a different payload: {:?}",
                icmp[8..].escape_ascii().to_string()
            )));
        }
        if ip.is_ipv4() && checksum(icmp) != 0 {
            return Err(io::Error::other("echo reply with a bad checksum"));
        }
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::TimedOut,
        format!("no echo reply within 5 s (other ICMP types seen: {seen:?})"),
    ))
}

/// Sends `count` echo requests to `ip` back to back, then counts the
/// matching replies that arrive within `listen`.
pub fn flood(
    socket: &Socket,
    ip: IpAddr,
    id: u16,
    count: u16,
    listen: Duration,
) -> io::Result<usize> {
    for seq in 0..count {
        let request = echo_request(ip, id, seq, b"flood");
        socket.send_to(&request, &SockAddr::from(SocketAddr::new(ip, 0)))?;
    }
    socket.set_read_timeout(Some(Duration::from_millis(100)))?;
    let deadline = Instant::now() + listen;
    let mut buf = [0u8; 2048];
    let mut replies = 0;
    while Instant::now() < deadline {
        let Some(n) = read_datagram(socket, &mut buf)? else {
            continue;
        };
        if echo_reply_seq(ip, icmp_of(ip, &buf[..n]), id).is_some() {
            replies += 1;
        }
    }
    Ok(replies)
}
