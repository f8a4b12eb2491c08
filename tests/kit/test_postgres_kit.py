"""The PostgreSQL harness does what the suites will rely on: private clusters run by `postgres`, password-only access
from 127.0.0.1, fresh databases, a server that goes down and comes back, kill -9, clean removal whatever the test did,
and a synchronous standby that a multi-host URL fails over to with every acknowledged write."""

from __future__ import annotations

import pwd
import stat
import threading
from pathlib import Path

import psycopg
import pytest
from psycopg import errors

from tests.kit.postgres import APP_ROLE, Cluster, Database, PgBin, PgKitError, sandbox, wait_until
from tests.kit.processes import alive
from tests.kit.replication import STANDBY_NAME, ReplicatedPair


def _setting(database: Database, name: str) -> str:
    with database.connect() as conn:
        row = conn.execute(f"SHOW {name}").fetchone()
    assert row is not None
    return str(row[0])


def _sysv_segments() -> set[str]:
    lines = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
    return {line.split()[1] for line in lines}


def _owner(pid: int) -> int | None:
    try:
        return Path(f"/proc/{pid}").stat().st_uid
    except FileNotFoundError:
        return None


def test_cluster_runs_as_postgres_on_loopback_only(pg_cluster: Cluster) -> None:
    postgres = pwd.getpwnam("postgres")
    data = pg_cluster.data.stat()
    assert (data.st_uid, stat.S_IMODE(data.st_mode)) == (postgres.pw_uid, 0o700)
    processes = pg_cluster.processes()
    assert len(processes) > 1  # the postmaster and its background workers
    # (the session cluster is every suite's: a backend of another test may end between the listing and the stat)
    assert {_owner(pid) for pid in processes} - {None} == {postgres.pw_uid}
    assert _setting(pg_cluster.admin, "listen_addresses") == "127.0.0.1"
    assert _setting(pg_cluster.admin, "unix_socket_directories") == ""
    assert _setting(pg_cluster.admin, "fsync") == "off"
    with pg_cluster.admin.connect() as conn:
        rules = conn.execute("SELECT type, address, auth_method, error FROM pg_hba_file_rules").fetchall()
    assert rules == [("host", "127.0.0.1", "scram-sha-256", None)] * 2


def test_app_role_connects_with_its_password_only(pg_cluster: Cluster, pg_database: Database) -> None:
    assert pg_database.password not in pg_database.url
    with pg_database.connect() as conn:
        assert conn.execute("SELECT current_user, current_database()").fetchone() == (APP_ROLE, pg_database.dbname)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(pg_database.url, password="not-the-password", connect_timeout=5)
    with pg_cluster.admin.connect() as conn:
        stored = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (APP_ROLE,)).fetchone()
    assert stored is not None and stored[0].startswith("SCRAM-SHA-256$")


def test_each_database_starts_empty_and_apart(pg_cluster: Cluster, pg_database: Database) -> None:
    def tables(database: Database) -> list[tuple[str]]:
        with database.connect() as conn:
            return conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()

    assert tables(pg_database) == []
    with pg_database.connect() as conn:
        conn.execute("CREATE TABLE mine (x int)")
    other = pg_cluster.create_database("test_kit_other")
    try:
        assert (tables(pg_database), tables(other)) == ([("mine",)], [])
    finally:
        pg_cluster.drop_database(other.dbname)


def test_stop_then_start_keeps_rows_and_port(pg_private: Cluster) -> None:
    port = pg_private.port
    survivor = pg_private.app.connect()
    survivor.execute("CREATE TABLE kept (x int)")
    survivor.execute("INSERT INTO kept VALUES (1)")
    survivor.commit()
    pg_private.stop()
    assert not pg_private.running
    with pytest.raises(psycopg.OperationalError):  # an open connection learns of it at its next use
        survivor.execute("SELECT 1")
    survivor.close()
    with pytest.raises(psycopg.OperationalError, match="Connection refused"):
        pg_private.app.connect()
    pg_private.start()
    with pg_private.app.connect() as conn:
        assert conn.execute("SELECT x FROM kept").fetchall() == [(1,)]
    assert pg_private.port == port


