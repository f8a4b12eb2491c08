"""Races on one store: three otp-radiusd workers and concurrent PAM local-mode logins (pamtester), every valid code
attempted many times at once. Every valid code is accepted exactly once, no counter or failure count is lost, and no
"database is locked" reaches anyone (no store errors, no PAM_AUTHINFO_UNAVAIL).

HOTP makes it deterministic: code k of a user stays valid until one attempt accepts it. Round k sends code k of every
user R times at once (distinct requests, from 32 source ports, so SO_REUSEPORT spreads them over the workers); the
next round starts when all are answered. PAM users get, per round, two pamtester logins and four RADIUS requests with
the same code. Who wins is arranged, not left to the machine's load: in the first rounds one door goes alone first
and must win, then the other must be refused; in the rest the RADIUS requests are sent at a random moment while the
pamtesters run, so either door may win (never both).
"""

from __future__ import annotations

import random
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable

import pytest

from otpbase.radius import ACCESS_ACCEPT, ACCESS_REJECT
from tests.kit.config import Client
from tests.kit.pamservices import local_pam_service
from tests.kit.pamtester import finish_pamtester, start_pamtester
from tests.kit.radius_client import Reply
from tests.kit.radiusd import RadiusServer
from tests.kit.tools import tool

from .helpers import HotpUser, Store, add_hotp_users, blast, code_requests, reject_reasons, wrong_codes

pytestmark = pytest.mark.slow

WORKERS = 3
RADIUS_USERS = 100
ROUNDS = 10  # codes per user
ATTEMPTS = 10  # concurrent attempts per code
PAM_USERS = 10  # each: ROUNDS rounds of 2 pamtester + 4 RADIUS attempts with the same code
PAM_PER_CODE = 2
RADIUS_PER_PAM_CODE = 4
# Rounds of each PAM user whose code one door must win: it goes alone, the other door follows with the same code.
# The other rounds are raced.
ARRANGED = {0: "pam", 1: "radius", 2: "pam", 3: "radius"}
WRONG_USERS = 20
WRONG_CODES = 25  # distinct wrong codes per wrong-code user, all at once: the failure count must reach exactly this


