"""Smoke test of the benchmark tooling: the load generator against FreeRADIUS, and `bench/run.py --quick`.

Small on purpose (a few seconds): it checks that the tools still work, not how fast anything is.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import freeradius, loadgen
from otpbase.radius import ACCESS_ACCEPT, ACCESS_REJECT
from otpbase.radius.access import decode_request
from tests.kit.ports import free_udp_port

BENCH = Path(freeradius.__file__).parent
pytestmark = pytest.mark.slow
SECRET = b"bench-secret"


def test_the_generators_requests_are_what_the_server_decodes():
    auth = bytes(range(16))
    for ident, password in enumerate((b"", b"x", b"0123456789abcdef", b"a" * 17, b"p\xffss" * 30)):
        packet = loadgen.access_request(ident, f"u{ident}", password, SECRET, authenticator=auth)
        request = decode_request(packet, SECRET, require_message_authenticator=True)
        assert (request.id, request.user, request.password, request.authenticator) == (ident, f"u{ident}", password,
                                                                                        auth)


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
                assert code == (ACCESS_ACCEPT if i % 50 % 5 else ACCESS_REJECT)


def test_loadgen_counts_timeouts():
    port = free_udp_port()  # nobody listens there
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
    postgres = scenarios["accept, PostgreSQL (workers=2)"]
    # /proc counts CPU time in 10 ms ticks: 200 requests may cost the database less than one
    assert postgres["accept"] == 200 and postgres["database_cpu_us_per_request"] >= 0
    assert figures["postgresql_ratio"] > 0
    assert all(c.startswith("check ok") for c in figures["checks"])
    assert figures["rss"]["workers_mb"]
    assert "accept path / FreeRADIUS" in proc.stdout
    assert "PostgreSQL accept path / SQLite accept path" in proc.stdout


def test_ldap_login_quick(tmp_path):
    out = tmp_path / "ldap.json"
    proc = subprocess.run([sys.executable, str(BENCH / "ldap_login.py"), "--requests", "3", "--fault-logins", "2",
                           "--json", str(out)], capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    figures = json.loads(out.read_text())
    assert set(figures["medians_ms"]) == {"store: password + code", "store: wrong password", "ldap: password + code",
                                          "ldap: wrong password", "none: the code alone"}
    assert figures["faults_s"]["both URLs down (unanswered, silent)"][1] >= 4.0  # every login waits 2 x 2 s
