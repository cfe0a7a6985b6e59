//! Many clients at once, and what the client after the last slot gets.

use smoltcp::socket::tcp::State;
use smoltcp::time::Duration;

use multiserve::Role;
use multiserve::{Config, FullPolicy, Reverse, Server};

use crate::net::{rev_line, slot_storage, Net, Setup};

const N: usize = 8;

#[test]
fn every_client_gets_only_its_own_answers() {
    // A pool of 12: by default 8 clients and 4 spare sockets.
    let mut net: Net<Reverse, 12> =
        Net::new(Config::default(), Reverse::default(), Setup::default());
    let clients: Vec<_> = (0..N).map(|_| net.connect()).collect();
    // The last ACK of the handshake is still on its way.
    assert!(
        net.run_until(Duration::from_secs(1), |n| n.server.stats().active
            == N as u32)
    );
    let roles: Vec<_> = net.phases();
    assert_eq!(roles[..N], [Role::Serving; N]);
    assert_eq!(roles[N..], [Role::Listening; 4], "the spare sockets listen");

    let mut expected = vec![Vec::new(); N];
    for round in 0..10 {
        // Interleave: every client sends before any answer is read, and in
        // a different order each round.
        for k in 0..N {
            let i = (k * 3 + round) % N;
            let line = format!("client {i} round {round}");
            net.send(clients[i], format!("{line}\n").as_bytes());
            expected[i].extend(rev_line(&line));
        }
        net.run_for(Duration::from_millis(10));
    }
    for (i, &c) in clients.iter().enumerate() {
        let got = net.receive(c, expected[i].len(), Duration::from_secs(10));
        assert_eq!(got, expected[i], "client {i}");
    }
    assert_eq!(net.server.stats().answered, 10 * N as u64);
    assert_eq!(net.server.stats().peak_active, N as u32);
}

/// Four clients served by a pool of 8 (4 clients, 2 spare: 2 unused), told
/// the full-server answer at once.
fn full_server(policy: FullPolicy) -> (Net<Reverse, N>, Vec<smoltcp::iface::SocketHandle>) {
    let config = Config {
        clients: Some(4),
        when_full: policy,
        queue_wait: Duration::ZERO,
        ..Config::default()
    };
    let mut net = Net::new(config, Reverse::default(), Setup::default());
    assert_eq!((net.server.clients(), net.server.spare()), (4, 2));
    let clients: Vec<_> = (0..4).map(|_| net.connect()).collect();
    // Sockets beyond the clients and their spares are never used.
    assert_eq!(&net.server_states()[6..], &[State::Closed; 2]);
    (net, clients)
}

#[test]
fn busy_policy_tells_the_extra_client_and_closes() {
    let (mut net, clients) = full_server(FullPolicy::Busy);
    let extra = net.connect_with(1024, 1024);
    let busy = b"busy: all 4 slots are in use, try again later\n";
    let got = net.receive(extra, busy.len(), Duration::from_secs(5));
    assert_eq!(got, busy);
    // And the server closed: the client sees the FIN.
    assert!(
        net.run_until(Duration::from_secs(5), |n| n.client(extra).state()
            == State::CloseWait)
    );
    assert_eq!(net.server.stats().refused_busy, 1);
    assert_eq!(net.server.stats().accepted, 4);

    // The served clients never noticed.
    for (i, &c) in clients.iter().enumerate() {
        let line = format!("still here {i}");
        assert_eq!(
            net.exchange(c, format!("{line}\n").as_bytes(), line.len() + 1),
            rev_line(&line)
        );
    }

    // One leaves; the next client is served.
    net.client(extra).close();
    net.client(clients[0]).close();
    assert!(net.run_until(Duration::from_secs(5), |n| n
        .phases()
        .contains(&Role::Listening)));
    let next = net.connect();
    assert_eq!(net.exchange(next, b"next\n", 5), b"txen\n");
    assert_eq!(net.server.stats().accepted, 5);
}

