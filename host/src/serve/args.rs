//! The options of `multiserve serve`.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration as StdDuration;

use clap::builder::TypedValueParser as _;
use smoltcp::wire::{EthernetAddress, Ipv4Cidr, Ipv6Cidr};

use multiserve::Reverse;

use super::pool::{MAX_CLIENTS, MAX_SPARE};
use crate::{parse_duration, FramingKind, ServiceKind, WhenFull};

#[derive(clap::Args)]
pub struct Args {
    /// The TAP device. Created (and removed on exit) if missing and run as root.
    #[arg(long, default_value = "tap0")]
    pub iface: String,
    /// The server's own address on the TAP's network (not Linux's).
    #[arg(long, default_value = "192.168.69.1/24", value_parser = parse_cidr4)]
    pub ip: Ipv4Cidr,
    /// The Linux side's address, given to a TAP this program creates.
    #[arg(long, default_value = "192.168.69.100/24", value_parser = parse_cidr4)]
    pub host_ip: Ipv4Cidr,
    /// The server's IPv6 address (a link-local one is added too).
    #[arg(long, default_value = "fdaa::1/64", value_parser = parse_cidr6)]
    pub ipv6: Ipv6Cidr,
    /// The Linux side's IPv6 address, given to a TAP this program creates.
    #[arg(long, default_value = "fdaa::100/64", value_parser = parse_cidr6)]
    pub host_ipv6: Ipv6Cidr,
    /// Default IPv4 gateway (default: the Linux side's address).
    #[arg(long)]
    pub gateway: Option<Ipv4Addr>,
    /// The server's MAC address.
    #[arg(long, default_value = "02:00:00:00:00:01", value_parser = parse_mac)]
    pub mac: EthernetAddress,
    /// The TCP port to serve.
    #[arg(long, default_value_t = 7000, value_parser = clap::value_parser!(u16).range(1..))]
    pub port: u16,
    /// The service.
    #[arg(long, value_enum, default_value_t = ServiceKind::Reverse)]
    pub service: ServiceKind,
    /// Framing of the reverse service.
    #[arg(long, value_enum, default_value_t = FramingKind::Line)]
    pub framing: FramingKind,
    /// The longest line (or chunk) in bytes; longer lines get an error line.
    #[arg(long, default_value_t = Reverse::DEFAULT_MAX_LEN,
          value_parser = clap::value_parser!(u32).range(1..=65536).map(|v| v as usize))]
    pub max_line: usize,
    /// How many clients are served at once (up to 4096). The pool is
    /// these plus the spare sockets, each with its buffers (see
    /// --socket-buffer); `serve` prints what it costs at start.
    #[arg(long, default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=MAX_CLIENTS as i64).map(|v| v as usize))]
    pub clients: usize,
    /// Sockets beyond the clients, for connections that are closing or
    /// half-open and for the full-server answer (default: half the clients,
    /// rounded up; at most 2048).
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=MAX_SPARE as i64).map(|v| v as usize))]
    pub spare: Option<usize>,
    /// What a client gets when every place is taken.
    #[arg(long, value_enum, default_value_t = WhenFull::Busy)]
    pub when_full: WhenFull,
    /// How long a client that connects while every place is taken waits
    /// for one before it gets that answer ("0": at once).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub queue_wait: StdDuration,
    /// Close a connection on which nothing moved for this long ("off": never).
    #[arg(long, default_value = "300s", value_parser = parse_timeout)]
    pub idle_timeout: Timeout,
    /// Receive and transmit buffer of each socket, in bytes: the RAM per
    /// client is twice this (and a pool socket's few hundred bytes of
    /// state), per spare socket too.
    #[arg(long, default_value_t = 64 * 1024,
          value_parser = clap::value_parser!(u32).range(2048..=1 << 20).map(|v| v as usize))]
    pub socket_buffer: usize,
    /// Write every frame in and out to this file (pcap, for Wireshark).
    #[arg(long)]
    pub pcap: Option<PathBuf>,
    /// Drop this percentage of frames, each way (fault injection).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub drop_chance: u8,
    /// Corrupt this percentage of frames, each way (fault injection).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub corrupt_chance: u8,
    /// Drop the first N SYN-ACKs the server sends (fault injection: each
    /// such client must send its SYN again).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub drop_syn_acks: u32,
    /// Answer at most this many pings (ICMP echo requests) per second.
    #[arg(long, default_value_t = 100, value_name = "PER_SEC")]
    pub ping_limit: u32,
    /// The status service's port: sockets and counters, live, for
    /// `multiserve watch` ("off": none).
    #[arg(long, default_value = "7001", value_name = "PORT", value_parser = parse_status_port)]
    pub status_port: StatusPort,
    /// Which peers the status service answers: those on the server's own
    /// subnets and link-local ones, or any that can reach it (its
    /// snapshots list every client's address and port). Others get a
    /// reset.
    #[arg(long, value_enum, default_value_t = StatusPeers::Local)]
    pub status_peers: StatusPeers,
    /// Print a line of counters every SECS seconds.
    #[arg(long, value_name = "SECS")]
    pub stats_every: Option<u64>,
    /// Never use TCP timestamps (RFC 7323). With them (the default) a
    /// Linux client can reuse its ports still in TIME-WAIT at once; they
    /// cost 12 bytes in every segment.
    #[arg(long)]
    pub no_timestamps: bool,
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
pub struct Timeout(pub Option<StdDuration>);

fn parse_timeout(s: &str) -> Result<Timeout, String> {
    match s {
        "off" | "none" | "0" => Ok(Timeout(None)),
        _ => parse_duration(s).map(|d| Timeout(Some(d))),
    }
}

/// The status service's port, or none.
#[derive(Clone, Copy)]
pub struct StatusPort(pub Option<u16>);

/// Which peers the status service answers.
#[derive(Clone, Copy, Debug, clap::ValueEnum, PartialEq, Eq)]
pub enum StatusPeers {
    /// Peers on the server's own subnets, and link-local ones.
    Local,
    /// Every peer that can reach the port.
    Any,
}

fn parse_status_port(s: &str) -> Result<StatusPort, String> {
    match s {
        "off" | "none" => Ok(StatusPort(None)),
        _ => match s.parse::<u16>() {
            Ok(port) if port > 0 => Ok(StatusPort(Some(port))),
            _ => Err(format!("{s:?} is not a port (1 to 65535) or \"off\"")),
        },
    }
}
