//! Sleeping until the TAP has a frame, a signal came or a deadline passed:
//! the `select()` of the lecture, as `ppoll(2)` on two file descriptors.

use std::io::{self, Read};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;

use smoltcp::time::Duration;

/// SIGINT and SIGTERM, turned into bytes on a pipe the loop sleeps on.
pub struct Signals {
    rx: UnixStream,
}

/// What ended a sleep.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// A frame, or the time ran out.
    Network,
    /// SIGINT or SIGTERM.
    Stop,
}

impl Signals {
    /// Registers the pipe for SIGINT and SIGTERM.
    pub fn register() -> Result<Signals, String> {
        let (rx, tx) = UnixStream::pair().map_err(|e| format!("cannot make a signal pipe: {e}"))?;
        rx.set_nonblocking(true).map_err(|e| e.to_string())?;
        for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            let tx = tx.try_clone().map_err(|e| e.to_string())?;
            signal_hook::low_level::pipe::register(signal, tx)
                .map_err(|e| format!("cannot handle signal {signal}: {e}"))?;
        }
        Ok(Signals { rx })
    }

    /// Sleeps until `tap` is readable, a signal came, or `timeout` passed
    /// (`None`: no deadline).
    pub fn wait(&self, tap: RawFd, timeout: Option<Duration>) -> Result<Wake, String> {
        if ppoll(tap, self.rx.as_raw_fd(), timeout)? && self.drain() {
            Ok(Wake::Stop)
        } else {
            Ok(Wake::Network)
        }
    }

    /// Reads everything from the pipe; whether anything was there.
    fn drain(&self) -> bool {
        let mut buf = [0u8; 64];
        let mut any = false;
        loop {
            match (&self.rx).read(&mut buf) {
                Ok(0) => return any,
                Ok(_) => any = true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return any,
            }
        }
    }
}

/// Sleep in ppoll(2) on the TAP and the signal pipe, at most `timeout`
/// (`None`: until one is ready). Returns whether a signal came.
fn ppoll(tap: RawFd, signal: RawFd, timeout: Option<Duration>) -> Result<bool, String> {
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
