"""In-process fuzzing of request parsing and the worker's handling with the real verifier (fuzz_harness.py):

- atheris (coverage-guided, libFuzzer), 20 s in CI: `python -m tests.hardening.atheris_fuzz` in a subprocess; any
  exception or oracle failure is a crash and fails the test. Longer: `-max_total_time=600`.
- hypothesis, 3 000 inputs of up to four packets each, steered by `target()` toward requests that get deeper
  (evaluated, challenged, accepted); plus properties of decode_request alone on arbitrary bytes.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, target
from hypothesis import strategies as st

from otpbase.radius import (
    ACCESS_REJECT,
    ACCESS_REQUEST,
    BAD_AUTHENTICATOR,
    MALFORMED,
    MISSING_MESSAGE_AUTHENTICATOR,
    UNSUPPORTED_CODE,
    Drop,
)
from otpbase.radius.access import decode_request

from .fuzz_harness import Harness

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ATHERIS_SECONDS = 20
HYPOTHESIS_INPUTS = 3000


class DataChooser:
    def __init__(self, data: st.DataObject) -> None:
        self.data = data

    def int(self, low: int, high: int) -> int:
        return self.data.draw(st.integers(low, high))

    def bytes(self, max_size: int) -> bytes:
        return self.data.draw(st.binary(max_size=max_size))


def test_hypothesis_worker_and_verifier(tmp_path: Path) -> None:
    harness = Harness(tmp_path / "store")

    @settings(max_examples=HYPOTHESIS_INPUTS, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def one(data: st.DataObject) -> None:
        target(float(harness.run(DataChooser(data))), label="depth")

    try:
        one()
    finally:
        harness.close()
    s = harness.stats
    print(f"hypothesis: {s.packets} packets, replies {s.replies}, accepts {s.accepts}, challenges {s.challenges}")
    assert s.packets >= HYPOTHESIS_INPUTS
    assert s.replies.get(ACCESS_REJECT, 0) > 0 and s.accepts > 0  # the search reached the core both ways


@settings(max_examples=2000, deadline=None, database=None, derandomize=True)
@given(data=st.binary(min_size=0, max_size=4200), require=st.booleans())
def test_decode_request_only_returns_or_drops(data: bytes, require: bool) -> None:
    try:
        request = decode_request(data, b"secret", require_message_authenticator=require)
    except Drop as drop:
        assert drop.reason in (MALFORMED, BAD_AUTHENTICATOR, MISSING_MESSAGE_AUTHENTICATOR,
                               UNSUPPORTED_CODE)
        return
    # Random bytes that decode are requests without a Message-Authenticator (the only ones a forger can make).
    assert not require and request.code == ACCESS_REQUEST
    assert request.user and (request.password is None or len(request.password) <= 128)


def test_atheris_coverage_guided(tmp_path: Path) -> None:
    stats = tmp_path / "stats.json"
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "tests.hardening.atheris_fuzz", f"-max_total_time={ATHERIS_SECONDS}", "-seed=1",
         "-timeout=30", f"-artifact_prefix={tmp_path}/", "-print_final_stats=1", str(corpus)],
        cwd=ROOT, env={**os.environ, "OTP_FUZZ_STATS": str(stats)}, capture_output=True, text=True,
        timeout=ATHERIS_SECONDS + 120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    done = re.search(r"#(\d+)\s+DONE\s+cov: (\d+) ft: (\d+) corp: (\d+)", out)
    assert done, out[-3000:]
    runs, cov, features, corp = map(int, done.groups())
    figures = json.loads(stats.read_text())
    print(f"atheris: {runs} inputs, {figures['packets']} packets, coverage {cov} edges / {features} features, "
          f"corpus {corp}; replies {figures['replies']}, accepts {figures['accepts']}, challenges "
          f"{figures['challenges']}")
    assert runs > 10_000 and figures["accepts"] > 0
