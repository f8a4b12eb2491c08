"""Suite-wide rules and fixtures.

A skipped test is a failed test: CI must never go green on tests that did not run.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable

import pytest

# The PostgreSQL harness's fixtures (pg_cluster, pg_database, ...), registered once for every suite.
pytest_plugins = ["tests.kit.pgfixtures"]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    skipped = terminalreporter.stats.get("skipped", [])
    if skipped:
        terminalreporter.write_line(f"{len(skipped)} test(s) skipped: a skipped test is not a test, failing the run",
                                    red=True)


def pytest_sessionfinish(session: pytest.Session) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and reporter.stats.get("skipped") and session.exitstatus == 0:
        session.exitstatus = 1


@pytest.fixture(scope="session")
def require_tool() -> Callable[[str], str]:
    """Returns the path of a system tool the test drives; a missing tool fails the test (it never skips)."""

    def find(name: str) -> str:
        path = shutil.which(name)
        if path is None:
            pytest.fail(f"required tool {name!r} is not installed (./dev test installs it)")
        return path

    return find
