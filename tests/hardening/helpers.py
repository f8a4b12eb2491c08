"""Helpers for the hardening suite (the server, pamtester and PAM services are the kit's, tests/kit): HOTP users
provisioned in bulk, a many-socket RADIUS client with retransmissions, store inspection, file systems that fail.

HOTP tokens make races deterministic: code k of a user is valid until it is accepted once, whatever the clock.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import select
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from otpcore import oath
from otpcore.admin import Admin, TokenSpec, UserSpec
from otpcore.config import load_config
from otpcore.oath import encode_base32
from tests.kit.radius_client import SECRET, Reply, Sent, build_request, check_reply

__all__ = [
    "NO_LIMITS", "HotpUser", "Store", "add_hotp_users", "blast", "code_requests", "ext4_image", "mount_source",
    "reject_reasons", "run", "tmpfs", "wrong_codes",
]

# A policy for floods of failures on purpose: no lockout, no per-client throttle.
NO_LIMITS: dict[str, object] = {"max_failures": 1_000_000_000, "lockout_seconds": 0, "client_max_failures": 0}


@dataclass(frozen=True)
class HotpUser:
    name: str
    secret: bytes
    counter: int = 0  # the next counter the store expects at provisioning
    password: str | None = None

    def code(self, counter: int) -> str:
        return oath.hotp(self.secret, counter)

    @property
    def b32(self) -> str:
        return encode_base32(self.secret)


def wrong_codes(user: HotpUser, n: int, rng: random.Random) -> list[str]:
    """`n` distinct 6-digit codes none of which is the user's for counters 0 to 63."""
    valid = {user.code(c) for c in range(0, 64)}
    out: list[str] = []
    while len(out) < n:
        code = f"{rng.randrange(10**6):06d}"
        if code not in valid and code not in out:
            out.append(code)
    return out


def add_hotp_users(config_path: Path, names: Sequence[str], *, password: str | None = None, counter: int = 0
                   ) -> list[HotpUser]:
    """Users with one HOTP token each (one transaction: otp-admin's import)."""
    users = [HotpUser(n, _distinct_secret(counter), counter, password) for n in names]
    with Admin(load_config(config_path)) as admin:
        admin.import_users([(UserSpec(u.name, password=password.encode() if password else None),
                             TokenSpec(type="hotp", secret=u.secret, counter=counter)) for u in users],
                           now=time.time())
    return users


def _distinct_secret(first: int, counters: int = 1024) -> bytes:
    """A secret whose codes for counters first..first+counters are all different.

    With random secrets, an old code equals one in the look-ahead window about once in 100 000 tries, and the server
    then rightly accepts it (for the later counter): loads of thousands of codes that count accepts per code, or
    replay every old code, would report that as a double accept now and then. These codes each name one counter."""
    while True:
        secret = os.urandom(20)
        if len({oath.hotp(secret, k) for k in range(first, first + counters)}) == counters:
            return secret


# -- many requests at once ------------------------------------------------------------------------------------------


def blast(address: tuple[str, int], requests: Sequence[Sent], *, sockets: int = 32, timeout: float = 20.0,
          retransmit: float = 2.0, source: str = "127.0.0.1", check: bool = True) -> list[Reply | None]:
    """Send every request at once from `sockets` source ports (SO_REUSEPORT spreads them over the workers) and
    collect the replies; a request unanswered after `retransmit` seconds is sent again (same bytes, as a NAS does).
    Requests must carry distinct (socket, ID) pairs: request i leaves on socket i % sockets; IDs are the caller's."""
    socks = []
    for _ in range(min(sockets, len(requests)) or 1):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
        s.bind((source, 0))
        s.setblocking(False)
        socks.append(s)
    n = len(socks)
    pending: dict[tuple[int, int], int] = {}
    for i, sent in enumerate(requests):
        key = (i % n, sent.id)
        assert key not in pending, f"requests {pending[key]} and {i} share socket and ID"
        pending[key] = i
    replies: list[Reply | None] = [None] * len(requests)
    last_sent = [0.0] * len(requests)
    try:
        now = time.monotonic()
        for i, sent in enumerate(requests):
            with contextlib.suppress(BlockingIOError):
                socks[i % n].sendto(sent.raw, address)
            last_sent[i] = now
        deadline = now + timeout
        fd_index = {s.fileno(): k for k, s in enumerate(socks)}
        while pending and time.monotonic() < deadline:
            ready, _, _ = select.select(socks, [], [], 0.1)
            for s in ready:
                k = fd_index[s.fileno()]
                while True:
                    try:
                        data = s.recv(8192)
                    except BlockingIOError:
                        break
                    i = pending.pop((k, data[1]), -1) if len(data) >= 20 else -1
                    if i < 0:
                        continue
                    replies[i] = check_reply(requests[i], data) if check else Reply(data, data[0])
            now = time.monotonic()
            for (k, _), i in list(pending.items()):
                if now - last_sent[i] >= retransmit:
                    with contextlib.suppress(BlockingIOError):
                        socks[k].sendto(requests[i].raw, address)
                    last_sent[i] = now
    finally:
        for s in socks:
            s.close()
    return replies


