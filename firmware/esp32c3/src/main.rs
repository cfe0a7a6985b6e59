//! multiserve's reverse server on an ESP32-C3 (RV32IMC, 400 KiB SRAM) over
//! Wi-Fi, e.g. Espressif's ESP32-C3-DevKitM-1.
//!
//! * Wi-Fi: `esp-radio`'s station interface, an embassy-net-driver
//!   `Driver`, as a smoltcp `Device` through [`multiserve::DriverDevice`].
//!   The driver (Espressif's Wi-Fi blob) runs on the `esp-rtos` scheduler
//!   and allocates from a heap of its own (`esp-alloc`, [`HEAP_RECLAIMED`]
//!   plus [`HEAP_SIZE`] bytes); the server does not allocate.
//! * Network: the SSID and passphrase are read at build time from
//!   `MULTISERVE_WIFI_SSID` and `MULTISERVE_WIFI_PASSWORD` (none or empty:
//!   an open network, joined with no authentication; else WPA2-Personal or
//!   stronger), and never stored in the repository. An image built without
//!   `MULTISERVE_WIFI_SSID` (as CI builds it) logs that it has no network to
//!   join and stops. [`join`] joins the network and joins again, every
//!   [`REJOIN`], whenever the access point is lost.
//! * Loop: the board layer's async loop ([`Stack::run_async`]) as an
//!   embassy task on `esp-rtos`'s executor and time driver: one poll step
//!   per turn, then asleep on embassy's timer until the earliest deadline
//!   or until the Wi-Fi driver wakes the task (a frame, room to send, a
//!   link change).
//! * Address: DHCPv4 once the station has joined (the link is "up" while it
//!   is associated), else the static fallback 192.168.69.1/24.
//! * Watchdog: the RTC watchdog, [`WATCHDOG`], fed on every loop turn; the
//!   loop wakes at least every [`TURN`].
//! * Logging: `log` on the USB serial/JTAG port or UART0 (`esp-println`,
//!   whichever the board's USB connector reaches); `espflash flash
//!   --monitor` (the runner) shows it. Panics print `panic: <location>:
//!   <message>` and reset the chip.
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::unwrap_used, clippy::expect_used)]

mod logger;

use core::task::Waker;

use embassy_executor::Spawner;
use embassy_futures::select::select;
use embassy_time::Timer;
use esp_hal::clock::CpuClock;
use esp_hal::interrupt::software::SoftwareInterruptControl;
use esp_hal::rng::Rng;
use esp_hal::rtc_cntl::{Rtc, RwdtStage};
use esp_hal::timer::timg::TimerGroup;
use esp_radio::wifi::sta::StationConfig;
use esp_radio::wifi::{self, AuthenticationMethod, ControllerConfig, Interface, WifiController};
use log::LevelFilter;
use multiserve::{woken, DriverDevice};
use multiserve_board::wifi::Security;
use multiserve_board::{info, warn};
use multiserve_board::{Board, Link, Stack, Wait};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, Ipv4Address, Ipv4Cidr};

esp_bootloader_esp_idf::esp_app_desc!();

/// The Wi-Fi station as the server's smoltcp device.
type Device = DriverDevice<Interface<'static>>;

/// The network to join, from the build's environment.
const SSID: Option<&str> = option_env!("MULTISERVE_WIFI_SSID");
/// Its WPA2/WPA3 passphrase; none (or empty) for an open network.
const PASSWORD: Option<&str> = option_env!("MULTISERVE_WIFI_PASSWORD");
/// The Wi-Fi driver's heap, in bytes, as in esp-radio's station examples:
/// this much in the RAM the second-stage bootloader used (reclaimed once
/// the application runs, so it costs no `.bss`)...
const HEAP_RECLAIMED: usize = 64 * 1024;
/// ...and this much more in `.bss`.
const HEAP_SIZE: usize = 36 * 1024;
/// How long to wait before joining again after the network was lost or
/// could not be joined.
const REJOIN: embassy_time::Duration = embassy_time::Duration::from_secs(5);
/// The watchdog's timeout.
const WATCHDOG: esp_hal::time::Duration = esp_hal::time::Duration::from_secs(4);
/// The longest the loop sleeps, so that it feeds the watchdog.
const TURN: Duration = Duration::from_secs(1);

