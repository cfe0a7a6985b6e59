#!/usr/bin/env bash
# The benchmark report: multiserve on a TAP against the lecture's select()
# server on loopback, measured by the same `multiserve bench` runs, plus the
# emulated board and the footprint. Writes BENCHMARKS.md at the top of the
# repository. Run as root (it makes a private network namespace and a TAP):
#
#   host/bench/run.sh [REPEATS] [SECONDS]
#
# REPEATS (default 3) runs of each cell, SECONDS (default 5) each; the table
# gives the median with the min–max. Everything it starts it stops by PID;
# the namespace and its TAP vanish with it.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
repeats=${1:-3}
seconds=${2:-5}

if [ "${MULTISERVE_BENCH_NETNS:-}" != 1 ]; then
    [ "$(id -u)" = 0 ] || { echo "run as root: it makes a network namespace and a TAP" >&2; exit 1; }
    cd "$repo"
    echo "== building release binaries and firmware" >&2
    cargo build --release -q -p multiserve-host
    command -v qemu-system-arm >/dev/null || bash tests/apt-install.sh qemu-system-arm
    FIRMWARE_SKIP_LINT=1 bash firmware/build-all.sh > target/bench-firmware-sizes.txt
    echo "== the core alone, over the simulated wire" >&2
    command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
    bash host/bench/core.sh 20000 > target/bench-core.txt
    exec env MULTISERVE_BENCH_NETNS=1 unshare -n "$0" "$@"
fi

