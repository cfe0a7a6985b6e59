#!/usr/bin/env bash
# Build every board crate in release mode and print its section sizes.
#
#   firmware/build-all.sh
#
# Installs what it needs when missing (idempotent): the Rust targets of the
# boards and the `llvm-tools` component (rustup), whose llvm-size reads the
# ELF of every board's architecture. Also runs `cargo fmt --check` and
# `cargo clippy --release -- -D warnings` per board, and lints the shared
# board library for each kind of target and runs its host tests, unless
# FIRMWARE_SKIP_LINT=1.
# The boards in `without_status` are also built (and linted) without the
# status service (`--no-default-features`): the table's `BOARD/no-status`
# rows, and what the service costs. Exits non-zero if any step fails, or
# if the default AN385 image (vector table + .text + .rodata + the initial
# values of .data) is larger than its 64 KiB budget, FLASH_BUDGET.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

# board directory -> target triple
boards=(
    "mps2-an385 thumbv7m-none-eabi"
    "nucleo-f429zi thumbv7em-none-eabihf"
    "qemu-riscv32 riscv32imac-unknown-none-elf"
    "esp32c3 riscv32imc-unknown-none-elf"
)
# The flash the default AN385 image may take, in bytes (64 KiB).
FLASH_BUDGET=65536

# Boards built a second time without the feature `status` (all four: only
# the board layer and the board crate are compiled again).
without_status=(mps2-an385 nucleo-f429zi qemu-riscv32 esp32c3)

installed=$(rustup target list --installed)
for entry in "${boards[@]}"; do
    target=${entry#* }
    if ! grep -qx "$target" <<<"$installed"; then
        rustup target add "$target"
    fi
done
if ! rustup component list --installed | grep -q '^llvm-tools'; then
    rustup component add llvm-tools
fi
size="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/llvm-size"

# Panic locations name their source files, by the path rustc was given:
# the crates' under cargo's registry, the repository's under wherever it
# is checked out. The images are built with those prefixes cut
# (`--remap-path-prefix`): `smoltcp-0.14.0/src/socket/tcp.rs`,
# `src/fmt.rs`. An image then names no path of the build machine, and its
# size does not depend on where cargo's home and the repository are (on
# the AN385, the long paths took about 1.2 KB of flash). The flags are
# added to the board's own rustflags, for its target only.
root=$(cd "$here/.." && pwd)
remap=("\"--remap-path-prefix=$root/=\"")
for registry in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/; do
    remap+=("\"--remap-path-prefix=$registry=\"")
done
remap_config() {
    local IFS=,
    echo "target.$1.rustflags=[${remap[*]}]"
}

if [ "${FIRMWARE_SKIP_LINT:-0}" != 1 ]; then
    # The shared board library is a path dependency of every board, which
    # cargo does not lint there: lint it by itself, for each kind of target.
    echo "== board (shared library)"
    (
        cd "$here/board"
        cargo fmt --check
        # Its pure logic (clock, PHY scan, Wi-Fi security) is
        # tested on the host.
        cargo test --locked --lib
        cargo clippy --locked --tests -- -D warnings
        cargo clippy --locked --target thumbv7m-none-eabi --features cortex-m -- -D warnings
        cargo clippy --locked --target thumbv7m-none-eabi --no-default-features \
            --features status,cortex-m,defmt -- -D warnings
        cargo clippy --locked --target riscv32imac-unknown-none-elf -- -D warnings
        cargo clippy --locked --target thumbv7m-none-eabi --no-default-features \
            --features cortex-m -- -D warnings
        RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps --target thumbv7m-none-eabi \
            --features cortex-m
    )
fi

# The sizes of an ELF: the image (the Cortex-M vector table, riscv-rt's
# start-up code (.init.rust) or the ESP-IDF application descriptor
# (.flash.appdesc)), code, constants, the initial values of .data, .bss and
# .uninit. On the ESP32-C3, code that runs from internal RAM (.trap,
# .rwtext*) counts as .text and as static RAM, and the Wi-Fi driver's
# .rodata.wifi, .data.wifi count with .rodata and .data.
sections() {
    "$size" -A "$1" | awk '
        $1 == ".vector_table" || $1 == ".init.rust" || $1 == ".flash.appdesc" { v += $2 }
        $1 == ".text" { t += $2 }
        $1 == ".trap" || $1 ~ /^\.rwtext/ { t += $2; i += $2 }
        $1 ~ /^\.rodata/ { r += $2 }
        $1 ~ /^\.data/ { d += $2 } $1 == ".bss" { b = $2 } $1 == ".uninit" { u = $2 }
        END { print v + 0, t + 0, r + 0, d + 0, b + 0, u + i + 0 }'
}

sizes=()
for entry in "${boards[@]}"; do
    board=${entry% *}
    target=${entry#* }
    elf="$here/$board/target/$target/release/multiserve-$board"
    # Without the status service first, so that the image left in the
    # target folder is the default one.
    if [[ " ${without_status[*]} " == *" $board "* ]]; then
        echo "== $board ($target), without the status service"
        (
            cd "$here/$board"
            cargo build --release --locked --no-default-features --config "$(remap_config "$target")"
            if [ "${FIRMWARE_SKIP_LINT:-0}" != 1 ]; then
                cargo clippy --release --locked --no-default-features -- -D warnings
            fi
        )
        sizes+=("$board/no-status $(sections "$elf")")
    fi
    echo "== $board ($target)"
    (
        cd "$here/$board"
        cargo build --release --locked --config "$(remap_config "$target")"
        if [ "${FIRMWARE_SKIP_LINT:-0}" != 1 ]; then
            cargo fmt --check
            cargo clippy --release --locked -- -D warnings
        fi
    )
    sizes+=("$board $(sections "$elf")")
done

echo
printf '%-24s %8s %8s %8s %8s %10s %10s\n' board .text .rodata .data .bss flash static-RAM
declare -A text_of flash_of ram_of
for line in "${sizes[@]}"; do
    read -r board other text rodata data bss uninit <<<"$line"
    text_of[$board]=$text
    flash_of[$board]=$((other + text + rodata + data))
    ram_of[$board]=$((data + bss + uninit))
    printf '%-24s %8d %8d %8d %8d %10d %10d\n' "$board" "$text" "$rodata" "$data" "$bss" \
        $((other + text + rodata + data)) $((data + bss + uninit))
done
echo "(bytes; flash = the image: vector table, start-up code or app descriptor + .text +"
echo " .rodata + .data; static RAM = .data + .bss, without the stack, and on the ESP32-C3"
echo " the code in IRAM; the qemu-riscv32 image runs from RAM; BOARD/no-status: built"
echo " without the status service, --no-default-features)"
echo
echo "What the status service costs (default build minus BOARD/no-status, bytes):"
printf '%-24s %8s %10s %10s\n' board .text flash static-RAM
for board in "${without_status[@]}"; do
    without="$board/no-status"
    printf '%-24s %+8d %+10d %+10d\n' "$board" \
        $((${text_of[$board]} - ${text_of[$without]})) \
        $((${flash_of[$board]} - ${flash_of[$without]})) \
        $((${ram_of[$board]} - ${ram_of[$without]}))
done

echo
flash=${flash_of[mps2-an385]}
if [ "$flash" -gt "$FLASH_BUDGET" ]; then
    echo "FAIL: the mps2-an385 image takes $flash bytes of flash, over its budget of $FLASH_BUDGET"
    exit 1
fi
echo "mps2-an385 image: $flash bytes of flash, $((FLASH_BUDGET - flash)) under its budget of $FLASH_BUDGET"
