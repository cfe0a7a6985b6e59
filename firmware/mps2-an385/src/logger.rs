//! `log` output and panics over semihosting.
//!
//! Every record becomes one line on the host's standard output (QEMU with
//! `-semihosting-config enable=on,target=native` prints it on its own
//! stdout), as [`multiserve_board::RecordLine`] formats it.
//!
//! A panic prints `panic: <location>: <message>` and then ends the
//! emulation through the semihosting `SYS_EXIT` call with a failure status,
//! so QEMU exits with a non-zero code instead of hanging. On a board without
//! a debugger attached the semihosting call itself faults, and the core
//! stays in the HardFault handler: either way the firmware halts.

use core::panic::PanicInfo;

use cortex_m_semihosting::{debug, hprintln};
use log::{LevelFilter, Log, Metadata, Record};

struct Semihosting;

static LOGGER: Semihosting = Semihosting;

impl Log for Semihosting {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        hprintln!("{}", multiserve_board::RecordLine(record));
    }

    fn flush(&self) {}
}

/// Installs the logger with the given maximum level.
pub fn init(level: LevelFilter) {
    // Fails only if a logger is already installed, which then keeps logging.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    cortex_m::interrupt::disable();
    hprintln!("{}", multiserve_board::PanicLine(info));
    exit_failure()
}

/// Ends the emulation with a failure status; on a board without a debugger
/// the semihosting call faults instead. Never returns.
pub fn exit_failure() -> ! {
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}
