//! multiserve's reverse server on the Arm MPS2 AN385 (Cortex-M3), as
//! emulated by QEMU's `mps2-an385` machine.
//!
//! * NIC: the board's SMSC LAN9118 at 0x4020_0000, IRQ 13 ([`lan9118`]).
//! * Clock: SysTick at 1 kHz from the 25 MHz core clock ([`clock`]).
//! * Logging: `log` over semihosting ([`logger`]). Panics print their
//!   location and message, then end the emulation with a failure status
//!   (semihosting `SYS_EXIT`); see [`logger`].
//! * Address: DHCPv4 from link-up on; without a lease [`DHCP_TIMEOUT`]
//!   after link-up the static fallback 10.0.2.15/24 via 10.0.2.2 (QEMU's
//!   user network). Once an address is configured one line
//!   `serving on IP:PORT` is logged.
//! * Service: [`multiserve::Reverse`] on line framing, port 7000, a pool of
//!   [`CLIENTS`] clients at once, in a pool of [`POOL`] sockets (the spare
//!   ones listen while others close or sit half-open, and answer "busy").
//!
//! The main loop runs the core's poll step and then sleeps (`wfi`) until
//! the deadline it returned, the NIC's interrupt, or, without a deadline,
//! the interrupt alone. The millisecond tick wakes the core once per
//! millisecond to look at the deadline.
//!
//! `cargo run --release` boots it in QEMU (see `.cargo/config.toml`); the
//! server is then at 127.0.0.1:7000 on the host.
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::unwrap_used, clippy::expect_used)]

mod clock;
mod lan9118;
mod logger;

use cortex_m_rt::entry;
use log::{error, info, warn, LevelFilter};
use multiserve::addressing::{Addressing, Change};
use multiserve::{Config as ServerConfig, Framing, Resources, Reverse, Server};
use smoltcp::iface::{Config, Interface, SocketSet, SocketStorage};
use smoltcp::socket::tcp;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, Ipv4Address, Ipv4Cidr};
use static_cell::ConstStaticCell;

use lan9118::Lan9118;

/// The core clock of the AN385 (and of QEMU's model).
const CORE_HZ: u32 = 25_000_000;
/// The service port.
const PORT: u16 = 7000;
/// Clients served at once.
const CLIENTS: usize = 8;
/// Sockets: the clients and 4 spare sockets.
const POOL: usize = CLIENTS + 4;
/// Longest line the reverse service answers.
const MAX_LINE: usize = 1024;
/// Scratch buffers: a line, its `\r\n`.
const SCRATCH: usize = MAX_LINE + 2;
/// Per-client socket buffers. They must hold one line and its answer
/// (`SCRATCH`); the receive side stays small because QEMU's NIC model has
/// only ~10 KiB of RX FIFO for all connections together (see `lan9118`).
const SOCKET_RX: usize = 2048;
const SOCKET_TX: usize = 2048;
/// Socket set entries: the pool and DHCP.
const SOCKETS: usize = POOL + 1;

/// How long to wait for a DHCP lease before using the static address.
const DHCP_TIMEOUT: Duration = Duration::from_secs(4);
const STATIC_ADDRESS: Ipv4Cidr = Ipv4Cidr::new(Ipv4Address::new(10, 0, 2, 15), 24);
const STATIC_GATEWAY: Ipv4Address = Ipv4Address::new(10, 0, 2, 2);
/// Used when the NIC has no MAC address of its own (locally administered).
const FALLBACK_MAC: [u8; 6] = [0x02, 0x00, 0x4d, 0x53, 0x00, 0x01];

/// The buffers of one pool client.
struct ClientBuffers {
    rx: [u8; SOCKET_RX],
    tx: [u8; SOCKET_TX],
}

/// All socket buffers and scratch space, in one static. It is all zeros,
/// so it lands in `.bss` and costs no flash.
struct Buffers {
    clients: [ClientBuffers; POOL],
    input: [u8; SCRATCH],
    output: [u8; SCRATCH],
}

static BUFFERS: ConstStaticCell<Buffers> = ConstStaticCell::new(Buffers {
    clients: [const {
        ClientBuffers {
            rx: [0; SOCKET_RX],
            tx: [0; SOCKET_TX],
        }
    }; POOL],
    input: [0; SCRATCH],
    output: [0; SCRATCH],
});

