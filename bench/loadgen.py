"""A RADIUS load generator: pre-encoded PAP Access-Requests, a window in flight, latency percentiles.

Every request is encoded before the clock starts (User-Password hidden per RFC 2865 §5.2, Message-Authenticator per
RFC 3579 §3.2 as the first attribute, a random Request Authenticator each, so no two requests look like
retransmissions). The hot loop only sends those bytes and reads the first two octets of each reply (code and ID).

Request i carries ID i % 256. It may leave on any of the generator's UDP sockets whose slot for that ID is free, so
more than 256 requests can be in flight (one socket per 256, plus one spare so that an out-of-order reply does not
stall the ring). There are at least 16 sockets, used in turn: the load comes from 16 source ports, as from many
NASes, so that a server with SO_REUSEPORT workers (which hash the source address and port) sees all of them busy. A
reply is matched by (socket, ID); a slot whose request timed out is retired for the rest of the run, so a late reply
can never be counted against the wrong request.

Two modes:
- closed loop (`window`): keep `window` requests in flight, as fast as the server answers -> throughput;
- open loop (`rate`): send at a fixed rate whatever the answers -> latency at a given load.

Library use: `build_requests(...)` then `run(...)`; command line: `python bench/loadgen.py --help`.
"""

from __future__ import annotations

import argparse
import math
import os
import select
import socket
import struct
import sys
import time
from collections import deque
from collections.abc import Iterable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout: `bench` by name, also as a script

from bench.loadresult import Result
from otpbase.radius import Drop, client
from otpbase.radius.constants import NAS_IP_ADDRESS, NAS_PORT

__all__ = [
    "Result", "access_request", "build_requests", "reply_authentic", "run", "status_server",
]

_LOOPBACK = bytes((127, 0, 0, 1))
_SO_TIMESTAMPNS = 35  # Linux (asm-generic); the socket module does not name it
_TIMESPEC = struct.Struct("@qq")
# Requests are spread over this many UDP sockets (source ports) at least, as a login storm comes from many NASes: a
# server whose workers share the port with SO_REUSEPORT gets one worker per source address and port.
SOURCE_PORTS = 16


# -- encoding (before the clock starts) -------------------------------------------------------------------------------


def access_request(ident: int, user: str, password: bytes, secret: bytes, *, authenticator: bytes | None = None
                   ) -> bytes:
    """One signed PAP Access-Request: Message-Authenticator first, User-Name, User-Password, NAS-IP, NAS-Port."""
    return client.access_request(ident, authenticator or os.urandom(16), secret, user=user, password=password,
                                 attributes=((NAS_IP_ADDRESS, _LOOPBACK), (NAS_PORT, ident.to_bytes(4, "big"))))


def build_requests(credentials: Iterable[tuple[str, bytes]], secret: bytes) -> list[bytes]:
    """Request i (ID i % 256) for the i-th (user, User-Password)."""
    return [access_request(i & 0xFF, user, password, secret) for i, (user, password) in enumerate(credentials)]


