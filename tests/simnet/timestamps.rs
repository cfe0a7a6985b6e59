//! TCP timestamps (RFC 7323): offered back to a client that offers them,
//! on every segment, again on a socket whose last client had none, and
//! never when the configuration turns them off.

use std::cell::RefCell;
use std::rc::Rc;

use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp::State;
use smoltcp::time::Duration;
use smoltcp::wire::TcpTimestampRepr;

use multiserve::{Config, Reverse, Service};

use crate::net::{set_client_tsval, Net, Setup, CLIENT_TSVAL, PORT};
use crate::wire::{tcp_segment, Dir, Segment};

/// On a lossless wire a handshake or a closing handshake takes a few
/// milliseconds of virtual time (one ACK delay of 1 ms each way at most).
const QUICK: Duration = Duration::from_secs(1);

/// Every segment the server sends from [`PORT`], as the wire saw it.
fn record_server_segments<S: Service, const N: usize>(
    net: &Net<S, N>,
) -> Rc<RefCell<Vec<Segment>>> {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    net.in_flight.set_filter(move |dir, frame| {
        if let Some(seg) = tcp_segment(frame) {
            if dir == Dir::ToClient && seg.src_port == PORT {
                s.borrow_mut().push(seg);
            }
        }
        true
    });
    seen
}

/// The segments of `seen` sent to the client at `port`.
fn to_port(seen: &Rc<RefCell<Vec<Segment>>>, port: u16) -> Vec<Segment> {
    seen.borrow()
        .iter()
        .filter(|s| s.dst_port == port)
        .copied()
        .collect()
}

fn local_port<S: Service, const N: usize>(net: &mut Net<S, N>, h: SocketHandle) -> u16 {
    net.client(h).local_endpoint().expect("connected").port
}

/// Connect a client, wait for the handshake; `None` if it did not finish
/// within [`QUICK`].
fn connect_quickly<S: Service, const N: usize>(net: &mut Net<S, N>) -> SocketHandle {
    let (rx, tx) = (net.setup.client_rx, net.setup.client_tx);
    let h = net.connect_with(rx, tx);
    assert!(
        net.run_until(QUICK, |n| n.client(h).state() == State::Established),
        "handshake not done within {QUICK}: {}",
        net.client(h).state()
    );
    h
}

/// The client closes after an exchange; the server closes its side too,
/// and every socket listens again.
fn close_and_listen_again<S: Service, const N: usize>(net: &mut Net<S, N>, h: SocketHandle) {
    net.client(h).close();
    assert!(
        net.run_until(QUICK, |n| {
            matches!(n.client(h).state(), State::TimeWait | State::Closed) && n.all_listening()
        }),
        "not closed and listening again within {QUICK}: client {}, server {:?}",
        net.client(h).state(),
        net.server_states()
    );
}

/// Every segment of `segments` carries a timestamp that echoes the
/// client's clock (the SYN-ACK included).
fn assert_all_timestamped(segments: &[Segment]) {
    assert!(
        segments.iter().any(|s| s.syn && s.ack),
        "no SYN-ACK seen: {segments:?}"
    );
    for seg in segments {
        assert!(
            matches!(seg.timestamp, Some(TcpTimestampRepr { tsecr, .. }) if tsecr == CLIENT_TSVAL),
            "a segment from the server without the client's timestamp echoed: {seg:?}"
        );
    }
}

#[test]
fn client_with_timestamps_gets_them_on_every_segment() {
    let mut net: Net<Reverse, 4> =
        Net::new(Config::default(), Reverse::default(), Setup::default());
    let seen = record_server_segments(&net);
    net.client_timestamps = true;
    let c = connect_quickly(&mut net);
    assert!(
        net.client(c).timestamp_enabled(),
        "the client's SYN-ACK carried no timestamp"
    );
    assert_eq!(net.exchange(c, b"stamped\n", 8), b"depmats\n");
    // Answers that need several full segments: three lines of 1000
    // bytes (a segment carries at most 1448 with the option).
    let mut line = vec![b'x'; 999];
    line.push(b'\n');
    let lines = line.repeat(3);
    net.send(c, &lines);
    assert_eq!(net.receive(c, lines.len(), QUICK), lines);
    let port = local_port(&mut net, c);
    close_and_listen_again(&mut net, c);
    let segments = to_port(&seen, port);
    assert!(
        segments.iter().any(|s| s.fin),
        "no FIN from the server: {segments:?}"
    );
    assert!(
        segments.iter().filter(|s| s.payload_len > 0).count() >= 3,
        "expected the answers in several segments: {segments:?}"
    );
    assert_all_timestamped(&segments);
}

