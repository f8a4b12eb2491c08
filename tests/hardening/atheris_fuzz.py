"""Coverage-guided fuzzing (atheris, libFuzzer) of request parsing and the worker's handling: see fuzz_harness.py.

    .venv/bin/python -m tests.hardening.atheris_fuzz -max_total_time=600 [-seed=N] [CORPUS_DIR ...]

radiusd, otpcore and pyrad are instrumented; any exception or oracle failure is a crash (libFuzzer saves the input
under -artifact_prefix and exits non-zero). With OTP_FUZZ_STATS=FILE, the harness's figures (packets, replies,
accepts) are written there as JSON every 500 inputs.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["radiusd", "otpcore", "pyrad"]):
    from tests.hardening.fuzz_harness import Harness


class FdpChooser:
    def __init__(self, fdp: atheris.FuzzedDataProvider) -> None:
        self.fdp = fdp

    def int(self, low: int, high: int) -> int:
        return int(self.fdp.ConsumeIntInRange(low, high))

    def bytes(self, max_size: int) -> bytes:
        return bytes(self.fdp.ConsumeBytes(self.fdp.ConsumeIntInRange(0, max_size)))


def main() -> None:
    harness = Harness(Path(tempfile.mkdtemp(prefix="otp-atheris-")))
    stats_path = os.environ.get("OTP_FUZZ_STATS")
    inputs = 0

    def one_input(data: bytes) -> None:
        nonlocal inputs
        harness.run(FdpChooser(atheris.FuzzedDataProvider(data)))
        inputs += 1
        if stats_path and inputs % 500 == 0:  # libFuzzer ends the process with exit(): no atexit, so as we go
            s = harness.stats
            Path(stats_path).write_text(json.dumps({
                "inputs": inputs, "packets": s.packets, "replies": s.replies, "accepts": s.accepts,
                "challenges": s.challenges, "alice_counter": harness.counter}))

    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
