"""Smoke test of the benchmark tooling: the load generator against FreeRADIUS, and `bench/run.py --quick`.

Small on purpose (a few seconds): it checks that the tools still work, not how fast anything is.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import freeradius  # noqa: E402
import loadgen  # noqa: E402

pytestmark = pytest.mark.slow
SECRET = b"bench-secret"


def test_pap_hiding_round_trips_with_the_servers_decoder():
    from radiusd.wire import pap_decrypt

    auth = bytes(range(16))
    for password in (b"", b"x", b"0123456789abcdef", b"a" * 17, b"p\xffss" * 30):
        assert pap_decrypt(loadgen.pap_hide(password, SECRET, auth), SECRET, auth) == password


def test_loadgen_against_freeradius():
    users = [(f"u{i}", f"pw{i}") for i in range(50)]
    with freeradius.FreeRadius(users, secret=SECRET) as fr:
        creds = [(name, (pw if i % 5 else "wrong").encode()) for i, (name, pw) in enumerate(users * 20)]
        requests = loadgen.build_requests(creds, SECRET)
        # Closed loop over more than one socket (window > 256) and open loop at a fixed rate.
        for result in (loadgen.run(requests, fr.address, window=300, keep_replies=True),
                       loadgen.run(requests, fr.address, rate=2000, keep_replies=True)):
            assert result.sent == len(requests) and result.timeouts == 0 and result.strays == 0
            assert result.accepts == 800 and result.rejects == 200
            assert all(loadgen.reply_authentic(result.replies[i], requests[i], SECRET) for i in range(len(requests)))
            assert 0 < result.p50 <= result.p99 <= result.max
            for i, code in enumerate(result.codes):
                assert code == (loadgen.ACCEPT if i % 50 % 5 else loadgen.REJECT)


def test_loadgen_counts_timeouts():
    port = freeradius.free_udp_port()  # nobody listens there
    requests = loadgen.build_requests([("u", b"p")] * 5, SECRET)
    result = loadgen.run(requests, ("127.0.0.1", port), window=2, timeout=0.2)
    assert result.timeouts == 5 and result.answered == 0


def test_run_quick(tmp_path):
    out = tmp_path / "figures.json"
    proc = subprocess.run([sys.executable, str(BENCH / "run.py"), "--quick", "--workdir", str(tmp_path / "w"),
                           "--json", str(out)], capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    figures = json.loads(out.read_text())
    assert figures["freeradius"]["median_rate"] > 0
    assert figures["accept_ratio"] > 0
    scenarios = figures["scenarios"]
    assert scenarios["accept (workers=2)"]["accept"] == 200
    assert scenarios["wrong code (workers=2)"]["reject"] == 200
    assert scenarios["password+code, argon2id (workers=2)"]["accept"] == 4
    assert all(c.startswith("check ok") for c in figures["checks"])
    assert figures["rss"]["workers_mb"]
    assert "accept path / FreeRADIUS" in proc.stdout
