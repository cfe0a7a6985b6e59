#!/usr/bin/env python3
"""Turn the JSON lines of host/bench/run.sh into BENCHMARKS.md (stdout).

    report.py OUT_DIR FIRMWARE_SIZES REPEATS SECONDS [CORE_RESULTS [FLOOD_SVG]]
"""
import json
import os
import platform
import statistics
import subprocess
import sys
from collections import defaultdict
from datetime import date

out, sizes_path, repeats, seconds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
core_path = sys.argv[5] if len(sys.argv) > 5 else None
churn_seconds = os.environ.get("MULTISERVE_BENCH_CHURN_SECONDS", "60")
svg_path = sys.argv[6] if len(sys.argv) > 6 else None


def load(name):
    path = os.path.join(out, name)
    rows = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line.startswith("{"):
                    rows.append(json.loads(line))
    return rows


cells = defaultdict(list)
for row in load("cells.json"):
    cells[row["label"]].append(row)
extra = {}
for name in ("idle.json", "rss.json", "baseline-alive.json"):
    for row in load(name):
        extra.update(row)


def values(label, key):
    return [r[key] for r in cells.get(label, []) if not r.get("failed") and key in r]


def latency(label, q):
    return [r["latency_us"][q] for r in cells.get(label, []) if not r.get("failed")]


def med(v):
    return statistics.median(v) if v else None


def fmt(v, unit=""):
    if not v:
        return "—"
    m = med(v)
    digits = 1 if m < 100 else 0
    if len(v) == 1:
        return f"{m:,.{digits}f}{unit}"
    return f"{m:,.{digits}f}{unit} ({min(v):,.{digits}f}–{max(v):,.{digits}f})"


def ratio(a, b):
    if not a or not b or med(b) == 0:
        return "—"
    return f"{med(a) / med(b):.2f}×"


def failures(label):
    n = sum(1 for r in cells.get(label, []) if r.get("failed") or r.get("mismatches") or r.get("errors"))
    return n


rows = []
verdicts = []
for c in (1, 16, 64):
    m, b = f"multiserve rr c{c}", f"baseline rr c{c}"
    rows.append((f"rr, {c} conn., 64-byte lines: requests/s", fmt(values(m, "requests_per_sec")),
                 fmt(values(b, "requests_per_sec")), ratio(values(m, "requests_per_sec"), values(b, "requests_per_sec"))))
    rows.append((f"rr, {c} conn.: p99 latency, µs", fmt(latency(m, "p99")), fmt(latency(b, "p99")),
                 ratio(latency(m, "p99"), latency(b, "p99"))))
    if c in (16, 64):
        r = values(m, "requests_per_sec"), values(b, "requests_per_sec")
        ok = med(r[0]) and med(r[1]) and med(r[0]) >= 1.2 * med(r[1]) and med(latency(m, "p99")) < med(latency(b, "p99"))
        verdicts.append(f"- rr at {c} connections: at least 1.2× the baseline's requests/s with a lower p99 — "
                        + ("**met**" if ok else "**missed**") + f" ({ratio(*r)}, p99 {fmt(latency(m, 'p99'))} vs {fmt(latency(b, 'p99'))} µs)")
for c in (1, 16):
    m, b = f"multiserve bulk c{c}", f"baseline bulk c{c}"
    rows.append((f"bulk, {c} conn., 1024-byte lines: MB/s answered", fmt(values(m, "mb_per_sec_received")),
                 fmt(values(b, "mb_per_sec_received")), ratio(values(m, "mb_per_sec_received"), values(b, "mb_per_sec_received"))))
bulk1 = med(values("multiserve bulk c1", "mb_per_sec_received"))
verdicts.append("- bulk at 1 connection: at least 200 MB/s through the TAP (64 KiB socket buffers, 1500-byte MTU) — "
                + ("**met**" if bulk1 and bulk1 >= 200 else "**missed**") + f" ({fmt(values('multiserve bulk c1', 'mb_per_sec_received'), ' MB/s')})")
