//! `multiserve serve`: the core on a TAP device, in a loop that sleeps in
//! `ppoll(2)` on the TAP and a signal pipe until the server's deadline.

use std::io::{self, Read};
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Duration as StdDuration;

use clap::builder::TypedValueParser as _;
use smoltcp::iface::{Config as IfaceConfig, Interface, SocketSet};
use smoltcp::phy::{Device, FaultInjector, PcapMode, PcapWriter};
use smoltcp::socket::tcp;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, IpAddress, IpCidr, Ipv4Cidr, Ipv6Address, Ipv6Cidr};

use multiserve::{Config, EchoLimiter, Framing, FullPolicy, Resources, Reverse, Server};

use crate::capture::Capture;
use crate::service::HostService;
use crate::tap::{self, Health, TapDevice};

use crate::{parse_duration, FramingKind, ServiceKind, WhenFull};

/// The most clients `--clients` can ask for.
pub const MAX_CLIENTS: usize = 64;
/// The compiled pool: the most clients plus their default spare sockets.
pub const POOL: usize = MAX_CLIENTS + MAX_CLIENTS / 2;

#[derive(clap::Args)]
pub struct Args {
    /// The TAP device. Created (and removed on exit) if missing and run as root.
    #[arg(long, default_value = "tap0")]
    iface: String,
    /// The server's own address on the TAP's network (not Linux's).
    #[arg(long, default_value = "192.168.69.1/24", value_parser = parse_cidr4)]
    ip: Ipv4Cidr,
    /// The Linux side's address, given to a TAP this program creates.
    #[arg(long, default_value = "192.168.69.100/24", value_parser = parse_cidr4)]
    host_ip: Ipv4Cidr,
    /// The server's IPv6 address (a link-local one is added too).
    #[arg(long, default_value = "fdaa::1/64", value_parser = parse_cidr6)]
    ipv6: Ipv6Cidr,
    /// The Linux side's IPv6 address, given to a TAP this program creates.
    #[arg(long, default_value = "fdaa::100/64", value_parser = parse_cidr6)]
    host_ipv6: Ipv6Cidr,
    /// Default IPv4 gateway (default: the Linux side's address).
    #[arg(long)]
    gateway: Option<Ipv4Addr>,
    /// The server's MAC address.
    #[arg(long, default_value = "02:00:00:00:00:01", value_parser = parse_mac)]
    mac: EthernetAddress,
    /// The TCP port to serve.
    #[arg(long, default_value_t = 7000, value_parser = clap::value_parser!(u16).range(1..))]
    port: u16,
    /// The service.
    #[arg(long, value_enum, default_value_t = ServiceKind::Reverse)]
    service: ServiceKind,
    /// Framing of the reverse service.
    #[arg(long, value_enum, default_value_t = FramingKind::Line)]
    framing: FramingKind,
    /// The longest line (or chunk) in bytes; longer lines get an error line.
    #[arg(long, default_value_t = Reverse::DEFAULT_MAX_LEN,
          value_parser = clap::value_parser!(u32).range(1..=65536).map(|v| v as usize))]
    max_line: usize,
    /// How many clients are served at once.
    #[arg(long, default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=MAX_CLIENTS as i64).map(|v| v as usize))]
    clients: usize,
    /// Sockets beyond the clients, for connections that are closing or
    /// half-open and for the full-server answer (default: half the clients).
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=(POOL / 2) as i64).map(|v| v as usize))]
    spare: Option<usize>,
    /// What a client gets when every place is taken.
    #[arg(long, value_enum, default_value_t = WhenFull::Busy)]
    when_full: WhenFull,
    /// How long a client that connects while every place is taken waits
    /// for one before it gets that answer ("0": at once).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    queue_wait: StdDuration,
    /// Close a connection on which nothing moved for this long ("off": never).
    #[arg(long, default_value = "300s", value_parser = parse_timeout)]
    idle_timeout: Timeout,
    /// Receive and transmit buffer of each socket, in bytes.
    #[arg(long, default_value_t = 64 * 1024,
          value_parser = clap::value_parser!(u32).range(2048..=1 << 20).map(|v| v as usize))]
    socket_buffer: usize,
    /// Write every frame in and out to this file (pcap, for Wireshark).
    #[arg(long)]
    pcap: Option<PathBuf>,
    /// Drop this percentage of frames, each way (fault injection).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=100))]
    drop_chance: u8,
    /// Corrupt this percentage of frames, each way (fault injection).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=100))]
    corrupt_chance: u8,
    /// Answer at most this many pings (ICMP echo requests) per second.
    #[arg(long, default_value_t = 100, value_name = "PER_SEC")]
    ping_limit: u32,
    /// Print a line of counters every SECS seconds.
    #[arg(long, value_name = "SECS")]
    stats_every: Option<u64>,
}

