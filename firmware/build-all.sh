#!/usr/bin/env bash
# Build every board crate in release mode and print its section sizes.
#
#   firmware/build-all.sh
#
# Installs what it needs when missing (idempotent): the Rust targets of the
# boards (rustup) and arm-none-eabi-size (Debian's binutils-arm-none-eabi).
# Also runs `cargo fmt --check` and `cargo clippy --release -- -D warnings`
# per board unless FIRMWARE_SKIP_LINT=1. Exits non-zero if any step fails.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

# board directory -> target triple
boards=(
    "mps2-an385 thumbv7m-none-eabi"
    "nucleo-f429zi thumbv7em-none-eabihf"
)

installed=$(rustup target list --installed)
for entry in "${boards[@]}"; do
    target=${entry#* }
    if ! grep -qx "$target" <<<"$installed"; then
        rustup target add "$target"
    fi
done
if ! command -v arm-none-eabi-size >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && apt-get install -y -qq binutils-arm-none-eabi >/dev/null
    else
        sudo apt-get update -qq && sudo apt-get install -y -qq binutils-arm-none-eabi >/dev/null
    fi
fi

if [ "${FIRMWARE_SKIP_LINT:-0}" != 1 ]; then
    # The shared board library is a path dependency of every board, which
    # cargo does not lint there: lint it by itself, for each kind of target.
    echo "== board (shared library)"
    (
        cd "$here/board"
        cargo fmt --check
        cargo clippy --locked --target thumbv7m-none-eabi --features cortex-m -- -D warnings
    )
fi

sizes=()
for entry in "${boards[@]}"; do
    board=${entry% *}
    target=${entry#* }
    echo "== $board ($target)"
    (
        cd "$here/$board"
        cargo build --release --locked
        if [ "${FIRMWARE_SKIP_LINT:-0}" != 1 ]; then
            cargo fmt --check
            cargo clippy --release --locked -- -D warnings
        fi
    )
    elf="$here/$board/target/$target/release/multiserve-$board"
    sizes+=("$board $(arm-none-eabi-size -A "$elf" | awk '
        $1 == ".vector_table" { v = $2 } $1 == ".text" { t = $2 } $1 == ".rodata" { r = $2 }
        $1 == ".data" { d = $2 } $1 == ".bss" { b = $2 }
        END { print v + 0, t + 0, r + 0, d + 0, b + 0 }')")
done

echo
printf '%-15s %8s %8s %8s %8s %10s %10s\n' board .text .rodata .data .bss flash static-RAM
for line in "${sizes[@]}"; do
    read -r board vectors text rodata data bss <<<"$line"
    printf '%-15s %8d %8d %8d %8d %10d %10d\n' "$board" "$text" "$rodata" "$data" "$bss" \
        $((vectors + text + rodata + data)) $((data + bss))
done
echo "(bytes; flash = vector table + .text + .rodata + .data; static RAM excludes the stack)"
