//! `multiserve watch`: the server's sockets and counters, live, from its
//! status service.
//!
//! It connects to the status port, asks for a JSON snapshot (`json\n`)
//! every `--interval`, and draws it in the terminal (ratatui over
//! crossterm): the counters of each service, requests and connections per
//! second over the last minute, and a row per socket coloured by its role.
//! `--once` prints one snapshot as a plain-text table instead.

mod draw;
mod snapshot;
mod text;
mod tui;

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

use crate::parse_duration;
use snapshot::Snapshot;

/// How long connecting, or waiting for a snapshot, may take.
const TIMEOUT: Duration = Duration::from_secs(2);

#[derive(clap::Args)]
pub struct Args {
    /// The server's status port, e.g. 192.168.69.1:7001.
    addr: String,
    /// How often to ask for a snapshot.
    #[arg(long, default_value = "250ms", value_parser = parse_interval)]
    interval: Duration,
    /// Print one snapshot as a plain-text table and exit.
    #[arg(long)]
    once: bool,
}

fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_millis(10) {
        return Err("the interval must be at least 10ms".into());
    }
    Ok(d)
}

pub fn run(args: Args) -> Result<ExitCode, String> {
    let addr = crate::resolve(&args.addr)?;
    if args.once {
        let snapshot = Client::connect(addr)?.snapshot()?;
        print!("{}", text::table(&args.addr, &snapshot));
        return Ok(ExitCode::SUCCESS);
    }
    tui::run(&args.addr, addr, args.interval)
}

/// A connection to a status service.
pub struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    addr: SocketAddr,
}

impl Client {
    /// Connects, and reads the text snapshot every client is greeted with.
    pub fn connect(addr: SocketAddr) -> Result<Client, String> {
        let stream = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| match e.kind() {
            io::ErrorKind::ConnectionRefused => format!(
                "connection refused by {addr}: no status service there (is the server running, \
                 without --status-port off?)"
            ),
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => format!(
                "no answer from {addr} within {}: is the server running, and the route to it up?",
                humantime::format_duration(TIMEOUT)
            ),
            _ => format!("cannot connect to {addr}: {e}"),
        })?;
        let _ = stream.set_nodelay(true);
        stream
            .set_read_timeout(Some(TIMEOUT))
            .map_err(|e| e.to_string())?;
        let reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
        let mut client = Client {
            reader,
            writer: stream,
            addr,
        };
        let first = client.line()?;
        if first.starts_with("busy") {
            return Err(format!("the status service at {addr} is full: {first}"));
        }
        if !first.starts_with("status ") {
            return Err(format!("{addr} is not a status service; it said: {first}"));
        }
        while client.line()? != "end" {}
        Ok(client)
    }

    /// Asks for a JSON snapshot and reads it.
    pub fn snapshot(&mut self) -> Result<Snapshot, String> {
        self.writer
            .write_all(b"json\n")
            .map_err(|e| format!("{} went away: {e}", self.addr))?;
        let line = self.line()?;
        if line.starts_with("error:") {
            return Err(format!("{} answered: {line}", self.addr));
        }
        Snapshot::parse(&line)
    }

    /// The next line, without its end.
    fn line(&mut self) -> Result<String, String> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => Err(format!("{} closed the connection", self.addr)),
            Ok(_) => Ok(line.trim_end_matches(['\r', '\n']).to_string()),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Err(format!(
                    "{} sent no snapshot within {}",
                    self.addr,
                    humantime::format_duration(TIMEOUT)
                ))
            }
            Err(e) => Err(format!("{} went away: {e}", self.addr)),
        }
    }
}
