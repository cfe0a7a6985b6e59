//! multiserve's reverse server on the Arm MPS2 AN385 (Cortex-M3), as
//! emulated by QEMU's `mps2-an385` machine.
//!
//! * NIC: the board's SMSC LAN9118 at 0x4020_0000, IRQ 13 ([`lan9118`]).
//! * Clock: the CMSDK timer 0, free-running at 25 MHz ([`clock`]), read
//!   on demand; SysTick at 1 kHz ends each `wfi`, and sleep is `wfi` until
//!   the deadline or the NIC's interrupt.
//! * Logging: `log` over semihosting ([`logger`]). Panics print their
//!   location and message, then end the emulation with a failure status.
//! * Address: DHCPv4, else 10.0.2.15/24 via 10.0.2.2 (QEMU's user network).
//!
//! The server, its memory and the main loop are `multiserve-board`'s.
//! `cargo run --release` boots it in QEMU (see `.cargo/config.toml`); the
//! server is then at 127.0.0.1:7000 on the host.
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::unwrap_used, clippy::expect_used)]

mod clock;
mod lan9118;
mod logger;
mod vectors;

use cortex_m_rt::entry;
use log::LevelFilter;
use multiserve_board::info;
use multiserve_board::{systick, Board, Link};
use smoltcp::wire::{EthernetAddress, Ipv4Address, Ipv4Cidr};

use lan9118::Lan9118;

/// The core clock of the AN385 (and of QEMU's model).
const CORE_HZ: u32 = 25_000_000;
/// Used when the NIC has no MAC address of its own (locally administered).
const FALLBACK_MAC: [u8; 6] = [0x02, 0x00, 0x4d, 0x53, 0x00, 0x01];

#[entry]
fn main() -> ! {
    logger::init(LevelFilter::Info);
    let Some(core) = cortex_m::Peripherals::take() else {
        halt(&"core peripherals already taken")
    };
    clock::start();
    systick::start(core.SYST, CORE_HZ);

    let nic = match Lan9118::take(FALLBACK_MAC) {
        Ok(nic) => nic,
        Err(e) => halt(&format_args!("no network interface: LAN9118 {}", e)),
    };
    lan9118::enable_interrupt();
    let mac = EthernetAddress(nic.mac_address());
    info!("LAN9118 id {:08x}, MAC {}", nic.chip_id(), mac);

    let board = Board {
        random_seed: u64::from(nic.entropy()) << 32 | u64::from(nic.entropy()),
        device: nic,
        mac,
        now: clock::now,
        fallback: Ipv4Cidr::new(Ipv4Address::new(10, 0, 2, 15), 24),
        gateway: Some(Ipv4Address::new(10, 0, 2, 2)),
    };
    let link = |nic: &mut Lan9118, _| Link {
        up: nic.check_link(),
        check_again: None,
    };
    let sleep = |nic: &mut Lan9118, deadline| {
        clock::sleep(deadline, || {
            lan9118::interrupt_pending() || nic.rx_pending()
        })
    };
    let Err(e) = multiserve_board::serve(board, link, sleep);
    halt(&e)
}

/// Stops for good after a fatal set-up error, as a panic does.
/// One function for every kind of `why` (flash).
fn halt(why: &dyn core::fmt::Display) -> ! {
    multiserve_board::halt(why, logger::exit_failure)
}
