"""Private PostgreSQL clusters for tests.

Debian's own server binaries (/usr/lib/postgresql/<version>/bin: initdb, pg_ctl, pg_basebackup) run as the
`postgres` system user the package creates: PostgreSQL refuses to run as root, and the suite runs as root. A cluster
listens on 127.0.0.1 only, on a free port, without a Unix socket, and takes only scram-sha-256 passwords from
127.0.0.1. It has two roles: the superuser `postgres` (for the harness) and `otp`, the owner of the database `otp`
and of every database the tests create.

Clusters run with fsync off unless made `durable` (the failover test keeps it on): tests that do not test durability
start and write faster. A Sandbox owns its clusters: closing it stops them and removes their folder, whatever the
test did.

The sandbox folder is NOT under pytest's tmp_path: pytest resets /tmp/pytest-of-root to mode 0700 at the start of
every session, and the sessions of this machine share that folder, so `postgres` could lose its way in mid-test. It is
a `tempfile.mkdtemp` folder instead (in /tmp, which everyone may traverse) owned by `postgres`; closing the sandbox
copies the server logs into the test's tmp_path first, for the post-mortem.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from .ports import free_tcp_port
from .processes import alive, children, kill9

__all__ = [
    "APP_DB", "APP_ROLE", "OS_USER", "SUPERUSER", "Cluster", "Database", "PgBin", "PgKitError", "Sandbox",
    "run_as_postgres", "sandbox", "wait_until",
]

OS_USER = "postgres"  # the system user of Debian's package: runs every server and tool of the harness
SUPERUSER = "postgres"  # the bootstrap superuser role, for the harness itself
APP_ROLE = "otp"
APP_DB = "otp"
PG_LIB = Path("/usr/lib/postgresql")
TIMEOUT = 60  # seconds a start, stop or promotion may take on a loaded 2-core machine

Setting = str | int | bool


class PgKitError(RuntimeError):
    """The harness could not do what a test asked (a missing tool, a server that would not start): the test fails."""


@dataclass(frozen=True)
class PgBin:
    """Debian's server binaries: /usr/lib/postgresql/<version>/bin of the newest version installed."""

    folder: Path
    version: int

    @classmethod
    def find(cls, lib: Path = PG_LIB) -> PgBin:
        found = sorted((int(initdb.parents[1].name), initdb.parent) for initdb in lib.glob("*/bin/initdb")
                       if initdb.parents[1].name.isdigit())
        if not found:
            raise PgKitError(f"no PostgreSQL server under {lib}: install Debian's postgresql package "
                             "(./dev test does)")
        version, folder = found[-1]
        return cls(folder, version)

    def __call__(self, tool: str) -> str:
        path = self.folder / tool
        if not os.access(path, os.X_OK):
            raise PgKitError(f"{path} is missing: install Debian's postgresql package (./dev test does)")
        return str(path)


@dataclass(frozen=True)
class Database:
    """Where and as whom to connect. `url` carries no password, as a config file would; connect() passes it aside."""

    port: int
    dbname: str
    user: str
    password: str
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}"

    def connect(self, **options: Any) -> psycopg.Connection[Any]:
        options.setdefault("connect_timeout", 5)
        return psycopg.connect(self.url, password=self.password, **options)


def os_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(OS_USER)
    except KeyError:
        raise PgKitError(f"no {OS_USER!r} system user: Debian's postgresql package creates it "
                         "(./dev test installs it)") from None


def run_as_postgres(args: list[str], *, cwd: Path, env: Mapping[str, str] | None = None) -> str:
    """Runs a PostgreSQL tool as `postgres` with a clean environment (no PG* variables of the caller leak in)."""
    user = os_user()
    environment = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "HOME": str(cwd), **(env or {})}
    done = subprocess.run(args, cwd=cwd, env=environment, user=user.pw_uid, group=user.pw_gid, extra_groups=[],
                          capture_output=True, text=True, timeout=2 * TIMEOUT, check=False)
    if done.returncode != 0:
        output = (done.stderr or done.stdout).strip()
        raise PgKitError(f"{Path(args[0]).name} {args[1] if len(args) > 1 else ''} failed "
                         f"(exit {done.returncode}): {output}")
    return done.stdout


