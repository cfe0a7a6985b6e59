#!/usr/bin/env python3
"""Turn the JSON lines of host/bench/run.sh into BENCHMARKS.md (stdout).

    report.py OUT_DIR FIRMWARE_SIZES REPEATS SECONDS [CORE_RESULTS]
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
mm = cells.get("multiserve maxconn", [{}])[0]
bm = cells.get("baseline maxconn", [{}])[0]
rows.append(("clients served at once (cap 2,000)", str(mm.get("served_at_once", "—")), str(bm.get("served_at_once", "—")), "—"))
rows.append(("what the next client got", mm.get("next_connection", "—"), bm.get("next_connection", "—"), "—"))
verdicts.append("- maxconn: exactly the configured 64 clients, and the next one told at once — "
                + ("**met**" if mm.get("served_at_once") == 64 and "busy" in mm.get("next_connection", "") else "**missed**")
                + f" ({mm.get('served_at_once')} served; next: {mm.get('next_connection')})")
idle = extra.get("idle_cpu_percent")
rows.append(("CPU with 64 idle clients, %", "—" if idle is None else f"{idle:.1f}", "—", "—"))
verdicts.append("- idle: 0% CPU with 64 idle clients — " + ("**met**" if idle == 0 else "**missed**") + f" ({idle}%)")
rss = extra.get("server_peak_rss_kib")
rows.append(("host program peak RSS, 64 clients, KiB", "—" if rss is None else f"{rss:,}", "—", "—"))
for c in (1, 8):
    rows.append((f"board (QEMU) rr, {c} conn.: requests/s", fmt(values(f"board rr c{c}", "requests_per_sec")), "—", "—"))
    rows.append((f"board (QEMU) rr, {c} conn.: p99 latency, µs", fmt(latency(f"board rr c{c}", "p99")), "—", "—"))
rows.append(("board (QEMU) bulk, 1 conn.: MB/s answered", fmt(values("board bulk c1", "mb_per_sec_received")), "—", "—"))

sizes = ""
text_an385 = None
if os.path.exists(sizes_path):
    lines = open(sizes_path).read().splitlines()
    start = next((i for i, l in enumerate(lines) if l.startswith("board")), None)
    if start is not None:
        sizes = "\n".join(lines[start:])
        for l in lines[start:]:
            if l.startswith("mps2-an385"):
                text_an385 = int(l.split()[1])
verdicts.append("- firmware: AN385 image `.text` under 64 KiB with 8 clients — "
                + ("**met**" if text_an385 is not None and text_an385 < 65536 else "**missed**") + f" ({text_an385} bytes)")

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
print("- **multiserve**: `multiserve serve --clients 64` on a TAP in a private network namespace "
      "(64 KiB socket buffers, 1500-byte MTU), clients are kernel sockets on the Linux side.")
print("- **baseline**: the lecture's Python `select()` server (`host/bench/lecture_server.py --lines`: socket list, "
      "`select`, `accept`, `recv(1024)`, answer reversed, line-framed so the same checks apply) on loopback in the same namespace.")
print("- **board**: the AN385 firmware (8 clients) in QEMU, reached through QEMU's user network.")
print("- Load: `multiserve bench` (one thread, epoll); every answer is checked byte for byte.\n")
print("| figure | multiserve | baseline | multiserve / baseline |")
print("| --- | --- | --- | --- |")
for r in rows:
    print("| " + " | ".join(r) + " |")
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
if sizes:
    print("\n## Footprint\n")
    print("```text")
    print(sizes)
    print("```")
    print("\nRAM per additional client on the boards: the socket's receive and transmit buffers "
          "(2 KiB each on both boards) plus smoltcp's socket-set entry and the server's slot "
          "(see the README's footprint table).")
if core_path and os.path.exists(core_path):
    print("\n## The core alone\n")
    print("`host/bench/core.sh 20000`: round trips of 64-byte lines over the simulated wire (two smoltcp")
    print("interfaces in memory, no TAP, no kernel). Instructions are counted by callgrind and cover the")
    print("whole round trip, client stack included; they do not depend on the machine's load.\n")
    print("```text")
    print(open(core_path).read().strip())
    print("```")
