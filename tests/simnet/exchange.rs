//! What one client sends and what it gets back.

use smoltcp::socket::tcp::State;
use smoltcp::time::Duration;

use multiserve::Role;
use multiserve::{Config, Echo, Framing, Reverse};

use crate::net::{rev_line, Net, Setup};

type ReverseNet = Net<Reverse, 4>;

fn reverse_net() -> ReverseNet {
    Net::new(Config::default(), Reverse::default(), Setup::default())
}

#[test]
fn hello_is_answered_olleh() {
    let mut net = reverse_net();
    let c = net.connect();
    assert_eq!(net.exchange(c, b"hello\n", 6), b"olleh\n");
    assert_eq!(net.server.stats().answered, 1);
    assert_eq!(net.server.stats().bytes_in, 6);
    assert_eq!(net.server.stats().bytes_out, 6);
    assert!(matches!(net.phases()[0], Role::Serving));
    assert_eq!(net.server_states()[0], State::Established);
}

#[test]
fn crlf_is_kept_off_the_reversal_and_put_back() {
    let mut net = reverse_net();
    let c = net.connect();
    assert_eq!(net.exchange(c, b"abc\r\n", 5), b"cba\r\n");
    // A lone CR inside a line is content.
    assert_eq!(net.exchange(c, b"a\rb\n", 4), b"b\ra\n");
}

#[test]
fn utf8_is_reversed_by_character() {
    let mut net = reverse_net();
    let c = net.connect();
    let line = "Olá, mundo\n";
    assert_eq!(
        net.exchange(c, line.as_bytes(), line.len()),
        "odnum ,álO\n".as_bytes()
    );
    let emoji = "ação 🦀 ok\n";
    assert_eq!(
        net.exchange(c, emoji.as_bytes(), emoji.len()),
        rev_line("ação 🦀 ok")
    );
}

#[test]
fn invalid_utf8_is_reversed_byte_by_byte() {
    let mut net = reverse_net();
    let c = net.connect();
    // Invalid bytes around a valid two-byte character.
    let line = b"\xff\xfe\xc3\xa1\x80z\n";
    assert_eq!(
        net.exchange(c, line, line.len()),
        b"z\x80\xc3\xa1\xfe\xff\n"
    );
}

#[test]
fn several_lines_in_one_segment_get_one_answer_each() {
    let mut net = reverse_net();
    let c = net.connect();
    let got = net.exchange(c, b"one\ntwo\r\nthree\n", 15);
    assert_eq!(got, b"eno\nowt\r\neerht\n");
    assert_eq!(net.server.stats().answered, 3);
}

#[test]
fn one_line_over_many_segments_gets_one_answer() {
    let mut net = reverse_net();
    let c = net.connect();
    for piece in [&b"he"[..], b"l", b"lo wo", b"rld"] {
        net.send(c, piece);
        net.run_for(Duration::from_millis(50));
        assert_eq!(net.take(c), b"", "answered before the line ended");
    }
    assert_eq!(net.exchange(c, b"\n", 12), b"dlrow olleh\n");
    assert_eq!(net.server.stats().answered, 1);
}

#[test]
fn overlong_line_gets_one_error_and_the_connection_keeps_working() {
    let mut net: Net<Reverse, 2> = Net::new(
        Config::default(),
        Reverse::new(Framing::Line, 16),
        Setup::default(),
    );
    let c = net.connect();
    let error = b"error: line longer than 16 bytes\n";
    // 40 bytes then the newline, sent in two pieces: one error line only.
    net.send(c, &[b'x'; 20]);
    net.run_for(Duration::from_millis(50));
    net.send(c, &[b'y'; 20]);
    net.run_for(Duration::from_millis(50));
    assert_eq!(
        net.exchange(c, b"\nok\n", error.len() + 3),
        [&error[..], b"ko\n"].concat()
    );
    // Exactly the maximum is fine, with LF or CRLF.
    let max = [b'a'; 16];
    assert_eq!(
        net.exchange(c, &[&max[..], b"\r\n"].concat(), 18),
        [&max[..], b"\r\n"].concat()
    );
    // One byte more is not, even with the newline in the same segment.
    let got = net.exchange(c, &[&max[..], b"b\nfine\n"].concat(), error.len() + 5);
    assert_eq!(got, [&error[..], b"enif\n"].concat());
    let stats = net.server.stats();
    assert_eq!((stats.rejected, stats.answered), (2, 3));
    assert_eq!(net.server_states()[0], State::Established);
}

