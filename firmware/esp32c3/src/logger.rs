//! `log` output and panics on the console `esp-println` writes to (the
//! USB serial/JTAG port or UART0).
//!
//! Every record becomes one line, as [`multiserve_board::RecordLine`]
//! formats it. A panic prints `panic: <location>: <message>` and resets the
//! chip: an unattended server comes back by itself.

use core::panic::PanicInfo;

use esp_println::println;
use log::{LevelFilter, Log, Metadata, Record};

struct Console;

static LOGGER: Console = Console;

impl Log for Console {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if self.enabled(record.metadata()) {
            println!("{}", multiserve_board::RecordLine(record));
        }
    }

    fn flush(&self) {}
}

/// Installs the logger with the given maximum level. Call it once, first
/// thing in `main`.
pub fn init(level: LevelFilter) {
    // The RV32IMC core has no atomic instructions, so `log` offers only
    // the racy set-up calls.
    // SAFETY: they must not race with any other use of `log`; this runs
    // first thing in `main`, before `esp_hal::init` and before esp-rtos
    // starts the Wi-Fi driver's tasks, so nothing else that logs runs yet.
    // Fails only if a logger is already installed, which then keeps logging.
    let _ = unsafe { log::set_logger_racy(&LOGGER) };
    unsafe { log::set_max_level_racy(level) };
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    println!("{}", multiserve_board::PanicLine(info));
    esp_hal::system::software_reset()
}

/// Waits for ever (after a fatal set-up error).
pub fn stop() -> ! {
    loop {
        core::hint::spin_loop();
    }
}
