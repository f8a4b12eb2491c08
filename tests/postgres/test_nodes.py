"""Two otp-radiusd nodes (separate configs, ports and processes) on one PostgreSQL database: a challenge State issued
by one is answered at the other, a lockout counted on both is one lockout, an accounting session started at one and
stopped at the other is one session, and both write one audit trail. The client has the same name on every node, as
the README says it must (a State is bound to the client's name)."""

from __future__ import annotations

import time
from collections.abc import Callable

from otpbase.radius import ACCESS_ACCEPT, ACCESS_CHALLENGE, ACCESS_REJECT
from otpbase.radius.constants import START, STOP
from tests.accounting.helpers import Udp, accounting_request, check_response, session_attrs
from tests.kit.codes import totp
from tests.kit.config import Client
from tests.kit.postgres import Database
from tests.kit.radius_client import UdpClient, build_request
from tests.kit.radiusd import User

from .kit import PgServer, PgState, otp_admin

NAS = Client("nas", "127.0.0.1", first_factor="store")


def _two_nodes(make_node: Callable[..., PgServer], database: Database) -> tuple[PgServer, PgServer]:
    policy = {"max_failures": 3, "lockout_seconds": 0, "challenge": True}
    first = make_node(database, clients=[NAS], policy=policy)
    second = make_node(database, clients=[NAS], policy=policy, key_from=first.key_path)
    return first, second


def _wrong_codes(user: User, n: int) -> list[str]:
    """Distinct codes that are none of the user's for a few minutes (the same wrong code twice counts once)."""
    now = time.time()
    valid = {totp(user.secret_b32, now + 30 * k) for k in range(-4, 5)}
    return [c for c in (f"{k:06d}" for k in range(100_000, 999_999, 7919)) if c not in valid][:n]


def test_state_lockout_sessions_and_audit_are_shared(make_node: Callable[..., PgServer], pg_database: Database) -> None:
    a, b = _two_nodes(make_node, pg_database)
    alice = a.add_user("alice", "pw")
    bob = b.add_user("bob", "pw")  # provisioned through the other node's config: the same store
    a.start()
    b.start()
    with UdpClient(a.address) as to_a, UdpClient(b.address) as to_b:
        # A challenge issued by one node, answered at the other; its State is then used up everywhere.
        challenge = to_a.ask(build_request("alice", b"pw"))
        assert challenge.code == ACCESS_CHALLENGE and challenge.state
        assert to_b.ask(build_request("alice", alice.code().encode(), state=challenge.state)).code == ACCESS_ACCEPT
        assert to_a.ask(build_request("alice", alice.code().encode(), state=challenge.state)).code == ACCESS_REJECT

        # Wrong codes counted on both nodes lock bob once: the third, on the other node, locks him.
        for sender, wrong in zip((to_a, to_a, to_b), _wrong_codes(bob, 3), strict=True):
            assert sender.ask(build_request("bob", f"pw{wrong}".encode())).code == ACCESS_REJECT
        with PgState(pg_database) as state:
            assert state.failures()["bob"] == 3
        assert to_a.ask(build_request("bob", f"pw{bob.code()}".encode())).code == ACCESS_REJECT  # locked
        assert b.decisions("bob")[-1]["result"] == "locked" and a.decisions("bob")[-1]["result"] == "locked"
        assert otp_admin(b.config_path, "user", "unlock", "bob").returncode == 0
        assert to_a.ask(build_request("bob", f"pw{bob.code()}".encode())).code == ACCESS_ACCEPT

    # An accounting session started at one node and stopped at the other is one session.
    start, stop = session_attrs(START, "acct-1"), session_attrs(STOP, "acct-1", extra=[(46, (60).to_bytes(4, "big"))])
    for port, attrs, ident in ((a.acct_port, start, 1), (b.acct_port, stop, 2)):
        nas = Udp(port)
        try:
            request = accounting_request(attrs, ident=ident)
            answer = nas.ask(request)
            assert answer is not None
            check_response(request, answer)
        finally:
            nas.close()
    listing = otp_admin(a.config_path, "sessions", "--json")
    assert listing.returncode == 0, listing.stderr
    assert '"session_id": "acct-1"' in listing.stdout and listing.stdout.count('"session_id"') == 1
    assert '"status": "stopped"' in listing.stdout

    # One audit trail: every decision of both nodes, in the order they were made.
    with PgState(pg_database) as state:
        for user in ("alice", "bob"):
            audited = [result for door, result, _ in state.audit_doors(user) if door == "radius"]
            decided = len(a.decisions(user)) + len(b.decisions(user))
            assert len(audited) == decided, (user, audited)
        assert [r for d, r, _ in state.audit_doors("alice") if d == "radius"] == ["challenge", "accept", "reject"]