m, b = "multiserve connect c1", "baseline connect c1"
rows.append(("connect + 1 request + close: connections/s", fmt(values(m, "requests_per_sec")),
             fmt(values(b, "requests_per_sec")), ratio(values(m, "requests_per_sec"), values(b, "requests_per_sec"))))
rows.append(("connect: p99 latency, µs", fmt(latency(m, "p99")), fmt(latency(b, "p99")), ratio(latency(m, "p99"), latency(b, "p99"))))


def failed_cycles(label):
    return [r.get("busy", 0) + r.get("refused", 0) + r.get("reset", 0) + r.get("timed_out", 0)
            for r in cells.get(label, []) if not r.get("failed")]


for c in (16, 64):
    m, b = f"multiserve churn c{c}", f"baseline churn c{c}"
    mv, bv = values(m, "requests_per_sec"), values(b, "requests_per_sec")
    rows.append((f"churn, {c} clients (connect + 1 request + close, again at once), sustained: cycles/s",
                 fmt(mv), fmt(bv), ratio(mv, bv)))
    rows.append((f"churn, {c} clients: failed cycles (busy + refused + reset + timed out)",
                 fmt(failed_cycles(m)), fmt(failed_cycles(b)), "—"))
    ok = med(mv) and med(bv) and med(mv) >= 0.9 * med(bv) and med(failed_cycles(m)) == 0
    verdicts.append(f"- churn at {c} clients, sustained: at least 0.9× the baseline's cycles/s, with 0 busy, 0 refused, 0 reset — "
                    + ("**met**" if ok else "**missed**") + f" ({ratio(mv, bv)}; {fmt(failed_cycles(m))} failed cycles)")
m, b = "multiserve rr c1000", "baseline rr c1000"
mv, bv = values(m, "requests_per_sec"), values(b, "requests_per_sec")
rows.append(("rr, 1,000 conn. on `--clients 1000`: requests/s", fmt(mv), fmt(bv), ratio(mv, bv)))
rows.append(("rr, 1,000 conn.: p99 latency, µs", fmt(latency(m, "p99")), fmt(latency(b, "p99")),
             ratio(latency(m, "p99"), latency(b, "p99"))))
ok = med(mv) and med(bv) and med(mv) >= 1.2 * med(bv) and not failures(m)
verdicts.append("- rr at 1,000 connections: at least 1.2× the baseline's requests/s, every answer exact — "
                + ("**met**" if ok else "**missed**") + f" ({ratio(mv, bv)}; runs with errors or wrong answers: {failures(m)})")
RATES = (0, 100, 1000, 10000)
flood_rows = []
curves = {"multiserve": [], "baseline": []}
for rate in RATES:
    row = [f"{rate:,}"]
    for who in ("multiserve", "baseline"):
        label = f"{who} flood {rate}"
        pct = values(label, "success_pct")
        row += [fmt(pct, "%"), fmt(latency(label, "p99")), fmt(values(label, "requests_per_sec"))]
        curves[who].append(med(pct))
    flood_rows.append(row)
for rate, pct in zip(RATES, curves["multiserve"]):
    if rate in (1000, 10000):
        verdicts.append(f"- SYN flood at {rate:,}/s: at least 99% of a 4-client churn served — "
                        + ("**met**" if pct is not None and pct >= 99 else "**missed**") + f" ({'—' if pct is None else f'{pct:.2f}%'})")


