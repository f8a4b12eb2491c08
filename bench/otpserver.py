"""otp-radiusd under test: a throw-away installation (config, key, store), provisioning through `otp-admin`, the
server in the foreground, and the RSS of its processes.

Two RADIUS clients share one server, told apart by the generator's source address:
- `otp`  127.0.0.1: first_factor = "none" (the User-Password is the code alone);
- `pw`   127.0.0.2: first_factor = "store" (password + code, argon2id hash in the store).

    bench = OtpBench(workdir)
    bench.provision(...)          # otp-admin init + import (timed)
    with bench.server(workers=2) as srv:
        loadgen.run(requests, srv.address, source="127.0.0.1")
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench import loadgen
from bench.freeradius import free_udp_port
from bench.procstat import children, cpu_seconds, rss_bytes

__all__ = ["BenchUser", "OtpBench", "Server", "UserPool"]

VENV_BIN = Path(sys.executable).parent
OTP_SOURCE = "127.0.0.1"
PW_SOURCE = "127.0.0.2"
PERIOD = 30  # the products' default TOTP step


@dataclass(frozen=True)
class BenchUser:
    name: str
    secret: bytes
    password: bytes | None = None


def _b32(secret: bytes) -> str:
    import base64

    return base64.b32encode(secret).decode().rstrip("=")


class Server:
    def __init__(self, proc: subprocess.Popen[bytes], address: tuple[str, int], log_path: Path) -> None:
        self.proc = proc
        self.address = address
        self.log_path = log_path

    def worker_pids(self) -> list[int]:
        return children(self.proc.pid) or [self.proc.pid]

    def rss(self) -> dict[int, int]:
        """RSS in bytes of the supervisor and each worker (pid -> bytes)."""
        pids = [self.proc.pid, *children(self.proc.pid)]
        return {pid: rss_bytes(pid) for pid in pids}

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(pid) for pid in [self.proc.pid, *children(self.proc.pid)])


class OtpBench:
    def __init__(self, workdir: Path, *, secret: bytes = b"testing123", log_level: str = "info",
                 database: tuple[str, str] | None = None) -> None:
        """`database`: (URL, password) of a PostgreSQL store; without, a SQLite store in `workdir`."""
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.secret = secret
        self.log_level = log_level
        self.config_path = self.dir / "otp.toml"
        self.store_path = self.dir / "otp.sqlite"
        self.store_lines = f'path = "{self.store_path}"'
        if database is not None:
            url, password = database
            (self.dir / "db.password").write_text(password + "\n")
            (self.dir / "db.password").chmod(0o600)
            self.store_lines = f'url = "{url}"\npassword_file = "{self.dir / "db.password"}"'

    # -- installation -------------------------------------------------------------------------------------------------

    def write_config(self, *, workers: int, port: int, acct_port: int) -> None:
        self.config_path.write_text(f"""\
[store]
{self.store_lines}
key_file = "{self.dir / 'otp.key'}"

[radius]
listen = ["127.0.0.1:{port}"]
accounting_listen = ["127.0.0.1:{acct_port}"]
workers = {workers}

[[radius.clients]]
name = "otp"
address = "{OTP_SOURCE}/32"
secret = "{self.secret.decode()}"
first_factor = "none"

[[radius.clients]]
name = "pw"
address = "{PW_SOURCE}/32"
secret = "{self.secret.decode()}"
first_factor = "store"

