"""A private PostgreSQL server for the benchmark: Debian's binaries (the `postgresql` package, which ./dev bench
installs), run as the `postgres` system user (PostgreSQL refuses root) in a throw-away folder, on 127.0.0.1 and a
free port, password (scram-sha-256) only; stopped and removed at the end, whatever happened.

Its settings are PostgreSQL's defaults (fsync, synchronous_commit = on: every COMMIT waits for its WAL on disk, as a
production server does; the SQLite store, in WAL mode with synchronous = NORMAL, does not fsync at each commit) plus
a shared_buffers that holds the store. The bench does not import tests/ (tests/kit/postgres.py is the tests' twin).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from bench.procstat import children, cpu_seconds

__all__ = ["PrivatePostgres"]

PG_LIB = Path("/usr/lib/postgresql")


def _free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivatePostgres:
    """with PrivatePostgres() as pg: pg.url (role and database `otp`, no password in it), pg.password."""

    def __init__(self, *, shared_buffers: str = "256MB", settings: dict[str, str] | None = None) -> None:
        found = sorted(PG_LIB.glob("*/bin/initdb"), key=lambda p: int(p.parents[1].name))
        if not found:
            raise RuntimeError("no PostgreSQL server under /usr/lib/postgresql: apt-get install postgresql "
                               "(./dev bench does)")
        self.bin = found[-1].parent
        self.version = int(found[-1].parents[1].name)
        self.user = pwd.getpwnam("postgres")
        self.port = _free_tcp_port()
        self.password = secrets.token_hex(16)
        self.shared_buffers = shared_buffers
        self.settings = settings or {}  # more postgresql.conf lines (name -> value as written there)
        self.folder = Path(tempfile.mkdtemp(prefix="otp-bench-pg-"))
        self.data = self.folder / "data"

    @property
    def url(self) -> str:
        return f"postgresql://otp@127.0.0.1:{self.port}/otp"

    def __enter__(self) -> PrivatePostgres:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def _run(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run(args, cwd=self.folder, input=stdin, capture_output=True, text=True, timeout=120,
                              user=self.user.pw_uid, group=self.user.pw_gid, extra_groups=[],
                              env={"PATH": "/usr/bin:/bin", "LC_ALL": "C", "HOME": str(self.folder)})
        if done.returncode != 0:
            raise RuntimeError(f"{Path(args[0]).name} failed: {(done.stderr or done.stdout).strip()}")
        return done.stdout

    def _start(self) -> None:
        os.chown(self.folder, self.user.pw_uid, self.user.pw_gid)
        secret = self.folder / "pw"
        secret.write_text(self.password + "\n")
        os.chown(secret, self.user.pw_uid, self.user.pw_gid)
        # One role, `otp`, superuser of this throw-away server and owner of the database `otp`.
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "otp", f"--pwfile={secret}",
                  "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-instructions")
        secret.unlink()
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(f"\nlisten_addresses = '127.0.0.1'\nport = {self.port}\nunix_socket_directories = ''\n"
                       f"shared_buffers = '{self.shared_buffers}'\n"
                       + "".join(f"{name} = {value}\n" for name, value in self.settings.items()))
        (self.data / "pg_hba.conf").write_text("host all all 127.0.0.1/32 scram-sha-256\n")
        self._run(str(self.bin / "pg_ctl"), "start", "-D", str(self.data), "-w", "-l", str(self.folder / "log"))
        import psycopg  # the [postgres] extra, which ./dev bench installs

        error: Exception | None = None
        for _ in range(50):  # a server that has just started may refuse connections for a moment
            try:
                with psycopg.connect(host="127.0.0.1", port=self.port, user="otp", password=self.password,
                                     dbname="postgres", autocommit=True, connect_timeout=5) as conn:
                    conn.execute("CREATE DATABASE otp OWNER otp")
                return
            except psycopg.OperationalError as exc:
                error = exc
                time.sleep(0.1)
        raise RuntimeError(f"cannot create the database: {error}")

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server's processes alive now (the postmaster and its children)."""
        pid_file = self.data / "postmaster.pid"
        try:
            postmaster = int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return 0.0
        return sum(cpu_seconds(pid) for pid in [postmaster, *children(postmaster)])

    def close(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(RuntimeError, subprocess.SubprocessError):
                self._run(str(self.bin / "pg_ctl"), "stop", "-D", str(self.data), "-m", "immediate", "-w")
        shutil.rmtree(self.folder, ignore_errors=True)
