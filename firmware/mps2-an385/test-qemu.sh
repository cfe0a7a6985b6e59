#!/usr/bin/env bash
# Smoke test of the AN385 firmware under QEMU: boot it, wait for its
# `serving on` line, then talk to it over 127.0.0.1 through QEMU's user
# network (hostfwd). Checks:
#   1. `hello\n` is answered `olleh\n`;
#   2. all 8 pool clients are served at once, each its own answer;
#   3. a 9th concurrent client gets the `busy:` line and is closed;
#   4. a line longer than 1024 bytes gets the error line, and the
#      connection keeps working.
# QEMU is stopped by its PID. Prints `N passed, N failed`; exits non-zero
# on any failure.
#
#   test-qemu.sh [PORT]     (default: a free port chosen by the OS)
#
# Needs qemu-system-arm and python3; installs QEMU with apt-get if missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"

if ! command -v qemu-system-arm >/dev/null; then
    bash ../../tests/apt-install.sh qemu-system-arm
fi
cargo build --release --quiet

port=${1:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
log=$(mktemp)
./run-qemu.sh "$port" >"$log" 2>&1 &
qemu=$!
cleanup() {
    kill "$qemu" 2>/dev/null || true
    wait "$qemu" 2>/dev/null || true
    echo "--- firmware log ---"
    cat "$log"
    rm -f "$log"
}
trap cleanup EXIT

python3 - "$port" "$log" <<'PY'
import socket, sys, time

port, log = int(sys.argv[1]), sys.argv[2]
deadline = time.time() + 60
while True:
    with open(log, errors="replace") as f:
        lines = [l for l in f.read().splitlines() if l.startswith("serving on ")]
    if lines:
        print(lines[0])
        break
    if time.time() > deadline:
        print("no 'serving on' line within 60 s")
        print("0 passed, 1 failed")
        sys.exit(1)
    time.sleep(0.2)

def connect():
    return socket.create_connection(("127.0.0.1", port), timeout=10)

readers = {}
def read_line(s):
    """One line, however the server's segments split or join lines."""
    if s not in readers:
        readers[s] = s.makefile("rb")
    return readers[s].readline()

passed = failed = 0
def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")

try:
    s = connect()
    s.sendall(b"hello\n")
    got = read_line(s)
    check("hello -> olleh", got == b"olleh\n", repr(got))
    # Close and wait for the server's FIN, then give the slot a moment to
    # listen again, so that the next 8 clients find all 8 slots free.
    s.shutdown(socket.SHUT_WR)
    rest = read_line(s)
    check("server closes after the client does", rest == b"", repr(rest))
    s.close()
    time.sleep(0.5)

    clients = [connect() for _ in range(8)]
    for i, c in enumerate(clients):
        c.sendall(f"client {i}\n".encode())
    answers = [read_line(c) for c in clients]
    check("8 clients at once",
          answers == [f"{i} tneilc\n".encode() for i in range(8)], repr(answers))

    extra = connect()
    got = read_line(extra)
    check("9th client is told busy", got.startswith(b"busy:"), repr(got))
    extra.close()

    c = clients[0]
    c.sendall(b"x" * 1500 + b"\nabc\n")
    first, second = read_line(c), read_line(c)
    check("over-long line -> error, then served",
          first.startswith(b"error:") and second == b"cba\n", repr((first, second)))
    for c in clients:
        c.close()
except OSError as e:
    check("network", False, repr(e))

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
