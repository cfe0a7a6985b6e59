//! multiserve's reverse server on ST's NUCLEO-F429ZI.
//!
//! * MCU: STM32F429ZI at 180 MHz from the 8 MHz clock the ST-LINK feeds to
//!   the HSE input (bypass mode).
//! * NIC: the on-chip Ethernet MAC with DMA (driven by `stm32-eth`), RMII to
//!   the board's LAN8742A PHY at MDIO address 0 (PA1, PA2, PA7, PB13, PC1,
//!   PC4, PC5, PG11, PG13). [`eth`] adapts stm32-eth's DMA rings to smoltcp.
//! * Clock: SysTick at 1 kHz ([`multiserve_board::systick`]).
//! * Logging: `log` over RTT (`rtt-target`); `cargo run --release` flashes
//!   the board with probe-rs and shows the log.
//! * Panics print `panic: <location>: <message>` over RTT, wait about 100 ms
//!   for the probe to read it, and reset the board: an unattended server
//!   comes back by itself.
//! * Address: DHCPv4, else the static fallback 192.168.69.1/24.
//!
//! The server, its memory and the main loop are `multiserve-board`'s; it
//! sleeps (`wfi`) until the next deadline or the Ethernet interrupt. The
//! PHY's interrupt pin is not wired to the MCU on this board (it supplies
//! the RMII reference clock), so the link is checked every [`LINK_POLL`].
#![no_std]
#![no_main]
#![deny(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used)]

mod eth;

use core::panic::PanicInfo;

use cortex_m_rt::entry;
use log::{info, warn, LevelFilter};
use multiserve_board::{systick, Board, Link};
use smoltcp::time::Duration;
use smoltcp::wire::{EthernetAddress, Ipv4Address, Ipv4Cidr};
use static_cell::ConstStaticCell;
use stm32_eth::dma::{RxRingEntry, TxRingEntry};
use stm32_eth::hal::gpio::{GpioExt, Speed as PinSpeed};
use stm32_eth::hal::prelude::_fugit_RateExtU32;
use stm32_eth::hal::rcc::RccExt;
use stm32_eth::hal::signature::Uid;
use stm32_eth::mac::phy::{PhySpeed, LAN8742A};
use stm32_eth::mac::{Phy, Speed};
use stm32_eth::stm32::{interrupt, Peripherals, RNG};
use stm32_eth::{EthPins, PartsIn};

use eth::Eth;

/// The ST-LINK's 8 MHz clock on the HSE input.
const HSE_MHZ: u32 = 8;
const SYSCLK_MHZ: u32 = 180;
/// The LAN8742A's MDIO address on the Nucleo-144 boards.
const PHY_ADDRESS: u8 = 0;
/// DMA descriptors (each with a 1.5 KiB buffer).
const RX_ENTRIES: usize = 4;
const TX_ENTRIES: usize = 4;
/// How often to look at the PHY's link state.
const LINK_POLL: Duration = Duration::from_millis(500);

/// The DMA rings live in SRAM1/2 (`.bss`), which the Ethernet DMA reaches.
static RX_RING: ConstStaticCell<[RxRingEntry; RX_ENTRIES]> =
    ConstStaticCell::new([const { RxRingEntry::new() }; RX_ENTRIES]);
static TX_RING: ConstStaticCell<[TxRingEntry; TX_ENTRIES]> =
    ConstStaticCell::new([const { TxRingEntry::new() }; TX_ENTRIES]);