#[test]
fn last_line_without_newline_is_answered_when_the_client_closes() {
    let mut net = reverse_net();
    let c = net.connect();
    net.send(c, b"abc\nxyz");
    net.client(c).close();
    let got = net.receive(c, 7, Duration::from_secs(10));
    assert_eq!(got, b"cba\nzyx");
}

#[test]
fn chunk_framing_answers_each_message_as_it_comes() {
    let mut net: Net<Reverse, 2> = Net::new(
        Config::default(),
        Reverse::new(Framing::Chunk, 1024),
        Setup::default(),
    );
    let c = net.connect();
    // The lecture's client: send a message, wait for the answer.
    assert_eq!(net.exchange(c, b"hello", 5), b"olleh");
    assert_eq!(net.exchange(c, b"Ol\xc3\xa1", 4), b"\xc3\xa1lO");
    assert_eq!(net.exchange(c, b"a b\n", 4), b"\nb a");
    assert_eq!(net.server.stats().answered, 3);
}

#[test]
fn echo_service_sends_back_every_byte() {
    let mut net: Net<Echo, 2> = Net::new(Config::default(), Echo, Setup::default());
    let c = net.connect();
    let data: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    net.send(c, &data);
    assert_eq!(net.receive(c, data.len(), Duration::from_secs(10)), data);
}

/// A client that sends a lot and reads nothing loses nothing, and does not
/// slow anyone else: its window closes, the other client's exchange runs.
#[test]
fn a_client_that_never_reads_loses_nothing_and_stalls_no_one() {
    let setup = Setup {
        client_rx: 16 * 1024,
        client_tx: 16 * 1024,
        ..Setup::default()
    };
    let mut net: ReverseNet = Net::new(Config::default(), Reverse::default(), setup);
    let hog = net.connect();
    let other = net.connect();

    // 1 MiB of numbered lines.
    let mut data = Vec::new();
    let mut expected = Vec::new();
    let mut n = 0u32;
    while data.len() < 1 << 20 {
        let line = format!("line {n:08} of the hog");
        data.extend_from_slice(line.as_bytes());
        data.push(b'\n');
        expected.extend(rev_line(&line));
        n += 1;
    }

    // Push until nothing more goes in: the hog's window is closed.
    let mut sent = 0;
    loop {
        let pushed = net.client(hog).send_slice(&data[sent..]).unwrap();
        sent += pushed;
        net.run_for(Duration::from_millis(200));
        if pushed == 0 {
            break;
        }
    }
    assert!(sent < data.len(), "the hog's window never closed");
    let hog_rx = net.client(hog).recv_queue();
    assert_eq!(hog_rx, 16 * 1024, "the hog's receive buffer is full");

    // Meanwhile the other client is served.
    for i in 0..20 {
        let line = format!("other {i}");
        let got = net.exchange(other, format!("{line}\n").as_bytes(), line.len() + 1);
        assert_eq!(got, rev_line(&line));
    }

    // Now the hog reads; it gets every answer, in order.
    let mut got = Vec::new();
    while got.len() < expected.len() {
        if sent < data.len() {
            sent += net.client(hog).send_slice(&data[sent..]).unwrap();
        }
        net.run_for(Duration::from_millis(20));
        got.extend(net.take(hog));
        assert!(
            net.now.total_millis() < 3_600_000,
            "hog stalled at {} bytes",
            got.len()
        );
    }
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "the hog's answers differ");
    assert_eq!(net.server.stats().answered, u64::from(n) + 20);
}