#[esp_rtos::main]
async fn main(spawner: Spawner) -> ! {
    logger::init(LevelFilter::Info);
    let peripherals = esp_hal::init(esp_hal::Config::default().with_cpu_clock(CpuClock::max()));
    esp_alloc::heap_allocator!(#[esp_hal::ram(reclaimed)] size: HEAP_RECLAIMED);
    esp_alloc::heap_allocator!(size: HEAP_SIZE);
    let timg0 = TimerGroup::new(peripherals.TIMG0);
    let software = SoftwareInterruptControl::new(peripherals.SW_INTERRUPT);
    esp_rtos::start(timg0.timer0, software.software_interrupt0);

    // `black_box`: without it, a build without an SSID (CI's) would
    // compile the rest of `main` away, and its size and link would not be
    // those of a real image.
    let Some(ssid) = core::hint::black_box(SSID) else {
        halt("built without MULTISERVE_WIFI_SSID: no network to join (set it, and MULTISERVE_WIFI_PASSWORD, and build again)")
    };
    // esp-radio's default method, WPA2-Personal, is the weakest it accepts:
    // without a password the station must ask for an open network. (An
    // empty password, which an open network also gets, is no password.)
    let auth_method = match Security::for_password(PASSWORD) {
        Security::Open => AuthenticationMethod::None,
        Security::Personal => AuthenticationMethod::Wpa2Personal,
    };
    let mut station = StationConfig::default()
        .with_ssid(ssid)
        .with_auth_method(auth_method);
    if let Some(password) = PASSWORD {
        station = station.with_password(password.into());
    }
    let config = ControllerConfig::default().with_initial_config(wifi::Config::Station(station));
    let (controller, interfaces) = match wifi::new(peripherals.WIFI, config) {
        Ok(wifi) => wifi,
        Err(e) => halt(format_args!("Wi-Fi: {:?}", e)),
    };
    let mac = EthernetAddress(interfaces.station.mac_address());
    info!("Wi-Fi station {}, joining {:?}", mac, ssid);
    match join(controller, ssid) {
        Ok(task) => spawner.spawn(task),
        Err(e) => halt(format_args!("Wi-Fi task: {:?}", e)),
    }

    // With the radio on, the RNG draws on its noise: a true random seed.
    let rng = Rng::new();
    let seed = u64::from(rng.random()) << 32 | u64::from(rng.random());
    let board = Board {
        device: DriverDevice::new(interfaces.station),
        mac,
        random_seed: seed,
        now,
        fallback: Ipv4Cidr::new(Ipv4Address::new(192, 168, 69, 1), 24),
        gateway: None,
    };
    let mut stack = match Stack::new(board) {
        Ok(stack) => stack,
        Err(e) => halt(e),
    };

    let mut rtc = Rtc::new(peripherals.LPWR);
    rtc.rwdt.set_timeout(RwdtStage::Stage0, WATCHDOG);
    rtc.rwdt.enable();
    stack.run_async(Task { rtc }).await
}

/// The loop task's part in the board layer's loop ([`Stack::run_async`]):
/// the watchdog, the driver's waker and link, and embassy's timer.
struct Task {
    /// Holds the RTC watchdog, fed on every turn.
    rtc: Rtc<'static>,
}

impl Wait<Device> for Task {
    fn link(&mut self, device: &mut Device, _: Instant, waker: &Waker) -> Link {
        self.rtc.rwdt.feed();
        // What the driver cannot give now, it wakes this task for.
        device.set_waker(waker);
        Link {
            up: device.is_link_up(),
            check_again: None,
        }
    }

    /// Sleeps until `deadline`, at most [`TURN`], or until the driver wakes
    /// the task, whichever is first.
    async fn sleep(&mut self, device: &mut Device, deadline: Option<Instant>) {
        // A full transmit queue frees up with a wake, not at a time.
        let deadline = deadline.filter(|_| !device.tx_exhausted());
        let deadline = multiserve_board::serve::earliest(deadline, Some(now() + TURN));
        match deadline {
            Some(at) => {
                let at = embassy_time::Instant::from_micros(at.total_micros().max(0) as u64);
                select(Timer::at(at), woken()).await;
            }
            None => woken().await,
        }
    }
}

/// Joins the network, and joins it again [`REJOIN`] after it is lost or
/// could not be joined. The station's link is up while it is joined.
#[embassy_executor::task]
async fn join(mut controller: WifiController<'static>, ssid: &'static str) {
    loop {
        match controller.connect_async().await {
            Ok(_) => {
                info!("Wi-Fi: joined {:?}", ssid);
                let left = controller.wait_for_disconnect_async().await;
                warn!("Wi-Fi: left {:?}: {:?}", ssid, left);
            }
            Err(e) => warn!("Wi-Fi: cannot join {:?}: {:?}", ssid, e),
        }
        Timer::after(REJOIN).await;
    }
}

/// The board's time: embassy's clock (esp-rtos's time driver), which the
/// loop's timers use too.
fn now() -> Instant {
    Instant::from_micros(embassy_time::Instant::now().as_micros() as i64)
}

/// Stops for good after a fatal set-up error, with the reason as the last
/// log line (the watchdog is not running yet).
fn halt(why: impl core::fmt::Display) -> ! {
    multiserve_board::halt(why, logger::stop)
}
