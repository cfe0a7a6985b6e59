//! `multiserve`: the server on a Linux TAP device, the lecture's
//! interactive client, and a load generator.

mod bench;
mod capture;
mod client;
mod serve;
mod service;
mod tap;
mod watch;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

/// A select()-style multi-client TCP server on smoltcp, run on a Linux TAP
/// device, with the lecture's interactive client.
#[derive(Parser)]
#[command(name = "multiserve", version, about, propagate_version = true)]
struct Cli {
    /// More log output (-v: debug, -vv: trace). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Less log output (-q: warnings only, -qq: errors only).
    #[arg(short, long, action = clap::ArgAction::Count, global = true, conflicts_with = "verbose")]
    quiet: u8,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve on a TAP device (created if missing, when run as root).
    Serve(serve::Args),
    /// The lecture's interactive client: send lines, print the replies.
    Client(client::Args),
    /// A load generator: request rate, latency, throughput, capacity.
    Bench(bench::Args),
    /// The server's sockets and counters, live, from its status port.
    Watch(watch::Args),
}

/// The service to run.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum ServiceKind {
    /// Answer every message reversed (the lecture's service).
    Reverse,
    /// Send back every byte (RFC 862).
    Echo,
}

/// What a message is, for the reverse service.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum FramingKind {
    /// One message per line ending in \n.
    Line,
    /// One message per read of what has arrived (the lecture's recv(1024)).
    Chunk,
}

/// What a client gets when every slot is taken.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum WhenFull {
    /// A line "busy: all N slots are in use, try again later", then close.
    Busy,
    /// A reset: the client's connect is refused.
    Reset,
}

/// The socket address `HOST:PORT` names (the first, if several).
pub fn resolve(addr: &str) -> Result<std::net::SocketAddr, String> {
    use std::net::ToSocketAddrs;
    addr.to_socket_addrs()
        .map_err(|e| format!("bad address {addr:?}: {e} (write HOST:PORT)"))?
        .next()
        .ok_or_else(|| format!("{addr} resolves to no address"))
}

/// Parse a duration such as `300s`, `5m` or `250ms`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (write e.g. 300s, 5m, 250ms)"))
}

fn init_logging(verbose: u8, quiet: u8) {
    let level = match (verbose, quiet) {
        (0, 0) => "info",
        (1, _) => "debug",
        (v, _) if v >= 2 => "trace",
        (_, 1) => "warn",
        _ => "error",
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level))
        .format_timestamp_millis()
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    let result = match cli.command {
        Cmd::Serve(args) => serve::run(args),
        Cmd::Client(args) => client::run(args),
        Cmd::Bench(args) => bench::run(args),
        Cmd::Watch(args) => watch::run(args),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("multiserve: {message}");
            ExitCode::FAILURE
        }
    }
}