#[entry]
fn main() -> ! {
    rtt_target::rtt_init_log!(LevelFilter::Info);
    let (Some(dp), Some(cp)) = (Peripherals::take(), cortex_m::Peripherals::take()) else {
        halt("peripherals already taken")
    };

    // The RNG's clock is the PLL's 48 MHz output, which runs (at 45 MHz)
    // whenever the PLL does; enable its bus clock while RCC is still ours.
    dp.RCC.ahb2enr.modify(|_, w| w.rngen().set_bit());
    let clocks = dp
        .RCC
        .constrain()
        .cfgr
        .use_hse(HSE_MHZ.MHz())
        .bypass_hse_oscillator()
        .sysclk(SYSCLK_MHZ.MHz())
        .hclk(SYSCLK_MHZ.MHz())
        .freeze();
    systick::start(cp.SYST, clocks.hclk().raw());
    info!("STM32F429ZI at {} MHz", clocks.hclk().raw() / 1_000_000);

    let gpioa = dp.GPIOA.split();
    let gpiob = dp.GPIOB.split();
    let gpioc = dp.GPIOC.split();
    let gpiog = dp.GPIOG.split();
    let pins = EthPins {
        ref_clk: gpioa.pa1,
        crs: gpioa.pa7,
        tx_en: gpiog.pg11,
        tx_d0: gpiog.pg13,
        tx_d1: gpiob.pb13,
        rx_d0: gpioc.pc4,
        rx_d1: gpioc.pc5,
    };
    let mut mdio = gpioa.pa2.into_alternate();
    mdio.set_speed(PinSpeed::VeryHigh);
    let mut mdc = gpioc.pc1.into_alternate();
    mdc.set_speed(PinSpeed::VeryHigh);

    let parts = PartsIn {
        mac: dp.ETHERNET_MAC,
        mmc: dp.ETHERNET_MMC,
        dma: dp.ETHERNET_DMA,
    };
    let ethernet = match stm32_eth::new_with_mii(
        parts,
        &mut RX_RING.take()[..],
        &mut TX_RING.take()[..],
        clocks,
        pins,
        mdio,
        mdc,
    ) {
        Ok(ethernet) => ethernet,
        Err(_) => halt("Ethernet MAC: HCLK too slow"),
    };
    let (mac, dma) = ethernet.split();
    let mut phy = LAN8742A::new(mac, PHY_ADDRESS);
    phy.reset();
    let start = systick::now();
    while phy.is_resetting() {
        if systick::now() - start > Duration::from_millis(500) {
            warn!("PHY reset did not finish");
            break;
        }
    }
    phy.phy_init();
    let device = Eth::new(dma, RX_ENTRIES);

    let mac_address = board_mac_address();
    let seed = hardware_seed(&dp.RNG).unwrap_or_else(|| {
        warn!("RNG failed; TCP sequence numbers are seeded from the chip ID");
        let m = mac_address.0;
        u64::from_le_bytes([m[0], m[1], m[2], m[3], m[4], m[5], 0, 0])
    });
    info!("MAC {}", mac_address);

    let board = Board {
        device,
        mac: mac_address,
        random_seed: seed,
        now: systick::now,
        fallback: Ipv4Cidr::new(Ipv4Address::new(192, 168, 69, 1), 24),
        gateway: None,
    };
    let mut speed: Option<PhySpeed> = None;
    let mut next_link_check = systick::now();
    let mut eth_errors = (0, 0);
    let link = |device: &mut Eth<'_, '_>, now| {
        let _ = eth::take_interrupt();
        if now >= next_link_check {
            next_link_check = now + LINK_POLL;
            let found = if phy.link_established() {
                phy.link_speed()
            } else {
                None
            };
            if found != speed {
                speed = found;
                if let Some(speed) = speed {
                    phy.get_miim().set_speed(mac_speed(speed));
                    info!("PHY: {:?}", speed);
                }
            }
        }
        let stats = device.stats();
        if (stats.rx_errors, stats.tx_errors) != eth_errors {
            eth_errors = (stats.rx_errors, stats.tx_errors);
            warn!("Ethernet: {:?}", stats);
        }
        Link {
            up: speed.is_some(),
            check_again: Some(next_link_check),
        }
    };
    let sleep = |device: &mut Eth<'_, '_>, deadline| {
        systick::sleep(deadline, || eth::interrupt_pending() || device.rx_pending())
    };
    let Err(e) = multiserve_board::serve(board, link, sleep);
    halt(e)
}

#[interrupt]
fn ETH() {
    eth::on_interrupt();
}

fn mac_speed(speed: PhySpeed) -> Speed {
    match speed {
        PhySpeed::HalfDuplexBase10T => Speed::HalfDuplexBase10T,
        PhySpeed::FullDuplexBase10T => Speed::FullDuplexBase10T,
        PhySpeed::HalfDuplexBase100Tx => Speed::HalfDuplexBase100Tx,
        PhySpeed::FullDuplexBase100Tx => Speed::FullDuplexBase100Tx,
    }
}

/// 64 bits from the true random number generator, or `None` if it reports
/// a seed or clock error. The HAL's RNG driver is not used: it insists on an
/// exact 48 MHz PLL output, which rules out the 180 MHz system clock; the
/// RNG itself only needs more than HCLK/16 (the PLL gives it 45 MHz).
fn hardware_seed(rng: &RNG) -> Option<u64> {
    rng.cr.modify(|_, w| w.rngen().set_bit());
    let mut seed = 0u64;
    for _ in 0..2 {
        let mut ready = false;
        for _ in 0..10_000 {
            let sr = rng.sr.read();
            if sr.seis().bit_is_set() || sr.ceis().bit_is_set() {
                return None;
            }
            if sr.drdy().bit_is_set() {
                ready = true;
                break;
            }
        }
        if !ready {
            return None;
        }
        seed = seed << 32 | u64::from(rng.dr.read().bits());
    }
    rng.cr.modify(|_, w| w.rngen().clear_bit());
    Some(seed)
}

/// A locally administered MAC address derived from the chip's unique ID,
/// so that every board has its own.
fn board_mac_address() -> EthernetAddress {
    let uid = Uid::get();
    let mut hash: u32 = 0x811c_9dc5; // FNV-1a
    let bytes = uid
        .lot_num()
        .bytes()
        .chain(uid.x().to_le_bytes())
        .chain(uid.y().to_le_bytes())
        .chain([uid.waf_num()]);
    for byte in bytes {
        hash = (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193);
    }
    let h = hash.to_le_bytes();
    EthernetAddress([0x02, 0x00, h[0], h[1], h[2], h[3]])
}

/// Stops after a fatal set-up error, as a panic does.
fn halt(why: impl core::fmt::Display) -> ! {
    multiserve_board::halt(why, reset)
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    cortex_m::interrupt::disable();
    rtt_target::rprintln!("{}", multiserve_board::PanicLine(info));
    reset()
}

/// Gives the debug probe a moment to read the last message out of the RTT
/// buffer, then resets: an unattended server comes back on its own.
fn reset() -> ! {
    cortex_m::interrupt::disable();
    cortex_m::asm::delay(180_000_000 / 10);
    cortex_m::peripheral::SCB::sys_reset()
}
