//! What the reverse service answers.

use crate::conformance;
use crate::serve;

#[test]
fn reverses_a_line() {
    let Some(server) = serve("exchange::reverses_a_line", &[]) else {
        return;
    };
    conformance::reverses_a_line(&server);
}

#[test]
fn reverses_utf8_by_character() {
    let Some(server) = serve("exchange::reverses_utf8_by_character", &[]) else {
        return;
    };
    conformance::reverses_utf8_by_character(&server);
}

#[test]
fn keeps_crlf() {
    let Some(server) = serve("exchange::keeps_crlf", &[]) else {
        return;
    };
    conformance::keeps_crlf(&server);
}

#[test]
fn reverses_invalid_utf8_byte_by_byte() {
    let Some(server) = serve("exchange::reverses_invalid_utf8_byte_by_byte", &[]) else {
        return;
    };
    conformance::reverses_invalid_utf8_byte_by_byte(&server);
}

#[test]
fn answers_pipelined_lines_in_order() {
    let Some(server) = serve("exchange::answers_pipelined_lines_in_order", &[]) else {
        return;
    };
    conformance::answers_pipelined_lines_in_order(&server);
}

#[test]
fn answers_a_line_split_over_many_writes() {
    let Some(server) = serve("exchange::answers_a_line_split_over_many_writes", &[]) else {
        return;
    };
    conformance::answers_a_line_split_over_many_writes(&server);
}

#[test]
fn rejects_an_overlong_line_and_goes_on() {
    let Some(server) = serve(
        "exchange::rejects_an_overlong_line_and_goes_on",
        &["--max-line", "64"],
    ) else {
        return;
    };
    conformance::rejects_an_overlong_line_and_goes_on(&server, 64);
}

#[test]
fn chunk_framing_answers_without_newline() {
    let Some(server) = serve(
        "exchange::chunk_framing_answers_without_newline",
        &["--framing", "chunk"],
    ) else {
        return;
    };
    conformance::chunk_framing_answers_without_newline(&server);
}

#[test]
fn lossy_link_round_trips_are_exact() {
    let Some(server) = serve(
        "exchange::lossy_link_round_trips_are_exact",
        &["--drop-chance", "10"],
    ) else {
        return;
    };
    conformance::round_trips_are_exact(&server, 200, 4);
}

#[test]
fn corrupting_link_round_trips_are_exact() {
    let Some(server) = serve(
        "exchange::corrupting_link_round_trips_are_exact",
        &["--corrupt-chance", "10"],
    ) else {
        return;
    };
    conformance::round_trips_are_exact(&server, 100, 2);
}
