//! Two services on one loop: the reverse service on port 7000 and the
//! status service on 7001 watching it, over smoltcp's in-memory loopback
//! device. A client is served, then a second client reads the status
//! snapshot, which lists both services' sockets with the first client's
//! connection among them.
//!
//! ```sh
//! cargo run --example watched
//! ```

use multiserve::{Config, Resources, Reverse, Server, Services, SlotStorage, Status, Watched};
use smoltcp::iface::{Config as IfaceConfig, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{Loopback, Medium};
use smoltcp::socket::tcp;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, IpAddress, IpCidr};

fn socket(rx: usize, tx: usize) -> tcp::Socket<'static> {
    tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; rx]),
        tcp::SocketBuffer::new(vec![0; tx]),
    )
}

fn scratch(n: usize) -> &'static mut [u8] {
    vec![0; n].leak()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut device = Loopback::new(Medium::Ethernet);
    let mac = EthernetAddress([0x02, 0, 0, 0, 0, 0x01]);
    let mut iface = Interface::new(IfaceConfig::new(mac.into()), &mut device, Instant::now());
    let address = IpAddress::v4(192, 168, 69, 1);
    iface.update_ip_addrs(|addrs| {
        let _ = addrs.push(IpCidr::new(address, 24));
    });
    let mut sockets = SocketSet::new(vec![]);

    // The reverse service: two clients and one spare socket.
    let reverse: Server<'_, Reverse> = Server::new(
        Config {
            port: 7000,
            ..Config::default()
        },
        Reverse::default(),
        Resources {
            pool: std::array::from_fn::<_, 3, _>(|_| socket(2048, 2048)),
            storage: (0..3)
                .map(|_| SlotStorage::default())
                .collect::<Vec<_>>()
                .into(),
            input: scratch(1026),
            output: scratch(1026),
        },
        &mut sockets,
    )?;
    // The status service beside it: one client and one spare, listing up
    // to 8 sockets (3 + 2 are in use).
    let status: Server<'_, Status<8>> = Server::new(
        Config {
            port: 7001,
            clients: Some(1),
            spare: Some(1),
            ..Config::default()
        },
        Status::new(),
        Resources {
            pool: std::array::from_fn::<_, 2, _>(|_| socket(256, 2048)),
            storage: (0..2)
                .map(|_| SlotStorage::default())
                .collect::<Vec<_>>()
                .into(),
            input: scratch(128),
            output: scratch(1024),
        },
        &mut sockets,
    )?;
    let mut watched = Watched::new(reverse, status);

    let client = connect(&mut iface, &mut sockets, 7000, 49152)?;
    let mut answer = Vec::new();
    let mut sent = false;
    run(
        &mut iface,
        &mut device,
        &mut sockets,
        &mut watched,
        |sockets| {
            let socket = sockets.get_mut::<tcp::Socket>(client);
            if socket.may_send() && !sent {
                sent = socket.send_slice(b"hello, status\n").is_ok();
            }
            read(socket, &mut answer);
            answer.ends_with(b"\n")
        },
    )?;
    print!("reverse: {}", String::from_utf8_lossy(&answer));

    // A status client is greeted with a snapshot.
    let watcher = connect(&mut iface, &mut sockets, 7001, 49153)?;
    let mut snapshot = Vec::new();
    run(
        &mut iface,
        &mut device,
        &mut sockets,
        &mut watched,
        |sockets| {
            read(sockets.get_mut::<tcp::Socket>(watcher), &mut snapshot);
            snapshot.ends_with(b"end\n")
        },
    )?;
    print!("{}", String::from_utf8_lossy(&snapshot));
    Ok(())
}

/// Run the loop until `done` holds (at most 5 s).
fn run<S: Services<'static>>(
    iface: &mut Interface,
    device: &mut Loopback,
    sockets: &mut SocketSet<'static>,
    services: &mut S,
    mut done: impl FnMut(&mut SocketSet<'static>) -> bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    while !done(sockets) {
        let now = Instant::now();
        if now - started > Duration::from_secs(5) {
            return Err("nothing happened within 5 s".into());
        }
        // The loop body: one poll step for both services.
        services.poll(now, iface, device, sockets);
        let delay = services.poll_delay(now, iface, sockets);
        // Every frame sent is at once a frame received: sleep at most 1 ms.
        let nap = delay.map_or(Duration::from_millis(1), |d| {
            d.min(Duration::from_millis(1))
        });
        std::thread::sleep(nap.into());
    }
    Ok(())
}

/// Open a client connection to `port` on the server's own address.
fn connect(
    iface: &mut Interface,
    sockets: &mut SocketSet<'static>,
    port: u16,
    local: u16,
) -> Result<SocketHandle, Box<dyn std::error::Error>> {
    let mut client = socket(8192, 2048);
    client.connect(
        iface.context(),
        (IpAddress::v4(192, 168, 69, 1), port),
        local,
    )?;
    Ok(sockets.add(client))
}

fn read(socket: &mut tcp::Socket<'_>, into: &mut Vec<u8>) {
    if socket.can_recv() {
        let _ = socket.recv(|data| {
            into.extend_from_slice(data);
            (data.len(), ())
        });
    }
}
