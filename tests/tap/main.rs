//! The host program, tested for real: `multiserve` on a TAP device, driven
//! by kernel TCP clients through the conformance suite.
//!
//! Each test runs in a network namespace of its own (see [`netns`]): the
//! server creates its TAP device there, and the test's clients connect to
//! it through the kernel's TCP/IP stack. The tests need root and
//! `/dev/net/tun`; without them each test says so loudly on stderr and
//! passes, unless `MULTISERVE_REQUIRE_ALL=1` makes that a failure.

// Every test starts with `netns!()` or `serve!(ARGS)`: defined before the
// modules, so that they see them.

/// The name of the test this is expanded in, as libtest lists it
/// (`exchange::reverses_a_line`), for its skip message.
macro_rules! test_name {
    () => {{
        fn here() {}
        // `tap::exchange::reverses_a_line::here`
        let path = std::any::type_name_of_val(&here);
        let path = path.strip_suffix("::here").unwrap_or(path);
        path.split_once("::").map_or(path, |(_, name)| name)
    }};
}

/// A fresh network namespace (an `Arc<Netns>`) for the test this is
/// expanded in; where this machine cannot give one, the test returns
/// there, skipped (see [`netns`]).
macro_rules! netns {
    () => {
        match $crate::netns(test_name!()) {
            Some(ns) => ns,
            None => return,
        }
    };
}

/// `multiserve serve ARGS` (a `&[&str]`, none if left out) running in a
/// fresh namespace for the test this is expanded in, ready; or the test
/// returns there, skipped, as with [`netns!`].
macro_rules! serve {
    () => {
        serve!(&[])
    };
    ($args:expr) => {
        $crate::server::Server::start(&netns!(), $args)
    };
}

mod netns;
mod server;

mod admission;
mod exchange;
mod faults;
mod harness;
mod lifecycle;
mod pool;
mod program;
mod reach;
mod soak;
mod timestamps;
mod watch;

use std::path::Path;
use std::sync::Arc;

/// The scenarios, shared with the QEMU suite.
use multiserve_conformance as conformance;
use netns::Netns;

/// A fresh network namespace for `test`, or `None` (after a loud message)
/// where this machine cannot give one and skips are allowed.
pub fn netns(test: &str) -> Option<Arc<Netns>> {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let tun = Path::new("/dev/net/tun").exists();
    let why = if !root || !tun {
        format!("needs root and /dev/net/tun (root: {root}, /dev/net/tun: {tun})")
    } else {
        match Netns::new() {
            Ok(ns) => return Some(Arc::new(ns)),
            Err(e) => format!("cannot create a network namespace: {e}"),
        }
    };
    skip(test, &why);
    None
}

/// Says loudly that `test` is skipped and why; a failure instead with
/// `MULTISERVE_REQUIRE_ALL=1`.
pub fn skip(test: &str, why: &str) {
    conformance::skip(&format!("tap::{test}"), why);
}