def test_valid_codes_accepted_exactly_once_across_workers_and_pam(make_server: Callable[..., RadiusServer]) -> None:
    srv = make_server(clients=[Client("otp", "127.0.0.1", first_factor="none")], workers=WORKERS,
                      policy={"max_failures": 1000, "lockout_seconds": 0, "hotp_lookahead": 10,
                              "client_max_failures": 0})
    radius_users = add_hotp_users(srv.config_path, [f"r{i}" for i in range(RADIUS_USERS)])
    pam_users = add_hotp_users(srv.config_path, [f"p{i}" for i in range(PAM_USERS)])
    wrong_users = add_hotp_users(srv.config_path, [f"w{i}" for i in range(WRONG_USERS)])
    srv.start()
    tool("pamtester")
    rng = random.Random(7)

    accepts: Counter[tuple[str, int]] = Counter()  # (user, k) -> accepts seen (RADIUS Accept or PAM_SUCCESS)
    radius_codes: Counter[int] = Counter()
    pam_statuses: Counter[str] = Counter()
    won_by: Counter[str] = Counter()
    winners: dict[tuple[str, int], list[str]] = {}  # PAM users' codes: the doors that accepted each
    unanswered: list[str] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def record(user: str, k: int, replies: list, door_accepts: int = 0) -> int:
        radius_accepts = 0
        for reply in replies:
            if reply is None:
                unanswered.append(f"{user}#{k}")
                continue
            radius_codes[reply.code] += 1
            radius_accepts += reply.code == ACCESS_ACCEPT
        accepts[(user, k)] += radius_accepts + door_accepts
        return radius_accepts

    def radius_attempts(user: str, code: str) -> list[Reply | None]:
        requests = code_requests([(user, code)] * RADIUS_PER_PAM_CODE, sockets=RADIUS_PER_PAM_CODE)
        return blast(srv.address, requests, sockets=RADIUS_PER_PAM_CODE)

    def pam_user_rounds(user: HotpUser, service: str) -> None:
        try:
            local = random.Random(user.name)
            for k in range(ROUNDS):
                code = user.code(k)
                first = ARRANGED.get(k)
                replies = radius_attempts(user.name, code) if first == "radius" else []
                procs = [start_pamtester(service, user.name, [code]) for _ in range(PAM_PER_CODE)]
                if first is None:
                    # A race: RADIUS joins in while the PAM logins start and verify (a pamtester takes 0.4-1.3 s on an
                    # idle machine while 20 of them start at once beside the RADIUS load).
                    time.sleep(local.uniform(0.0, 1.2))
                    replies = radius_attempts(user.name, code)
                statuses = [finish_pamtester(p).status for p in procs]
                if first == "pam":
                    replies = radius_attempts(user.name, code)
                with lock:
                    pam_statuses.update(statuses)
                    pam_wins = statuses.count("PAM_SUCCESS")
                    radius_wins = record(user.name, k, replies, pam_wins)
                    winners[(user.name, k)] = ["pam"] * pam_wins + ["radius"] * radius_wins
                    won_by.update(winners[(user.name, k)])
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    started = time.monotonic()
    with local_pam_service(srv.config_path) as service:
        pam_threads = [threading.Thread(target=pam_user_rounds, args=(u, service)) for u in pam_users]
        for t in pam_threads:
            t.start()

        # Failure counting under contention: distinct wrong codes, all at once, each exactly once.
        wrong_pairs = [(u.name, c) for u in wrong_users for c in wrong_codes(u, WRONG_CODES, rng)]
        rng.shuffle(wrong_pairs)
        wrong_replies = blast(srv.address, code_requests(wrong_pairs), timeout=60)

        # Valid codes, ATTEMPTS at once each, every user's round k together.
        for k in range(ROUNDS):
            pairs = [(u.name, u.code(k)) for u in radius_users for _ in range(ATTEMPTS)]
            order = list(range(len(pairs)))
            rng.shuffle(order)
            requests = code_requests([pairs[i] for i in order], start=k * len(pairs))
            replies = blast(srv.address, requests, timeout=60)
            per_user: dict[str, list] = {}
            for j, i in enumerate(order):
                per_user.setdefault(pairs[i][0], []).append(replies[j])
            with lock:
                for name, user_replies in per_user.items():
                    won_by.update(["radius"] * record(name, k, user_replies))
        radius_done = time.monotonic() - started
        for t in pam_threads:
            t.join(300)
    elapsed = time.monotonic() - started
    assert not errors, errors

    counters = srv.counters()
    log = srv.log()
    reasons = reject_reasons(log)
    validations = sum(radius_codes.values()) + len(wrong_replies) + sum(pam_statuses.values())
    print(f"race: {validations} validations ({sum(radius_codes.values()) + len(wrong_replies)} RADIUS over "
          f"{WORKERS} workers, {sum(pam_statuses.values())} PAM) in {elapsed:.1f} s (RADIUS part {radius_done:.1f} s); "
          f"codes {len(accepts)}, won by {dict(won_by)}, PAM {dict(pam_statuses)}, reasons {reasons}")

    # Every valid code accepted exactly once, whichever door and worker won.
    expected = {(u.name, k) for u in radius_users + pam_users for k in range(ROUNDS)}
    assert set(accepts) == expected
    doubles = {key: n for key, n in accepts.items() if n != 1}
    assert doubles == {}, f"codes not accepted exactly once: {doubles}"
    assert unanswered == [], f"{len(unanswered)} requests never answered: {unanswered[:10]}"
    assert all(r is not None and r.code == ACCESS_REJECT for r in wrong_replies)
    assert set(radius_codes) <= {ACCESS_ACCEPT, ACCESS_REJECT}

    # Nothing busy surfaced: no store errors, no PAM_AUTHINFO_UNAVAIL.
    assert set(pam_statuses) <= {"PAM_SUCCESS", "PAM_AUTH_ERR"}, pam_statuses
    assert counters["evaluate_errors"] == 0 and counters["errors"] == 0, counters
    assert not [k for k in reasons if k.startswith("error")], reasons
    assert "database is locked" not in log and "busy" not in log, [ln for ln in log.splitlines() if "busy" in ln]
    assert counters["overload"] == 0 and counters["overload_stale"] == 0, counters

    # The store lost nothing: every counter moved once per code, every failure was counted.
    with Store(srv.store_path) as store:
        counts = store.counters()
        failures = store.failures()
        audit = store.audit_counts()
        assert store.integrity() == "ok"
    for u in radius_users + pam_users:
        assert counts[u.name] == ROUNDS, (u.name, counts[u.name])
        # The repeats of each last code count as one failure (the same wrong code counts once).
        assert failures[u.name] == 1, (u.name, failures[u.name])
        accepted_rows = sum(n for (name, result, _), n in audit.items() if name == u.name and result == "accept")
        assert accepted_rows == ROUNDS
    for u in wrong_users:
        assert counts[u.name] == 0
        assert failures[u.name] == WRONG_CODES, (u.name, failures[u.name])
    # Each door won the codes arranged for it: the door that came second with the same code was refused.
    arranged = {(u.name, k): [door] for u in pam_users for k, door in ARRANGED.items()}
    assert {key: winners[key] for key in arranged} == arranged


def test_wrong_codes_never_collide_with_valid_ones() -> None:
    """The race's wrong codes are never valid ones (the failure-count oracle would be wrong otherwise)."""
    user = HotpUser("x", secrets.token_bytes(20))
    codes = wrong_codes(user, 200, random.Random(1))
    assert len(set(codes)) == 200 and not {user.code(c) for c in range(64)} & set(codes)
