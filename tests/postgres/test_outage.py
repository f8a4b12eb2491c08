"""The database stopped (cleanly, then by kill -9) and started again under load: while it is down otp-radiusd answers
no Access-Request (so the NAS fails over to another server), says so once per connection in its log and counts the
requests in `store_unavailable`; PAM in local mode returns PAM_AUTHINFO_UNAVAIL and otp-admin one line and exit 1.
Once the database is back, the same processes answer again by themselves, and no code was ever accepted twice."""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable

import pytest

from otpbase.radius import ACCESS_ACCEPT
from tests.hardening.helpers import NO_LIMITS, HotpUser, add_hotp_users, blast, code_requests
from tests.kit.config import Client
from tests.kit.pamservices import local_pam_service as pam_service
from tests.kit.pamtester import pamtester
from tests.kit.postgres import Cluster, wait_until

from .kit import PgServer, otp_admin

pytestmark = pytest.mark.slow

OTP = Client("otp", "127.0.0.1", first_factor="none")
USERS = 20
ATTEMPTS = 3


class Load:
    """Round after round, every user's current code ATTEMPTS times at once. A user's code moves on once a round
    answered it (an Accept, or only Rejects: a code whose commit's answer was lost with the connection is used up
    without an Accept, the safe way); a round without answers (the database down) tries the same code again."""

    def __init__(self, node: PgServer, users: list[HotpUser]) -> None:
        self.node = node
        self.users = users
        self.next = dict.fromkeys((u.name for u in users), 0)
        self.accepted: Counter[tuple[str, int]] = Counter()
        self.unanswered = 0
        self.answered = 0
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(60)
        assert not self.errors, self.errors

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                pairs = [(u, self.next[u.name]) for u in self.users for _ in range(ATTEMPTS)]
                replies = blast(self.node.address, code_requests([(u.name, u.code(k)) for u, k in pairs]),
                                timeout=1.5, retransmit=0.5)
                by_user: dict[str, list[int | None]] = {}
                for (u, k), reply in zip(pairs, replies, strict=True):
                    by_user.setdefault(u.name, []).append(None if reply is None else reply.code)
                    if reply is not None and reply.code == ACCESS_ACCEPT:
                        self.accepted[(u.name, k)] += 1
                for name, codes in by_user.items():
                    self.unanswered += codes.count(None)
                    self.answered += len(codes) - codes.count(None)
                    if any(c is not None for c in codes):
                        self.next[name] += 1
        except BaseException as exc:
            self.errors.append(exc)

    def wait_answers(self, more: int, timeout: float = 90) -> None:
        target = self.answered + more
        wait_until(lambda: self.answered >= target or bool(self.errors), f"{more} more answers", timeout)

    def wait_silence(self, more: int, timeout: float = 60) -> None:
        target = self.unanswered + more
        wait_until(lambda: self.unanswered >= target or bool(self.errors), f"{more} unanswered requests", timeout)


def _outage(load: Load, node: PgServer, cluster: Cluster, stop: Callable[[], None], user: HotpUser) -> None:
    load.wait_answers(2 * USERS * ATTEMPTS)
    accepted_before = sum(load.accepted.values())
    stop()
    load.wait_silence(2 * USERS * ATTEMPTS)
    with pam_service(node.config_path) as service:
        assert pamtester(service, user.name, [user.code(999)]).status == "PAM_AUTHINFO_UNAVAIL"
    refused = otp_admin(node.config_path, "token", "verify", user.name, user.code(999))
    assert refused.returncode == 1 and "cannot connect to the store postgresql://otp@127.0.0.1:" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    cluster.start()
    load.wait_answers(2 * USERS * ATTEMPTS)
    assert sum(load.accepted.values()) > accepted_before


def test_database_stopped_and_killed_then_back_under_load(make_node: Callable[..., PgServer],
                                                          pg_private: Cluster) -> None:
    node = make_node(pg_private.app, clients=[OTP], workers=2, policy=NO_LIMITS)
    users = add_hotp_users(node.config_path, [f"u{i}" for i in range(USERS)])
    pam_user = add_hotp_users(node.config_path, ["pamuser"])[0]
    node.start()
    pids = node.pids()
    with Load(node, users) as load:
        _outage(load, node, pg_private, pg_private.stop, pam_user)  # pg_ctl stop -m fast
        _outage(load, node, pg_private, pg_private.kill9, pam_user)  # as if the machine lost power
    assert node.pids() == pids  # the same processes: no restart

    doubles = {key: n for key, n in load.accepted.items() if n > 1}
    assert doubles == {}, f"codes accepted twice: {doubles}"
    log = node.log()
    counters = node.counters()
    print(f"outage: {load.answered} answered, {load.unanswered} unanswered, {sum(load.accepted.values())} accepted; "
          f"counters {counters}")
    assert counters["store_unavailable"] > 0  # every evaluation, retransmissions too, that the store cost
    # Logged when a connection finds the database gone and when it works again, not once per request: at most once
    # per outage and connection (two outages, two workers, two connections each).
    down = re.findall(r"store postgresql://\S+ unavailable: .*; requests get no answer until the store works again",
                      log)
    back = re.findall(r"store postgresql://\S+ works again", log)
    assert 2 * 2 <= len(down) <= 2 * 2 * 2 and 2 * 2 <= len(back) <= len(down), (len(down), len(back))
    assert counters["store_unavailable"] > len(down)
    with pam_service(node.config_path) as service:  # and PAM works again too
        assert pamtester(service, pam_user.name, [pam_user.code(0)]).status == "PAM_SUCCESS"