fn parse_cidr4(s: &str) -> Result<Ipv4Cidr, String> {
    s.parse()
        .map_err(|()| format!("{s:?} is not an IPv4 address with prefix, e.g. 192.168.69.1/24"))
}

fn parse_cidr6(s: &str) -> Result<Ipv6Cidr, String> {
    s.parse()
        .map_err(|()| format!("{s:?} is not an IPv6 address with prefix, e.g. fdaa::1/64"))
}

fn parse_mac(s: &str) -> Result<EthernetAddress, String> {
    match s.parse::<EthernetAddress>() {
        Ok(mac) if mac.is_unicast() => Ok(mac),
        Ok(_) => Err(format!(
            "{s} is a multicast address; the lowest bit of the first byte must be 0"
        )),
        Err(()) => Err(format!(
            "{s:?} is not a MAC address, e.g. 02:00:00:00:00:01"
        )),
    }
}

/// An idle timeout, or none.
#[derive(Clone, Copy)]
struct Timeout(Option<StdDuration>);

fn parse_timeout(s: &str) -> Result<Timeout, String> {
    match s {
        "off" | "none" | "0" => Ok(Timeout(None)),
        _ => parse_duration(s).map(|d| Timeout(Some(d))),
    }
}

/// The monotonic clock, as smoltcp time.
struct Clock(std::time::Instant);

impl Clock {
    fn now(&self) -> Instant {
        Instant::from_micros(self.0.elapsed().as_micros() as i64)
    }
}

pub fn run(args: Args) -> Result<ExitCode, String> {
    let created = !tap::exists(&args.iface);
    let device = TapDevice::open(&args.iface).map_err(|e| e.to_string())?;
    if created {
        tap::configure_linux_side(
            &args.iface,
            &args.host_ip.to_string(),
            Some(&args.host_ipv6.to_string()),
        )?;
    } else {
        check_linux_side(&args)?;
    }

    let health = device.health();
    let fd = device.fd();
    let device = EchoLimiter::new(device, args.ping_limit, args.ping_limit);
    let faults = args.drop_chance > 0 || args.corrupt_chance > 0;
    let capture = args.pcap.clone().map(Capture::create).transpose()?;
    // One loop, instantiated for the middleware asked for.
    match (capture, faults) {
        (None, false) => serve(device, fd, &health, &args),
        (Some(c), false) => serve(
            PcapWriter::new(device, c, PcapMode::Both),
            fd,
            &health,
            &args,
        ),
        (None, true) => serve(inject(device, &args), fd, &health, &args),
        (Some(c), true) => serve(
            inject(PcapWriter::new(device, c, PcapMode::Both), &args),
            fd,
            &health,
            &args,
        ),
    }
    .map(|()| ExitCode::SUCCESS)
}

fn inject<D: Device>(device: D, args: &Args) -> FaultInjector<D> {
    let mut device = FaultInjector::new(device, random_seed() as u32);
    device.set_drop_chance(args.drop_chance);
    device.set_corrupt_chance(args.corrupt_chance);
    device
}

