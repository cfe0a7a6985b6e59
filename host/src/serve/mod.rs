//! `multiserve serve`: the core on a TAP device, in the lecture's select
//! loop: poll the service and the status service, then sleep in `ppoll(2)`
//! on the TAP and a signal pipe until a frame, a signal or the earliest
//! deadline.
//!
//! `run` reads as the set-up in order: the TAP and its middlewares
//! ([`device`], [`faults`]), the interface ([`iface`]), the servers and their pools
//! ([`pool`], [`served`]), the signals ([`signals`]), then the loop and the
//! final report.

mod args;
mod device;
mod faults;
mod iface;
mod pool;
mod served;
mod signals;

use std::io::Read;
use std::os::fd::RawFd;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Duration as StdDuration;

use smoltcp::iface::{Interface, SocketSet};
use smoltcp::time::{Duration, Instant};

pub use args::Args;
use device::{Stack, Tap};
use multiserve::Service as _;
use pool::STATUS_POOL;
use served::Served;
use signals::{Signals, Wake};

use crate::tap::Health;

/// How long a shutdown may take to close every connection.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

pub fn run(args: Args) -> Result<ExitCode, String> {
    let Tap {
        mut device,
        fd,
        health,
    } = device::open(&args)?;
    let clock = Clock(std::time::Instant::now());
    let iface = iface::interface(&args, &mut device, clock.now())?;
    let mut net = Net {
        clock,
        iface,
        device,
        fd,
        health,
    };

    let mut app_scratch = pool::app_scratch(&args);
    let mut status_scratch = pool::status_scratch();
    let (clients, spare) = pool::pool_split(&args)?;
    let cost = pool::pool_cost(&args, clients + spare);
    println!(
        "pool: {} sockets ({clients} clients + {spare} spare), {} bytes each \
         ({} buffers each way, socket-set entry, slot), {} bytes in all ({:.1} MiB)",
        cost.sockets,
        cost.per_socket,
        args.socket_buffer,
        cost.total,
        cost.total as f64 / (1024.0 * 1024.0)
    );
    let mut sockets = SocketSet::new(Vec::with_capacity(cost.sockets + STATUS_POOL));
    let app = pool::app_server(&args, &mut app_scratch, &mut sockets)?;
    let status = pool::status_server(&args, &mut status_scratch, &mut sockets)?;
    let mut served = Served::new(app, status);
    let signals = Signals::register()?;

    println!("{}", serving_line(&args, &served));
    select_loop(&mut net, &mut sockets, &mut served, &signals, &args)?;
    report(&served, &net.health);
    Ok(ExitCode::SUCCESS)
}

/// What the loop polls and sleeps on.
struct Net {
    clock: Clock,
    iface: Interface,
    device: Stack,
    /// The TAP's file descriptor, to sleep on.
    fd: RawFd,
    health: Rc<Health>,
}

/// The lecture's select loop, on smoltcp: one poll step (frames in, every
/// socket of the pool served, frames out), then sleep until a frame, a
/// signal, or the earliest deadline. A signal starts a shutdown: no new
/// clients, pending answers sent, every connection closed.
fn select_loop<'a>(
    net: &mut Net,
    sockets: &mut SocketSet<'a>,
    served: &mut Served<'a>,
    signals: &Signals,
    args: &Args,
) -> Result<(), String> {
    let Net {
        clock,
        iface,
        device,
        fd,
        health,
    } = net;
    let mut stats = StatsLine::every(args.stats_every, clock.now());
    let mut stop_by: Option<Instant> = None;
    loop {
        let now = clock.now();
        served.poll(now, iface, device, sockets);
        let next_poll = served.poll_at(now, iface, sockets);
        if let Some(e) = health.take_error() {
            return Err(format!(
                "the TAP device {} failed: {e} (was it deleted?); stopping. Counters: {}",
                args.iface,
                served.app().stats()
            ));
        }
        stats.print_if_due(now, served);
        if stop_by.is_some_and(|by| served.is_shut_down() || now >= by) {
            return Ok(());
        }
        let wake = [next_poll, stats.next, stop_by].into_iter().flatten().min();
        if wake.is_some_and(|at| at <= now) {
            continue;
        }
        if signals.wait(*fd, wake.map(|at| at - now))? == Wake::Stop && stop_by.is_none() {
            log::info!("stopping: no new clients, closing connections");
            served.shutdown(sockets);
            stop_by = Some(clock.now() + SHUTDOWN_GRACE);
        }
    }
}

/// The `--stats-every` line.
struct StatsLine {
    every: Option<Duration>,
    /// When the next line is due.
    next: Option<Instant>,
}

impl StatsLine {
    fn every(secs: Option<u64>, now: Instant) -> StatsLine {
        let every = secs.map(|s| Duration::from_secs(s.max(1)));
        StatsLine {
            every,
            next: every.map(|d| now + d),
        }
    }

    fn print_if_due(&mut self, now: Instant, served: &Served<'_>) {
        if let (Some(at), Some(every)) = (self.next, self.every) {
            if now >= at {
                println!("stats: {}", served.app().stats());
                self.next = Some(now + every);
            }
        }
    }
}

/// The line that says the server is ready, and how to reach it.
fn serving_line(args: &Args, served: &Served<'_>) -> String {
    let app = served.app();
    let ip = args.ip.address();
    let mut line = format!(
        "serving {name} on {ip}:{port} and [{ip6}]:{port} ({iface}), {n} clients ({spare} spare sockets)",
        name = app.service().name(),
        ip6 = args.ipv6.address(),
        port = args.port,
        iface = args.iface,
        n = args.clients,
        spare = app.spare(),
    );
    line += &format!("; try: multiserve client {ip}:{}", args.port);
    if let Some(status) = served.status() {
        let port = status.config().port;
        line += &format!("; status on {ip}:{port}; try: multiserve watch {ip}:{port}");
    }
    line
}

/// The final counters, after a clean stop.
fn report(served: &Served<'_>, health: &Health) {
    println!("final: {}", served.app().stats());
    let dropped = health.tx_dropped();
    if dropped > 0 {
        log::info!("{dropped} frames could not be written to the TAP");
    }
}

/// The monotonic clock, as smoltcp time.
struct Clock(std::time::Instant);

impl Clock {
    fn now(&self) -> Instant {
        Instant::from_micros(self.0.elapsed().as_micros() as i64)
    }
}

fn random_seed() -> u64 {
    let mut bytes = [0u8; 8];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .is_err()
    {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        return t.as_nanos() as u64 ^ u64::from(std::process::id());
    }
    u64::from_ne_bytes(bytes)
}

fn to_smol(d: StdDuration) -> Duration {
    Duration::from_micros(d.as_micros().min(u128::from(u64::MAX)) as u64)
}
