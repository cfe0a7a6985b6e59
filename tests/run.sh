#!/usr/bin/env bash
# Runs every test of multiserve, installing first what the tests need.
#
#   bash tests/run.sh
#
# Tests that need root, a TAP device or QEMU skip with a loud message where
# those are missing; with MULTISERVE_REQUIRE_ALL=1 (as CI sets it) a skip is
# a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n=== %s\n' "$*"; }

step "set-up: Rust components and targets"
installed_targets=$(rustup target list --installed)
for target in thumbv7m-none-eabi riscv32imac-unknown-none-elf; do
    grep -qx "$target" <<<"$installed_targets" || rustup target add "$target"
done
installed_components=$(rustup component list --installed)
for component in rustfmt clippy; do
    grep -q "^$component" <<<"$installed_components" || rustup component add "$component"
done

# System packages: iproute2 for the TAP tests, tmux for the test of
# `multiserve watch` in a terminal, QEMU for the emulated boards
# (qemu-system-arm: the AN385; qemu-system-misc: the RISC-V virt machine).
missing=()
command -v ip >/dev/null || missing+=(iproute2)
command -v tmux >/dev/null || missing+=(tmux)
command -v qemu-system-arm >/dev/null || missing+=(qemu-system-arm)
command -v qemu-system-riscv32 >/dev/null || missing+=(qemu-system-misc)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        step "set-up: apt-get install ${missing[*]}"
        bash tests/apt-install.sh "${missing[@]}"
    else
        echo "NOTE: not root, so not installing ${missing[*]}; tests that need them will skip" >&2
    fi
fi

# Every feature of the core (and of the simnet suite, whose addressing and
# driver tests follow them) but `defmt`, which replaces the default `log`
# (the two are exclusive, in smoltcp as here); `defmt` is checked below.
features="multiserve/dhcpv4,multiserve/embassy-net-driver,multiserve-simnet/dhcpv4,multiserve-simnet/embassy-net-driver"

step "format"
cargo fmt --all -- --check

step "lints"
bash tests/layers.sh
cargo clippy --workspace --all-targets --features "$features" -- -D warnings

step "the core's documentation has no broken links"
RUSTDOCFLAGS="-D warnings" cargo doc -p multiserve --no-deps \
    --features dhcpv4,embassy-net-driver,document-features

# What would be published: the crate, its README and examples, nothing
# else (see `include` in Cargo.toml), building on its own (about 5 s).
# --allow-dirty: this checks the package, not that the tree is committed.
step "the core packages for crates.io"
cargo package -p multiserve --locked --allow-dirty

step "the core builds for a microcontroller (no_std, no allocator)"
cargo build -p multiserve --target thumbv7m-none-eabi
cargo build -p multiserve --target thumbv7m-none-eabi --no-default-features --features ipv4
cargo build -p multiserve --target thumbv7m-none-eabi --features embassy-net-driver
# Logging through defmt instead of log, with every other feature.
cargo clippy -p multiserve --target thumbv7m-none-eabi --no-default-features \
    --features defmt,ipv4,ipv6,dhcpv4,embassy-net-driver -- -D warnings

step "the examples run"
cargo run -q --example loopback | grep -qx 'got:   evresitlum ,olleh'
cargo run -q --example watched | grep -q '^socket 0 7000 serving ESTABLISHED '

step "the boards build (release), with their sizes"
bash firmware/build-all.sh

fuzz_seconds=${MULTISERVE_FUZZ_SECONDS:-30}
step "fuzzing, $fuzz_seconds s per target (longer: bash tests/fuzz/run.sh SECONDS)"
bash tests/fuzz/run.sh "$fuzz_seconds"

step "tests"
cargo test --workspace --features "$features"
