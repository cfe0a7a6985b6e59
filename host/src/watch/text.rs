//! `watch --once`: one snapshot as a plain-text table.

use std::fmt::Write as _;

use super::snapshot::{short_ms, Snapshot};

/// The snapshot as lines of text with aligned columns, no escape codes.
pub fn table(addr: &str, snapshot: &Snapshot) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "multiserve at {addr}: up {}, {} sockets in use, {} unlisted",
        short_ms(snapshot.uptime_ms),
        snapshot.sockets_in_use.max(snapshot.sockets.len()),
        snapshot.unlisted
    );
    for service in &snapshot.services {
        let _ = write!(
            out,
            "\nservice {} port {} clients {} spare {}\n ",
            service.name, service.port, service.clients, service.spare
        );
        for (key, value) in &service.counters.0 {
            let _ = write!(out, " {key} {value}");
        }
        out.push('\n');
    }
    out.push('\n');
    let header = [
        "index",
        "port",
        "role",
        "state",
        "peer",
        "bytes_in",
        "bytes_out",
        "idle",
    ];
    let rows: Vec<[String; 8]> = snapshot
        .sockets
        .iter()
        .map(|s| {
            [
                s.index.to_string(),
                s.port.to_string(),
                s.role.clone(),
                s.state.clone(),
                s.peer.clone().unwrap_or_else(|| "-".into()),
                s.bytes_in.to_string(),
                s.bytes_out.to_string(),
                short_ms(s.idle_ms),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let header = header.map(String::from);
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (cell, w) in row.iter().zip(widths) {
            let _ = write!(line, "{cell:<w$}  ");
        }
        out += line.trim_end();
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::snapshot::tests::snapshot;
    use super::*;

    #[test]
    fn once_prints_an_aligned_table_without_escape_codes() {
        let text = table("192.168.69.1:7001", &snapshot());
        assert!(!text.contains('\x1b'), "{text}");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "multiserve at 192.168.69.1:7001: up 1m21s, 7 sockets in use, 0 unlisted"
        );
        assert_eq!(lines[2], "service reverse port 7000 clients 16 spare 8");
        assert!(
            lines[3].starts_with("  active 3 peak_active 3 accepted 5 refused_busy 1 "),
            "{}",
            lines[3]
        );
        let header = lines.iter().position(|l| l.starts_with("index")).unwrap();
        assert_eq!(
            &lines[header..header + 3],
            [
                "index  port  role       state        peer                  bytes_in  bytes_out  idle",
                "0      7000  serving    ESTABLISHED  192.168.69.100:50312  12        12         350ms",
                "1      7000  serving    ESTABLISHED  192.168.69.100:50320  6         6          12.3s",
            ]
        );
        assert_eq!(lines.len(), header + 1 + 7);
    }
}
