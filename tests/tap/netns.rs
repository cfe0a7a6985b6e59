//! A private, unnamed network namespace per test.
//!
//! A dedicated thread leaves the test process's network namespace for a
//! new one (`unshare(CLONE_NEWNET)` acts on the calling thread only) and
//! then runs jobs sent to it: spawning `ip`, the server and clients, and
//! creating sockets. Children inherit that thread's namespace, and sockets
//! stay in the namespace they were created in, so they can be used from
//! any thread afterwards. Nothing has a name, so nothing collides; the
//! kernel removes the namespace (and any device in it) once its last
//! process and socket are gone.

use std::io;
use std::process::Command;
use std::sync::mpsc;
use std::thread;

type Job = Box<dyn FnOnce() + Send>;

/// A network namespace of our own, served by one thread.
pub struct Netns {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Netns {
    /// Creates the namespace and brings its loopback interface up.
    pub fn new() -> io::Result<Netns> {
        let (ready_tx, ready_rx) = mpsc::channel::<io::Result<()>>();
        let (jobs_tx, jobs_rx) = mpsc::channel::<Job>();
        let thread = thread::Builder::new().name("netns".into()).spawn(move || {
            // SAFETY: unshare takes no pointers; CLONE_NEWNET moves only
            // this thread into a new network namespace.
            let status = unsafe { libc::unshare(libc::CLONE_NEWNET) };
            if status != 0 {
                let _ = ready_tx.send(Err(io::Error::last_os_error()));
                return;
            }
            let _ = ready_tx.send(Ok(()));
            for job in jobs_rx {
                job();
            }
        })?;
        let ready = ready_rx
            .recv()
            .map_err(|_| io::Error::other("the namespace thread ended"))?;
        let netns = Netns {
            jobs: Some(jobs_tx),
            thread: Some(thread),
        };
        ready?;
        netns.ip(&["link", "set", "lo", "up"])?;
        Ok(netns)
    }

    /// Runs `job` on the namespace's thread and returns its result.
    pub fn run<R: Send + 'static>(&self, job: impl FnOnce() -> R + Send + 'static) -> R {
        let (tx, rx) = mpsc::sync_channel(1);
        self.jobs
            .as_ref()
            .expect("namespace thread")
            .send(Box::new(move || {
                let _ = tx.send(job());
            }))
            .expect("the namespace thread ended");
        rx.recv().expect("a job on the namespace thread panicked")
    }

    /// Runs `ip ARGS` in the namespace; an error if it fails.
    pub fn ip(&self, args: &[&str]) -> io::Result<()> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let output = self.run(move || Command::new("ip").args(&args).output())?;
        if output.status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "ip failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )))
        }
    }

    /// The output of `ip ARGS` in the namespace.
    pub fn ip_output(&self, args: &[&str]) -> io::Result<String> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let output = self.run(move || Command::new("ip").args(&args).output())?;
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

impl Netns {
    /// A counter of the namespace's kernel TCP (`TcpExt` in
    /// `/proc/net/netstat`, e.g. `PAWSActive`), or `None` if the kernel
    /// has no such counter. Read on the namespace's thread: `/proc/net`
    /// is the namespace of the reading process's main thread, not of this
    /// one.
    pub fn tcp_ext(&self, name: &'static str) -> Option<u64> {
        let text = self
            .run(|| std::fs::read_to_string("/proc/thread-self/net/netstat"))
            .ok()?;
        let mut tcp_ext = text.lines().filter(|l| l.starts_with("TcpExt:"));
        let (names, values) = (tcp_ext.next()?, tcp_ext.next()?);
        names
            .split_whitespace()
            .zip(values.split_whitespace())
            .find(|(n, _)| *n == name)
            .and_then(|(_, value)| value.parse().ok())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
