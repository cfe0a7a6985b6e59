//! What the reverse service answers.

use crate::conformance;

#[test]
fn reverses_a_line() {
    let server = serve!();
    conformance::reverses_a_line(&server);
}

#[test]
fn reverses_utf8_by_character() {
    let server = serve!();
    conformance::reverses_utf8_by_character(&server);
}

#[test]
fn keeps_crlf() {
    let server = serve!();
    conformance::keeps_crlf(&server);
}

#[test]
fn reverses_invalid_utf8_byte_by_byte() {
    let server = serve!();
    conformance::reverses_invalid_utf8_byte_by_byte(&server);
}

#[test]
fn answers_pipelined_lines_in_order() {
    let server = serve!();
    conformance::answers_pipelined_lines_in_order(&server);
}

#[test]
fn answers_a_line_split_over_many_writes() {
    let server = serve!();
    conformance::answers_a_line_split_over_many_writes(&server);
}

#[test]
fn rejects_an_overlong_line_and_goes_on() {
    let server = serve!(&["--max-line", "64"]);
    conformance::rejects_an_overlong_line_and_goes_on(&server, 64);
}

#[test]
fn chunk_framing_answers_without_newline() {
    let server = serve!(&["--framing", "chunk"]);
    conformance::chunk_framing_answers_without_newline(&server);
}

#[test]
fn lossy_link_round_trips_are_exact() {
    let server = serve!(&["--drop-chance", "10"]);
    conformance::round_trips_are_exact(&server, 200, 4);
}

#[test]
fn corrupting_link_round_trips_are_exact() {
    let server = serve!(&["--corrupt-chance", "10"]);
    conformance::round_trips_are_exact(&server, 100, 2);
}
