//! multiserve's reverse server on ST's NUCLEO-F429ZI.
//!
//! * MCU: STM32F429ZI at 180 MHz from the 8 MHz clock the ST-LINK feeds to
//!   the HSE input (bypass mode), set up by embassy-stm32's `init`, which
//!   also keeps the debug port alive in sleep (DBGMCU_CR DBG_SLEEP, STOP,
//!   STANDBY) and enables the DMA clocks, so that a probe attaches and RTT
//!   is read while the core sits in `wfi`.
//! * NIC: the on-chip Ethernet MAC with DMA, embassy-stm32's
//!   [`Ethernet`] (an embassy-net-driver `Driver`, run without executor or
//!   time driver through [`multiserve::DriverDevice`] and its no-op waker),
//!   RMII to the board's LAN8742A PHY at MDIO address 0 (PA1, PA2, PA7,
//!   PB13, PC1, PC4, PC5, PG11, PG13). [`RX_ENTRIES`] receive descriptors of
//!   1536 bytes; a frame received with an error is dropped and its
//!   descriptor handed back, so receiving goes on after a bad frame; the
//!   MAC is not promiscuous (its own address, broadcast and multicast).
//! * PHY: identified by its ID registers before the MAC starts ([`phy`]),
//!   looked for at MDIO addresses 0-31 for up to 1 s; without it the board
//!   logs why and stops, and the watchdog resets it. It
//!   advertises 100BASE-TX full duplex only, the one mode embassy-stm32 0.6
//!   runs the MAC in. Its interrupt pin is not wired to the MCU on this
//!   board (it supplies the RMII reference clock), so the link is read
//!   every [`LINK_POLL`].
//! * Clock: SysTick at 1 kHz ([`multiserve_board::systick`]); the loop
//!   sleeps (`wfi`) until the next deadline (at most [`LINK_POLL`] away) or
//!   the Ethernet interrupt.
//! * Watchdog: the IWDG, started before anything can halt or hang, with a
//!   [`WATCHDOG_TIMEOUT_US`] timeout (from the ~32 kHz LSI, which the
//!   datasheet allows anywhere from 17 to 47 kHz: 2.7 to 7.5 s), fed on
//!   every loop turn. It is frozen while a debugger halts the core.
//! * Logging: `defmt` over RTT (`defmt-rtt`), as knurling's app-template;
//!   the board layer and embassy-stm32 log through it too. `cargo run
//!   --release` flashes the board with probe-rs and shows the log.
//! * Panics: `panic-probe` prints the panic over defmt and ends in a
//!   HardFault: under `probe-rs run` the probe stops there and shows the
//!   backtrace; unattended, the core stays in the fault handler and the
//!   watchdog resets the board, which serves again.
//! * Address: DHCPv4 once the link is up, else the static fallback
//!   192.168.69.1/24 (`multiserve::Addressing` follows the link, so a link
//!   that comes up late still gets a lease).
//!
//! The server, its memory and the main loop are `multiserve-board`'s.
#![no_std]
#![no_main]
#![deny(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used)]

mod phy;

// The RTT transport of the defmt log, and the panic handler.
use {defmt_rtt as _, panic_probe as _};

use core::task::{Context, Waker};

use cortex_m_rt::entry;
use defmt::{info, warn};
use embassy_net_driver::Driver;
use embassy_stm32::eth::{self, Ethernet, PacketQueue, Sma};
use embassy_stm32::peripherals::{ETH, ETH_SMA};
use embassy_stm32::rng::{self, Rng};
use embassy_stm32::time::Hertz;
use embassy_stm32::wdg::IndependentWatchdog;
use embassy_stm32::{bind_interrupts, peripherals};
use multiserve::DriverDevice;
use multiserve_board::{systick, Board, Link};
use smoltcp::time::Duration;
use smoltcp::wire::{EthernetAddress, Ipv4Address, Ipv4Cidr};
use static_cell::ConstStaticCell;

use phy::{Lan8742a, Mode};

bind_interrupts!(struct Irqs {
    ETH => eth::InterruptHandler;
    HASH_RNG => rng::InterruptHandler<peripherals::RNG>;
});

/// The NIC: the MAC with its DMA rings and the PHY.
type Nic = Ethernet<'static, ETH, Lan8742a<Sma<'static, ETH_SMA>>>;