def code_requests(pairs: Sequence[tuple[str, str]], *, start: int = 0, sockets: int = 32,
                  secret: bytes = SECRET) -> list[Sent]:
    """One Access-Request per (user, password) with IDs laid out for blast(): request i has ID (start+i)//sockets."""
    return [build_request(user, password.encode(), ident=((start + i) // sockets) % 256, secret=secret)
            for i, (user, password) in enumerate(pairs)]


# -- the store, read from outside ------------------------------------------------------------------------------------


class Store:
    """Read-only look at a store file (never takes a write lock)."""

    def __init__(self, path: Path, *, readonly: bool = True) -> None:
        # After a crash the WAL index needs a recovery only a writable connection can run: readonly=False then.
        self.conn = sqlite3.connect(f"file:{path}?mode=ro" if readonly else str(path), uri=readonly, timeout=30)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def counters(self) -> dict[str, int]:
        rows = self.conn.execute("SELECT u.name, t.counter FROM tokens t JOIN users u ON u.id = t.user_id "
                                 "WHERE t.type = 'hotp'")
        return dict(rows.fetchall())

    def failures(self) -> dict[str, int]:
        return dict(self.conn.execute("SELECT name, failures FROM users").fetchall())

    def audit_counts(self, door: str | None = None) -> dict[tuple[str, str, str], int]:
        sql = "SELECT user, result, reason, count(*) FROM audit"
        params: tuple[str, ...] = ()
        if door is not None:
            sql += " WHERE door = ?"
            params = (door,)
        return {(u, r, why): n for u, r, why, n in self.conn.execute(sql + " GROUP BY user, result, reason", params)}

    def integrity(self) -> str:
        return str(self.conn.execute("PRAGMA integrity_check").fetchone()[0])


# -- file systems ------------------------------------------------------------------------------------------------------


def run(*cmd: str) -> str:
    p = subprocess.run(cmd, capture_output=True, text=True)
    assert p.returncode == 0, f"{' '.join(cmd)}: {p.stdout}{p.stderr}"
    return p.stdout


@contextlib.contextmanager
def tmpfs(path: Path, size: str = "8m") -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    run("mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path))
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


@contextlib.contextmanager
def ext4_image(image: Path, path: Path, size_mib: int = 32) -> Iterator[Path]:
    """A loop-mounted ext4 file system that turns read-only on an error (errors=remount-ro), as a failing disk does."""
    with open(image, "wb") as fh:
        fh.truncate(size_mib << 20)
    run("mkfs.ext4", "-q", "-F", str(image))
    path.mkdir(parents=True, exist_ok=True)
    run("mount", "-o", "loop,errors=remount-ro", str(image), str(path))
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def mount_source(path: Path) -> str:
    """The device mounted on `path` (e.g. /dev/loop3), from /proc/self/mounts (the last mount wins)."""
    source = ""
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        if fields[1] == str(path):
            source = fields[0]
    return source


def reject_reasons(log: str) -> dict[str, int]:
    """result=.../reason=... counts from the server's decision lines."""
    out: dict[str, int] = {}
    for m in re.finditer(r"decision .*? result=(\S+) reason=(\S+)", log):
        key = f"{m.group(1)}:{m.group(2)}"
        out[key] = out.get(key, 0) + 1
    return out

