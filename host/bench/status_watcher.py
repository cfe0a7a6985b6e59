#!/usr/bin/env python3
"""A status client for the benchmark: asks for a JSON snapshot RATE times a
second for SECONDS, checks that each is JSON, and prints one JSON line with
what it got.

    status_watcher.py HOST PORT RATE SECONDS
"""
import json
import socket
import sys
import time

host, port, rate, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
s = socket.create_connection((host, port), timeout=5)
f = s.makefile("rb")
while f.readline() not in (b"end\n", b""):  # the greeting
    pass
snapshots, size, sockets = 0, 0, 0
end = time.monotonic() + seconds
next_at = time.monotonic()
while time.monotonic() < end:
    s.sendall(b"json\n")
    line = f.readline()
    snapshot = json.loads(line)
    snapshots += 1
    size += len(line)
    sockets = len(snapshot["sockets"])
    next_at += 1 / rate
    time.sleep(max(0.0, next_at - time.monotonic()))
print(json.dumps({"watcher_snapshots": snapshots, "watcher_bytes": size, "watcher_sockets": sockets, "watcher_rate": rate}))
