"""Races across two otp-radiusd nodes (two workers each) sharing one PostgreSQL database, PAM logins in local mode and
`otp-admin token verify` on the same database: every valid code attempted many times at once, at both nodes. Every
code is accepted exactly once, no counter or failure count is lost, and no store error reaches anyone.

HOTP makes it deterministic (code k of a user stays valid until one attempt accepts it): round k sends code k of every
user ATTEMPTS times at once, half to each node. The PAM users' codes go, per round, to two pamtester logins, one
`otp-admin token verify` and four RADIUS requests (two per node). Who wins is arranged, not left to the machine's
load, as in tests/hardening/test_race.py: in the first rounds one door goes alone first and must win, then the
others must be refused; in the rest all start together and any one may win (never two).
"""

from __future__ import annotations

import random
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence

import pytest

from otpbase.radius import ACCESS_ACCEPT, ACCESS_REJECT
from tests.hardening.helpers import HotpUser, add_hotp_users, blast, code_requests, reject_reasons, wrong_codes
from tests.kit.config import Client
from tests.kit.pamservices import local_pam_service as pam_service
from tests.kit.postgres import Database
from tests.kit.radius_client import Reply
from tests.kit.tools import tool

from .kit import PgServer, PgState

pytestmark = pytest.mark.slow

RADIUS_USERS = 100
ROUNDS = 10  # codes per user
ATTEMPTS = 10  # concurrent attempts per code, half at each node: RADIUS_USERS * ROUNDS * ATTEMPTS = 10 000
PAM_USERS = 10
WRONG_USERS = 20
WRONG_CODES = 25  # distinct wrong codes per user, all at once over both nodes: the failure count must reach this
ARRANGED = {0: "pam", 1: "radius", 2: "admin", 3: "radius"}  # rounds whose winner goes alone, first
POLICY = {"max_failures": 1000, "lockout_seconds": 0, "hotp_lookahead": 10, "client_max_failures": 0}
OTP = Client("otp", "127.0.0.1", first_factor="none")


