"""Failover without replay: a primary with a synchronous standby (synchronous_commit = on, the standby named in
synchronous_standby_names: tests/kit/replication.py). Codes are accepted, the primary is killed with SIGKILL right
after the Accepts left, the standby is promoted, and the same codes are refused, by RADIUS, PAM and otp-admin,
through the multi-host URL that now leads to the new primary; the next codes are accepted there.

What makes it so is that no Accept leaves before the standby has the write: with the standby frozen (SIGSTOP), a
valid code gets no answer at all (its COMMIT waits for the standby), and once the primary is killed meanwhile that
code is never accepted twice: on the new primary it is accepted once, or refused as used up (the commit, made on the
old primary, reached the standby without its answer reaching anyone).

Why asynchronous replication would not do: the standby may lack the last commits the primary acknowledged, so codes
accepted just before the failover would be accepted again after it (the README says so)."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterator

import pytest

from otpbase.radius import ACCESS_ACCEPT, ACCESS_REJECT
from tests.hardening.helpers import NO_LIMITS, add_hotp_users, blast, code_requests
from tests.kit.config import Client
from tests.kit.pamservices import local_pam_service as pam_service
from tests.kit.pamtester import pamtester
from tests.kit.postgres import Cluster
from tests.kit.replication import ReplicatedPair

from .kit import PgServer, otp_admin

pytestmark = pytest.mark.slow

OTP = Client("otp", "127.0.0.1", first_factor="none")
USERS = 50


def test_codes_accepted_before_a_failover_are_refused_after_it(make_node: Callable[..., PgServer],
                                                                pg_replicated: ReplicatedPair) -> None:
    pair = pg_replicated
    node = make_node(pair, clients=[OTP], workers=2, policy=NO_LIMITS)
    users = add_hotp_users(node.config_path, [f"u{i}" for i in range(USERS)])
    node.start()

    replies = blast(node.address, code_requests([(u.name, u.code(0)) for u in users]), timeout=20)
    assert [r.code if r else None for r in replies] == [ACCESS_ACCEPT] * USERS
    with frozen(pair.standby):
        waiting = blast(node.address, code_requests([(users[4].name, users[4].code(1))], start=3 * USERS),
                        timeout=2, retransmit=0.5)
        assert waiting == [None]  # its COMMIT waits for the standby: no Accept may leave before it has the write
        pair.primary.kill9()  # at once: whatever the primary acknowledged is on the standby, or it was never answered

    # No read-write server: no answer at all (the NAS fails over), never an Accept.
    silent = blast(node.address, code_requests([(users[0].name, users[0].code(1))]), timeout=2, retransmit=0.5)
    assert silent == [None]
    pair.standby.promote()

    # The same codes, at the node that follows the URL to the new primary: every one refused.
    again = blast(node.address, code_requests([(u.name, u.code(0)) for u in users], start=USERS), timeout=30,
                  retransmit=1.0)
    assert [r.code if r else None for r in again] == [ACCESS_REJECT] * USERS
    assert len(node.decisions("u1")) >= 2 and node.decisions("u1")[-1]["reason"] in ("replay", "wrong_code")
    with pam_service(node.config_path) as service:
        assert pamtester(service, "u2", [users[2].code(0)]).status == "PAM_AUTH_ERR"
        assert pamtester(service, "u2", [users[2].code(1)]).status == "PAM_SUCCESS"
    refused = otp_admin(node.config_path, "token", "verify", "u3", users[3].code(0))
    assert refused.returncode == 1, refused.stdout + refused.stderr
    # The next codes are accepted, on the new primary.
    fresh = blast(node.address, code_requests([(u.name, u.code(1)) for u in users[3:]], start=2 * USERS), timeout=30)
    codes = [r.code if r else None for r in fresh]
    # u4's code 1 was never accepted: its commit, made on the old primary while the standby was frozen, reached the
    # standby or not (it was in the socket's buffer), so now it is accepted, or refused as used up without an Accept.
    assert codes[1] in (ACCESS_ACCEPT, ACCESS_REJECT)
    assert codes[:1] + codes[2:] == [ACCESS_ACCEPT] * (USERS - 4)
    with pair.connect() as conn:
        assert conn.info.port == pair.standby.port
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)


@contextlib.contextmanager
def frozen(cluster: Cluster) -> Iterator[None]:
    """The server and all its processes stopped (SIGSTOP) meanwhile: a standby that receives and confirms nothing."""
    pids = cluster.processes()
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
