//! `log` output and panics on the console `esp-println` writes to (the
//! USB serial/JTAG port or UART0), through the board layer's [`Console`].
//!
//! A panic prints `panic: <location>: <message>` and resets the chip: an
//! unattended server comes back by itself.

use core::fmt;
use core::panic::PanicInfo;

use esp_println::println;
use log::LevelFilter;
use multiserve_board::Console;

static CONSOLE: Console = Console::new(print);

/// Prints one line on the console.
fn print(line: fmt::Arguments<'_>) {
    println!("{}", line);
}

/// Installs the logger with the given maximum level. Call it once, first
/// thing in `main`.
pub fn init(level: LevelFilter) {
    // SAFETY: this runs first thing in `main`, before `esp_hal::init` and
    // before esp-rtos starts the Wi-Fi driver's tasks, so nothing else that
    // logs runs yet (the RV32IMC core has no atomic instructions, so `log`
    // offers only the racy set-up calls).
    unsafe { multiserve_board::output::init_racy(&CONSOLE, level) };
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    CONSOLE.panic(info, || esp_hal::system::software_reset())
}

/// Waits for ever (after a fatal set-up error).
pub fn stop() -> ! {
    loop {
        core::hint::spin_loop();
    }
}
