"""Suite-wide rules, and the kit's fixtures registered once (a session fixture imported into two conftests would be
two fixtures, so two sessions' worth of servers).

A skipped test is a failed test: CI must never go green on tests that did not run.
"""

from __future__ import annotations

import pytest

# The shared kit's fixtures and the PostgreSQL harness's (pg_cluster, pg_database, ...), registered once for every
# suite.
pytest_plugins = ["tests.kit.fixtures", "tests.kit.pgfixtures"]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    skipped = terminalreporter.stats.get("skipped", [])
    if skipped:
        terminalreporter.write_line(f"{len(skipped)} test(s) skipped: a skipped test is not a test, failing the run",
                                    red=True)


def pytest_sessionfinish(session: pytest.Session) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and reporter.stats.get("skipped") and session.exitstatus == 0:
        session.exitstatus = 1