def test_kill9_kills_every_process_and_start_recovers(pg_private: Cluster) -> None:
    with pg_private.app.connect() as conn:
        conn.execute("CREATE TABLE kept (x int)")
        conn.execute("INSERT INTO kept VALUES (1)")
    processes = pg_private.processes()
    segment = (pg_private.data / "postmaster.pid").read_text().splitlines()[6].split()[1]
    assert segment in _sysv_segments()
    pg_private.kill9()
    assert [pid for pid in processes if alive(pid)] == []
    assert segment not in _sysv_segments()  # nothing left behind in the kernel
    with pytest.raises(psycopg.OperationalError, match="Connection refused"):
        pg_private.app.connect()
    pg_private.start()
    assert "automatic recovery in progress" in pg_private.log.read_text()  # a crash, not a clean stop
    with pg_private.app.connect() as conn:
        assert conn.execute("SELECT x FROM kept").fetchall() == [(1,)]


def test_sandbox_stops_and_removes_its_clusters_when_the_test_fails(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="the test failed"), sandbox(keep_logs_in=tmp_path) as box:
        cluster = box.cluster("doomed")
        processes, folder = cluster.processes(), box.folder
        raise RuntimeError("the test failed")
    assert [pid for pid in processes if alive(pid)] == []
    assert not folder.exists()
    assert "database system is ready to accept connections" in (tmp_path / "doomed.log").read_text()


def test_missing_server_binaries_fail_the_test(tmp_path: Path) -> None:
    with pytest.raises(PgKitError, match="install Debian's postgresql package"):
        PgBin.find(tmp_path)
    with pytest.raises(PgKitError, match="is missing"):
        PgBin(tmp_path, 15)("initdb")


def test_a_commit_returns_only_once_the_standby_has_it(pg_replicated: ReplicatedPair) -> None:
    primary, standby = pg_replicated.primary, pg_replicated.standby
    assert (_setting(primary.admin, "synchronous_standby_names"), _setting(primary.admin, "synchronous_commit"),
            _setting(primary.admin, "fsync")) == (STANDBY_NAME, "on", "on")
    standby.stop()
    committed = threading.Event()

    def write() -> None:
        with primary.app.connect(application_name="waiting-writer") as conn:
            conn.execute("CREATE TABLE waited (x int)")
        committed.set()

    writer = threading.Thread(target=write)
    writer.start()
    with primary.admin.connect(autocommit=True) as conn:
        def waiting_for_the_standby() -> bool:
            return conn.execute("SELECT wait_event FROM pg_stat_activity WHERE application_name = 'waiting-writer'"
                                ).fetchone() == ("SyncRep",)

        wait_until(waiting_for_the_standby, "the writer's COMMIT to wait for the standby")
    assert not committed.is_set()
    standby.start()
    writer.join(timeout=60)
    assert committed.is_set()


def test_failover_to_the_promoted_standby_keeps_acknowledged_writes(pg_replicated: ReplicatedPair) -> None:
    primary, standby = pg_replicated.primary, pg_replicated.standby
    with pg_replicated.connect() as conn:
        assert conn.info.port == primary.port
        conn.execute("CREATE TABLE accepted (code text PRIMARY KEY)")
        conn.execute("INSERT INTO accepted VALUES ('111111')")
        conn.execute("SET synchronous_commit = remote_apply")  # this one visible on the standby once committed
        conn.commit()
    with standby.app.connect() as conn:
        assert conn.execute("SELECT pg_is_in_recovery(), code FROM accepted").fetchall() == [(True, "111111")]
        with pytest.raises(errors.ReadOnlySqlTransaction):
            conn.execute("INSERT INTO accepted VALUES ('999999')")
    with pg_replicated.connect() as conn:  # server default: synchronous_commit = on
        conn.execute("INSERT INTO accepted VALUES ('222222')")
    primary.kill9()
    with pytest.raises(psycopg.OperationalError):  # no server accepts writes until the standby is promoted
        pg_replicated.connect()
    standby.promote()
    with pg_replicated.connect() as conn:
        assert (conn.info.port, _setting(standby.admin, "synchronous_standby_names")) == (standby.port, "")
        assert conn.execute("SELECT code FROM accepted ORDER BY code").fetchall() == [("111111",), ("222222",)]
        with pytest.raises(errors.UniqueViolation):
            conn.execute("INSERT INTO accepted VALUES ('222222')")
        conn.rollback()
        conn.execute("INSERT INTO accepted VALUES ('333333')")  # the new primary takes writes
