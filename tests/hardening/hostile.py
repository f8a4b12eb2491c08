"""Hostile RADIUS traffic against a running otp-radiusd, and the bookkeeping that proves it changed nothing.

Used by the CI network fuzz (tests/hardening/test_fuzz_network.py, ~60 000 packets) and the long run
(python -m tests.hardening.long_fuzz --packets 1000000). The target server has four clients, told apart by source
address:

    127.0.0.1  local    first_factor store, Message-Authenticator required   (control logins only)
    127.0.0.2  otp      first_factor none,  Message-Authenticator required   (most hostile packets)
    127.0.0.3  legacy   first_factor none,  Message-Authenticator optional   (the BlastRADIUS surface)
    127.0.0.4  pw       first_factor store, Message-Authenticator required   (a few hostile packets: argon2 is slow)
    127.0.1.1  nobody's address                                               (unknown client)

and users: `bob` (no token), `carol` (HOTP, password carol-pw, no code she could be accepted with is ever sent),
`dave` (HOTP, password dave-pw: the control logins, one accepted code each) and unknown names.

Hostile packets come in named families (see FAMILIES); `generate` yields (family, source, bytes). Every packet is a
new request (fresh Request Authenticator), so the duplicate cache never hides one. The run interleaves, every
`batch` packets, a Status-Server round trip from the control client (flow control: the receive loop handled all
before it) and, every `login_every` packets, a real login for dave that must be accepted; RSS is sampled along.
"""

from __future__ import annotations

import contextlib
import random
import socket
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from otpbase.radius import ACCESS_ACCEPT, STATUS_SERVER
from tests.kit.config import Client
from tests.kit.radius_client import build_request, check_reply
from tests.kit.radiusd import RadiusServer

from .helpers import NO_LIMITS, HotpUser, add_hotp_users
from .hostile_packets import FAMILIES, SECRETS, SOURCES, generate

__all__ = ["FAMILIES", "FuzzReport", "FuzzTarget", "generate", "run_fuzz"]


# -- the target server and the run -------------------------------------------------------------------------------------


@dataclass
class FuzzTarget:
    server: RadiusServer
    carol: HotpUser
    dave: HotpUser


def prepare_target(folder: Path, *, workers: int = 1, args: tuple[str, ...] = ()) -> FuzzTarget:
    clients = [Client("local", SOURCES["local"], secret=SECRETS["local"].decode()),
               Client("otp", SOURCES["otp"], secret=SECRETS["otp"].decode(), first_factor="none"),
               Client("legacy", SOURCES["legacy"], secret=SECRETS["legacy"].decode(), first_factor="none",
                      require_message_authenticator=False),
               Client("pw", SOURCES["pw"], secret=SECRETS["pw"].decode())]
    # carol is never locked (so her wrong codes keep reaching the code check), lockouts never expire.
    server = RadiusServer(folder, clients=clients, workers=workers, args=args, policy=NO_LIMITS)
    server.add_user("bob", "bob-pw")
    from otpcore.admin import Admin
    from otpcore.config import load_config

    with Admin(load_config(server.config_path)) as admin:  # bob keeps no token: nothing he sends can be accepted
        for token, _ in admin.tokens("bob"):
            admin.delete_token(token.id, now=time.time())
    (carol,) = add_hotp_users(server.config_path, ["carol"], password="carol-pw")
    (dave,) = add_hotp_users(server.config_path, ["dave"], password="dave-pw")
    return FuzzTarget(server, carol, dave)


@dataclass
class FuzzReport:
    packets: int = 0
    seconds: float = 0.0
    families: Counter[str] = field(default_factory=Counter)
    replies: Counter[int] = field(default_factory=Counter)  # to hostile packets, by code
    accepted: list[tuple[str, bytes]] = field(default_factory=list)  # (family, packet) of any hostile Access-Accept
    control_logins: int = 0
    control_failures: list[str] = field(default_factory=list)
    control_latency_ms: list[float] = field(default_factory=list)
    status_round_trips: int = 0
    status_answers: int = 0  # hostile Status-Server packets that were well-formed enough to be answered
    rss_kib: list[tuple[int, float, int]] = field(default_factory=list)  # (packets sent, seconds, RSS)

    def summary(self) -> str:
        lat = sorted(self.control_latency_ms) or [0.0]
        return (f"{self.packets} hostile packets in {self.seconds:.1f} s ({self.packets / max(self.seconds, 1e-9):.0f}"
                f"/s); replies to them {dict(self.replies)}; accepts {len(self.accepted)}; control logins "
                f"{self.control_logins} (failures {len(self.control_failures)}, latency p50 "
                f"{lat[len(lat) // 2]:.1f} ms max {lat[-1]:.1f} ms); status round trips {self.status_round_trips}, "
                f"hostile Status-Server answered {self.status_answers}; RSS KiB "
                f"{[r for _, _, r in self.rss_kib]}; families {dict(self.families)}")


