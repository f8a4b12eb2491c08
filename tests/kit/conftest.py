"""Fixtures of the kit's own tests."""

from tests.kit.pgfixtures import pg_cluster, pg_database, pg_private, pg_replicated, pg_sandbox  # noqa: F401
