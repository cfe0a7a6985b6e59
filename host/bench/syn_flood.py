#!/usr/bin/env python3
"""A bounded SYN flood for the benchmark, from an address that never answers.

    syn_flood.py DST_IP DST_PORT SRC_IP RATE SECONDS

Sends RATE TCP SYNs per second (in 1 ms steps) from SRC_IP, random source
ports, to DST_IP:DST_PORT, for SECONDS, then prints how many it sent. Needs
root (a raw socket). host/bench/run.sh runs it only inside its own network
namespace, against the servers it started there.
"""
import random
import socket
import struct
import sys
import time


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def syn(src, dst, sport, dport, seq):
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, 0x02, 64240, 0, 0)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
    # The kernel fills in the IP checksum and total length (IPPROTO_RAW).
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 0, 0, 0, 64, 6, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    return ip + tcp


def main():
    dst, dport, src, rate, seconds = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    rng = random.Random(1)
    start = time.monotonic()
    sent = 0
    while True:
        elapsed = time.monotonic() - start
        if elapsed >= seconds:
            break
        due = int(elapsed * rate)
        while sent < due:
            s.sendto(syn(src, dst, rng.randrange(1024, 65536), dport, rng.getrandbits(32)), (dst, 0))
            sent += 1
        time.sleep(0.001)
    print(sent, flush=True)


if __name__ == "__main__":
    main()
