//! `multiserve client`: the lecture's interactive client, over the
//! kernel's sockets.

use std::io::{self, BufRead, BufReader, IsTerminal, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

use crate::parse_duration;

#[derive(clap::Args)]
pub struct Args {
    /// The server, e.g. 192.168.69.1:7000 or [fdaa::1]:7000.
    addr: String,
    /// Send each message without a newline and print whatever one read
    /// returns, as the lecture's client does (for --framing chunk).
    #[arg(long)]
    chunk: bool,
    /// Give up connecting, or waiting for a reply, after this long.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    timeout: Duration,
}

pub fn run(args: Args) -> Result<ExitCode, String> {
    let addr = crate::resolve(&args.addr)?;
    let stream = TcpStream::connect_timeout(&addr, args.timeout).map_err(|e| match e.kind() {
        io::ErrorKind::ConnectionRefused => format!(
            "connection refused by {addr}: nothing listens there, or the server is full \
             (with --when-full reset)"
        ),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => format!(
            "no answer from {addr} within {}: is the server running, and is the route to it \
             up (the TAP's Linux side needs an address on its network)?",
            humantime::format_duration(args.timeout)
        ),
        _ => format!("cannot connect to {addr}: {e}"),
    })?;
    let _ = stream.set_nodelay(true);
    stream
        .set_read_timeout(Some(args.timeout))
        .map_err(|e| e.to_string())?;
    let local = stream.local_addr().map_err(|e| e.to_string())?;
    eprintln!("connected from {local} to {addr}");

    let mut reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
    let mut writer = stream;
    let interactive = io::stdin().is_terminal();
    let stdin = io::stdin();
    let mut lines = stdin.lock().lines();
    let mut stdout = io::stdout();
    loop {
        if interactive {
            eprint!("message: ");
        }
        let line = match lines.next() {
            None => break,
            Some(Ok(line)) => line,
            Some(Err(e)) => return Err(format!("reading the terminal: {e}")),
        };
        if line == "EXIT" {
            break;
        }
        let mut message = line.into_bytes();
        if !args.chunk {
            message.push(b'\n');
        }
        writer.write_all(&message).map_err(|e| describe(e, addr))?;
        let reply = if args.chunk {
            let mut buf = vec![0u8; 1024];
            let n = reader.read(&mut buf).map_err(|e| describe(e, addr))?;
            buf.truncate(n);
            buf
        } else {
            let mut buf = Vec::new();
            reader
                .read_until(b'\n', &mut buf)
                .map_err(|e| describe(e, addr))?;
            buf
        };
        if reply.is_empty() {
            return Err(format!("{addr} closed the connection"));
        }
        if reply.starts_with(b"busy:") {
            return Err(format!(
                "the server is full: {}",
                String::from_utf8_lossy(&reply).trim_end()
            ));
        }
        stdout.write_all(&reply).map_err(|e| e.to_string())?;
        if args.chunk || !reply.ends_with(b"\n") {
            stdout.write_all(b"\n").map_err(|e| e.to_string())?;
        }
        stdout.flush().map_err(|e| e.to_string())?;
    }
    let _ = writer.shutdown(std::net::Shutdown::Write);
    Ok(ExitCode::SUCCESS)
}

fn describe(e: io::Error, addr: SocketAddr) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => {
            format!("connection reset by {addr}")
        }
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            format!("no reply from {addr} in time")
        }
        _ => format!("talking to {addr}: {e}"),
    }
}
