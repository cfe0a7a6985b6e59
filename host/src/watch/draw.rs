//! The screen of `multiserve watch`, drawn from a snapshot and its history
//! alone (no terminal, no clock), so it can be tested on a `TestBackend`.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Row, Sparkline, Table, Widget};

use super::snapshot::{short_bytes, short_ms, History, Snapshot};

/// Where the watched server stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// No snapshot yet.
    Connecting,
    /// Snapshots are coming.
    Up,
    /// The server went away, or never answered: why. The last snapshot (if
    /// any) is still shown.
    Down(String),
}

/// Everything the screen shows.
pub struct Screen<'a> {
    /// The status address watched, as the user wrote it.
    pub addr: &'a str,
    pub link: &'a Link,
    pub snapshot: Option<&'a Snapshot>,
    pub history: &'a History,
}

/// The colour of a socket's role.
pub fn role_style(role: &str) -> Style {
    let color = match role {
        "serving" => Color::Green,
        "listening" => Color::Blue,
        "half-open" => Color::Yellow,
        "queued" => Color::Magenta,
        "busy" => Color::Red,
        "lingering" => Color::Cyan,
        _ => Color::DarkGray,
    };
    Style::new().fg(color)
}

impl Widget for &Screen<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        // The counters take at most a third of the screen: past that, the
        // ones at 0 are left out.
        let budget = usize::from(area.height / 3).saturating_sub(2);
        let counters = self.snapshot.map_or(Vec::new(), |s| {
            let all = counter_lines(s, area.width, true);
            if all.len() <= budget {
                all
            } else {
                counter_lines(s, area.width, false)
            }
        });
        let [title, counters_area, rates, sockets] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(counters.len() as u16 + 2),
            Constraint::Length(6),
            Constraint::Min(3),
        ])
        .areas(area);
        self.title().render(title, buf);
        Paragraph::new(counters)
            .block(Block::bordered().title(" counters "))
            .render(counters_area, buf);
        let [requests, connections] =
            Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)]).areas(rates);
        sparkline("requests/s", &self.history.requests, Color::Green).render(requests, buf);
        sparkline("connections/s", &self.history.connections, Color::Cyan).render(connections, buf);
        if let Some(snapshot) = self.snapshot {
            socket_table(snapshot).render(sockets, buf);
        } else {
            Block::bordered().title(" sockets ").render(sockets, buf);
        }
    }
}

impl Screen<'_> {
    fn title(&self) -> Line<'static> {
        let mut spans = Vec::new();
        if let Link::Down(why) = self.link {
            // What matters most then, first: the rest may be cut.
            spans.push(Span::styled(
                format!("{why}; retrying every second"),
                Style::new().fg(Color::White).bg(Color::Red),
            ));
        } else {
            spans.push(Span::styled(
                format!("multiserve watch {}", self.addr),
                Style::new().add_modifier(Modifier::BOLD),
            ));
            spans.push(Span::raw(match self.snapshot {
                None => "  connecting…".to_string(),
                Some(s) => format!(
                    "  up {}, {} sockets, {} unlisted",
                    short_ms(s.uptime_ms),
                    s.sockets_in_use.max(s.sockets.len()),
                    s.unlisted
                ),
            }));
        }
        spans.push(Span::styled("  q quits", Style::new().fg(Color::DarkGray)));
        Line::from(spans)
    }
}

/// Each service's counters as `key value` items (`zeros`: also those at
/// 0), packed into lines that fit `width` (the block's borders taken off).
fn counter_lines(snapshot: &Snapshot, width: u16, zeros: bool) -> Vec<Line<'static>> {
    let room = usize::from(width.saturating_sub(2)).max(20);
    let mut lines = Vec::new();
    for service in &snapshot.services {
        let head = format!(
            "{} :{} clients {} spare {}",
            service.name, service.port, service.clients, service.spare
        );
        let mut used = head.len();
        let mut line = vec![Span::styled(
            head,
            Style::new().add_modifier(Modifier::BOLD),
        )];
        for (key, value) in &service.counters.0 {
            if *value == 0 && !zeros {
                continue;
            }
            let item = format!("{key} {value}");
            if used + 2 + item.len() > room {
                lines.push(Line::from(std::mem::take(&mut line)));
                line.push(Span::raw("  "));
                used = 2;
            } else {
                line.push(Span::raw("  "));
                used += 2;
            }
            used += item.len();
            let style = if *value == 0 {
                Style::new().fg(Color::DarkGray)
            } else {
                Style::new()
            };
            line.push(Span::styled(item, style));
        }
        lines.push(Line::from(line));
    }
    lines
}

