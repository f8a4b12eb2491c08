"""What serialises servers on PostgreSQL, where no database-wide write lock exists: a verification's read of its user
locks the row until its COMMIT (the other server waits, then decides on the committed state); groups lock their users
in id order (no deadlock whatever the order of their requests); a State is taken once; the client throttle and an
accounting session's requests count exactly under concurrency; servers creating the schema at once create it once."""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from otpcore.config import StoreConfig
from otpcore.store import SCHEMA_VERSION, ChallengeRow, SessionEvent, SessionWrite, open_store
from otpcore.store.postgres.backend import PostgresStore
from tests.kit.postgres import Database, wait_until

THREADS = 4


def _config(tmp_path: Path, database: Database) -> StoreConfig:
    password = tmp_path / "db.password"
    password.write_text(database.password)
    return StoreConfig(url=database.url, password_file=password, key_file=tmp_path / "otp.key")


def _run_all(work: Callable[[int], Any]) -> list[Any]:
    """work(i) in THREADS threads at once; their results (an exception fails the test)."""
    results: list[Any] = [None] * THREADS
    errors: list[BaseException] = []
    barrier = threading.Barrier(THREADS)

    def run(i: int) -> None:
        try:
            barrier.wait(30)
            results[i] = work(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    return results


def test_a_verification_waits_for_the_one_holding_the_user(tmp_path: Path, pg_database: Database) -> None:
    config = _config(tmp_path, pg_database)
    first, second = open_store(config, create=True), open_store(config)
    user = first.add_user("alice", email=None, phone=None, password_hash=None, now=0.0)
    seen: list[int] = []

    def other() -> None:
        with second.transaction():
            row, _ = second.user_with_tokens("alice")
            assert row is not None
            seen.append(row.failures)

    with first.transaction():
        first.user_with_tokens("alice")
        thread = threading.Thread(target=other)
        thread.start()
        with pg_database.connect(autocommit=True) as watch:  # the other server is waiting for alice's row
            wait_until(lambda: watch.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND "
                                             "wait_event_type = 'Lock'", (pg_database.dbname,)).fetchone() == (1,),
                       "the second transaction to wait for the row lock")
        from otpcore.policy import FailureState

        first.set_failure_state(user, FailureState(1, b"x", None, 0))
        assert seen == []
    thread.join(30)
    assert seen == [1]  # it decided on the committed state, not on what it would have read before
    first.close()
    second.close()


def test_groups_lock_their_users_in_one_order(tmp_path: Path, pg_database: Database) -> None:
    config = _config(tmp_path, pg_database)
    setup = open_store(config, create=True)
    names = [f"u{i:02d}" for i in range(40)]
    for name in names:
        setup.add_token(setup.add_user(name, email=None, phone=None, password_hash=None, now=0.0), {"type": "hotp"},
                        0.0)
    setup.close()
    stores = [open_store(config) for _ in range(THREADS)]

    def groups(i: int) -> None:
        order = names if i % 2 else names[::-1]  # requests in opposite orders
        for _ in range(10):
            with stores[i].transaction():
                stores[i].prefetch(order)
                for name in order:  # as a verification does: decide on what was read under the lock
                    _, (token,) = stores[i].user_with_tokens(name)
                    assert stores[i].advance_hotp(token.id, expected=token.counter, new_counter=token.counter + 1)

    try:
        _run_all(groups)  # no deadlock detected, no compare-and-set lost
    finally:
        for store in stores:
            store.close()
    with contextlib.closing(open_store(config)) as store:
        assert {t.counter for t in store.tokens()} == {THREADS * 10}  # every group moved every counter once


def test_a_state_is_taken_once_and_the_throttle_counts_every_failure(tmp_path: Path, pg_database: Database) -> None:
    config = _config(tmp_path, pg_database)
    stores = [open_store(config, create=True) for _ in range(THREADS)]
    user = stores[0].add_user("alice", email=None, phone=None, password_hash=None, now=0.0)
    stores[0].add_challenge(ChallengeRow(b"state", user, "vpn", None, 0.0, 100.0, None, 0))

    def take(i: int) -> bool:
        with stores[i].transaction():
            return stores[i].take_challenge(b"state") is not None

    def fail(i: int) -> None:
        for _ in range(50):
            with stores[i].transaction():
                stores[i].count_throttle_failure("radius:vpn", now=1000.0, rate=1.0)

    def start(i: int) -> SessionWrite:
        return stores[i].session_start(SessionEvent("vpn", "s1", 100.0, user="alice"))

    try:
        assert sorted(_run_all(take)) == [False] * (THREADS - 1) + [True]
        _run_all(fail)
        assert stores[0].throttle("radius:vpn").level == THREADS * 50
        assert Counter(_run_all(start)) == {SessionWrite.RECORDED: 1, SessionWrite.REPEATED: THREADS - 1}
        assert len(stores[0].sessions()) == 1
    finally:
        for store in stores:
            store.close()


def test_servers_creating_the_schema_at_once_create_it_once(tmp_path: Path, pg_database: Database) -> None:
    config = _config(tmp_path, pg_database)
    opened = _run_all(lambda i: open_store(config, create=True))
    try:
        assert all(isinstance(s, PostgresStore) and s.schema_version() == SCHEMA_VERSION for s in opened)
        opened[0].add_user("alice", email=None, phone=None, password_hash=None, now=0.0)
        assert [u.name for u in opened[1].users()] == ["alice"]
    finally:
        for store in opened:
            store.close()
