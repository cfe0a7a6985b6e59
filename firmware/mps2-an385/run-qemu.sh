#!/usr/bin/env bash
# Boot the AN385 firmware in QEMU, non-interactively.
#
#   [STATUS_PORT=SPORT] run-qemu.sh PORT [ELF]
#
# The server (guest 10.0.2.15:7000 on QEMU's user network) is forwarded to
# 127.0.0.1:PORT on the host; with STATUS_PORT set, its status service
# (guest port 7001) is forwarded to 127.0.0.1:SPORT as well; nothing else
# is. The firmware's log, including the line `serving on IP:PORT` once it
# has an address, goes to stdout. QEMU runs in the foreground (exec), so the PID of this script is
# QEMU's: stop it with `kill PID`. ELF defaults to the release build; build
# it first with `cargo build --release` in this directory.
#
# For an interactive session use `cargo run --release` here instead (port
# 7000, status on 7001, Ctrl-A X quits).
set -euo pipefail
port=${1:?usage: run-qemu.sh PORT [ELF]}
here=$(cd "$(dirname "$0")" && pwd)
forward="hostfwd=tcp:127.0.0.1:${port}-:7000"
if [ -n "${STATUS_PORT:-}" ]; then
    forward="$forward,hostfwd=tcp:127.0.0.1:${STATUS_PORT}-:7001"
fi
elf=${2:-$here/target/thumbv7m-none-eabi/release/multiserve-mps2-an385}
exec qemu-system-arm \
    -machine mps2-an385 -cpu cortex-m3 \
    -display none -monitor none -serial null \
    -semihosting-config enable=on,target=native \
    -nic "user,model=lan9118,${forward}" \
    -kernel "$elf" </dev/null
