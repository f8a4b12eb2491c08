"""What one run of the load generator (bench/loadgen.py) measured: throughput, latency percentiles, reply codes."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from otpbase.radius import ACCESS_ACCEPT, ACCESS_CHALLENGE, ACCESS_REJECT

__all__ = ["Result"]

@dataclass
class Result:
    sent: int
    elapsed: float  # first send to last reply (or last timeout)
    latencies: list[float] = field(repr=False)  # seconds, answered requests only, in arrival order
    codes: bytearray = field(repr=False)  # per request: reply code, 0 when unanswered (timed out or never sent)
    timeouts: int = 0
    strays: int = 0  # replies for no request in flight (should stay 0)
    late_sends: int = 0  # open loop: requests sent more than 1 ms after their due time
    max_lag: float = 0.0  # open loop: the worst such delay (s)
    replies: dict[int, bytes] = field(default_factory=dict, repr=False)  # with keep_replies: request index -> bytes

    def count(self, code: int) -> int:
        return self.codes.count(code)

    @property
    def answered(self) -> int:
        return len(self.latencies)

    @property
    def accepts(self) -> int:
        return self.count(ACCESS_ACCEPT)

    @property
    def rejects(self) -> int:
        return self.count(ACCESS_REJECT)

    @property
    def challenges(self) -> int:
        return self.count(ACCESS_CHALLENGE)

    @property
    def rate(self) -> float:
        """Answered requests per second."""
        return self.answered / self.elapsed if self.elapsed > 0 else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return math.nan
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]

    @property
    def p50(self) -> float:
        return self.percentile(50)

    @property
    def p99(self) -> float:
        return self.percentile(99)

    @property
    def max(self) -> float:
        return max(self.latencies) if self.latencies else math.nan

    def summary(self) -> str:
        other = self.answered - self.accepts - self.rejects - self.challenges
        text = (f"{self.rate:8.0f} req/s  sent {self.sent} in {self.elapsed:.2f}s  accept {self.accepts} "
                f"reject {self.rejects} challenge {self.challenges} other {other} timeout {self.timeouts}  "
                f"p50 {self.p50 * 1e3:.2f} ms p99 {self.p99 * 1e3:.2f} ms max {self.max * 1e3:.2f} ms")
        if self.strays:
            text += f"  strays {self.strays}"
        if self.late_sends:
            text += f"  late sends {self.late_sends} (worst {self.max_lag * 1e3:.1f} ms)"
        return text
