#!/usr/bin/env bash
# The core alone, over the simulated wire (no TAP, no kernel): round trips
# per second, and instructions per round trip counted by callgrind, which
# are the same from run to run whatever else the machine does.
#
#   host/bench/core.sh [ROUND_TRIPS]      (default 20000)
#
# Then the same for 64 clients (with TCP timestamps, as Linux offers them)
# over pools of 64, 256, 1,024 and 4,096 places (and half as many spare
# sockets again, as `serve --clients` sizes its pool): how the cost grows
# with the pool, in MULTISERVE_CORE_POOL_ROUND_TRIPS round trips (default
# 2000: a large pool is slow under callgrind). MULTISERVE_CORE_POOLS="64
# 256" picks the sizes.
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

count() { # round trips [test] -> instructions (Ir)
    local out
    out=$(mktemp)
    MULTISERVE_ROUND_TRIPS=$1 valgrind --tool=callgrind --callgrind-out-file="$out" \
        "$bin" --ignored --exact "${2:-bench::core_round_trips}" --test-threads=1 >/dev/null 2>&1
    callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }'
    rm -f "$out"
}
echo "== callgrind ($n round trips at 1 and at 16 clients, minus a run with none)"
base=$(count 0)
full=$(count "$n")
echo "instructions per round trip: $(( (full - base) / (2 * n) ))  ($full - $base over $((2 * n)) round trips)"

pool_n=${MULTISERVE_CORE_POOL_ROUND_TRIPS:-2000}
echo "== by pool size (64 clients with timestamps, $pool_n round trips, minus a run with none)"
for places in ${MULTISERVE_CORE_POOLS:-64 256 1024 4096}; do
    export MULTISERVE_POOL_CLIENTS=$places
    MULTISERVE_ROUND_TRIPS=$pool_n "$bin" --ignored --exact bench::core_round_trips_by_pool --nocapture 2>&1 | grep '^core'
    base=$(count 0 bench::core_round_trips_by_pool)
    full=$(count "$pool_n" bench::core_round_trips_by_pool)
    echo "pool for $places clients ($((places + places / 2)) sockets): instructions per round trip: $(( (full - base) / pool_n ))"
done