/// The ST-LINK's 8 MHz clock on the HSE input.
const HSE_HZ: u32 = 8_000_000;
/// The core clock (HCLK): 8 MHz / 4 * 180 / 2.
const SYSCLK_HZ: u32 = 180_000_000;
/// Receive descriptors, 1536 bytes each: how many frames may arrive while
/// the loop is busy.
const RX_ENTRIES: usize = 8;
/// Transmit descriptors, 1514 bytes each.
const TX_ENTRIES: usize = 4;
/// How often to read the PHY's link state.
const LINK_POLL: Duration = Duration::from_millis(500);
/// The watchdog's timeout, in microseconds of the nominal 32 kHz LSI.
const WATCHDOG_TIMEOUT_US: u32 = 4_000_000;

/// The DMA descriptors and frame buffers, in SRAM1/2 (`.bss`), which the
/// Ethernet DMA reaches (the CCM RAM is not used).
static PACKETS: ConstStaticCell<PacketQueue<TX_ENTRIES, RX_ENTRIES>> =
    ConstStaticCell::new(PacketQueue::new());

#[entry]
fn main() -> ! {
    let p = embassy_stm32::init(clock_config());
    let Some(core) = cortex_m::Peripherals::take() else {
        halt("core peripherals already taken")
    };
    systick::start(core.SYST, SYSCLK_HZ);
    info!("STM32F429ZI at {} MHz", SYSCLK_HZ / 1_000_000);

    // The watchdog first: from here on any hang or halt resets the board,
    // also a PHY that does not answer (it shares the MCU's reset, so the
    // reset gives it another chance), and e.g. the MAC's DMA reset, which
    // waits for the PHY's 50 MHz RMII reference clock. The PHY scan takes
    // at most about 1 s of the watchdog's 2.7 s or more.
    embassy_stm32::pac::DBGMCU
        .apb1fzr()
        .modify(|w| w.set_iwdg(true));
    let mut watchdog = IndependentWatchdog::new(p.IWDG, WATCHDOG_TIMEOUT_US);
    watchdog.unleash();

    // The PHY before the MAC: a dead MDIO bus must not pass for a link.
    let phy = match Lan8742a::probe(Sma::new(p.ETH_SMA, p.PA2, p.PC1)) {
        Ok(phy) => phy,
        Err(e) => halt(NoPhy(e)),
    };
    watchdog.pet();
    info!(
        "PHY LAN8742A at MDIO address {}, revision {}",
        phy.address(),
        phy.revision()
    );

    let seed = Rng::new(p.RNG, Irqs).next_u64();
    let mac = board_mac_address();
    let ethernet: Nic = Ethernet::new_with_phy(
        PACKETS.take(),
        p.ETH,
        Irqs,
        p.PA1,
        p.PA7,
        p.PC4,
        p.PC5,
        p.PG13,
        p.PB13,
        p.PG11,
        mac.0,
        phy,
    );
    mask_mmc_interrupts();
    info!("MAC {=[u8]:02x}", mac.0);

    let board = Board {
        device: DriverDevice::new(ethernet),
        mac,
        random_seed: seed,
        now: systick::now,
        fallback: Ipv4Cidr::new(Ipv4Address::new(192, 168, 69, 1), 24),
        gateway: None,
    };
    let mut next_link_check = systick::now();
    let mut link_up = false;
    let mut mode = Mode::Down;
    let link = |device: &mut DriverDevice<Nic>, now| {
        watchdog.pet();
        if now >= next_link_check {
            next_link_check = now + LINK_POLL;
            link_up = device.is_link_up();
            let found = device.get_ref().phy().mode();
            if found != mode {
                mode = found;
                match mode {
                    Mode::Other(_) => warn!("PHY: {}", mode),
                    Mode::Down | Mode::Full100 => info!("PHY: {}", mode),
                }
            }
        }
        Link {
            up: link_up,
            check_again: Some(next_link_check),
        }
    };
    let sleep = |device: &mut DriverDevice<Nic>, deadline| {
        systick::sleep(deadline, || frame_waiting(device.get_mut()))
    };
    let Err(e) = multiserve_board::serve(board, link, sleep);
    halt(e)
}

/// Whether a received frame waits (and a transmit descriptor is free for
/// the answer): what the Ethernet interrupt wakes the loop for.
fn frame_waiting(nic: &mut Nic) -> bool {
    nic.receive(&mut Context::from_waker(Waker::noop()))
        .is_some()
}