def wait_until(condition: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    """Polls a condition (an event to wait for, not a time to let pass); a timeout fails with what was awaited."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise PgKitError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def _conf_value(value: Setting) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int):
        return str(value)
    return "'" + value.replace("'", "''") + "'"


def base_settings(port: int, *, durable: bool) -> dict[str, Setting]:
    settings: dict[str, Setting] = {
        "listen_addresses": "127.0.0.1",
        "port": port,
        "unix_socket_directories": "",  # TCP only: no socket in a shared folder, no path-length limit
        "shared_buffers": "32MB",
        "dynamic_shared_memory_type": "mmap",  # segments in the data folder: nothing left in /dev/shm after kill -9
        "log_line_prefix": "%m [%p] %q%u@%d ",
    }
    if not durable:
        settings |= {"fsync": False, "full_page_writes": False}
    return settings


ACCESS_RULES = """\
# Written by tests/kit/postgres.py: passwords (scram-sha-256) from 127.0.0.1, nothing else.
# TYPE  DATABASE     USER  ADDRESS       METHOD
host    all          all   127.0.0.1/32  scram-sha-256
host    replication  all   127.0.0.1/32  scram-sha-256
"""


class Cluster:
    """One PostgreSQL server (a data folder, a port, a log), driven with pg_ctl as `postgres`."""

    def __init__(self, folder: Path, name: str, *, pg: PgBin, durable: bool = False,
                 passwords: tuple[str, str] | None = None) -> None:
        self.name = name
        self.folder = folder
        self.data = folder / name
        self.log = folder / f"{name}.log"
        self.pg = pg
        self.durable = durable
        self.port = free_tcp_port()
        # (superuser, app role): a standby shares its primary's, since it replicates the roles.
        self.superuser_password, self.app_password = passwords or (secrets.token_hex(16), secrets.token_hex(16))

    def __repr__(self) -> str:
        return f"<Cluster {self.name} port={self.port} running={self.running}>"

    @property
    def admin(self) -> Database:
        return Database(self.port, "postgres", SUPERUSER, self.superuser_password)

    @property
    def app(self) -> Database:
        return self.database(APP_DB)

    def database(self, dbname: str) -> Database:
        return Database(self.port, dbname, APP_ROLE, self.app_password)

    def initdb(self) -> None:
        password_file = self.folder / f"{self.name}.superuser-password"
        self._write_as_postgres(password_file, self.superuser_password + "\n")
        try:
            run_as_postgres([self.pg("initdb"), "-D", str(self.data), "-U", SUPERUSER, f"--pwfile={password_file}",
                             "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-instructions",
                             *([] if self.durable else ["--no-sync"])], cwd=self.folder)
        finally:
            password_file.unlink()
        self._write_as_postgres(self.data / "pg_hba.conf", ACCESS_RULES)
        self.configure(base_settings(self.port, durable=self.durable))

    def configure(self, settings: Mapping[str, Setting]) -> None:
        """Appends settings to postgresql.conf (the last line for a name wins); start() or reload() applies them."""
        lines = "".join(f"{name} = {_conf_value(value)}\n" for name, value in settings.items())
        conf = self.data / "postgresql.conf"
        with conf.open("a", encoding="utf-8") as out:
            out.write(f"\n# tests/kit/postgres.py\n{lines}")

    def start(self) -> None:
        try:
            self._pg_ctl("start", "-l", str(self.log))
        except PgKitError as error:
            raise PgKitError(f"{error}\n--- {self.log}, last lines ---\n{self.log_tail()}") from None

    def stop(self, mode: str = "fast") -> None:
        """A clean shutdown (`fast`: clients disconnected, a checkpoint); `immediate` skips the checkpoint."""
        self._pg_ctl("stop", "-m", mode)

    def reload(self) -> None:
        self._pg_ctl("reload")

    def promote(self) -> None:
        """Ends a standby's recovery; returns once it accepts writes."""
        self._pg_ctl("promote")

    def kill9(self) -> None:
        """SIGKILL to the postmaster and every backend at once, as if the machine lost power; a later start() runs
        crash recovery. The System V segment the dead server leaves is removed (nothing else would remove it)."""
        pid = self.pid
        if pid is None or not alive(pid):
            raise PgKitError(f"cluster {self.name} is not running")
        kill9(pid)
        lines = self._pid_file_lines()
        shmem = lines[6].split() if len(lines) > 6 else []  # "key id": the segment the dead postmaster held
        if len(shmem) == 2:
            subprocess.run(["ipcrm", "--shmem-id", shmem[1]], capture_output=True, check=False)

    @property
    def pid(self) -> int | None:
        """The postmaster's pid from postmaster.pid (which a killed server leaves behind)."""
        lines = self._pid_file_lines()
        return int(lines[0]) if lines else None

    @property
    def running(self) -> bool:
        pid = self.pid
        return pid is not None and alive(pid)

    def processes(self) -> list[int]:
        """The postmaster and its children (backends, WAL writer, ...), for tests that check they are gone."""
        pid = self.pid
        return [pid, *children(pid)] if pid is not None and alive(pid) else []

    def bootstrap(self) -> None:
        """The application role and its database."""
        with self.admin.connect(autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(APP_ROLE), sql.Literal(self.app_password)))
        self.create_database(APP_DB)

    def create_database(self, dbname: str) -> Database:
        with self.admin.connect(autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(dbname),
                                                                        sql.Identifier(APP_ROLE)))
        return self.database(dbname)

    def drop_database(self, dbname: str) -> None:
        with self.admin.connect(autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(dbname)))

    def log_tail(self, lines: int = 30) -> str:
        if not self.log.exists():
            return "(no log)"
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def discard(self) -> None:
        """Stops the server however it can (a test may have left it in any state)."""
        if not self.running:
            return
        try:
            self.stop("immediate")
        except PgKitError:
            self.kill9()

    def _pg_ctl(self, action: str, *args: str) -> None:
        run_as_postgres([self.pg("pg_ctl"), action, "-D", str(self.data), "-w", "-t", str(TIMEOUT), "-s", *args],
                        cwd=self.folder)

    def _pid_file_lines(self) -> list[str]:
        try:
            return (self.data / "postmaster.pid").read_text().splitlines()
        except FileNotFoundError:
            return []

    def _write_as_postgres(self, path: Path, text: str) -> None:
        path.write_text(text, encoding="utf-8")
        user = os_user()
        os.chown(path, user.pw_uid, user.pw_gid)
        path.chmod(0o600)


