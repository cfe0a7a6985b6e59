#!/usr/bin/env bash
# Measure a change against an earlier revision in the same run: builds REV
# in a temporary worktree, then alternates the two servers on one TAP in a
# private network namespace, ROUNDS times, with the same `multiserve bench`
# rr cells, a bulk cell and a churn cell (`--mode connect`), and prints the
# medians, and the median (min-max) of the rounds' ratios: a round runs the
# two back to back, each first in every other round, so a machine whose
# speed drifts during the run moves both alike. Run as root. Each churn
# cell runs in a namespace of its own, so it starts with no TIME-WAIT left
# by the cell before it (default sysctls: nothing on the client side is
# tuned).
#
#   host/bench/compare.sh REV [ROUNDS] [SECONDS]
#
# MULTISERVE_COMPARE_NEW_ARGS: extra `serve` options for the work tree's
# server only (e.g. "--no-timestamps", to set a new option's cost apart).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
rev=${1:?usage: compare.sh REV [ROUNDS] [SECONDS]}
rounds=${2:-3}
seconds=${3:-5}

if [ "${MULTISERVE_COMPARE_NETNS:-}" != 1 ]; then
    [ "$(id -u)" = 0 ] || { echo "run as root: it makes a network namespace and a TAP" >&2; exit 1; }
    cd "$repo"
    old=$(mktemp -d)
    trap 'git -C "$repo" worktree remove --force "$old" >/dev/null 2>&1 || true' EXIT
    git worktree add -q --detach "$old" "$rev"
    echo "== building $rev and the work tree (release)" >&2
    (cd "$old" && cargo build --release -q -p multiserve-host --target-dir "$repo/target/compare-old")
    cargo build --release -q -p multiserve-host
    env MULTISERVE_COMPARE_NETNS=1 MULTISERVE_OLD_BIN="$repo/target/compare-old/release/multiserve" \
        unshare -n "$0" "$@"
    exit
fi

cd "$repo"
new_bin=$repo/target/release/multiserve
old_bin=$MULTISERVE_OLD_BIN
out=$(mktemp -d)
ip link set lo up
server=""
stop() { [ -n "$server" ] && { kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; }; server=""; }
trap stop EXIT
for round in $(seq "$rounds"); do
    # Which of the two goes first alternates from round to round.
    order="old new"
    [ $((round % 2)) = 0 ] && order="new old"
    for who in $order; do
        bin=$old_bin; extra=()
        if [ "$who" = new ]; then
            bin=$new_bin
            read -ra extra <<<"${MULTISERVE_COMPARE_NEW_ARGS:-}"
        fi
        "$bin" serve --clients 64 -q "${extra[@]}" > "$out/server.log" 2>&1 &
        server=$!
        for _ in $(seq 100); do grep -q '^serving' "$out/server.log" && break; sleep 0.1; done
        for c in 16 64; do
            "$new_bin" bench 192.168.69.1:7000 --mode rr -c "$c" -s 64 -d "${seconds}s" --json \
                --label "$who c$c" >> "$out/cells.json" 2>/dev/null
        done
        "$new_bin" bench 192.168.69.1:7000 --mode bulk -c 1 -s 1024 -d "${seconds}s" --json \
            --label "$who bulk" >> "$out/cells.json" 2>/dev/null
        stop
        sleep 0.5
        # Churn for at most 3 s: at ~8,000 connections/s that stays within
        # the default ephemeral port range (28,232 ports) without reuse.
        churn=$((seconds < 3 ? seconds : 3))
        unshare -n bash -c '
            ip link set lo up
            "$1" serve --clients 64 -q $6 > "$3/churn-server.log" 2>&1 &
            server=$!
            for _ in $(seq 100); do grep -q "^serving" "$3/churn-server.log" && break; sleep 0.1; done
            "$2" bench 192.168.69.1:7000 --mode connect -c 16 -s 64 -d "$4s" --json \
                --label "$5 churn" >> "$3/cells.json" 2>/dev/null
            kill "$server"; wait "$server" 2>/dev/null || true
        ' churn "$bin" "$new_bin" "$out" "$churn" "$who" "${extra[*]}"
    done
done
python3 - "$out/cells.json" "$rev" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
rev = sys.argv[2]

def values(label, key):
    return [r[key] for r in rows if r["label"] == label]

def line(name, cell, key, unit, digits):
    # Medians of each side, and the ratio of each round's pair: the two
    # servers of one round ran back to back, so a machine that drifts
    # during the run moves both alike.
    old, new = values(f"old {cell}", key), values(f"new {cell}", key)
    o, n = statistics.median(old), statistics.median(new)
    pairs = [b / a for a, b in zip(old, new) if a > 0]
    paired = (f"; by round: median {statistics.median(pairs):.3f} "
              f"({min(pairs):.3f}-{max(pairs):.3f})") if pairs else ""
    print(f"{name}: {rev} {o:,.{digits}f}{unit}, work tree {n:,.{digits}f}{unit}, "
          f"ratio {n / o:.3f}{paired}")

for c in (16, 64):
    line(f"rr, {c} connections", f"c{c}", "requests_per_sec", "/s", 0)
line("churn, 16 connections", "churn", "requests_per_sec", "/s", 0)
line("bulk, 1 connection", "bulk", "mb_per_sec_received", " MB/s", 1)
PY
