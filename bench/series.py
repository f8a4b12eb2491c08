"""What the benchmark records of a scenario's runs (`Series`), how one run is measured (the CPU of the server, of the
database if any, and of the load generator per answered request), and the run's self-checks."""

from __future__ import annotations

import resource
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

from bench import loadgen
from bench.otpserver import Server
from bench.procstat import cpu_seconds

__all__ = ["CHECK_LINES", "FAILED", "Report", "Series", "check", "measure"]

CHECK_LINES: list[str] = []
FAILED: list[str] = []


@dataclass
class Series:
    """Repeated runs of one scenario."""

    name: str
    results: list[loadgen.Result] = field(default_factory=list)
    server_cpu: list[float] = field(default_factory=list)  # server CPU seconds per answered request
    gen_cpu: list[float] = field(default_factory=list)
    db_cpu: list[float] = field(default_factory=list)  # the database server's, for a PostgreSQL store

    @property
    def rate(self) -> float:
        return statistics.median(r.rate for r in self.results)

    def median(self, attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in self.results)

    def to_json(self) -> dict[str, object]:
        return {
            "rates": [round(r.rate, 1) for r in self.results], "median_rate": round(self.rate, 1),
            "p50_ms": round(self.median("p50") * 1e3, 3), "p99_ms": round(self.median("p99") * 1e3, 3),
            "max_ms": round(max(r.max for r in self.results) * 1e3, 3),
            "accept": sum(r.accepts for r in self.results), "reject": sum(r.rejects for r in self.results),
            "challenge": sum(r.challenges for r in self.results), "timeouts": sum(r.timeouts for r in self.results),
            "sent": sum(r.sent for r in self.results),
            "server_cpu_us_per_request":
                round(statistics.median(self.server_cpu) * 1e6, 1) if self.server_cpu else None,
            "loadgen_cpu_us_per_request":
                round(statistics.median(self.gen_cpu) * 1e6, 1) if self.gen_cpu else None,
            "database_cpu_us_per_request":
                round(statistics.median(self.db_cpu) * 1e6, 1) if self.db_cpu else None,
        }


class Report:
    def line(self, text: str) -> None:
        print(text, flush=True)


def measure(s: Series, go: Callable[[], loadgen.Result], server_pid: int | None, server: Server | None,
            database: Callable[[], float] | None = None) -> loadgen.Result:
    """One run of `go`, with the CPU seconds it cost the server (its processes, or `server_pid`), the database
    (`database()`: its processes' CPU seconds so far) and the load generator."""
    cpu0 = server.cpu_seconds() if server else cpu_seconds(server_pid)
    db0 = database() if database else 0.0
    g0 = resource.getrusage(resource.RUSAGE_SELF)
    result = go()
    g1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu1 = server.cpu_seconds() if server else cpu_seconds(server_pid)
    db1 = database() if database else 0.0
    s.results.append(result)
    if result.answered:
        s.server_cpu.append((cpu1 - cpu0) / result.answered)
        s.gen_cpu.append((g1.ru_utime + g1.ru_stime - g0.ru_utime - g0.ru_stime) / result.answered)
        if database:
            s.db_cpu.append((db1 - db0) / result.answered)
    print(f"  {s.name:42} {result.summary()}", flush=True)
    return result


def check(ok: bool, text: str) -> None:
    if not ok:
        FAILED.append(text)
    line = f"check {'ok  ' if ok else 'FAIL'} {text}"
    if not ok or not any(line == x for x in CHECK_LINES):
        CHECK_LINES.append(line)