def _udp(source: str) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((source, 0))
    s.setblocking(False)
    return s


def run_fuzz(target: FuzzTarget, packets: int, *, seed: int = 20240611, batch: int = 400, login_every: int = 5000,
             rss_every: int = 10000, rate: float = 0.0, progress: bool = False) -> FuzzReport:
    """Send `packets` hostile packets to the running target; see the module docstring. `rate` (packets per second)
    paces the run; 0: as fast as the Status-Server flow control allows."""
    srv = target.server
    rng = random.Random(seed)
    report = FuzzReport()
    # Status-Server packets (first octet 12) leave from sockets of their own: their answer is an Access-Accept.
    socks = {name: _udp(source) for name, source in SOURCES.items() if name != "local"}
    socks.update({f"{name}:status": _udp(source) for name, source in SOURCES.items() if name != "local"})
    control = _udp(SOURCES["local"])
    control.setblocking(True)
    dave_counter = target.dave.counter
    ident = 0

    def drain() -> None:
        for name, s in socks.items():
            while True:
                try:
                    data = s.recv(8192)
                except BlockingIOError:
                    break
                if len(data) < 20:
                    continue
                if name.endswith(":status"):
                    report.status_answers += 1
                    if data[0] != ACCESS_ACCEPT:
                        report.accepted.append((name, data))  # not a Status-Server answer: cannot be
                    continue
                report.replies[data[0]] += 1
                if data[0] == ACCESS_ACCEPT:
                    report.accepted.append((name, data))

    def ask(sent_raw: bytes, sent_id: int, timeout: float = 10.0) -> bytes | None:
        control.settimeout(timeout)
        deadline = time.monotonic() + timeout
        control.sendto(sent_raw, srv.address)
        while time.monotonic() < deadline:
            try:
                data = control.recv(8192)
            except TimeoutError:
                return None
            if data[1] == sent_id:
                return data
        return None

    def status() -> None:
        nonlocal ident
        ident = (ident + 1) % 256
        sent = build_request(None, None, code=STATUS_SERVER, ident=ident)
        data = ask(sent.raw, sent.id)
        if data is None or check_reply(sent, data).code != ACCESS_ACCEPT:
            raise AssertionError(f"Status-Server unanswered after {report.packets} hostile packets")
        report.status_round_trips += 1

    def login() -> None:
        nonlocal ident, dave_counter
        ident = (ident + 1) % 256
        code = target.dave.code(dave_counter)
        sent = build_request("dave", f"dave-pw{code}".encode(), ident=ident)
        t = time.perf_counter()
        data = None
        for _ in range(3):  # a NAS retransmits; the duplicate cache answers with the same reply
            data = ask(sent.raw, sent.id, 5.0)
            if data is not None:
                break
        report.control_latency_ms.append((time.perf_counter() - t) * 1000)
        report.control_logins += 1
        if data is None:
            report.control_failures.append(f"dave#{dave_counter}: no answer")
        elif check_reply(sent, data).code != ACCESS_ACCEPT:
            report.control_failures.append(f"dave#{dave_counter}: code {data[0]}")
        dave_counter += 1

    started = time.monotonic()
    try:
        report.rss_kib.append((0, 0.0, srv.total_rss_kib()))
        login()
        for n, (family, client, packet) in enumerate(generate(rng, target.carol), start=1):
            sock = socks[f"{client}:status"] if packet[:1] == b"\x0c" else socks[client]
            with contextlib.suppress(BlockingIOError):
                sock.sendto(packet, srv.address)
            report.families[family] += 1
            report.packets = n
            if n % batch == 0:
                status()
                drain()
                if rate:
                    time.sleep(max(0.0, started + n / rate - time.monotonic()))
            if n % login_every == 0:
                login()
            if n % rss_every == 0:
                report.rss_kib.append((n, time.monotonic() - started, srv.total_rss_kib()))
                if progress:
                    print(f"  {n} packets, {report.rss_kib[-1][1]:.0f} s, RSS {report.rss_kib[-1][2]} KiB",
                          flush=True)
            if n >= packets:
                break
        status()
        time.sleep(0.3)
        drain()
        login()
        report.rss_kib.append((report.packets, time.monotonic() - started, srv.total_rss_kib()))
    finally:
        report.seconds = time.monotonic() - started
        for s in [*socks.values(), control]:
            s.close()
    return report