/// The socket set's slots (kept apart from `BUFFERS`: an empty slot is not
/// all zeros, and would pull the buffers into `.data`).
static SOCKET_STORAGE: ConstStaticCell<[SocketStorage<'static>; SOCKETS]> =
    ConstStaticCell::new([SocketStorage::EMPTY; SOCKETS]);

#[entry]
fn main() -> ! {
    logger::init(LevelFilter::Info);
    let Some(core) = cortex_m::Peripherals::take() else {
        halt("core peripherals already taken")
    };
    clock::start(core.SYST, CORE_HZ);

    let mut nic = match Lan9118::take(FALLBACK_MAC) {
        Ok(nic) => nic,
        Err(e) => {
            error!("LAN9118: {:?}", e);
            halt("no network interface")
        }
    };
    lan9118::enable_interrupt();
    let mac = EthernetAddress(nic.mac_address());
    info!("LAN9118 id {:08x}, MAC {}", nic.chip_id(), mac);

    let mut config = Config::new(mac.into());
    config.random_seed = u64::from(nic.entropy()) << 32 | u64::from(nic.entropy());
    let mut iface = Interface::new(config, &mut nic, clock::now());

    let memory = BUFFERS.take();
    let mut sockets = SocketSet::new(&mut SOCKET_STORAGE.take()[..]);
    // DHCP first: the server wants its pool last.
    let mut addressing = Addressing::new(
        &mut sockets,
        DHCP_TIMEOUT,
        STATIC_ADDRESS,
        Some(STATIC_GATEWAY),
    );

    let service = Reverse::new(Framing::Line, MAX_LINE);
    let resources = Resources {
        pool: memory
            .clients
            .each_mut()
            .map(|b| tcp::Socket::new(tcp_buffer(&mut b.rx), tcp_buffer(&mut b.tx))),
        input: &mut memory.input,
        output: &mut memory.output,
    };
    let server_config = ServerConfig {
        port: PORT,
        clients: Some(CLIENTS),
        idle_timeout: Some(idle_timeout()),
        ..ServerConfig::default()
    };
    let mut server: Server<'_, _, POOL> =
        match Server::new(server_config, service, resources, &mut sockets) {
            Ok(server) => server,
            Err(e) => {
                error!("server: {}", e);
                halt("server setup failed")
            }
        };

    let mut announced = false;
    let mut nic_errors = (0, 0);
    // The PHY interrupts once auto-negotiation is done; until then, down.
    let mut link_up = false;
    loop {
        let now = clock::now();
        match nic.service() {
            Ok(Some(link)) => {
                link_up = link.up;
                if link.up {
                    info!(
                        "link up, {} Mbit/s {} duplex",
                        if link.mbps_100 { 100 } else { 10 },
                        if link.full_duplex { "full" } else { "half" }
                    )
                } else {
                    warn!("link down")
                }
            }
            Ok(None) => {}
            Err(e) => warn!("LAN9118: {:?}", e),
        }

        let mut delay = server.poll(now, &mut iface, &mut nic, &mut sockets);
        let stats = nic.stats();
        if (stats.rx_errors, stats.tx_errors) != nic_errors {
            nic_errors = (stats.rx_errors, stats.tx_errors);
            warn!("LAN9118: {:?}", stats);
        }

        let (change, wake) = addressing.poll(now, link_up, &mut iface, &mut sockets);
        if let Change::Leased(address) | Change::Fallback(address) = change {
            announce(address, &mut announced);
            // The address changed what the stack may send: poll again.
            delay = Some(Duration::ZERO);
        }
        if let Some(at) = wake {
            let until = if at > now { at - now } else { Duration::ZERO };
            delay = Some(delay.map_or(until, |d| d.min(until)));
        }

        sleep(&nic, now, delay);
    }
}

fn tcp_buffer(buf: &mut [u8]) -> tcp::SocketBuffer<'_> {
    tcp::SocketBuffer::new(buf)
}

/// Logs the one `serving on IP:PORT` line the first time an address is up,
/// and each new address after it.
fn announce(address: Ipv4Cidr, announced: &mut bool) {
    if *announced {
        info!("address now {}", address.address());
    } else {
        info!("serving on {}:{}", address.address(), PORT);
        *announced = true;
    }
}

/// Sleeps until `now + delay`, a NIC interrupt, or a frame waiting in the
/// NIC; `delay == None` waits for the NIC alone. The checks and the `wfi`
/// run with interrupts masked, so an interrupt arriving between check and
/// `wfi` still ends the `wfi` (it wakes on pending interrupts) rather than
/// being missed; its handler runs when the mask is lifted.
fn sleep(nic: &Lan9118, now: Instant, delay: Option<Duration>) {
    let deadline = delay.map(|d| now + d);
    loop {
        let wake = cortex_m::interrupt::free(|_| {
            let due = deadline.is_some_and(|at| clock::now() >= at);
            if due || lan9118::interrupt_pending() || nic.rx_pending() {
                return true;
            }
            cortex_m::asm::wfi();
            false
        });
        if wake {
            return;
        }
    }
}

/// Stops for good after a fatal setup error, as a panic does.
fn halt(why: &str) -> ! {
    error!("halted: {}", why);
    logger::exit_failure()
}

/// The idle timeout: 300 s, or the seconds in `MULTISERVE_IDLE_TIMEOUT_SECS`
/// when the image was built (the tests build one with a short timeout).
fn idle_timeout() -> Duration {
    let secs = option_env!("MULTISERVE_IDLE_TIMEOUT_SECS")
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(300);
    Duration::from_secs(secs)
}