# From here on: inside a private network namespace.
cd "$repo"
bin=$repo/target/release/multiserve
out=$repo/target/bench
mkdir -p "$out"
rm -f "$out"/*.json
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

ip link set lo up
# The client side's settings, as a user who reconnects clients at once
# sets them (and nothing else): a wider port range, and TIME-WAIT ports
# reused for new connections (`tcp_tw_reuse=1`: Linux's default, 2, does
# so on loopback only), which needs TCP timestamps from the server.
sysctl -qw net.ipv4.ip_local_port_range="1024 65000"
sysctl -qw net.ipv4.tcp_tw_reuse=1
# 4,096 clients at once, and the benchmark's own sockets.
ulimit -n 16384
churn_seconds=${MULTISERVE_BENCH_CHURN_SECONDS:-60}

start_server() { # args... ; sets $server
    "$bin" serve -q "$@" > "$out/server.log" 2>&1 &
    server=$!; pids+=("$server")
    for _ in $(seq 100); do grep -q '^serving' "$out/server.log" && break; sleep 0.1; done
    grep -q '^serving' "$out/server.log" || { cat "$out/server.log"; exit 1; }
}
stop_server() {
    kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true
}

start_server --clients 64
# The baseline listens on the TAP's Linux-side address (the kernel delivers
# it locally, as loopback): a spoofed SYN from 192.168.69.200 then gets a
# SYN-ACK that goes nowhere, for both servers alike.
python3 "$repo/host/bench/lecture_server.py" --lines 192.168.69.100 7001 > "$out/baseline.log" 2>&1 &
baseline=$!; pids+=("$baseline")
for _ in $(seq 100); do grep -q '^lecture' "$out/baseline.log" && break; sleep 0.1; done

run_cell() { # name target args...
    local name=$1 target=$2; shift 2
    for r in $(seq "$repeats"); do
        "$bin" bench "$target" --json --label "$name" "$@" >> "$out/cells.json" || echo "{\"label\":\"$name\",\"failed\":true}" >> "$out/cells.json"
    done
}

run_once() { # name target args...: one run (the long cells)
    local name=$1 target=$2; shift 2
    "$bin" bench "$target" --json --label "$name" "$@" >> "$out/cells.json" || echo "{\"label\":\"$name\",\"failed\":true}" >> "$out/cells.json"
}

for t in "multiserve 192.168.69.1:7000" "baseline 192.168.69.100:7001"; do
    set -- $t
    who=$1 addr=$2
    echo "== $who" >&2
    for c in 1 16 64; do run_cell "$who rr c$c" "$addr" --mode rr -c "$c" -s 64 -d "${seconds}s"; done
    for c in 1 16; do run_cell "$who bulk c$c" "$addr" --mode bulk -c "$c" -s 1024 -d "${seconds}s"; done
    run_cell "$who connect c1" "$addr" --mode connect -c 1 -d "${seconds}s"
    # Churn: clients that close right after their answer and connect
    # again at once, sustained (their TIME-WAIT ports come round again),
    # up to as many clients as places.
    for c in 16 64; do run_once "$who churn c$c" "$addr" --mode connect -c "$c" -d "${churn_seconds}s"; done
    # A SYN flood from an address that never answers, while 4 clients churn.
    for rate in 0 100 1000 10000; do
        python3 "$repo/host/bench/syn_flood.py" "${addr%:*}" "${addr#*:}" 192.168.69.200 "$rate" "$((repeats * (seconds + 1) + 1))" > "$out/flood-$who-$rate.txt" 2>&1 &
        flooder=$!; pids+=("$flooder")
        sleep 0.5
        run_cell "$who flood $rate" "$addr" --mode connect -c 4 -d "${seconds}s"
        wait "$flooder" || true
    done
done
# The cost of being watched: rr at 16 connections with and without a
# status client asking for a JSON snapshot 4 times a second (as `multiserve
# watch` does by default), in pairs so both see the same machine.
echo "== multiserve, watched" >&2
for r in $(seq "$repeats"); do
    "$bin" bench 192.168.69.1:7000 --json --label "multiserve rr c16 unwatched" --mode rr -c 16 -s 64 -d "${seconds}s" >> "$out/cells.json" || true
    python3 "$repo/host/bench/status_watcher.py" 192.168.69.1 7001 4 "$seconds" >> "$out/watcher.json" &
    watcher=$!; pids+=("$watcher")
    "$bin" bench 192.168.69.1:7000 --json --label "multiserve rr c16 watched" --mode rr -c 16 -s 64 -d "${seconds}s" >> "$out/cells.json" || true
    wait "$watcher" || echo '{"watcher_failed":true}' >> "$out/watcher.json"
done
grep VmHWM "/proc/$server/status" | awk '{print "{\"server_peak_rss_kib\":" $2 "}"}' > "$out/rss.json"
echo "== maxconn" >&2
"$bin" bench 192.168.69.1:7000 --mode maxconn --max-connections 2000 --json --label "multiserve maxconn" >> "$out/cells.json" || true
stop_server

# How the cost grows with the pool: rr at 64 connections against pools
# for 64 to 4,096 clients (and half as many spare sockets again), one
# server after the other; the largest then serves as many clients as it
# has places, and tells the next one it is busy.
for places in 64 256 1024 4096; do
    echo "== multiserve --clients $places" >&2
    start_server --clients "$places"
    run_cell "multiserve pool $places rr c64" 192.168.69.1:7000 --mode rr -c 64 -s 64 -d "${seconds}s"
    if [ "$places" = 4096 ]; then
        "$bin" bench 192.168.69.1:7000 --mode maxconn --max-connections 5000 --json --label "multiserve maxconn 4096" >> "$out/cells.json" || true
        grep VmHWM "/proc/$server/status" | awk '{print "{\"server_peak_rss_kib_4096\":" $2 "}"}' >> "$out/rss.json"
    fi
    stop_server
done

# A thousand clients: rr on `--clients 1000` and on the lecture's server,
# then 1,000 idle clients: the server's CPU, and its memory per client
# (the pool's buffers are allocated and written when it starts: its
# memory is fixed, and clients add none).
echo "== 1,000 clients" >&2
start_server --clients 1000
run_cell "multiserve rr c1000" 192.168.69.1:7000 --mode rr -c 1000 -s 64 -d "${seconds}s"
run_cell "baseline rr c1000" 192.168.69.100:7001 --mode rr -c 1000 -s 64 -d "${seconds}s"
python3 - "$server" 1000 > "$out/idle.json" <<'PY'
import socket, sys, time, json
pid, n = int(sys.argv[1]), int(sys.argv[2])
def status(key):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
def ticks():
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])
before = status("VmRSS")
socks = [socket.create_connection(("192.168.69.1", 7000)) for _ in range(n)]
for s in socks:
    s.sendall(b"idle\n")
for s in socks:
    assert s.recv(16) == b"eldi\n"
after = status("VmRSS")
time.sleep(0.5); a = ticks(); time.sleep(5); b = ticks()
hz = 100
print(json.dumps({"idle_clients": n, "idle_cpu_percent": (b - a) / hz / 5 * 100,
                  "rss_before_kib": before, "rss_idle_kib": after,
                  "rss_per_client_bytes": after * 1024 // n,
                  "rss_growth_per_client_bytes": (after - before) * 1024 // n}))
for s in socks: s.close()
PY
# The lecture's server last: its select() dies past 1,018 clients. (Its
# address is on the TAP, which lives as long as a server runs.)
"$bin" bench 192.168.69.100:7001 --mode maxconn --max-connections 2000 --timeout 2s --json --label "baseline maxconn" >> "$out/cells.json" || true
if kill -0 "$baseline" 2>/dev/null; then echo '{"baseline_alive_after_maxconn":true}' > "$out/baseline-alive.json"; else echo '{"baseline_alive_after_maxconn":false}' > "$out/baseline-alive.json"; fi
tail -3 "$out/baseline.log" | tr '\n' ' ' | python3 -c 'import json,sys; print(json.dumps({"baseline_last_words": sys.stdin.read().strip()}))' >> "$out/baseline-alive.json"
stop_server

echo "== emulated board (QEMU mps2-an385, user network)" >&2
port=65100   # outside the ephemeral range above
"$repo/firmware/mps2-an385/run-qemu.sh" "$port" > "$out/qemu.log" 2>&1 &
qemu=$!; pids+=("$qemu")
for _ in $(seq 300); do grep -q 'serving on' "$out/qemu.log" && break; sleep 0.1; done
if grep -q 'serving on' "$out/qemu.log"; then
    for c in 1 8; do run_cell "board rr c$c" "127.0.0.1:$port" --mode rr -c "$c" -s 64 -d "${seconds}s"; done
    run_cell "board bulk c1" "127.0.0.1:$port" --mode bulk -c 1 -s 1024 -d "${seconds}s"
else
    echo "the board did not start; see $out/qemu.log" >&2
fi

# The sections from "## Measured by hand" on are not this script's: keep them.
by_hand=$(sed -n '/^## Measured by hand$/,$p' "$repo/BENCHMARKS.md" 2>/dev/null || true)
python3 "$repo/host/bench/report.py" "$out" "$repo/target/bench-firmware-sizes.txt" "$repeats" "$seconds" "$repo/target/bench-core.txt" "$repo/host/bench/flood.svg" > "$repo/BENCHMARKS.md"
if [ -n "$by_hand" ]; then printf '\n%s\n' "$by_hand" >> "$repo/BENCHMARKS.md"; fi
cat "$repo/BENCHMARKS.md"