/// Refuse the classic mistake: the server's own address on the Linux side
/// of the TAP, where Linux would answer in the server's place.
fn check_linux_side(args: &Args) -> Result<(), String> {
    let own = [
        args.ip.address().to_string(),
        args.ipv6.address().to_string(),
    ];
    for cidr in tap::linux_addresses(&args.iface) {
        let addr = cidr.split('/').next().unwrap_or_default();
        if own.iter().any(|o| o == addr) {
            return Err(format!(
                "{addr} is assigned to {iface} on the Linux side, so Linux would answer in the \
                 server's place. Remove it (ip addr del {cidr} dev {iface}) and give Linux \
                 another address on that network, e.g. {host}",
                iface = args.iface,
                host = args.host_ip
            ));
        }
    }
    Ok(())
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

fn link_local(mac: EthernetAddress) -> Ipv6Address {
    let m = mac.0;
    Ipv6Address::new(
        0xfe80,
        0,
        0,
        0,
        u16::from_be_bytes([m[0] ^ 0x02, m[1]]),
        u16::from_be_bytes([m[2], 0xff]),
        u16::from_be_bytes([0xfe, m[3]]),
        u16::from_be_bytes([m[4], m[5]]),
    )
}

fn socket(size: usize) -> tcp::Socket<'static> {
    tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; size]),
        tcp::SocketBuffer::new(vec![0; size]),
    )
}

fn serve<D: Device>(
    mut device: D,
    fd: RawFd,
    health: &Rc<Health>,
    args: &Args,
) -> Result<(), String> {
    let clock = Clock(std::time::Instant::now());
    let mut iface_config = IfaceConfig::new(args.mac.into());
    iface_config.random_seed = random_seed();
    let mut iface = Interface::new(iface_config, &mut device, clock.now());
    iface.update_ip_addrs(|addrs| {
        for cidr in [
            IpCidr::Ipv4(args.ip),
            IpCidr::Ipv6(args.ipv6),
            IpCidr::new(IpAddress::Ipv6(link_local(args.mac)), 64),
        ] {
            let _ = addrs.push(cidr);
        }
    });
    let gateway = args.gateway.unwrap_or(args.host_ip.address());
    iface
        .routes_mut()
        .add_default_ipv4_route(gateway)
        .map_err(|e| format!("cannot add the default route: {e}"))?;
    iface
        .routes_mut()
        .add_default_ipv6_route(args.host_ipv6.address())
        .map_err(|e| format!("cannot add the default IPv6 route: {e}"))?;

    let service = match args.service {
        ServiceKind::Reverse => HostService::Reverse(Reverse::new(
            match args.framing {
                FramingKind::Line => Framing::Line,
                FramingKind::Chunk => Framing::Chunk,
            },
            args.max_line,
        )),
        ServiceKind::Echo => HostService::Echo(multiserve::Echo),
    };
    let config = Config {
        port: args.port,
        clients: Some(args.clients),
        spare: args.spare,
        queue_wait: to_smol(args.queue_wait),
        when_full: match args.when_full {
            WhenFull::Busy => FullPolicy::Busy,
            WhenFull::Reset => FullPolicy::Reset,
        },
        idle_timeout: args.idle_timeout.0.map(to_smol),
        ..Config::default()
    };
    let scratch = args.socket_buffer.max(args.max_line + 64);
    let mut input = vec![0u8; scratch];
    let mut output = vec![0u8; scratch];
    // Sockets beyond the clients and their spares are never used: they
    // get no buffers.
    let (clients, spare) = config.split(POOL).ok_or_else(|| {
        format!(
            "{} clients and their spare sockets do not fit the pool of {POOL}",
            args.clients
        )
    })?;
    let in_use = clients + spare;
    let pool: [tcp::Socket<'static>; POOL] =
        std::array::from_fn(|i| socket(if i < in_use { args.socket_buffer } else { 0 }));
    let resources = Resources {
        pool,
        input: &mut input,
        output: &mut output,
    };
    let mut sockets = SocketSet::new(Vec::with_capacity(POOL));
    let name = service.name();
    let mut server =
        Server::new(config, service, resources, &mut sockets).map_err(|e| e.to_string())?;

    let (signal_rx, signal_tx) =
        UnixStream::pair().map_err(|e| format!("cannot make a signal pipe: {e}"))?;
    signal_rx.set_nonblocking(true).map_err(|e| e.to_string())?;
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let tx = signal_tx.try_clone().map_err(|e| e.to_string())?;
        signal_hook::low_level::pipe::register(signal, tx)
            .map_err(|e| format!("cannot handle signal {signal}: {e}"))?;
    }

    println!(
        "serving {name} on {ip}:{port} and [{ip6}]:{port} ({iface}), {n} clients ({spare} spare sockets); try: multiserve client {ip}:{port}",
        ip = args.ip.address(),
        ip6 = args.ipv6.address(),
        port = args.port,
        iface = args.iface,
        n = args.clients,
        spare = server.spare(),
    );

    let stats_every = args.stats_every.map(|s| Duration::from_secs(s.max(1)));
    let mut next_stats = stats_every.map(|d| clock.now() + d);
    let mut stop_by: Option<Instant> = None;
    loop {
        let now = clock.now();
        let delay = server.poll(now, &mut iface, &mut device, &mut sockets);
        if let Some(e) = health.take_error() {
            return Err(format!(
                "the TAP device {} failed: {e} (was it deleted?); stopping. Counters: {}",
                args.iface,
                server.stats()
            ));
        }
        if let (Some(at), Some(every)) = (next_stats, stats_every) {
            if now >= at {
                println!("stats: {}", server.stats());
                next_stats = Some(now + every);
            }
        }
        if let Some(deadline) = stop_by {
            if server.is_shut_down() || now >= deadline {
                break;
            }
        }
        // Sleep until the earliest of: the server's deadline, the next
        // stats line, the end of a shutdown; or a frame, or a signal.
        let wake = [delay.map(|d| now + d), next_stats, stop_by]
            .into_iter()
            .flatten()
            .min();
        if wake.is_some_and(|at| at <= now) {
            continue;
        }
        let timeout = wake.map(|at| at - now);
        let signalled = wait(fd, signal_rx.as_raw_fd(), timeout)?;
        if signalled && drain(&signal_rx) && stop_by.is_none() {
            log::info!("stopping: no new clients, closing connections");
            server.shutdown(&mut sockets);
            stop_by = Some(clock.now() + Duration::from_secs(1));
        }
    }
    let stats = server.stats();
    println!("final: {stats}");
    let dropped = health.tx_dropped();
    if dropped > 0 {
        log::info!("{dropped} frames could not be written to the TAP");
    }
    Ok(())
}

