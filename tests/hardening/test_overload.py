"""Overload: a flood of authenticated Access-Requests far beyond what argon2 lets one worker evaluate.

The server sheds load (bounded queue: dropped, not queued without bound), keeps its memory bounded, answers the
requests that carry a valid State (the second leg of a challenge, RFC 5080 §2.2.3) at once during the flood, and
answers a fresh login the moment the flood stops (no backlog to work through first). See radiusd/admission.py.
"""

from __future__ import annotations

import contextlib
import socket
import statistics
import threading
import time
from collections.abc import Callable

import pytest

from otpbase.radius import ACCESS_ACCEPT, ACCESS_CHALLENGE
from tests.kit.config import Client
from tests.kit.radius_client import build_request
from tests.kit.radiusd import RadiusServer

from .helpers import NO_LIMITS, add_hotp_users, blast

pytestmark = pytest.mark.slow

FLOOD_RATE = 1500  # requests per second; one worker evaluates ~20-40 of these per second (argon2, twice each)
FLOOD_SECONDS = 8.0
STATE_USERS = 12


class Flood:
    """Open loop: FLOOD_RATE Access-Requests per second (unknown users, password+code: two argon2 runs each)."""

    def __init__(self, address: tuple[str, int], rate: int, seconds: float) -> None:
        self.address = address
        self.rate = rate
        self.seconds = seconds
        self.sent = 0
        self.answered = 0
        self.socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(16)]
        for s in self.socks:
            s.bind(("127.0.0.1", 0))
            s.setblocking(False)
        total = int(rate * seconds) + rate
        self.packets = [build_request(f"flood{i}", b"flood-pw123456", ident=i % 256).raw for i in range(total)]
        self.thread = threading.Thread(target=self._run)
        self.started = 0.0
        self.ended = 0.0

    def start(self) -> None:
        self.started = time.monotonic()
        self.thread.start()

    def join(self) -> None:
        self.thread.join()

    def _run(self) -> None:
        tick = 0.01
        per_tick = max(1, int(self.rate * tick))
        next_at = time.monotonic()
        end = next_at + self.seconds
        while time.monotonic() < end:
            for _ in range(per_tick):
                s = self.socks[self.sent % len(self.socks)]
                with contextlib.suppress(BlockingIOError):
                    s.sendto(self.packets[self.sent], self.address)
                self.sent += 1
            self._drain()
            next_at += tick
            time.sleep(max(0.0, next_at - time.monotonic()))
        self.ended = time.monotonic()

    def _drain(self) -> None:
        for s in self.socks:
            while True:
                try:
                    s.recv(4096)
                except BlockingIOError:
                    break
                self.answered += 1

    def close(self) -> None:
        self._drain()
        for s in self.socks:
            s.close()


def test_flood_sheds_load_prefers_state_and_recovers(make_server: Callable[..., RadiusServer]) -> None:
    srv = make_server(clients=[Client("pw", "127.0.0.1")], policy=NO_LIMITS)
    users = add_hotp_users(srv.config_path, [f"s{i}" for i in range(STATE_USERS + 1)], password="right-pw")
    late = users.pop()
    srv.start()

    # Each State user starts a login with the password alone: an Access-Challenge with a State.
    first = blast(srv.address, [build_request(u.name, b"right-pw", ident=i) for i, u in enumerate(users)],
                  timeout=30)
    states = []
    for reply in first:
        assert reply is not None and reply.code == ACCESS_CHALLENGE and reply.state
        states.append(reply.state)
    rss_before = srv.rss_kib()  # warm: argon2 and the store in use

    flood = Flood(srv.address, FLOOD_RATE, FLOOD_SECONDS)
    flood.start()
    time.sleep(2.0)  # the queue is full and a backlog stands
    peak_rss = srv.rss_kib()

    # During the flood: the answers to the challenges go ahead of the flood.
    latencies = []
    results = []
    for i, (user, state) in enumerate(zip(users, states, strict=True)):
        sent = build_request(user.name, user.code(0).encode(), state=state, ident=i)
        t = time.monotonic()
        (reply,) = blast(srv.address, [sent], sockets=1, timeout=5.0, retransmit=2.0)
        latencies.append((time.monotonic() - t) * 1000)
        results.append(reply.code if reply else None)
        peak_rss = max(peak_rss, srv.rss_kib())
        time.sleep(0.2)
    in_flood = time.monotonic() < flood.started + FLOOD_SECONDS
    flood.join()

    # The flood stops: a fresh login is answered at once.
    t = time.monotonic()
    sent = build_request(late.name, f"right-pw{late.code(0)}".encode(), ident=200)
    (reply,) = blast(srv.address, [sent], sockets=1, timeout=10.0, retransmit=3.0)
    recovery_ms = (time.monotonic() - t) * 1000
    recovered = reply.code if reply else None
    time.sleep(0.5)
    flood.close()
    counters = srv.counters()
    rss_after = srv.rss_kib()

    shed = counters["overload"] + counters["overload_stale"]
    print(f"overload: flood of {flood.sent} requests at {FLOOD_RATE}/s for {FLOOD_SECONDS:.0f} s, "
          f"{flood.answered} answered ({flood.answered / FLOOD_SECONDS:.0f}/s evaluated), shed {shed} "
          f"(queue full {counters['overload']}, waited too long {counters['overload_stale']}); "
          f"{STATE_USERS} challenge answers during the flood: "
          f"{results.count(ACCESS_ACCEPT)} accepted, latency p50 {statistics.median(latencies):.0f} ms max "
          f"{max(latencies):.0f} ms; a fresh login right after the flood: answered in {recovery_ms:.0f} ms; RSS "
          f"{rss_before} KiB before, {peak_rss} KiB peak, {rss_after} KiB after")

    assert in_flood, "the challenge answers took longer than the flood itself"
    assert results == [ACCESS_ACCEPT] * STATE_USERS, results
    assert max(latencies) < 1500, latencies  # a State request waits for at most the evaluation in progress
    assert recovered == ACCESS_ACCEPT and recovery_ms < 1000, (recovered, recovery_ms)
    assert shed > flood.sent * 0.8, counters  # most of the flood was dropped, not queued
    assert peak_rss - rss_before < 16 * 1024 and rss_after - rss_before < 16 * 1024  # bounded memory
    assert counters["errors"] == 0 and counters["evaluate_errors"] == 0, counters
