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
targets=(reverse_stream frames)

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
    fuzz "$target" "$work" "corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 2>&1 | tee "$log" | grep -E '^(#[0-9]+\s+(INITED|DONE)|Done|==[0-9]+==)' || true
    # tee hides the fuzzer's status: look at it.
    status=${PIPESTATUS[0]}
    if [ "$status" -ne 0 ]; then
        echo "fuzz $target: crash (status $status), see tests/fuzz/artifacts/$target/" >&2
        tail -n 30 "$log" >&2
        exit 1
    fi
    summary+=("$target: $(grep -E '^Done [0-9]+ runs' "$log" | tail -n 1)")

    printf '\n=== replay the saved corpus of %s\n' "$target"
    fuzz "$target" "corpus/$target" -- -runs=0
done

printf '\n=== summary\n'
printf '%s\n' "${summary[@]}"
