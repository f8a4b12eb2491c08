"""A primary with one synchronous streaming standby, for failover tests (issue 16, failover without replay).

Why `synchronous_commit = on` (with `synchronous_standby_names` naming the standby) and not more or less:
- `on`: a COMMIT returns only once the standby has flushed the commit's WAL to its disk. `pg_ctl promote` ends
  recovery only after the standby has replayed all the WAL it holds, so every commit the primary acknowledged is
  on the promoted standby. This is what failover without replay needs.
- `remote_apply` waits, in addition, until the standby has replayed the commit, so that a read ON THE STANDBY sees
  it at once. Failover does not need it (promotion replays everything first); it costs one more wait per commit.
- `remote_write` waits only until the standby's OS has the WAL: it survives the primary's death, not the loss of
  both machines' memory. `local`/`off`, or no synchronous standby (asynchronous replication), lose the commits still
  in flight when the primary dies: a code accepted just before could be accepted again after the failover.
The standby's own synchronous_standby_names is empty: once promoted, it must not wait for a standby it does not have
(every commit would hang).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from .postgres import APP_DB, APP_ROLE, SUPERUSER, Cluster, Sandbox, run_as_postgres, wait_until

__all__ = ["STANDBY_NAME", "ReplicatedPair", "start_replicated_pair"]

STANDBY_NAME = "standby1"


@dataclass(frozen=True)
class ReplicatedPair:
    primary: Cluster
    standby: Cluster

    @property
    def url(self) -> str:
        """The libpq multi-host URL of the application database: whichever of the two accepts writes."""
        return (f"postgresql://{APP_ROLE}@127.0.0.1:{self.primary.port},127.0.0.1:{self.standby.port}/{APP_DB}"
                "?target_session_attrs=read-write")

    @property
    def password(self) -> str:
        return self.primary.app_password

    def connect(self, **options: Any) -> psycopg.Connection[Any]:
        options.setdefault("connect_timeout", 5)
        return psycopg.connect(self.url, password=self.password, **options)


def start_replicated_pair(box: Sandbox, *, durable: bool = True) -> ReplicatedPair:
    """A primary and a standby cloned from it with pg_basebackup, streaming, synchronous once this returns."""
    primary = box.cluster("primary", durable=durable, settings={"synchronous_commit": "on"})
    standby = box.add(Cluster(box.folder, "standby", pg=box.pg, durable=durable,
                              passwords=(primary.superuser_password, primary.app_password)))
    _clone(primary, standby)
    standby.start()
    _make_synchronous(primary)
    return ReplicatedPair(primary, standby)


def _clone(primary: Cluster, standby: Cluster) -> None:
    run_as_postgres([primary.pg("pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port),
                     "-U", SUPERUSER, "-D", str(standby.data), "--wal-method=stream", "--checkpoint=fast",
                     "--no-password", *([] if standby.durable else ["--no-sync"])],
                    cwd=standby.folder, env={"PGPASSWORD": primary.superuser_password})
    # The clone has the primary's postgresql.conf: these lines, appended, override it.
    conninfo = (f"host=127.0.0.1 port={primary.port} user={SUPERUSER} password={primary.superuser_password} "
                f"application_name={STANDBY_NAME}")
    standby.configure({"port": standby.port, "primary_conninfo": conninfo, "synchronous_standby_names": ""})
    signal_file = standby.data / "standby.signal"
    signal_file.touch()
    owner = standby.data.stat()
    os.chown(signal_file, owner.st_uid, owner.st_gid)


def _make_synchronous(primary: Cluster) -> None:
    """Names the standby synchronous only now: set before it streams, the bootstrap's own commits would hang."""
    with primary.admin.connect(autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER SYSTEM SET synchronous_standby_names = {}").format(sql.Literal(STANDBY_NAME)))
        conn.execute("SELECT pg_reload_conf()")

        def synchronous() -> bool:
            row = conn.execute("SELECT sync_state FROM pg_stat_replication WHERE application_name = %s"
                               " AND state = 'streaming'", (STANDBY_NAME,)).fetchone()
            return row is not None and row[0] == "sync"

        wait_until(synchronous, f"{STANDBY_NAME} to stream as a synchronous standby")