def status_server(server: tuple[str, int], secret: bytes, *, source: str = "127.0.0.1", timeout: float = 0.2
                  ) -> bool:
    """One Status-Server (RFC 5997, with its Message-Authenticator): True when a signed reply comes back."""
    packet = client.status_server(0, os.urandom(16), secret)
    family = socket.AF_INET6 if ":" in server[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.bind((source, 0))
            s.sendto(packet, server)
            reply = s.recv(4096)
        except OSError:
            return False
    return reply_authentic(reply, packet, secret)


def reply_authentic(reply: bytes, request: bytes, secret: bytes) -> bool:
    """The codec's check of a reply: its code and ID, its Response Authenticator, and its Message-Authenticator when
    it has one: the reference server (FreeRADIUS 3.2.1) signs no reply. Used by the self-checks, not in the hot loop."""
    try:
        client.decode_reply(reply, request, secret, require_message_authenticator=False)
    except Drop:
        return False
    return True


# -- running ----------------------------------------------------------------------------------------------------------


def run(requests: Sequence[bytes], server: tuple[str, int], *, window: int = 64, rate: float | None = None,
        timeout: float = 2.0, source: str = "127.0.0.1", sockets: int | None = None,
        keep_replies: bool = False) -> Result:
    """Send every request once; closed loop with `window` in flight, or open loop at `rate` requests/s.

    In open loop `window` is ignored: every slot of every socket may be in flight (256 per socket).
    """
    n = len(requests)
    if rate is not None:
        nsock = sockets or max(SOURCE_PORTS, math.ceil(rate * timeout / 256) + 1)
        limit = nsock * 256
    else:
        if window < 1:
            raise ValueError("window must be at least 1")
        nsock = sockets or max(SOURCE_PORTS, math.ceil(window / 256) + 1)
        limit = window
    family = socket.AF_INET6 if ":" in server[0] else socket.AF_INET
    socks = []
    for _ in range(nsock):
        s = socket.socket(family, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        s.bind((source, 0))
        s.connect(server)
        s.setblocking(False)
        socks.append(s)
    try:
        return _loop(requests, socks, n, limit, rate, timeout, keep_replies)
    finally:
        for s in socks:
            s.close()


def _loop(requests: Sequence[bytes], socks: list[socket.socket], n: int, limit: int, rate: float | None,
          timeout: float, keep_replies: bool) -> Result:
    state = _Run(requests, socks, n, limit, rate, timeout, keep_replies)
    try:
        return state.run()
    finally:
        state.poller.close()


class _Run:
    """One run of the generator. The hot paths bind what they use to locals once per batch (a batch is every
    request the window or the schedule allows, or every reply waiting on a socket), not once per packet."""

    def __init__(self, requests: Sequence[bytes], socks: list[socket.socket], n: int, limit: int,
                 rate: float | None, timeout: float, keep_replies: bool) -> None:
        self.requests, self.n, self.limit, self.rate, self.timeout = requests, n, limit, rate, timeout
        self.keep_replies = keep_replies
        self.nsock = nsock = len(socks)
        # Open loop: replies are timed by the kernel as they arrive (SO_TIMESTAMPNS), so the latency does not include
        # the generator's own delay in reading them (it shares the CPUs with the server); sends by the same clock.
        self.stamps = rate is not None
        self.clock = time.time if self.stamps else time.perf_counter
        if self.stamps:
            for s in socks:
                s.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        self.poller = select.epoll()
        self.fd_index = {}
        for k, s in enumerate(socks):
            self.poller.register(s.fileno(), select.EPOLLIN)
            self.fd_index[s.fileno()] = k
        self.sends = [s.send for s in socks]
        self.recvs = [s.recv for s in socks]
        self.recvmsgs = [s.recvmsg for s in socks]
        # free[id]: sockets whose slot for this ID is free, in the order they will be used; slot = socket << 8 | ID.
        # Request i leaves on socket i % nsock while nothing is late: the load is spread evenly over the source ports.
        self.free = [deque((ident + k) % nsock for k in range(nsock)) for ident in range(256)]
        self.sent_at = [0.0] * (nsock * 256)
        self.req_of = [0] * (nsock * 256)
        self.codes = bytearray(n)
        self.latencies: list[float] = []
        self.replies: dict[int, bytes] = {}
        self.timeouts = self.strays = self.late_sends = 0
        self.max_lag = 0.0
        self.outstanding = 0
        self.i = 0
        self.interval = 1.0 / rate if rate else 0.0
        self.start = self.clock()
        self.next_scan = self.start + min(0.05, timeout / 4)
        self.last_event = self.start
        # What each hot path reads, in one tuple: one attribute lookup per batch instead of one per name.
        self._sending = (self.requests, self.free, self.sent_at, self.req_of, self.sends, self.clock)
        self._reading = (self.stamps, self.clock, self.sent_at, self.req_of, self.codes, self.free,
                         self.latencies.append, keep_replies)

    def run(self) -> Result:
        poll, fd_index, quarter = self.poller.poll, self.fd_index, self.timeout / 4
        while self.i < self.n or self.outstanding:
            wait = self._send_window() if self.rate is None else self._send_scheduled()
            for fd, _ in poll(min(wait, quarter)):
                self._read(fd_index[fd])
            self._expire()
        return Result(sent=self.i, elapsed=max(self.last_event - self.start, 1e-9), latencies=self.latencies,
                      codes=self.codes, timeouts=self.timeouts, strays=self.strays, late_sends=self.late_sends,
                      max_lag=self.max_lag, replies=self.replies)

    def _send_window(self) -> float:
        """Closed loop: send while fewer than `limit` are in flight. Returns how long to wait for replies."""
        requests, free, sent_at, req_of, sends, clock = self._sending
        i, outstanding, n, limit = self.i, self.outstanding, self.n, self.limit
        while outstanding < limit and i < n:
            pkt = requests[i]
            fl = free[pkt[1]]
            if not fl:
                break  # every socket still waits for this ID: wait for a reply
            k = fl.popleft()
            slot = (k << 8) | pkt[1]
            req_of[slot] = i
            sent_at[slot] = clock()
            try:
                sends[k](pkt)
            except BlockingIOError:  # send buffer full: try again after reading
                sent_at[slot] = 0.0
                fl.appendleft(k)
                break
            except ConnectionRefusedError:  # ICMP from an earlier send: this one left, it will time out
                pass
            i += 1
            outstanding += 1
        self.i, self.outstanding = i, outstanding
        return self.timeout / 4

    def _send_scheduled(self) -> float:
        """Open loop: send every request whose time has come. Returns how long until the next one is due."""
        requests, free, sent_at, req_of, sends, clock = self._sending
        i, n, start, interval = self.i, self.n, self.start, self.interval
        now = clock()
        due = start + i * interval
        while i < n and due <= now:
            pkt = requests[i]
            fl = free[pkt[1]]
            if not fl:
                break
            k = fl.popleft()
            slot = (k << 8) | pkt[1]
            req_of[slot] = i
            t = clock()
            if t - due > 0.001:
                self.late_sends += 1
                self.max_lag = max(self.max_lag, t - due)
            sent_at[slot] = t
            try:
                sends[k](pkt)
            except BlockingIOError:
                sent_at[slot] = 0.0
                fl.appendleft(k)
                break
            except ConnectionRefusedError:
                pass
            i += 1
            self.outstanding += 1
            due = start + i * interval
        self.i = i
        return max(0.0, due - clock()) if i < n else self.timeout / 4

    def _read(self, k: int) -> None:
        """Every reply waiting on socket k."""
        stamps, clock, sent_at, req_of, codes, free, lat_append, keep_replies = self._reading
        recv, recvmsg = self.recvs[k], self.recvmsgs[k]
        base = k << 8
        answered = 0
        last = 0.0
        while True:
            try:
                if stamps:
                    data, ancillary, _, _ = recvmsg(4096, 64)
                else:
                    data = recv(4096)
            except BlockingIOError:
                break
            except ConnectionRefusedError:  # an ICMP error queued on the socket: not a reply
                continue
            if stamps and ancillary:
                seconds, nanoseconds = _TIMESPEC.unpack_from(ancillary[0][2])
                t = seconds + nanoseconds * 1e-9
            else:
                t = clock()
            ident = data[1] if len(data) >= 20 else -1
            sent = sent_at[base | ident] if ident >= 0 else 0.0
            if not sent:
                self.strays += 1
                continue
            slot = base | ident
            sent_at[slot] = 0.0
            lat_append(t - sent)
            req = req_of[slot]
            codes[req] = data[0]
            if keep_replies:
                self.replies[req] = data
            free[ident].append(k)
            answered += 1
            last = t
        if answered:
            self.outstanding -= answered
            self.last_event = last

    def _expire(self) -> None:
        """Retire what waited too long (its slot is never reused in this run)."""
        now = self.clock()
        if now < self.next_scan:
            return
        self.next_scan = now + min(0.05, self.timeout / 4)
        cutoff = now - self.timeout
        sent_at = self.sent_at
        for slot, sent in enumerate(sent_at):
            if sent and sent < cutoff:
                sent_at[slot] = 0.0
                self.timeouts += 1
                self.outstanding -= 1
                self.last_event = now
        if self.rate is not None or self.outstanding or self.i < self.n:
            requests, free, nsock = self.requests, self.free, self.nsock
            # every socket retired this ID: nothing can carry request i any more
            while self.i < self.n and not free[requests[self.i][1]] and not any(
                    sent_at[(k << 8) | requests[self.i][1]] for k in range(nsock)):
                self.timeouts += 1
                self.i += 1


def pin_to_cpu(cpu: int) -> None:
    """Pin this process to one CPU (Linux), e.g. to keep the generator off the server's cores."""
    os.sched_setaffinity(0, {cpu})


# -- command line -----------------------------------------------------------------------------------------------------


def _hostport(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", type=_hostport, default=("127.0.0.1", 1812), help="HOST:PORT (default 127.0.0.1:1812)")
    p.add_argument("--secret", default="testing123")
    p.add_argument("--source", default="127.0.0.1", help="source address (selects the RADIUS client)")
    p.add_argument("--users", type=int, default=1000, help="users USER-PREFIX0 .. USER-PREFIX{N-1}, round robin")
    p.add_argument("--user-prefix", default="user")
    p.add_argument("--password", default="password", help="User-Password of every request")
    p.add_argument("--requests", type=int, default=50_000)
    p.add_argument("--window", type=int, default=64, help="requests in flight (closed loop)")
    p.add_argument("--rate", type=float, help="open loop at this many requests/s instead")
    p.add_argument("--timeout", type=float, default=2.0)
    p.add_argument("--cpu", type=int, help="pin the generator to this CPU")
    args = p.parse_args(argv)
    if args.cpu is not None:
        pin_to_cpu(args.cpu)
    t = time.perf_counter()
    creds = ((f"{args.user_prefix}{i % args.users}", args.password.encode()) for i in range(args.requests))
    reqs = build_requests(creds, args.secret.encode())
    print(f"encoded {len(reqs)} requests in {time.perf_counter() - t:.2f}s", file=sys.stderr)
    result = run(reqs, args.server, window=args.window, rate=args.rate, timeout=args.timeout, source=args.source)
    print(result.summary())
    return 0 if result.answered else 1


if __name__ == "__main__":
    sys.exit(main())