def flood_svg(path):
    """Success rate against flood rate, both servers: a small line plot."""
    w, h, left, right, top, bottom = 560, 320, 60, 20, 30, 50
    pw, ph = w - left - right, h - top - bottom
    xs = [left + i * pw / (len(RATES) - 1) for i in range(len(RATES))]
    lo = min([p for c in curves.values() for p in c if p is not None] + [90.0])
    lo = max(0.0, (int(lo) // 10) * 10)

    def y(p):
        return top + ph * (100 - p) / (100 - lo) if 100 > lo else top

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{w / 2}" y="18" text-anchor="middle" font-size="14">Churn cycles served during a SYN flood</text>']
    for g in range(int(lo), 101, 10 if 100 - lo > 20 else 2):
        out.append(f'<line x1="{left}" x2="{w - right}" y1="{y(g):.1f}" y2="{y(g):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y(g) + 4:.1f}" text-anchor="end">{g}%</text>')
    for x, rate in zip(xs, RATES):
        out.append(f'<text x="{x:.1f}" y="{h - bottom + 18}" text-anchor="middle">{rate:,}</text>')
    out.append(f'<text x="{left + pw / 2}" y="{h - 12}" text-anchor="middle">spoofed SYNs per second</text>')
    for (who, colour) in (("multiserve", "#1f77b4"), ("baseline", "#d62728")):
        pts = [(x, y(p)) for x, p in zip(xs, curves[who]) if p is not None]
        if pts:
            out.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>'
                       % (colour, " ".join(f"{a:.1f},{b:.1f}" for a, b in pts)))
            for a, b in pts:
                out.append(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3" fill="{colour}"/>')
    out.append(f'<text x="{left + 10}" y="{top + ph - 24}" fill="#1f77b4">multiserve (TAP, 64 clients, 32 spare sockets)</text>')
    out.append(f'<text x="{left + 10}" y="{top + ph - 8}" fill="#d62728">lecture server on Linux (SYN cookies)</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


if svg_path:
    flood_svg(svg_path)
mm = cells.get("multiserve maxconn", [{}])[0]
bm = cells.get("baseline maxconn", [{}])[0]
m, u = "multiserve rr c16 watched", "multiserve rr c16 unwatched"
rows.append(("rr, 16 conn., while a status client asks 4 JSON snapshots/s: requests/s",
             fmt(values(m, "requests_per_sec")), "—", "—"))
rows.append(("the same, unwatched, in pairs with it: requests/s (watched / unwatched in the last column)",
             fmt(values(u, "requests_per_sec")), "—", ratio(values(m, "requests_per_sec"), values(u, "requests_per_sec"))))
watchers = load("watcher.json")
if watchers:
    w = watchers[-1]
    rows.append(("status client: snapshots per run, bytes each, sockets listed",
                 f"{w.get('watcher_snapshots', '—')}, {w.get('watcher_bytes', 0) // max(1, w.get('watcher_snapshots', 1)):,}, "
                 f"{w.get('watcher_sockets', '—')}" + (" (a watcher failed)" if any(x.get("watcher_failed") for x in watchers) else ""),
                 "—", "—"))
rows.append(("clients served at once (cap 2,000)", str(mm.get("served_at_once", "—")), str(bm.get("served_at_once", "—")), "—"))
rows.append(("what the next client got", mm.get("next_connection", "—"), bm.get("next_connection", "—"), "—"))
verdicts.append("- maxconn: exactly the configured 64 clients, and the next one told busy once the queue wait (2 s) is over — "
                + ("**met**" if mm.get("served_at_once") == 64 and "busy" in mm.get("next_connection", "") else "**missed**")
                + f" ({mm.get('served_at_once')} served; next: {mm.get('next_connection')})")
m4 = cells.get("multiserve maxconn 4096", [{}])[0]
rows.append(("`--clients 4096`: clients served at once (cap 5,000), and what the next one got",
             f"{m4.get('served_at_once', '—')}; {m4.get('next_connection', '—')}", "—", "—"))
verdicts.append("- maxconn on `--clients 4096`: 4,096 clients served, and the next one told busy — "
                + ("**met**" if m4.get("served_at_once") == 4096 and "busy" in m4.get("next_connection", "") else "**missed**")
                + f" ({m4.get('served_at_once')} served; next: {m4.get('next_connection')})")
idle = extra.get("idle_cpu_percent")
idle_n = extra.get("idle_clients", 1000)
rows.append((f"CPU with {idle_n:,} idle clients (`--clients {idle_n}`), %", "—" if idle is None else f"{idle:.1f}", "—", "—"))
verdicts.append(f"- idle: 0% CPU with {idle_n:,} idle clients — " + ("**met**" if idle == 0 else "**missed**") + f" ({idle}%)")
per_client = extra.get("rss_per_client_bytes")
rows.append((f"memory per client: RSS with {idle_n:,} idle clients / {idle_n:,}, bytes (RSS before they connected → with them)",
             "—" if per_client is None else f"{per_client:,} ({extra.get('rss_before_kib', 0):,} → {extra.get('rss_idle_kib', 0):,} KiB)",
             "—", "—"))
rss = extra.get("server_peak_rss_kib")
rows.append(("host program peak RSS, `--clients 64`, KiB", "—" if rss is None else f"{rss:,}", "—", "—"))
rss4096 = extra.get("server_peak_rss_kib_4096")
rows.append(("host program peak RSS, `--clients 4096` after 4,096 clients, KiB", "—" if rss4096 is None else f"{rss4096:,}", "—", "—"))
for c in (1, 8):
    rows.append((f"board (QEMU) rr, {c} conn.: requests/s", fmt(values(f"board rr c{c}", "requests_per_sec")), "—", "—"))
    rows.append((f"board (QEMU) rr, {c} conn.: p99 latency, µs", fmt(latency(f"board rr c{c}", "p99")), "—", "—"))
rows.append(("board (QEMU) bulk, 1 conn.: MB/s answered", fmt(values("board bulk c1", "mb_per_sec_received")), "—", "—"))

flash_an385 = None
if os.path.exists(sizes_path):
    lines = open(sizes_path).read().splitlines()
    start = next((i for i, l in enumerate(lines) if l.startswith("board")), None)
    if start is not None:
        # The footprint table's own row for the default image (not the
        # no-status row, nor the status service's cost below the table),
        # and its flash column: the whole image.
        header = lines[start].split()
        for l in lines[start + 1:]:
            columns = l.split()
            if not columns:
                break
            if columns[0] == "mps2-an385":
                flash_an385 = int(columns[header.index("flash")])
verdicts.append("- firmware: the AN385 image (8 clients, with the status service) fits 64 KiB of flash — "
                + ("**met**" if flash_an385 is not None and flash_an385 <= 65536 else "**missed**")
                + (f" ({flash_an385:,} bytes of flash: vector table + .text + .rodata + .data)" if flash_an385 is not None else " (no size)"))

bad = [label for label in cells if failures(label)]

cpu = "unknown"
try:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
except OSError:
    pass

print("# Benchmarks\n")
print(f"Measured on {date.today().isoformat()}: {os.cpu_count()} cores ({cpu}), Linux {platform.release()}, "
      f"by `host/bench/run.sh {repeats} {seconds}` (as root). Every cell ran {repeats} times for {seconds} s; "
      "figures are medians with the min–max in brackets. The machine is shared and noisy: compare the "
      "ratio of two columns measured in the same run rather than figures across runs.\n")
print("- **multiserve**: `multiserve serve --clients 64` (and its default 32 spare sockets and 2 s queue wait) "
      "on a TAP in a private network namespace (64 KiB socket buffers, 1500-byte MTU), clients are kernel sockets on the Linux side.")
print("- **baseline**: the lecture's Python `select()` server (`host/bench/lecture_server.py --lines`: socket list, "
      "`select`, `accept`, `recv(1024)`, answer reversed, line-framed so the same checks apply) in the same namespace, "
      "on the TAP's Linux-side address (which the kernel delivers locally, as loopback).")
print("- **board**: the AN385 firmware (8 clients) in QEMU, reached through QEMU's user network.")
print("- Load: `multiserve bench` (one thread, epoll); every answer is checked byte for byte.")
print(f"- Client side, changed by `run.sh` in the benchmark's namespace, and nothing else: `net.ipv4.ip_local_port_range=1024 65000` "
      "and `net.ipv4.tcp_tw_reuse=1` (a client port in TIME-WAIT is reused for a new connection when the server "
      "negotiated TCP timestamps; Linux's default, 2, does so on loopback only). The churn rows run "
      f"{churn_seconds} s each, once.\n")
print("| figure | multiserve | baseline | multiserve / baseline |")
print("| --- | --- | --- | --- |")
for r in rows:
    print("| " + " | ".join(r) + " |")
print("\n## Cost as the pool grows\n")
print("rr at 64 connections (`multiserve bench --mode rr -c 64`) against `serve --clients K`, one server after "
      "the other in this run; its pool has K places and K/2 spare sockets, each with its buffers. The core's "
      "instructions per round trip over the simulated wire, 64 clients with timestamps, from `host/bench/core.sh`, "
      "do not depend on the machine's load.\n")
core_by_pool = {}
if core_path and os.path.exists(core_path):
    for line in open(core_path):
        if line.startswith("pool for ") and "instructions per round trip:" in line:
            k = int(line.split()[2])
            core_by_pool[k] = int(line.rsplit(":", 1)[1])
print("| `--clients` | pool sockets | rr, 64 conn.: requests/s | vs `--clients 64` | core: instructions per round trip | vs `--clients 64` |")
print("| ---: | ---: | ---: | ---: | ---: | ---: |")
base_rr = values("multiserve pool 64 rr c64", "requests_per_sec")
for k in (64, 256, 1024, 4096):
    v = values(f"multiserve pool {k} rr c64", "requests_per_sec")
    ins = core_by_pool.get(k)
    print(f"| {k:,} | {k + k // 2:,} | {fmt(v)} | {ratio(v, base_rr)} | {'—' if ins is None else f'{ins:,}'} | "
          + ("—" if ins is None or not core_by_pool.get(64) else f"{ins / core_by_pool[64]:.2f}×") + " |")
grow = med(base_rr) / med(values("multiserve pool 4096 rr c64", "requests_per_sec")) if base_rr and values("multiserve pool 4096 rr c64", "requests_per_sec") else None
verdicts.append("- cost as the pool grows from 64 to 4,096 clients: rr at 64 connections within 2× — "
                + ("**met**" if grow is not None and grow <= 2 else "**missed**") + ("" if grow is None else f" ({grow:.2f}× slower)")
                + ("" if not core_by_pool.get(4096) or not core_by_pool.get(64) else
                   f"; the core's instructions per round trip grow {core_by_pool[4096] / core_by_pool[64]:.1f}×"))
print("\n## SYN flood\n")
print("SYNs from 192.168.69.200, an address on the TAP's subnet that nobody answers for "
      "(`host/bench/syn_flood.py`, a raw socket in the benchmark's namespace), while 4 clients "
      "churn (`multiserve bench --mode connect -c 4`: a cycle served is an exact answer; busy, "
      "refused, reset and timed-out cycles count as failed).\n")
print("| SYN/s | multiserve: served | p99, µs | cycles/s | lecture server on Linux: served | p99, µs | cycles/s |")
print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for r in flood_rows:
    print("| " + " | ".join(r) + " |")
if svg_path:
    print(f"\n![Churn cycles served during a SYN flood]({os.path.relpath(svg_path, os.path.dirname(os.path.abspath(sys.argv[0])) + '/../..')})")
print("\n## Targets\n")
print("\n".join(verdicts))
if bad:
    print("\nRuns with errors or wrong answers: " + ", ".join(sorted(bad)))
else:
    print("\nNo run had an error or a wrong answer.")
if "baseline_alive_after_maxconn" in extra:
    alive = extra["baseline_alive_after_maxconn"]
    print(f"\nThe baseline {'survived' if alive else 'did not survive'} the maxconn run"
          + ("" if alive else f"; its last words: `{extra.get('baseline_last_words', '')}`") + ".")
# The footprint tables live in firmware/README.md (from firmware/build-all.sh); the
# sizes measured here only decide the firmware target above.
print("\n## Footprint\n")
print("The boards' flash and RAM, with and without the status service: "
      "[firmware/README.md](firmware/README.md#memory).")
if core_path and os.path.exists(core_path):
    print("\n## The core alone\n")
    print("`host/bench/core.sh 20000`: round trips of 64-byte lines over the simulated wire (two smoltcp")
    print("interfaces in memory, no TAP, no kernel). Instructions are counted by callgrind and cover the")
    print("whole round trip, client stack included; they do not depend on the machine's load.\n")
    print("```text")
    print(open(core_path).read().strip())
    print("```")