[policy]
totp_window = 1
# Each wrong-code user gets one wrong code per wrong-code run (6 in a full run): below this, none is ever locked, so
# every run measures the whole verification and the failure counting, not the cheaper refusal of a locked user.
max_failures = 10
lockout_seconds = 300
# The wrong-code runs are floods of failures from one client on purpose: the per-client throttle would refuse the
# runs after them unevaluated. It is measured by bench/timing.py instead.
client_max_failures = 0
""")

    def admin(self, *args: str, stdin: bytes | None = None) -> float:
        """Run `otp-admin --config ... ARGS`; returns its wall time in seconds."""
        t = time.perf_counter()
        proc = subprocess.run([str(VENV_BIN / "otp-admin"), "--config", str(self.config_path), *args], input=stdin,
                              capture_output=True)
        elapsed = time.perf_counter() - t
        if proc.returncode != 0:
            raise RuntimeError(f"otp-admin {' '.join(args)} failed ({proc.returncode}): "
                               f"{proc.stderr.decode(errors='replace').strip()}")
        return elapsed

    def init(self) -> None:
        if not self.config_path.exists():
            self.write_config(workers=1, port=free_udp_port(), acct_port=free_udp_port())
        self.admin("init")

    def import_csv(self, users: Sequence[BenchUser], name: str) -> float:
        """`otp-admin import --format csv` of TOTP tokens (SHA1, 6 digits, 30 s); returns the wall time."""
        path = self.dir / f"{name}.csv"
        path.write_text("user,type,secret\n" + "".join(f"{u.name},totp,{_b32(u.secret)}\n" for u in users))
        return self.admin("import", "--format", "csv", str(path))

    def import_with_passwords(self, users: Sequence[BenchUser], name: str) -> float:
        """`otp-admin import --format oath-usersfile`: the format that carries a password (its PIN column), which
        the import hashes with argon2id. TOTP, 30 s, 6 digits. Returns the wall time."""
        path = self.dir / f"{name}.oath"
        lines = []
        for u in users:
            assert u.password and all(33 <= c < 127 for c in u.password)
            lines.append(f"HOTP/T{PERIOD}/6 {u.name} {u.password.decode()} {u.secret.hex()}\n")
        path.write_text("".join(lines))
        return self.admin("import", "--format", "oath-usersfile", str(path))

    # -- the server ---------------------------------------------------------------------------------------------------

    @contextmanager
    def server(self, *, workers: int, wait: float = 30.0) -> Iterator[Server]:
        port = free_udp_port()
        self.write_config(workers=workers, port=port, acct_port=free_udp_port())
        log_path = self.dir / f"otp-radiusd-w{workers}.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen([str(VENV_BIN / "otp-radiusd"), "--config", str(self.config_path),
                                     "--log-level", self.log_level], stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=log)
        server = Server(proc, ("127.0.0.1", port), log_path)
        try:
            deadline = time.monotonic() + wait
            while not _ready(server, workers, self.secret):
                if proc.poll() is not None:
                    raise RuntimeError(f"otp-radiusd exited ({proc.returncode}):\n{log_path.read_text()[-3000:]}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"otp-radiusd did not answer in {wait:.0f} s:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.1)
            yield server
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def _ready(server: Server, workers: int, secret: bytes) -> bool:
    if workers > 1 and len(children(server.proc.pid)) < workers:
        return False
    # Each worker has its own socket (SO_REUSEPORT spreads by source port): ask from several ports.
    return all(loadgen.status_server(server.address, secret) for _ in range(4 * workers))


class UserPool:
    """Hands out users for accept runs: a user is handed out at most once per TOTP step, so each of its requests
    carries a fresh code (a code already accepted would be a replay, and must be refused)."""

    def __init__(self, users: Sequence[BenchUser], period: int = PERIOD) -> None:
        self.users = list(users)
        self.period = period
        self._last_step = [-1] * len(self.users)
        self._next = 0

    def take(self, n: int, *, margin: float = 0.0) -> tuple[list[BenchUser], int]:
        """n users not yet used in the current step (waiting for the next step if need be); returns them and the
        step their codes are for. With `margin`, also waits when fewer than `margin` seconds are left in the step."""
        if n > len(self.users):
            raise ValueError(f"the pool has {len(self.users)} users, not {n}")
        while True:
            now = time.time()
            step = int(now // self.period)
            left = (step + 1) * self.period - now
            picked = []
            if left >= margin:
                for k in range(len(self.users)):
                    idx = (self._next + k) % len(self.users)
                    if self._last_step[idx] < step:
                        picked.append(idx)
                        if len(picked) == n:
                            break
            if len(picked) == n:
                for idx in picked:
                    self._last_step[idx] = step
                self._next = (picked[-1] + 1) % len(self.users)
                return [self.users[i] for i in picked], step
            time.sleep(left + 0.05)


def totp_code(user: BenchUser, step: int) -> str:
    from otpcore.oath import hotp

    return hotp(user.secret, step, 6, "SHA1")


def wrong_code(user: BenchUser, step: int, salt: int) -> str:
    """A code that none of the steps the server may try (step-2 .. step+2) produces."""
    near = {totp_code(user, s) for s in range(step - 2, step + 3)}
    k = salt
    while True:
        code = f"{(k * 7919 + 123457) % 1_000_000:06d}"
        if code not in near:
            return code
        k += 1
