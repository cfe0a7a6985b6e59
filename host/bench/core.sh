#!/usr/bin/env bash
# The core alone, over the simulated wire (no TAP, no kernel): round trips
# per second, and instructions per round trip counted by callgrind, which
# are the same from run to run whatever else the machine does.
#
#   host/bench/core.sh [ROUND_TRIPS]      (default 20000)
#
# Instructions are those of the whole simulated round trip: the client's
# smoltcp stack, the wire and the server (stack and multiserve), measured
# as the difference between a run with ROUND_TRIPS and one with none.
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-20000}
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }
bin=$(cargo test --release --test simnet --no-run 2>&1 | grep -o 'target/release/deps/simnet-[0-9a-f]*' | head -n 1)
[ -x "$bin" ] || { echo "could not find the simnet test binary" >&2; exit 1; }

echo "== wall clock"
MULTISERVE_ROUND_TRIPS=$n "$bin" --ignored --exact bench::core_round_trips --nocapture 2>&1 | grep '^core'

count() { # round trips -> instructions (Ir)
    local out
    out=$(mktemp)
    MULTISERVE_ROUND_TRIPS=$1 valgrind --tool=callgrind --callgrind-out-file="$out" \
        "$bin" --ignored --exact bench::core_round_trips --test-threads=1 >/dev/null 2>&1
    callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }'
    rm -f "$out"
}
echo "== callgrind ($n round trips at 1 and at 16 clients, minus a run with none)"
base=$(count 0)
full=$(count "$n")
echo "instructions per round trip: $(( (full - base) / (2 * n) ))  ($full - $base over $((2 * n)) round trips)"
