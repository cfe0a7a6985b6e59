//! Frames of garbage, and mangled copies of real frames, thrown at the
//! server while a client is served: exact answers, no slot lost. (The
//! coverage-guided version of this is the `frames` fuzz target.)

use std::cell::RefCell;
use std::rc::Rc;

use smoltcp::time::Duration;

use multiserve::{Config, Reverse};

use crate::net::{rev_line, Net, Rng, Setup};
use crate::wire::{tcp_segment, Dir};

#[test]
fn garbage_frames_disturb_no_client_and_lose_no_slot() {
    let config = Config {
        handshake_timeout: Duration::from_secs(5),
        idle_timeout: Some(Duration::from_secs(20)),
        ..Config::default()
    };
    let mut net: Net<Reverse, 4> = Net::new(config, Reverse::default(), Setup::default());
    // Record real frames to the server, to mangle later.
    let seen: Rc<RefCell<Vec<Vec<u8>>>> = Rc::default();
    let s = seen.clone();
    net.in_flight.set_filter(move |dir, frame| {
        if dir == Dir::ToServer {
            s.borrow_mut().push(frame.to_vec());
        }
        true
    });
    let c = net.connect();
    let port = net.client(c).local_endpoint().unwrap().port;
    assert_eq!(net.exchange(c, b"warm up\n", 8), b"pu mraw\n");
    let other = net.connect();
    net.send(other, b"another one\n");
    net.run_for(Duration::from_millis(10));
    net.client(other).abort();
    net.run_for(Duration::from_millis(10));
    net.in_flight.clear_filter();
    let templates = seen.borrow().clone();

    let mut rng = Rng::new(7);
    for i in 0..3000u32 {
        let frame = if rng.chance(30) {
            let len = rng.below(120) as usize;
            (0..len).map(|_| rng.next_u64() as u8).collect()
        } else {
            let mut f = templates[rng.below(templates.len() as u64) as usize].clone();
            for _ in 0..=rng.below(4) {
                let at = rng.below(f.len() as u64) as usize;
                f[at] = rng.next_u64() as u8;
            }
            f
        };
        // Forging the client's own 4-tuple is out of scope (it may reset
        // that connection, rightly), as is ARP claiming its address.
        let own = tcp_segment(&frame).is_some_and(|s| s.src_port == port);
        let arp = frame.len() >= 14 && frame[12..14] == [0x08, 0x06];
        if own || arp {
            continue;
        }
        net.in_flight.inject(Dir::ToServer, frame);
        net.run_for(Duration::from_millis(1));
        if i % 100 == 0 {
            let line = format!("still here {i}");
            let got = net.exchange(c, format!("{line}\n").as_bytes(), line.len() + 1);
            assert_eq!(got, rev_line(&line));
        }
    }
    net.client(c).close();
    assert!(
        net.run_until(Duration::from_secs(120), |n| n.all_listening()
            && n.server.stats().active == 0),
        "{:?} {:?}",
        net.server_states(),
        net.phases()
    );
    let s = *net.server.stats();
    assert_eq!(s.accepted, s.ended() + u64::from(s.active));
    println!("after 3000 garbage frames: {s}");
}
