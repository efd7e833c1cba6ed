"""bench_echo's gevent peer: gevent's StreamServer echo on the listening socket inherited as
fd 3 (Debian's /usr/bin/python3 with python3-gevent)."""
from gevent import socket as gsocket

from gevent.server import StreamServer


def handle(sock, address):
    while True:
        data = sock.recv(4096)
        if not data:
            break
        sock.sendall(data)


listener = gsocket.socket(fileno=3)
StreamServer(listener, handle).serve_forever()