#[test]
fn socket_offers_timestamps_again_after_a_client_without_them() {
    // One socket: the client after the one without timestamps is served
    // by the same socket.
    let config = Config {
        clients: Some(1),
        spare: Some(0),
        ..Config::default()
    };
    let mut net: Net<Reverse, 1> = Net::new(config, Reverse::default(), Setup::default());
    let seen = record_server_segments(&net);
    for round in 0..2 {
        net.client_timestamps = false;
        let plain = connect_quickly(&mut net);
        assert_eq!(net.exchange(plain, b"plain\n", 6), b"nialp\n");
        let port = local_port(&mut net, plain);
        close_and_listen_again(&mut net, plain);
        let segments = to_port(&seen, port);
        assert!(
            segments.iter().all(|s| s.timestamp.is_none()),
            "round {round}: a timestamp sent to a client that offered none: {segments:?}"
        );

        net.client_timestamps = true;
        let stamped = connect_quickly(&mut net);
        assert!(
            net.client(stamped).timestamp_enabled(),
            "round {round}: the socket's last client had no timestamps, and this one's \
             SYN-ACK carried none: {:?}",
            to_port(&seen, local_port(&mut net, stamped))
        );
        assert_eq!(net.exchange(stamped, b"stamped\n", 8), b"depmats\n");
        let port = local_port(&mut net, stamped);
        close_and_listen_again(&mut net, stamped);
        assert_all_timestamped(&to_port(&seen, port));
    }
}

#[test]
fn timestamps_off_never_offers_them() {
    let config = Config {
        timestamps: false,
        ..Config::default()
    };
    let mut net: Net<Reverse, 4> = Net::new(config, Reverse::default(), Setup::default());
    let seen = record_server_segments(&net);
    net.client_timestamps = true;
    let c = connect_quickly(&mut net);
    assert!(
        !net.client(c).timestamp_enabled(),
        "the client kept timestamps: the SYN-ACK carried one"
    );
    assert_eq!(net.exchange(c, b"plain\n", 6), b"nialp\n");
    let port = local_port(&mut net, c);
    close_and_listen_again(&mut net, c);
    let segments = to_port(&seen, port);
    assert!(
        segments.iter().any(|s| s.syn && s.ack),
        "no SYN-ACK seen: {segments:?}"
    );
    assert!(
        segments.iter().all(|s| s.timestamp.is_none()),
        "a timestamp sent with timestamps off: {segments:?}"
    );
}

/// A client whose SYN-ACK is lost sends its SYN again with a newer TSval.
/// The server's socket, in SYN-RECEIVED, takes no segment without an ACK,
/// so its SYN-ACK sent again after its 1 s RTO echoes the first SYN's
/// TSval. A Linux client takes an echo between its first SYN's TSval and
/// its latest (`tcp_rcv_synsent_state_process`: else `PAWSActive`, and a
/// reset): every SYN-ACK's echo must be in that range, and the handshake
/// over at the server's first SYN-ACK retransmission.
#[test]
fn syn_ack_after_a_retransmitted_syn_echoes_this_connections_syn() {
    let mut net: Net<Reverse, 4> =
        Net::new(Config::default(), Reverse::default(), Setup::default());
    net.client_timestamps = true;
    set_client_tsval(CLIENT_TSVAL);
    // Each client SYN moves the client's clock on by 1 ms for the next one;
    // the server's SYN-ACKs are lost until the client has sent two SYNs.
    let syns = Rc::new(RefCell::new(Vec::<u32>::new()));
    let syn_acks = Rc::new(RefCell::new(Vec::<(u32, bool)>::new()));
    let (s, a) = (syns.clone(), syn_acks.clone());
    net.in_flight.set_filter(move |dir, frame| {
        let Some(seg) = tcp_segment(frame) else {
            return true;
        };
        let tsval = seg.timestamp.map(|t| t.tsval);
        if dir == Dir::ToServer && seg.syn && !seg.ack {
            let tsval = tsval.expect("the client's SYN carries a timestamp");
            s.borrow_mut().push(tsval);
            set_client_tsval(tsval + 1);
            true
        } else if dir == Dir::ToClient && seg.syn && seg.ack {
            let delivered = s.borrow().len() >= 2;
            let tsecr = seg
                .timestamp
                .expect("the SYN-ACK carries a timestamp")
                .tsecr;
            a.borrow_mut().push((tsecr, delivered));
            delivered
        } else {
            true
        }
    });
    let (rx, tx) = (net.setup.client_rx, net.setup.client_tx);
    let c = net.connect_with(rx, tx);
    // The client's SYN again at 1 s, the server's SYN-ACK again at 1 s
    // (lost if it went first) and 3 s; the wire takes no time, and 100 ms
    // is far more than the ACK delay.
    let within = Duration::from_millis(3100);
    let done = net.run_until(within, |n| n.client(c).state() == State::Established);
    let (syns, syn_acks) = (syns.borrow().clone(), syn_acks.borrow().clone());
    assert!(
        done,
        "not established within {within} (client SYN TSvals {syns:?}, server SYN-ACK TSecrs \
         and whether delivered {syn_acks:?})"
    );
    let (first, latest) = (syns[0], syns[syns.len() - 1]);
    assert!(syns.len() >= 2, "the client sent its SYN once: {syns:?}");
    for (tsecr, delivered) in &syn_acks {
        assert!(
            (first..=latest).contains(tsecr),
            "a SYN-ACK (delivered: {delivered}) echoes {tsecr}, not a TSval of this \
             connection's SYNs {syns:?}: a Linux client would reset it"
        );
    }
    assert_eq!(net.exchange(c, b"late\n", 5), b"etal\n");
}
