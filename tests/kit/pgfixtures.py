"""pytest fixtures of the PostgreSQL harness, registered once for the whole suite (`pytest_plugins` in
tests/conftest.py): never import them into a conftest.py too, as a session fixture imported twice is two fixtures,
so two session clusters.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from .postgres import Cluster, Database, Sandbox, sandbox
from .replication import ReplicatedPair, start_replicated_pair

__all__ = ["pg_cluster", "pg_database", "pg_private", "pg_replicated", "pg_sandbox"]

_database_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def pg_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One cluster for the whole session (fsync off). Never stop or kill it: take pg_private for that."""
    with sandbox(keep_logs_in=tmp_path_factory.mktemp("postgres-session")) as box:
        yield box.cluster("session")


@pytest.fixture
def pg_database(pg_cluster: Cluster) -> Iterator[Database]:
    """A fresh, empty database on the session cluster, owned by the `otp` role; dropped after the test."""
    database = pg_cluster.create_database(f"test_{next(_database_numbers)}")
    yield database
    if not pg_cluster.running:
        pytest.fail("a test stopped the shared session cluster: tests that stop or kill a server use pg_private")
    pg_cluster.drop_database(database.dbname)


@pytest.fixture
def pg_sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    """Room for clusters of the test's own; all stopped and removed after it (logs kept in tmp_path)."""
    with sandbox(keep_logs_in=tmp_path) as box:
        yield box


@pytest.fixture
def pg_private(pg_sandbox: Sandbox) -> Cluster:
    """A cluster of the test's own (fsync off), for tests that stop(), start() or kill9() it."""
    return pg_sandbox.cluster("private")


@pytest.fixture
def pg_replicated(pg_sandbox: Sandbox) -> ReplicatedPair:
    """A durable primary (fsync on) with a synchronous streaming standby, for failover tests."""
    return start_replicated_pair(pg_sandbox, durable=True)