class Sandbox:
    """A folder owned by `postgres` that holds clusters; close() stops them all and removes it."""

    def __init__(self) -> None:
        self.pg = PgBin.find()
        user = os_user()
        self.folder = Path(tempfile.mkdtemp(prefix="otp-pg-"))
        os.chown(self.folder, user.pw_uid, user.pw_gid)
        self.clusters: list[Cluster] = []

    def cluster(self, name: str = "pg", *, durable: bool = False,
                settings: Mapping[str, Setting] | None = None) -> Cluster:
        """A new cluster, initialised, started, with the `otp` role and database."""
        cluster = self.add(Cluster(self.folder, name, pg=self.pg, durable=durable))
        cluster.initdb()
        if settings:
            cluster.configure(settings)
        cluster.start()
        cluster.bootstrap()
        return cluster

    def add(self, cluster: Cluster) -> Cluster:
        self.clusters.append(cluster)
        return cluster

    def close(self, keep_logs_in: Path | None = None) -> None:
        try:
            for cluster in self.clusters:
                cluster.discard()
        finally:
            if keep_logs_in is not None:
                for log in self.folder.glob("*.log"):
                    shutil.copyfile(log, keep_logs_in / log.name)
            shutil.rmtree(self.folder, ignore_errors=True)


@contextlib.contextmanager
def sandbox(keep_logs_in: Path | None = None) -> Iterator[Sandbox]:
    box = Sandbox()
    try:
        yield box
    finally:
        box.close(keep_logs_in)
