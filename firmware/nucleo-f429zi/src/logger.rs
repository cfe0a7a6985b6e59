//! The log over RTT: [`RecordLine`]s, with embassy-stm32's warning about a
//! frame received with an error (one per frame: a noisy link could fill
//! the log and starve the loop) let through at most once per
//! [`BAD_FRAME_LOG_INTERVAL`], with the count of those held back.

use core::cell::RefCell;

use cortex_m::interrupt::Mutex;
use log::{Level, LevelFilter, Log, Metadata, Record};
use multiserve_board::throttle::Throttle;
use multiserve_board::{systick, RecordLine};
use smoltcp::time::Duration;

/// At most one bad-frame line per 10 s.
pub const BAD_FRAME_LOG_INTERVAL: Duration = Duration::from_secs(10);

static BAD_FRAMES: Mutex<RefCell<Throttle>> =
    Mutex::new(RefCell::new(Throttle::new(BAD_FRAME_LOG_INTERVAL)));

struct Logger;

static LOGGER: Logger = Logger;

/// Sets up RTT (1 KiB, skipping what does not fit) and the logger.
pub fn init(level: LevelFilter) {
    rtt_target::rtt_init_print!(rtt_target::ChannelMode::NoBlockSkip, 1024);
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(level);
    }
}

/// Whether `record` is embassy-stm32's warning about a received frame with
/// an error (`invalid packet: <status>`, its Ethernet RX ring's only
/// warning).
fn is_bad_frame(record: &Record) -> bool {
    record.level() == Level::Warn && record.target().starts_with("embassy_stm32::eth")
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        if is_bad_frame(record) {
            let now = systick::now();
            let held =
                cortex_m::interrupt::free(|cs| BAD_FRAMES.borrow(cs).borrow_mut().event(now));
            match held {
                None => return,
                Some(0) => {}
                Some(held) => {
                    rtt_target::rprintln!(
                        "{} (and {} more bad frames before it)",
                        RecordLine(record),
                        held
                    );
                    return;
                }
            }
        }
        rtt_target::rprintln!("{}", RecordLine(record));
    }

    fn flush(&self) {}
}