class Race:
    """The nodes, and what every door saw."""

    def __init__(self, nodes: tuple[PgServer, PgServer], pam: str) -> None:
        self.nodes = nodes
        self.pam = pam
        self.accepts: Counter[tuple[str, int]] = Counter()  # (user, k) -> accepts seen, whatever the door
        self.radius: Counter[int] = Counter()  # reply codes
        self.others: Counter[str] = Counter()  # PAM statuses and otp-admin outcomes
        self.winners: dict[tuple[str, int], list[str]] = {}
        self.unanswered = 0
        self.lock = threading.Lock()

    def send(self, pairs: Sequence[tuple[str, str]], start: int = 0) -> list[Reply | None]:
        """Each request to the nodes in turn (request i to node i % 2), both at once."""
        halves = [list(pairs[0::2]), list(pairs[1::2])]
        out: list[list[Reply | None]] = [[], []]

        def one(i: int) -> None:
            out[i] = blast(self.nodes[i].address, code_requests(halves[i], start=start), timeout=60)

        threads = [threading.Thread(target=one, args=(i,)) for i in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        replies: list[Reply | None] = [None] * len(pairs)
        replies[0::2], replies[1::2] = out[0], out[1]
        return replies

    def record(self, key: tuple[str, int], replies: Sequence[Reply | None], doors: Sequence[str] = ()) -> None:
        with self.lock:
            radius_wins = 0
            for reply in replies:
                if reply is None:
                    self.unanswered += 1
                    continue
                self.radius[reply.code] += 1
                radius_wins += reply.code == ACCESS_ACCEPT
            self.others.update(doors)
            won = [d.split(":")[0] for d in doors if d.endswith(":accept")] + ["radius"] * radius_wins
            self.accepts[key] += len(won)
            self.winners[key] = won


def _start(args: list[str], code: str) -> subprocess.Popen[str]:
    """A door's process, its code given at once (it reads it when it asks)."""
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdin is not None
    proc.stdin.write(code + "\n")
    proc.stdin.close()
    return proc


def _pam(service: str, user: str, code: str) -> subprocess.Popen[str]:
    return _start([tool("pamtester"), service, user, "authenticate"], code)


def _admin(config: str, user: str, code: str) -> subprocess.Popen[str]:
    return _start([tool("otp-admin"), "--config", config, "token", "verify", user, "-"], code)


def _outcome(door: str, proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    out = proc.stdout.read()
    proc.stdout.close()
    proc.wait(120)
    if door == "pam":
        accepted = "successfully authenticated" in out
        refused = "Authentication failure" in out
    else:
        accepted = proc.returncode == 0 and "code accepted" in out
        refused = proc.returncode == 1
    return f"{door}:{'accept' if accepted else 'reject' if refused else 'error ' + out.strip()[-200:]}"


def _pam_user_rounds(race: Race, user: HotpUser, admin_config: str, errors: list[BaseException]) -> None:
    try:
        local = random.Random(user.name)
        for k in range(ROUNDS):
            code = user.code(k)
            first = ARRANGED.get(k)
            doors: list[str] = []
            replies: list[Reply | None] = []
            if first == "radius":
                replies = race.send([(user.name, code)] * 4)
            if first == "admin":
                doors.append(_outcome("admin", _admin(admin_config, user.name, code)))
            pams = [_pam(race.pam, user.name, code) for _ in range(2)]
            admin = _admin(admin_config, user.name, code) if first in (None, "radius") else None
            if first is None:
                time.sleep(local.uniform(0.0, 1.2))  # RADIUS joins while the logins start and verify
                replies = race.send([(user.name, code)] * 4)
            doors += [_outcome("pam", p) for p in pams]
            if first == "pam":  # the others come after the winner
                admin = _admin(admin_config, user.name, code)
                replies = race.send([(user.name, code)] * 4)
            if admin is not None:
                doors.append(_outcome("admin", admin))
            race.record((user.name, k), replies, doors)
    except BaseException as exc:  # reported by the main thread
        errors.append(exc)


def test_codes_accepted_exactly_once_across_nodes_pam_and_admin(make_node: Callable[..., PgServer],
                                                                 pg_database: Database) -> None:
    a = make_node(pg_database, clients=[OTP], workers=2, policy=POLICY)
    b = make_node(pg_database, clients=[OTP], workers=2, policy=POLICY, key_from=a.key_path)
    radius_users = add_hotp_users(a.config_path, [f"r{i}" for i in range(RADIUS_USERS)])
    pam_users = add_hotp_users(b.config_path, [f"p{i}" for i in range(PAM_USERS)])
    wrong_users = add_hotp_users(a.config_path, [f"w{i}" for i in range(WRONG_USERS)])
    a.start()
    b.start()
    tool("pamtester")
    rng = random.Random(16)
    errors: list[BaseException] = []
    started = time.monotonic()
    with pam_service(a.config_path) as service:
        race = Race((a, b), service)
        threads = [threading.Thread(target=_pam_user_rounds, args=(race, u, str(b.config_path), errors))
                   for u in pam_users]
        for t in threads:
            t.start()
        wrong_pairs = [(u.name, c) for u in wrong_users for c in wrong_codes(u, WRONG_CODES, rng)]
        rng.shuffle(wrong_pairs)
        wrong_replies = race.send(wrong_pairs)
        for k in range(ROUNDS):
            pairs = [(u.name, u.code(k)) for u in radius_users for _ in range(ATTEMPTS)]
            rng.shuffle(pairs)
            replies = race.send(pairs, start=k * len(pairs))
            per_user: dict[str, list[Reply | None]] = {}
            for (name, _), reply in zip(pairs, replies, strict=True):
                per_user.setdefault(name, []).append(reply)
            for name, user_replies in per_user.items():
                race.record((name, k), user_replies)
        for t in threads:
            t.join(600)
    elapsed = time.monotonic() - started
    assert not errors, errors
    _check(race, (a, b), pg_database, radius_users + pam_users, wrong_users, wrong_replies, elapsed)


def _check(race: Race, nodes: tuple[PgServer, PgServer], database: Database, users: list[HotpUser],
           wrong_users: list[HotpUser], wrong_replies: list[Reply | None], elapsed: float) -> None:
    counters = [node.counters() for node in nodes]
    logs = "".join(node.log() for node in nodes)
    validations = sum(race.radius.values()) + race.unanswered + sum(race.others.values()) + len(wrong_replies)
    won = Counter(door for doors in race.winners.values() for door in doors)
    print(f"race over two nodes: {validations} validations in {elapsed:.1f} s; accepts per node "
          f"{[c['accept'] for c in counters]}; won by {dict(won)}; other doors {dict(race.others)}; "
          f"reasons {reject_reasons(logs)}")

    expected = {(u.name, k) for u in users for k in range(ROUNDS)}
    assert set(race.accepts) == expected
    assert {key: n for key, n in race.accepts.items() if n != 1} == {}, "codes not accepted exactly once"
    assert race.unanswered == 0
    assert all(r is not None and r.code == ACCESS_REJECT for r in wrong_replies)
    assert set(race.radius) <= {ACCESS_ACCEPT, ACCESS_REJECT}
    assert {outcome.split(":")[1] for outcome in race.others} <= {"accept", "reject"}, race.others
    for c in counters:
        assert c["evaluate_errors"] == 0 and c["store_unavailable"] == 0 and c["errors"] == 0, c
        assert c["accept"] > 0, c  # both nodes took part
    assert "StoreError" not in logs and "deadlock" not in logs, logs[-3000:]

    with PgState(database) as state:
        counts, failures, audit = state.counters(), state.failures(), state.audit_counts()
    for u in users:
        assert counts[u.name] == ROUNDS, (u.name, counts[u.name])
        assert failures[u.name] == 1, (u.name, failures[u.name])  # the repeats of the last code count once
        assert sum(n for (name, result, _), n in audit.items() if name == u.name and result == "accept") == ROUNDS
    for u in wrong_users:
        assert counts[u.name] == 0 and failures[u.name] == WRONG_CODES, (u.name, failures[u.name])
    arranged = {(f"p{i}", k): [door] for i in range(PAM_USERS) for k, door in ARRANGED.items()}
    assert {key: race.winners[key] for key in arranged} == arranged