#[test]
fn reset_policy_refuses_the_extra_client() {
    let (mut net, clients) = full_server(FullPolicy::Reset);
    let extra = net.connect_with(1024, 1024);
    // smoltcp answers the SYN with RST: the connect fails at once.
    assert!(
        net.run_until(Duration::from_millis(100), |n| n.client(extra).state()
            == State::Closed)
    );
    assert_eq!(net.take(extra), b"");

    net.client(clients[3]).abort();
    assert!(net.run_until(Duration::from_secs(5), |n| n
        .phases()
        .contains(&Role::Listening)));
    let next = net.connect();
    assert_eq!(net.exchange(next, b"in\n", 3), b"ni\n");
}

#[test]
fn pool_split_and_buffers_are_checked() {
    use multiserve::Buffer;
    use multiserve::{Error, Framing, Resources};
    use smoltcp::iface::SocketSet;
    use smoltcp::socket::tcp;

    let sock = |rx: usize, tx: usize| {
        tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; rx]),
            tcp::SocketBuffer::new(vec![0; tx]),
        )
    };
    let mut sockets = SocketSet::new(vec![]);
    let make_with = |sockets: &mut SocketSet<'static>, rx, tx, config: Config, entries| {
        let resources = Resources {
            pool: [sock(rx, tx), sock(2048, 2048), sock(0, 0)],
            storage: slot_storage(entries),
            input: vec![0u8; 2048].leak(),
            output: vec![0u8; 2048].leak(),
        };
        Server::new(
            config,
            Reverse::new(Framing::Line, 1024),
            resources,
            sockets,
        )
        .map(|s| (s.clients(), s.spare(), s.pool_size()))
    };
    let make = |sockets: &mut SocketSet<'static>, rx, tx, config: Config| {
        make_with(sockets, rx, tx, config, 3).map(|(clients, spare, _)| (clients, spare))
    };
    // The defaults: two thirds of the pool serve, a third is spare; the
    // unused third socket needs no buffers.
    let one_spare = Config {
        clients: Some(1),
        ..Config::default()
    };
    assert_eq!(make(&mut sockets, 2048, 2048, one_spare), Ok((1, 1)));
    assert_eq!(
        make(&mut sockets, 1000, 2048, one_spare),
        Err(Error::BufferTooSmall {
            buffer: Buffer::Receive(0),
            needed: 1026,
            got: 1000
        })
    );
    let config = Config {
        clients: Some(3),
        spare: Some(1),
        ..Config::default()
    };
    assert_eq!(
        make(&mut sockets, 2048, 2048, config),
        Err(Error::PoolTooSmall {
            clients: Some(3),
            spare: Some(1),
            pool: 3
        })
    );
    let config = Config {
        clients: Some(0),
        ..Config::default()
    };
    assert!(matches!(
        make(&mut sockets, 2048, 2048, config),
        Err(Error::PoolTooSmall { .. })
    ));
    // The storage sizes the pool; the pool gives one socket per entry.
    assert_eq!(
        make_with(&mut sockets, 2048, 2048, one_spare, 2),
        Err(Error::PoolMismatch {
            sockets: 3,
            storage: 2
        })
    );
    assert_eq!(
        make_with(&mut sockets, 2048, 2048, one_spare, 4),
        Err(Error::PoolMismatch {
            sockets: 3,
            storage: 4
        })
    );
    assert_eq!(Config::default().split(12), Some((8, 4)));
    assert_eq!(Config::default().split(96), Some((64, 32)));
    let sixteen = Config {
        clients: Some(16),
        ..Config::default()
    };
    assert_eq!(sixteen.split(96), Some((16, 8)));
    assert_eq!(sixteen.split(20), Some((16, 4)));
    assert_eq!(sixteen.split(16), Some((16, 0)));
}

/// The server's own state per connection, besides the socket and its
/// buffers, as the crate docs give it (`Server::SLOT_SIZE` and the
/// `# Memory` section of `Server`).
#[test]
fn per_connection_state_is_small() {
    let slot = Server::<'static, Reverse>::SLOT_SIZE;
    println!("server state per connection: {slot} bytes");
    assert!(
        slot <= 96,
        "slot grew to {slot} bytes; update the crate docs (Server, Memory)"
    );
    let socket = core::mem::size_of::<smoltcp::socket::tcp::Socket<'static>>();
    println!("smoltcp tcp::Socket: {socket} bytes");
}
