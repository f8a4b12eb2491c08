"""A real otp-radiusd for the tests.

Radiusd is the process on a given config file: started, watched through its log, stopped, killed. RadiusServer is an
installation of its own in a folder: config written here (free loopback ports, the given clients and policy, any
further tables), store initialised, users provisioned through the Admin library.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Self

from otpcore.admin import Admin, TokenSpec, UserSpec
from otpcore.config import load_config
from otpcore.oath import encode_base32
from otpcore.store import SessionRow, open_store

from .codes import totp, wrong_totp
from .config import Client, config_text
from .ports import free_udp_port
from .processes import alive, children
from .tools import otp_admin, tool

__all__ = ["READY", "READY_TIMEOUT", "TEST_POLICY", "RadiusServer", "Radiusd", "User"]

READY = r"ready: listening"
READY_TIMEOUT = 15.0
# Lockouts that take three wrong codes and last until `otp-admin user unlock`: short tests, no clock to wait for.
TEST_POLICY: Mapping[str, object] = {"max_failures": 3, "lockout_seconds": 0}


class Radiusd:
    """`otp-radiusd --config CONFIG ARGS...`, its output appended to `log_path` (across restarts)."""

    def __init__(self, config_path: Path, log_path: Path, *, workers: int = 1, args: Sequence[str] = ()) -> None:
        self.config_path = config_path
        self.log_path = log_path
        self.workers = workers
        self.args = list(args)
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self._readies = 0  # "ready" lines the log holds so far

    def start(self, *, wait: bool = True, ready: str = READY) -> Self:
        """Starts the server; with `wait`, returns once every worker logged `ready` (a server that exits or takes
        too long instead is killed, and the test fails with its log)."""
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed when the process is gone
        self.proc = subprocess.Popen([tool("otp-radiusd"), "--config", str(self.config_path), *self.args],
                                     stdin=subprocess.DEVNULL, stdout=self._log_file, stderr=self._log_file)
        if wait:
            try:
                self.wait_log(ready, count=self._readies + self.workers)
            except BaseException:
                self.proc.kill()
                self.wait_exit()
                raise
            self._readies += self.workers
        return self

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Sends `sig` (unless the server has exited already); returns its exit status."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        finally:
            self._close_log()

    def wait_exit(self, timeout: float = 20) -> int:
        """The exit status of a server that ends by itself (a start that must fail); the process is forgotten."""
        assert self.proc is not None
        rc = self.proc.wait(timeout)
        self._close_log()
        self.proc = None
        return rc

    def pids(self) -> list[int]:
        assert self.proc is not None
        return [self.proc.pid, *children(self.proc.pid)]

    def kill9(self) -> None:
        """SIGKILL to the supervisor and every worker at once (as systemd's KillMode=control-group would)."""
        pids = self.pids()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.wait_exit(10)
        for pid in pids[1:]:  # the workers, reparented and reaped by init
            for _ in range(500):
                if not alive(pid):
                    break
                time.sleep(0.01)

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_log(self, pattern: str, *, count: int = 1, timeout: float = READY_TIMEOUT) -> list[re.Match[str]]:
        """The first `count` matches of `pattern` in the log, once it holds that many."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while True:
            found = list(regex.finditer(self.log()))
            if len(found) >= count:
                return found
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"otp-radiusd exited with {self.proc.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {pattern!r} in the log:\n{self.log()}")
            time.sleep(0.02)

    def counters(self) -> dict[str, int]:
        """SIGUSR1 makes every worker log its counters; returns their sums."""
        assert self.proc is not None
        before = len(re.findall(r"counters", self.log()))
        self.proc.send_signal(signal.SIGUSR1)
        lines = self.wait_log(r"counters[^:]*: (.*)", count=before + self.workers)[before:]
        total: dict[str, int] = {}
        for m in lines:
            for item in m.group(1).split():
                k, _, v = item.partition("=")
                total[k] = total.get(k, 0) + int(v)
        return total

    def decision_lines(self, user: str) -> list[str]:
        return [line for line in self.log().splitlines() if f"decision user={user} " in line]

    def decisions(self, user: str) -> list[dict[str, str]]:
        """The key=value fields of the user's decision lines."""
        return [dict(item.split("=", 1) for item in line.split("decision ", 1)[1].split() if "=" in item)
                for line in self.decision_lines(user)]

    def rss_kib(self) -> int:
        """The resident memory of the supervisor (of the only process, with one worker)."""
        assert self.proc is not None
        return _rss_kib(self.proc.pid)

    def total_rss_kib(self) -> int:
        total = 0
        for pid in self.pids():
            with contextlib.suppress(FileNotFoundError):
                total += _rss_kib(pid)
        return total


def _rss_kib(pid: int) -> int:
    m = re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{pid}/status").read_text())
    return int(m.group(1)) if m else 0


@dataclass
class User:
    """A user with a TOTP token."""

    name: str
    password: str | None
    secret_b32: str

    def code(self, at: float | None = None) -> str:
        return totp(self.secret_b32, at)

    def wrong_code(self) -> str:
        return wrong_totp(self.secret_b32)


def _distinct_free_ports(n: int, below: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < n:
        port = free_udp_port(below=below)
        if port not in ports:
            ports.append(port)
    return ports


class RadiusServer(Radiusd):
    """otp-radiusd with a store of its own in `folder`. Authentication and accounting on free loopback ports (never
    the shared defaults), `policy` over TEST_POLICY, `extra_config` appended to the config (delivery tables, ...),
    `port_below` for NASes that cannot write every port, `radius` for further [radius] keys."""

    def __init__(self, folder: Path, *, clients: Sequence[Client], policy: Mapping[str, object] | None = None,
                 workers: int = 1, listen: Sequence[str] | None = None, args: Sequence[str] = (),
                 extra_config: str = "", port_below: int = 65536, radius: Mapping[str, object] | None = None
                 ) -> None:
        super().__init__(folder / "otp.toml", folder / "radiusd.log", workers=workers, args=args)
        self.dir = folder
        self.store_path = folder / "otp.sqlite"
        self.key_path = folder / "otp.key"
        self.auth_port, self.acct_port = _distinct_free_ports(2, port_below)
        self.listen = list(listen) if listen else [f"127.0.0.1:{self.auth_port}"]
        self.clients = list(clients)
        self.policy = {**TEST_POLICY, **(policy or {})}
        self.extra_config = extra_config
        self.radius = dict(radius or {})  # further [radius] keys (tls_listen, ...)
        self.write_config()
        with self.admin() as admin:
            admin.init()

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.auth_port)

    def write_config(self) -> None:
        self.config_path.write_text(config_text(
            listen=self.listen, workers=self.workers, accounting_listen=[f"127.0.0.1:{self.acct_port}"],
            clients=self.clients, policy=self.policy, extra=self.extra_config, radius=self.radius))

    @contextlib.contextmanager
    def admin(self) -> Iterator[Admin]:
        with Admin(load_config(self.config_path)) as admin:
            yield admin

    def add_user(self, name: str, password: str | None = "pw", *, digits: int = 6,
                 secret: bytes | None = None) -> User:
        """The user (with that store password, or none) and a TOTP token (a random secret by default)."""
        secret = os.urandom(20) if secret is None else secret
        with self.admin() as admin:
            admin.add_user(UserSpec(name, password=password.encode() if password else None), now=time.time())
            admin.add_token(name, TokenSpec(type="totp", secret=secret, digits=digits), now=time.time())
        return User(name, password, encode_base32(secret))

    def otp_admin(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return otp_admin(self.config_path, *args, stdin=stdin)

    def sessions(self) -> list[SessionRow]:
        """The sessions RADIUS accounting recorded in the store."""
        store = open_store(load_config(self.config_path).store)
        try:
            return store.sessions()
        finally:
            store.close()
