#!/usr/bin/env bash
# Fuzzes each target for a bounded time, then replays its saved corpus as a
# regular check. Exits non-zero on any crash (the input is kept under
# tests/fuzz/artifacts/<target>/).
#
#   bash tests/fuzz/run.sh [SECONDS]    # SECONDS per target, default 60
#
# Runs on a stable toolchain: with `--sanitizer none` cargo-fuzz passes no
# unstable flag, only LLVM's coverage instrumentation (the code under test
# has no `unsafe`, so AddressSanitizer would add little).
set -euo pipefail
cd "$(dirname "$0")"

seconds=${1:-60}
targets=(reverse_stream frames status_requests)

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

fuzz() { cargo fuzz run --fuzz-dir . --sanitizer none "$@"; }

summary=()
for target in "${targets[@]}"; do
    printf '\n=== fuzz %s for %s s\n' "$target" "$seconds"
    # New inputs go to a scratch corpus, not to the committed seeds.
    work="target/corpus-work/$target"
    mkdir -p "$work"
    log="target/fuzz-$target.log"
    : >"$log"
    # In slices of at most 10 s: the frames target leaks the simulated
    # network's two 4 KiB scratch buffers per input (the test harness gives
    # the server 'static buffers), which a long single run would pile up.
    left=$seconds
    runs=0
    while [ "$left" -gt 0 ]; do
        slice=$((left < 10 ? left : 10))
        set +e
        fuzz "$target" "$work" "corpus/$target" -- \
            -max_total_time="$slice" -timeout=10 -rss_limit_mb=2048 \
            -print_final_stats=1 >"$log.slice" 2>&1
        status=$?
        set -e
        cat "$log.slice" >>"$log"
        if [ "$status" -ne 0 ]; then
            echo "fuzz $target: crash (status $status), see tests/fuzz/artifacts/$target/" >&2
            tail -n 30 "$log.slice" >&2
            exit 1
        fi
        done_line=$(grep -E '^Done [0-9]+ runs' "$log.slice" | tail -n 1)
        runs=$((runs + $(awk '{print $2}' <<<"$done_line")))
        left=$((left - slice))
    done
    summary+=("$target: $runs runs in $seconds s")

    printf '\n=== replay the saved corpus of %s\n' "$target"
    fuzz "$target" "corpus/$target" -- -runs=0
done

printf '\n=== summary\n'
printf '%s\n' "${summary[@]}"