/// Masks the MAC's statistics-counter (MMC) interrupts, which
/// embassy-stm32 0.6's v1 driver leaves enabled (its reset state): when a
/// counter reaches half scale its interrupt would keep the Ethernet
/// interrupt asserted, which nothing clears, and the watchdog would reset
/// the board. The counters still count.
///
/// RM0090 (Ethernet MAC at 0x4002_8000): ETH_MMCRIMR at offset 0x10C, bits
/// 5 RFCEM (CRC errors), 6 RFAEM (alignment errors), 17 RGUFM (good
/// unicast frames); ETH_MMCTIMR at 0x110, bits 14 TGFSCM (single
/// collision), 15 TGFMSCM (multiple collisions), 21 TGFM (good frames);
/// a 1 masks. The offsets and bits are those of ST's CMSIS device header
/// for the STM32F4 (`ETH_MMCRIMR_RFCEM` 0x20, `_RFAEM` 0x40, `_RGUFM`
/// 0x2_0000; `ETH_MMCTIMR_TGFSCM` 0x4000, `_TGFMSCM` 0x8000, `_TGFM`
/// 0x20_0000), which ST's HAL and lwIP ports write the same way.
/// stm32-metapac 21's `eth_v1b` has the same offsets and RX bits, but TGFM
/// at bit 16, so the registers are written as raw values here.
fn mask_mmc_interrupts() {
    use embassy_stm32::pac::eth::regs::{Mmcrimr, Mmctimr};
    /// RFCEM | RFAEM | RGUFM.
    const MMCRIMR_ALL: u32 = 1 << 5 | 1 << 6 | 1 << 17;
    /// TGFSCM | TGFMSCM | TGFM.
    const MMCTIMR_ALL: u32 = 1 << 14 | 1 << 15 | 1 << 21;
    let mac = embassy_stm32::pac::ETH.ethernet_mac();
    mac.mmcrimr().write_value(Mmcrimr(MMCRIMR_ALL));
    mac.mmctimr().write_value(Mmctimr(MMCTIMR_ALL));
}

/// 180 MHz from the 8 MHz HSE (bypass): VCO 360 MHz, SYSCLK = HCLK =
/// 180 MHz, APB1 45 MHz, APB2 90 MHz, and the PLL's Q output at 45 MHz for
/// the RNG (at most 48 MHz).
fn clock_config() -> embassy_stm32::Config {
    use embassy_stm32::rcc::{
        AHBPrescaler, APBPrescaler, Hse, HseMode, Pll, PllMul, PllPDiv, PllPreDiv, PllQDiv,
        PllSource, Sysclk,
    };
    let mut config = embassy_stm32::Config::default();
    config.rcc.hse = Some(Hse {
        freq: Hertz(HSE_HZ),
        mode: HseMode::Bypass,
    });
    config.rcc.pll_src = PllSource::HSE;
    config.rcc.pll = Some(Pll {
        prediv: PllPreDiv::DIV4,
        mul: PllMul::MUL180,
        divp: Some(PllPDiv::DIV2),
        divq: Some(PllQDiv::DIV8),
        divr: None,
    });
    config.rcc.ahb_pre = AHBPrescaler::DIV1;
    config.rcc.apb1_pre = APBPrescaler::DIV4;
    config.rcc.apb2_pre = APBPrescaler::DIV2;
    config.rcc.sys = Sysclk::PLL1_P;
    config
}

/// A locally administered MAC address derived from the chip's 96-bit
/// unique ID (FNV-1a), so that every board has its own.
fn board_mac_address() -> EthernetAddress {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in embassy_stm32::uid::uid() {
        hash = (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193);
    }
    let h = hash.to_le_bytes();
    EthernetAddress([0x02, 0x00, h[0], h[1], h[2], h[3]])
}

/// Stops after a fatal set-up error, with the reason as the last log line;
/// the watchdog, started first, resets the board within its timeout, so
/// that it tries again (a PHY that did not answer gets another reset).
fn halt(why: impl defmt::Format) -> ! {
    multiserve_board::halt(why, stop)
}

/// Waits for ever with interrupts off; the probe can still attach and read
/// the log (debug in sleep is on).
fn stop() -> ! {
    cortex_m::interrupt::disable();
    loop {
        cortex_m::asm::wfi();
    }
}

/// No LAN8742A on the MDIO bus: the scan's result, and where the PHY should
/// have been.
struct NoPhy(multiserve_board::mdio::NotFound);

impl defmt::Format for NoPhy {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{} (a LAN8742A, ID 0007:c13x, on PA2, PC1)", self.0)
    }
}
