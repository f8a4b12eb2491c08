"""The network fuzz, CI size: 100 000 hostile packets of every family in hostile.py against a running otp-radiusd.

Zero crashes (the process lives, no error counter moved, no traceback in its log), zero accepts (no hostile packet
got an Access-Accept; carol's counter and failure-free users untouched), memory flat, and valid requests answered
throughout (Status-Server every 400 packets, a real password+code login every 5 000). The same run with 1 000 000
packets: python -m tests.hardening.long_fuzz.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from otpbase.radius import (
    ACCESS_CHALLENGE,
    ACCESS_REJECT,
    BAD_AUTHENTICATOR,
    MALFORMED,
    MISSING_MESSAGE_AUTHENTICATOR,
    UNSUPPORTED_CODE,
)

from .helpers import Store, reject_reasons
from .hostile import FAMILIES, prepare_target, run_fuzz

pytestmark = pytest.mark.slow

PACKETS = 100_000


def test_network_fuzz(tmp_path: Path) -> None:
    target = prepare_target(tmp_path)
    srv = target.server.start()
    try:
        report = run_fuzz(target, PACKETS)
        print(f"fuzz: {report.summary()}")
        counters = srv.counters()
        print(f"fuzz counters: {counters}")
        assert srv.proc is not None and srv.proc.poll() is None, "otp-radiusd died"
    finally:
        rc = srv.stop()
    log = srv.log()
    assert rc == 0, log[-3000:]

    assert report.packets == PACKETS
    assert set(report.families) == set(FAMILIES)
    assert report.families["pap_lengths"] >= 261  # User-Password of every length 0..260 went out at least once
    # Zero accepts, zero crashes.
    assert report.accepted == [], f"{len(report.accepted)} hostile packets accepted"
    # Challenges: an empty User-Password from a first_factor "none" client gets the same (decoy) challenge for
    # every user name, so that the answer tells nobody who has e-mail/SMS tokens.
    assert set(report.replies) <= {ACCESS_REJECT, ACCESS_CHALLENGE}, report.replies
    assert counters["errors"] == 0 and counters["evaluate_errors"] == 0, counters
    assert "Traceback" not in log and "unexpected error" not in log
    assert counters["received"] >= PACKETS  # none lost before the server saw it
    assert counters[MISSING_MESSAGE_AUTHENTICATOR] > 0 and counters[BAD_AUTHENTICATOR] > 0
    assert counters[MALFORMED] > 0 and counters["unknown_client"] > 0 and counters[UNSUPPORTED_CODE] > 0
    # Valid requests were answered during the fuzz.
    assert report.control_failures == [], report.control_failures
    assert report.control_logins == PACKETS // 5000 + 2
    assert counters["accept"] == report.control_logins  # dave's logins, nothing else
    # The store: carol never moved, only dave's code counter did.
    with Store(target.server.store_path) as store:
        counts = store.counters()
        assert store.integrity() == "ok"
    assert counts["carol"] == 0 and counts["dave"] == report.control_logins
    accepts = {k: v for k, v in reject_reasons(log).items() if k.startswith("accept")}
    assert accepts == {"accept:ok": report.control_logins}
    # Memory flat: after the first 10 000 packets RSS grows by no more than the duplicate cache explains (the
    # replies of the last 30 s, ~0.5 KiB each; it stops growing once 30 s have passed: see long_fuzz.py)
    # plus 4 MiB of allocator noise.
    rss = [r for n, _, r in report.rss_kib if n >= 10_000]
    assert max(rss) - rss[0] < 4096 + counters["cached_replies"] // 2, (report.rss_kib, counters["cached_replies"])