fn sparkline<'a>(
    what: &str,
    rates: &'a std::collections::VecDeque<u64>,
    color: Color,
) -> Sparkline<'a> {
    let now = rates.back().copied().unwrap_or(0);
    let max = rates.iter().copied().max().unwrap_or(0);
    Sparkline::default()
        .block(Block::bordered().title(format!(" {what}: {now}, max {max} in 1 min ")))
        .data(rates.iter().copied())
        .max(max.max(1))
        .style(Style::new().fg(color))
}

/// Runs of at least this many listening sockets of one port are shown as
/// one row, so the connections fit the screen.
const FOLD: usize = 3;

fn socket_table(snapshot: &Snapshot) -> Table<'static> {
    let header = Row::new(["#", "port", "role", "state", "peer", "in", "out", "idle"])
        .style(Style::new().add_modifier(Modifier::BOLD));
    let mut rows = Vec::new();
    let sockets = &snapshot.sockets;
    let mut i = 0;
    while let Some(s) = sockets.get(i) {
        let run = sockets[i..]
            .iter()
            .take_while(|o| o.role == "listening" && s.role == "listening" && o.port == s.port)
            .count();
        let row = if run >= FOLD {
            let last = &sockets[i + run - 1];
            let idle = sockets[i..i + run].iter().map(|o| o.idle_ms).min();
            i += run;
            [
                format!("{}-{}", s.index, last.index),
                s.port.to_string(),
                s.role.clone(),
                s.state.clone(),
                format!("({run} sockets)"),
                String::new(),
                String::new(),
                short_ms(idle.unwrap_or(0)),
            ]
        } else {
            i += 1;
            [
                s.index.to_string(),
                s.port.to_string(),
                s.role.clone(),
                s.state.clone(),
                s.peer.clone().unwrap_or_else(|| "-".into()),
                short_bytes(s.bytes_in),
                short_bytes(s.bytes_out),
                short_ms(s.idle_ms),
            ]
        };
        rows.push(Row::new(row).style(role_style(&s.role)));
    }
    // 78 columns in all with IPv4 peers: an 80-column terminal shows
    // every column whole. Long IPv6 peers widen their column.
    let peer = snapshot
        .sockets
        .iter()
        .filter_map(|s| s.peer.as_ref().map(String::len))
        .max()
        .unwrap_or(0)
        .clamp(22, 47) as u16;
    let widths = [
        Constraint::Length(5),
        Constraint::Length(5),
        Constraint::Length(9),
        Constraint::Length(12),
        Constraint::Length(peer),
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Length(6),
    ];
    let title = format!(
        " sockets: {} in use, {} unlisted ",
        snapshot.sockets_in_use.max(snapshot.sockets.len()),
        snapshot.unlisted
    );
    Table::new(rows, widths)
        .header(header)
        .block(Block::bordered().title(title))
}

#[cfg(test)]
mod tests {
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    use super::super::snapshot::tests::snapshot;
    use super::*;

    /// The screen of `screen` on a terminal of `width` x `height`, as text
    /// lines, and the buffer.
    fn render(screen: &Screen<'_>, width: u16, height: u16) -> (Vec<String>, Buffer) {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal
            .draw(|frame| frame.render_widget(screen, frame.area()))
            .unwrap();
        let buffer = terminal.backend().buffer().clone();
        let lines = (0..height)
            .map(|y| {
                (0..width)
                    .map(|x| buffer[(x, y)].symbol())
                    .collect::<String>()
            })
            .collect();
        (lines, buffer)
    }

