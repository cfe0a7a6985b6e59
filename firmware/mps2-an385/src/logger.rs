//! `log` output and panics over semihosting.
//!
//! Every record becomes one line on the host's standard output (QEMU with
//! `-semihosting-config enable=on,target=native` prints it on its own
//! stdout), through the board layer's [`Console`].
//!
//! A panic prints `panic: <location>: <message>` and then ends the
//! emulation through the semihosting `SYS_EXIT` call with a failure status,
//! so QEMU exits with a non-zero code instead of hanging. On a board without
//! a debugger attached the semihosting call itself faults, and the core
//! stays in the HardFault handler: either way the firmware halts.

use core::fmt;
use core::panic::PanicInfo;

use cortex_m_semihosting::{debug, hprintln};
use log::LevelFilter;
use multiserve_board::Console;

static CONSOLE: Console = Console::new(print);

/// Prints one line on the host's standard output.
fn print(line: fmt::Arguments<'_>) {
    hprintln!("{}", line);
}

/// Installs the logger with the given maximum level.
pub fn init(level: LevelFilter) {
    multiserve_board::output::init(&CONSOLE, level);
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    cortex_m::interrupt::disable();
    CONSOLE.panic(info, exit_failure)
}

/// Ends the emulation with a failure status; on a board without a debugger
/// the semihosting call faults instead. Never returns.
pub fn exit_failure() -> ! {
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}
