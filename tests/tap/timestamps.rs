//! TCP timestamps (RFC 7323) with Linux clients: negotiated by default,
//! and again on every socket after clients that had them turned off.

use std::net::{Shutdown, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Type};

use crate::conformance::{self, Target};
use crate::netns::Netns;
use crate::server::Server;

/// `TCPI_OPT_TIMESTAMPS` of `linux/tcp.h`: the connection uses timestamps.
const TCPI_OPT_TIMESTAMPS: u8 = 1;

/// Whether the kernel's connection `stream` negotiated timestamps, from
/// its `TCP_INFO`.
fn uses_timestamps(stream: &TcpStream) -> bool {
    // SAFETY: tcp_info is plain old data; all zeroes is a valid value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: the pointer and length describe `info`, which outlives the
    // call; the descriptor is the stream's own.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    assert_eq!(rc, 0, "TCP_INFO: {}", std::io::Error::last_os_error());
    info.tcpi_options & TCPI_OPT_TIMESTAMPS != 0
}

/// Turn the kernel's TCP timestamps on or off in the namespace.
fn kernel_timestamps(ns: &Netns, on: bool) {
    let value = if on { "1" } else { "0" };
    ns.run(move || std::fs::write("/proc/sys/net/ipv4/tcp_timestamps", value))
        .expect("net.ipv4.tcp_timestamps in the namespace");
}

/// One client after the other: connect, note whether timestamps were
/// negotiated, exchange a line, close, and see the server's FIN.
fn one_client(server: &Server, i: usize) -> bool {
    let mut stream = conformance::client(server);
    let stamped = uses_timestamps(&stream);
    let line = format!("client {i}\n");
    conformance::exchange(
        &mut stream,
        line.as_bytes(),
        &conformance::reversed_line(line.as_bytes()),
    );
    stream.shutdown(Shutdown::Write).expect("shutdown");
    conformance::expect_eof(&mut stream);
    stamped
}

#[test]
fn linux_client_negotiates_timestamps() {
    let server = serve!();
    let mut stream = conformance::client(&server);
    assert!(
        uses_timestamps(&stream),
        "a default Linux client got no timestamps from the server"
    );
    conformance::exchange(&mut stream, b"stamped\n", b"depmats\n");
}

#[test]
fn no_timestamps_turns_them_off() {
    let server = serve!(&["--no-timestamps"]);
    let mut stream = conformance::client(&server);
    assert!(
        !uses_timestamps(&stream),
        "timestamps negotiated with --no-timestamps"
    );
    conformance::exchange(&mut stream, b"plain\n", b"nialp\n");
}

/// smoltcp drops a socket's timestamps when a client offers none; the
/// server gives them back each time the socket listens again.
#[test]
fn sockets_offer_timestamps_again_after_clients_without_them() {
    let ns = netns!();
    // Three sockets in use: two client places and a spare one.
    let server = Server::start(
        &ns,
        &["--clients", "2", "--spare", "1", "--stats-every", "1"],
    );
    let sockets = 3;

    kernel_timestamps(&ns, false);
    for i in 0..2 * sockets {
        assert!(
            !one_client(&server, i),
            "client {i}: timestamps with net.ipv4.tcp_timestamps = 0"
        );
    }
    // Every connection is over on the server's side too.
    conformance::wait_counters(&server, "every connection over", server.io_timeout(), |c| {
        c.accepted == 2 * sockets as u64 && c.active == 0
    });

    kernel_timestamps(&ns, true);
    let without: Vec<usize> = (0..sockets)
        .filter(|&i| !one_client(&server, 2 * sockets + i))
        .collect();
    assert!(
        without.is_empty(),
        "clients {without:?} (of {sockets}, one after the other) got no timestamps after \
         clients without them"
    );
}

/// The namespace's count of SYN-ACKs its kernel clients rejected because
/// their timestamp echo (TSecr) was not between the time of the client's
/// first SYN and now (`PAWSActive`; each answered with a reset).
fn paws_active_rejected(ns: &Netns) -> u64 {
    ns.tcp_ext("PAWSActive").expect("PAWSActive in TcpExt")
}

/// A Linux client whose first SYN-ACK is lost sends its SYN again after
/// 1 s (its initial RTO). The server's socket, in SYN-RECEIVED, ignores
/// that SYN (smoltcp answers only the first) and sends its SYN-ACK again
/// after 1 s (smoltcp's initial RTO), echoing the TSval of the client's
/// first SYN: Linux takes an echo between the time of its first SYN and
/// now, so the handshake is over before the server's next SYN-ACK, at 3
/// s, and no SYN-ACK is rejected for its timestamp echo.
#[test]
fn lost_syn_ack_costs_one_retransmission() {
    let ns = netns!();
    let server = Server::start(&ns, &["--drop-syn-acks", "1"]);
    let rejected_before = paws_active_rejected(&ns);
    let socket = server
        .socket(Domain::IPV4, Type::STREAM, Protocol::TCP)
        .expect("socket");
    let start = Instant::now();
    // Bounded by the server's SYN-ACKs at 0, 1, 3 and 7 s.
    let connected = socket.connect_timeout(&SockAddr::from(server.addr()), Duration::from_secs(10));
    let took = start.elapsed();
    let rejected = paws_active_rejected(&ns) - rejected_before;
    assert!(
        connected.is_ok() && took < Duration::from_secs(3),
        "the connect whose first SYN-ACK was lost: {connected:?} after {took:?} (the server's \
         SYN-ACK goes again at 1 s and 3 s); SYN-ACKs rejected for their timestamp echo \
         (PAWSActive): {rejected}\n{}",
        server.process.output()
    );
    assert_eq!(rejected, 0, "SYN-ACKs rejected for their timestamp echo");
    let mut stream: TcpStream = socket.into();
    assert!(uses_timestamps(&stream), "no timestamps negotiated");
    conformance::exchange(&mut stream, b"late\n", b"etal\n");
}