    #[test]
    fn draws_the_snapshot() {
        let snapshot = snapshot();
        let mut history = History::default();
        history.requests.extend([1, 5, 10, 20, 10]);
        history.connections.extend([0, 1, 0, 2, 0]);
        let screen = Screen {
            addr: "192.168.69.1:7001",
            link: &Link::Up,
            snapshot: Some(&snapshot),
            history: &history,
        };
        let (lines, buffer) = render(&screen, 100, 30);
        let expected = [
            "multiserve watch 192.168.69.1:7001  up 1m21s, 7 sockets, 0 unlisted  q quits                        ",
            "┌ counters ────────────────────────────────────────────────────────────────────────────────────────┐",
            "│reverse :7000 clients 16 spare 8  active 3  peak_active 3  accepted 5  refused_busy 1             │",
            "│  refused_reset 0  queued 0  queued_then_served 0  closed_by_peer 2  closed_by_server 0  reset 0  │",
            "│  timed_out 0  half_open_dropped 0  close_aborted 0  reclaimed_half_open 0  reclaimed_lingering 0 │",
            "│  syn_dropped 0  lingering 0  answered 42  rejected 0  bytes_in 420  bytes_out 420                │",
            "│status :7001 clients 2 spare 1  active 1  peak_active 1  accepted 1  refused_busy 0               │",
            "│  refused_reset 0  queued 0  queued_then_served 0  closed_by_peer 0  closed_by_server 0  reset 0  │",
            "│  timed_out 0  half_open_dropped 0  close_aborted 0  reclaimed_half_open 0  reclaimed_lingering 0 │",
            "│  syn_dropped 0  lingering 0  answered 9  rejected 0  bytes_in 45  bytes_out 9000                 │",
            "└──────────────────────────────────────────────────────────────────────────────────────────────────┘",
            "┌ requests/s: 10, max 20 in 1 min ───────────────┐┌ connections/s: 0, max 2 in 1 min ──────────────┐",
            "│   █                                            ││   █                                            │",
            "│   █                                            ││   █                                            │",
            "│  ███                                           ││ █ █                                            │",
            "│▁████                                           ││ █ █                                            │",
            "└────────────────────────────────────────────────┘└────────────────────────────────────────────────┘",
            "┌ sockets: 7 in use, 0 unlisted ───────────────────────────────────────────────────────────────────┐",
            "│#     port  role      state        peer                   in     out    idle                      │",
            "│0     7000  serving   ESTABLISHED  192.168.69.100:50312   12     12     350ms                     │",
            "│1     7000  serving   ESTABLISHED  192.168.69.100:50320   6      6      12.3s                     │",
            "│2     7000  lingering TIME-WAIT    [fdaa::100]:41000      30     30     1.5s                      │",
            "│3     7000  listening LISTEN       -                      0      0      1m21s                     │",
            "│4     7000  busy      FIN-WAIT-1   192.168.69.100:50400   0      52     20ms                      │",
            "│5     7001  serving   ESTABLISHED  192.168.69.100:35582   45     9000   250ms                     │",
            "│6     7001  listening LISTEN       -                      0      0      1m21s                     │",
            "│                                                                                                  │",
            "│                                                                                                  │",
            "│                                                                                                  │",
            "└──────────────────────────────────────────────────────────────────────────────────────────────────┘",
        ];
        assert_eq!(lines, expected, "\n{}", lines.join("\n"));
        // Rows are coloured by role.
        for (y, role) in [
            (19, "serving"),
            (21, "lingering"),
            (22, "listening"),
            (23, "busy"),
        ] {
            assert_eq!(
                buffer[(1, y)].fg,
                role_style(role).fg.unwrap(),
                "row {y}: {role}"
            );
        }
    }

    #[test]
    fn folds_runs_of_listening_sockets_into_one_row() {
        let mut snapshot = snapshot();
        let listening = snapshot.sockets[3].clone();
        snapshot.sockets.truncate(3);
        for index in 3..9 {
            let mut s = listening.clone();
            s.index = index;
            s.idle_ms = 1000 * index as u64;
            snapshot.sockets.push(s);
        }
        let history = History::default();
        let screen = Screen {
            addr: "192.168.69.1:7001",
            link: &Link::Up,
            snapshot: Some(&snapshot),
            history: &history,
        };
        let (lines, _) = render(&screen, 100, 30);
        assert_eq!(
            lines[22].trim_end(),
            "│3-8   7000  listening LISTEN       (6 sockets)                          3.0s                      │"
        );
        assert!(lines[23].starts_with("│   "), "{}", lines[23]);
    }

    #[test]
    fn says_when_the_server_is_away_and_fits_a_small_terminal() {
        let snapshot = snapshot();
        let history = History::default();
        let link = Link::Down("192.168.69.1:7001 closed the connection".into());
        let screen = Screen {
            addr: "192.168.69.1:7001",
            link: &link,
            snapshot: Some(&snapshot),
            history: &history,
        };
        let (lines, _) = render(&screen, 80, 24);
        assert_eq!(
            lines[0].trim_end(),
            "192.168.69.1:7001 closed the connection; retrying every second  q quits"
        );
        assert!(lines
            .iter()
            .any(|l| l.contains("│reverse :7000 clients 16 spare 8")));
        // At 80 x 24 the counters at 0 make way for the sockets: all seven
        // rows are there, each peer whole.
        assert!(
            !lines.iter().any(|l| l.contains("refused_reset 0")),
            "{lines:#?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l
                    .contains("│  refused_busy 1  closed_by_peer 2  answered 42  bytes_in 420")),
            "{lines:#?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("│6     7001  listening")),
            "{lines:#?}"
        );
        assert!(lines.iter().any(|l| l.contains(" 192.168.69.100:35582 ")));
        // Drawing on any size, down to nothing, never panics.
        for (w, h) in [(0, 0), (1, 1), (20, 5), (200, 60)] {
            render(&screen, w, h);
        }
        let none = Screen {
            addr: "x:1",
            link: &Link::Connecting,
            snapshot: None,
            history: &history,
        };
        let (lines, _) = render(&none, 60, 12);
        assert!(
            lines[0].starts_with("multiserve watch x:1  connecting…"),
            "{}",
            lines[0]
        );
    }
}
