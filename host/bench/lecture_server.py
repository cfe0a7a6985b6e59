#!/usr/bin/env python3
"""The lecture's select() server, as the benchmark's baseline.

Written from the lecture "Sockets com Múltiplos Clientes": keep a list of
sockets, select() on it, accept new clients on the listening socket, recv(1024)
from a client that has data and answer it reversed, close on an empty read.

    lecture_server.py [--lines] [HOST] [PORT]

--lines is the line-framed variant, so that multiserve's checks apply: each
line ending in \\n is answered with its content reversed and a \\n.
"""
import select as sel
import socket
import sys


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    lines = "--lines" in sys.argv
    host = args[0] if args else "127.0.0.1"
    port = int(args[1]) if len(args) > 1 else 7001

    ListenSocket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ListenSocket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ListenSocket.bind((host, port))
    ListenSocket.listen(128)
    print("lecture server on %s:%d%s" % (host, port, " (lines)" if lines else ""), flush=True)

    SocketList = [ListenSocket]
    pending = {}
    while True:
        R, W, X = sel.select(SocketList, [], [])  # wait for sockets with data
        for sckt in R:
            if sckt is ListenSocket:  # the listening socket
                conn_sock, (addr, port_) = ListenSocket.accept()
                conn_sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                SocketList.append(conn_sock)
                pending[conn_sock] = b""
            else:  # a client's socket
                try:
                    msg = sckt.recv(1024)
                except ConnectionError:
                    msg = b""
                if msg:
                    if lines:
                        data = pending[sckt] + msg
                        *complete, rest = data.split(b"\n")
                        pending[sckt] = rest
                        answer = b"".join(line[::-1] + b"\n" for line in complete)
                    else:
                        answer = msg[::-1]
                    try:
                        if answer:
                            sckt.sendall(answer)
                    except ConnectionError:
                        msg = b""
                if not msg:  # the client closed
                    sckt.close()
                    SocketList.remove(sckt)
                    del pending[sckt]


if __name__ == "__main__":
    main()