/// Read everything from the signal pipe; whether anything was there.
fn drain(mut pipe: &UnixStream) -> bool {
    let mut buf = [0u8; 64];
    let mut any = false;
    loop {
        match pipe.read(&mut buf) {
            Ok(0) => return any,
            Ok(_) => any = true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return any,
        }
    }
}

/// Sleep in ppoll(2) on the TAP and the signal pipe, at most `timeout`
/// (`None`: until one is ready). Returns whether a signal came.
fn wait(tap: RawFd, signal: RawFd, timeout: Option<Duration>) -> Result<bool, String> {
    let mut fds = [
        libc::pollfd {
            fd: tap,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: signal,
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    let ts = timeout.map(|d| {
        let micros = d.total_micros();
        libc::timespec {
            tv_sec: (micros / 1_000_000) as libc::time_t,
            tv_nsec: ((micros % 1_000_000) * 1000) as libc::c_long,
        }
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `fds` is a valid array of two pollfd for the duration of the
    // call; `ts_ptr` is null or points to a timespec that outlives it.
    let n = unsafe {
        libc::ppoll(
            fds.as_mut_ptr(),
            fds.len() as libc::nfds_t,
            ts_ptr,
            std::ptr::null(),
        )
    };
    if n < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(true);
        }
        return Err(format!("waiting for the TAP failed: {e}"));
    }
    let tap_flags = fds[0].revents;
    if tap_flags & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
        log::debug!("TAP poll flags {tap_flags:#x}");
    }
    Ok(fds[1].revents != 0)
}
