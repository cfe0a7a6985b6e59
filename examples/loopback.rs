//! The smallest complete use of multiserve: the reverse service and one
//! client on a single smoltcp interface, over smoltcp's in-memory loopback
//! device (the `Device` a board replaces with its Ethernet driver).
//!
//! ```sh
//! cargo run --example loopback
//! ```

use multiserve::{Config, Resources, Reverse, Server, SlotStorage};
use smoltcp::iface::{Config as IfaceConfig, Interface, SocketSet, SocketStorage};
use smoltcp::phy::{Loopback, Medium};
use smoltcp::socket::tcp;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, IpAddress, IpCidr};

/// Pool sockets: two clients at once and one spare (the defaults for 3).
const POOL: usize = 3;
/// Per-socket buffers; they must hold a line and its answer.
const BUFFER: usize = 2048;
/// The reverse service's scratch: a line of up to 1024 bytes and `\r\n`.
const SCRATCH: usize = 1026;

/// One socket's memory.
struct Buffers {
    rx: [u8; BUFFER],
    tx: [u8; BUFFER],
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The device and the interface, as a board sets them up.
    let mut device = Loopback::new(Medium::Ethernet);
    let mac = EthernetAddress([0x02, 0, 0, 0, 0, 0x01]);
    let mut iface = Interface::new(IfaceConfig::new(mac.into()), &mut device, Instant::now());
    let address = IpAddress::v4(192, 168, 69, 1);
    iface.update_ip_addrs(|addrs| {
        let _ = addrs.push(IpCidr::new(address, 24));
    });

    // All memory up front: one entry per socket (the pool and the client),
    // buffers for each pool socket, two scratch buffers. No allocation.
    let mut storage = [SocketStorage::EMPTY; POOL + 1];
    let mut sockets = SocketSet::new(&mut storage[..]);
    let mut memory = [const {
        Buffers {
            rx: [0; BUFFER],
            tx: [0; BUFFER],
        }
    }; POOL];
    let (mut input, mut output) = ([0u8; SCRATCH], [0u8; SCRATCH]);
    let mut slots = [SlotStorage::EMPTY; POOL];
    let resources = Resources {
        pool: memory.each_mut().map(|b| {
            tcp::Socket::new(
                tcp::SocketBuffer::new(&mut b.rx[..]),
                tcp::SocketBuffer::new(&mut b.tx[..]),
            )
        }),
        storage: (&mut slots[..]).into(),
        input: &mut input,
        output: &mut output,
    };
    let config = Config {
        port: 7000,
        ..Config::default()
    };
    let mut server: Server<'_, Reverse> =
        Server::new(config, Reverse::default(), resources, &mut sockets)?;

    // A client on the same interface, talking to the server's port.
    let (mut client_rx, mut client_tx) = ([0u8; BUFFER], [0u8; BUFFER]);
    let mut client = tcp::Socket::new(
        tcp::SocketBuffer::new(&mut client_rx[..]),
        tcp::SocketBuffer::new(&mut client_tx[..]),
    );
    client.connect(iface.context(), (address, 7000), 49152)?;
    let client = sockets.add(client);

    let line = b"hello, multiserve\n";
    let mut sent = false;
    let mut answer = Vec::new();
    let started = Instant::now();
    while !answer.ends_with(b"\n") {
        let now = Instant::now();
        if now - started > Duration::from_secs(5) {
            return Err("no answer within 5 s".into());
        }
        // The loop body of every multiserve program: one poll step, then
        // how long it may sleep.
        server.poll(now, &mut iface, &mut device, &mut sockets);
        let delay = server.poll_delay(now, &mut iface, &sockets);

        let socket = sockets.get_mut::<tcp::Socket>(client);
        if socket.may_send() && !sent {
            socket.send_slice(line)?; // fits: the buffer is larger
            sent = true;
        }
        if socket.can_recv() {
            socket.recv(|data| {
                answer.extend_from_slice(data);
                (data.len(), ())
            })?;
        }
        // A board sleeps until `delay` or its NIC's interrupt; here every
        // frame sent is at once a frame received, so sleep at most 1 ms.
        let nap = delay.map_or(Duration::from_millis(1), |d| {
            d.min(Duration::from_millis(1))
        });
        std::thread::sleep(nap.into());
    }
    print!("sent:  {}", String::from_utf8_lossy(line));
    print!("got:   {}", String::from_utf8_lossy(&answer));
    println!("stats: {}", server.stats());
    Ok(())
}
