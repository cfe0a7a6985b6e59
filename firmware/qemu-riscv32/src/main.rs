//! multiserve's reverse server on QEMU's RISC-V `virt` machine (RV32IMAC),
//! booted in M-mode without firmware (`-bios none`).
//!
//! * NIC: virtio-net over MMIO, found among the machine's 8 virtio-mmio
//!   slots ([`virtio`], on `virtio-drivers`' `VirtIONetRaw`).
//! * Clock: the CLINT's `mtime` (10 MHz); sleep is `wfi` until `mtimecmp`
//!   or the NIC's interrupt through the PLIC, with no trap handler
//!   ([`machine`]).
//! * Logging: `log` on the NS16550A UART ([`uart`]). Panics print their
//!   location and message, then end the emulation with exit status 1.
//! * Seed: 64 bits from a virtio entropy source if the machine has one
//!   (`-device virtio-rng-device`), else from `mtime` and the MAC address.
//! * Address: DHCPv4, else 10.0.2.15/24 via 10.0.2.2 (QEMU's user network).
//!
//! The server, its memory and the main loop are `multiserve-board`'s.
//! `cargo run --release` boots it in QEMU (see `.cargo/config.toml`); the
//! server is then at 127.0.0.1:7000 on the host.
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::unwrap_used, clippy::expect_used)]

mod machine;
mod uart;
mod virtio;

use log::LevelFilter;
use multiserve_board::{info, warn};
use multiserve_board::{Board, Link};
use smoltcp::wire::{EthernetAddress, Ipv4Address, Ipv4Cidr};

use virtio::VirtioNet;

#[riscv_rt::entry]
fn main() -> ! {
    uart::init(LevelFilter::Info);
    let (net, rng) = virtio::probe();
    let Some(net) = net else {
        halt("no virtio-net device (-device virtio-net-device)")
    };
    let nic = match VirtioNet::new(net) {
        Ok(nic) => nic,
        Err(e) => halt(format_args!("virtio-net: {}", e)),
    };
    machine::enable_wakeups(nic.irq());
    let mac = EthernetAddress(nic.mac_address());
    let seed = rng.and_then(virtio::entropy).unwrap_or_else(|| {
        warn!("no virtio entropy source: seeding from the clock");
        let m = mac.0;
        machine::ticks() ^ u64::from_le_bytes([m[0], m[1], m[2], m[3], m[4], m[5], 0, 0])
    });
    info!("virtio-net MAC {}, IRQ {}", mac, nic.irq());

    let board = Board {
        device: nic,
        mac,
        random_seed: seed,
        now: machine::now,
        fallback: Ipv4Cidr::new(Ipv4Address::new(10, 0, 2, 15), 24),
        gateway: Some(Ipv4Address::new(10, 0, 2, 2)),
    };
    let mut errors = virtio::Stats::default();
    let link = |nic: &mut VirtioNet, _| {
        if nic.stats() != errors {
            errors = nic.stats();
            warn!("virtio-net: {:?}", errors);
        }
        // QEMU's user network is always up.
        Link {
            up: true,
            check_again: None,
        }
    };
    let sleep = |nic: &mut VirtioNet, deadline| machine::sleep(deadline, || nic.has_work());
    let Err(e) = multiserve_board::serve(board, link, sleep);
    halt(e)
}

/// Stops for good after a fatal set-up error, as a panic does.
fn halt(why: impl core::fmt::Display) -> ! {
    multiserve_board::halt(why, machine::exit_failure)
}
