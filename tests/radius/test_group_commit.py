"""Group commit and the other hot-path changes: several code checks in one transaction, replies only after COMMIT,
replays refused inside a group, an audit row for every decision, checkpoints left to a background thread."""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from otpbase.radius import ACCESS_ACCEPT, ACCESS_REJECT
from otpcore.admin import Admin, TokenSpec, UserSpec
from otpcore.config import load_config
from otpcore.decision import Verdict
from otpcore.errors import StoreError
from otpcore.oath import encode_base32
from otpcore.policy import FailureState
from otpcore.reseal import row_identity
from otpcore.service import Verifier
from otpcore.store.sqlite import SqliteStore
from otpcore.store.sqlite.turn import FlockTurn
from radiusd import logsink
from radiusd.admission import EMPTY, Admission
from radiusd.decide import PRECHECK_MIN
from radiusd.server import Worker
from radiusd.storeguard import GuardedVerifier
from tests.kit.codes import totp
from tests.kit.config import Client
from tests.kit.radius_client import Sent, build_request, check_reply
from tests.kit.radiusd import RadiusServer

OTP_SECRET = b"otp-only-secret"


def _verifier(tmp_path: Path, users: int = 3) -> tuple[Verifier, list[bytes]]:
    (tmp_path / "otp.toml").write_text('[store]\npath = "otp.sqlite"\nkey_file = "otp.key"\n')
    config = load_config(tmp_path / "otp.toml")
    secrets = []
    with Admin(config) as admin:
        admin.init()
        for i in range(users):
            secret = os.urandom(20)
            admin.add_user(UserSpec(f"u{i}"), now=time.time())
            admin.add_token(f"u{i}", TokenSpec(type="totp", secret=secret), now=time.time())
            secrets.append(secret)
    return Verifier.open(config), secrets


def _audit_count(verifier: Verifier) -> int:
    return len(verifier.store.audit_rows())


@pytest.mark.parametrize("prefetch", [(), ("u0", "u1", "u2", "u0", "nobody", "u\udcff", "u0\0evil")])
def test_a_replay_inside_one_batch_is_refused_and_every_decision_audited(tmp_path: Path,
                                                                         prefetch: tuple[str, ...]) -> None:
    verifier, secrets = _verifier(tmp_path)
    before = _audit_count(verifier)
    now = time.time()
    codes = [totp(encode_base32(s), now).encode() for s in secrets]
    with verifier.batch(prefetch):  # the users read together up front (the server names them), or one by one
        first = [verifier.login(f"u{i}", codes[i], first_factor="none", door="radius", client="c", now=now)
                 for i in range(3)]
        again = verifier.login("u0", codes[0], first_factor="none", door="radius", client="c", now=now)
        wrong = verifier.login("u1", b"000000" if codes[1] != b"000000" else b"111111", first_factor="none",
                               door="radius", client="c", now=now)
    assert [d.verdict for d in first] == [Verdict.ACCEPT] * 3
    assert again.verdict is Verdict.REJECT and again.reason == "replay"
    assert wrong.verdict is Verdict.REJECT
    assert _audit_count(verifier) == before + 5
    verifier.close()


def test_a_batch_that_fails_leaves_nothing_behind(tmp_path: Path) -> None:
    verifier, secrets = _verifier(tmp_path)
    before = _audit_count(verifier)
    now = time.time()
    code = totp(encode_base32(secrets[0]), now).encode()
    with pytest.raises(RuntimeError), verifier.batch():
        assert verifier.login("u0", code, first_factor="none", door="radius", client="c", now=now).accepted
        raise RuntimeError("the rest of the group failed")
    assert _audit_count(verifier) == before
    # Rolled back: the code was never used, so it is accepted now.
    assert verifier.login("u0", code, first_factor="none", door="radius", client="c", now=now).accepted
    verifier.close()


def test_a_precheck_is_used_only_while_the_tokens_are_as_it_saw_them(tmp_path: Path) -> None:
    verifier, secrets = _verifier(tmp_path)
    other = Verifier.open(load_config(tmp_path / "otp.toml"))
    now = time.time()
    code = totp(encode_base32(secrets[0]), now).encode()
    verifier.precheck([("u0", code, "none")], now=now)
    # Another process accepts the code between the precheck and the login: the login sees the token moved on.
    assert other.login("u0", code, first_factor="none", door="radius", client="c", now=now).accepted
    with verifier.batch():
        again = verifier.login("u0", code, first_factor="none", door="radius", client="c", now=now)
    assert again.verdict is Verdict.REJECT and again.reason == "replay"
    # A precheck of a wrong code, then the token gets a new secret that this code matches: decided afresh.
    new_secret = os.urandom(20)
    code1 = totp(encode_base32(new_secret), now).encode()
    verifier.precheck([("u1", code1, "none"), ("nobody", code1, "none"), ("u2", b"pw" + code1, "store"),
                       ("u1\0", code1, "none")], now=now)
    with Admin(load_config(tmp_path / "otp.toml")) as admin:
        token = admin.store.tokens(admin.store.require_user("u1").id)[0]
        admin.store.set_token_secret(token.id, admin.sealer.seal(new_secret, row_identity(token)))
    with verifier.batch():
        assert verifier.login("u1", code1, first_factor="none", door="radius", client="c", now=now).accepted
    # Unchanged tokens: the precheck's result is the decision (and only once: the code is used up).
    code2 = totp(encode_base32(secrets[2]), now).encode()
    verifier.precheck([("u2", code2, "none")], now=now)
    with verifier.batch():
        assert verifier.login("u2", code2, first_factor="none", door="radius", client="c", now=now).accepted
        assert verifier.login("u2", code2, first_factor="none", door="radius", client="c", now=now).reason == "replay"
    verifier.close()
    other.close()


def test_prefetch_belongs_inside_a_transaction(tmp_path: Path) -> None:
    verifier, _ = _verifier(tmp_path)
    with pytest.raises(StoreError, match="outside a transaction"):
        verifier.store.prefetch(["u0"])
    with verifier.batch(["u0", "nobody"]):
        assert verifier.store.user_with_tokens("nobody") == (None, [])
        assert verifier.store.user_with_tokens("u0")[0].name == "u0"
    # A write to a prefetched user's rows before its first read: the read goes to the store.
    store = verifier.store
    with verifier.batch(["u0", "u1", "u2"]):
        u0 = store.user("u0")
        store.set_failure_state(u0.id, FailureState(failures=2, last_bad=None, locked_at=None))
        assert store.user_with_tokens("u0")[0].failures == 2
        u1_token = store.tokens(store.user("u1").id)[0]
        store.advance_totp(u1_token.id, expected=u1_token.last_step, new_step=u1_token.last_step + 5, drift=0)
        assert store.user_with_tokens("u1")[1][0].last_step == u1_token.last_step + 5
        store.set_token_active(10_000, False)  # a token nobody prefetched: forget them all
        assert store._prefetched == {}
    verifier.close()


def test_a_worker_checks_codes_ahead_while_the_other_has_the_turn(tmp_path: Path) -> None:
    """The worker's group path with the turn taken by another worker: the codes are checked ahead (precheck), then
    decided under the turn once it is free; the outcome is the same (accepts once, replays refused, audit rows)."""
    _verifier(tmp_path, users=0)[0].close()
    (tmp_path / "otp.toml").write_text(
        '[store]\npath = "otp.sqlite"\nkey_file = "otp.key"\n[radius]\nworkers = 2\n'
        f'[[radius.clients]]\nname = "otp"\naddress = "127.0.0.1/32"\nsecret = "{OTP_SECRET.decode()}"\n'
        'first_factor = "none"\n')
    config = load_config(tmp_path / "otp.toml")
    secrets = [os.urandom(20) for _ in range(PRECHECK_MIN + 2)]
    with Admin(config) as admin:
        for i, secret in enumerate(secrets):
            admin.add_user(UserSpec(f"w{i}"), now=time.time())
            admin.add_token(f"w{i}", TokenSpec(type="totp", secret=secret), now=time.time())
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.settimeout(5)
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    worker = Worker(config, [out], verifier_factory=GuardedVerifier)
    worker.start()
    other = FlockTurn(config.store.path, shared=True)
    group = worker._receiver.group
    guarded = group.verifier
    prechecked: list[int] = []  # the size of each precheck
    real_precheck = guarded.precheck
    guarded.precheck = lambda logins, now: (prechecked.append(len(logins)), real_precheck(logins, now=now))
    try:
        for attempt in ("first", "replay"):
            now = time.time()
            sent = [build_request(f"w{i}", totp(encode_base32(sec), now).encode(), secret=OTP_SECRET, ident=i)
                    for i, sec in enumerate(secrets)]
            for req in sent:
                worker._receiver.access(out, req.raw, sink.getsockname())
            assert len(group.pending) == len(secrets)
            assert other.try_take()  # the other worker has the turn ...
            releaser = threading.Timer(0.3, other.__exit__, (None, None, None))  # ... and gives it back soon
            releaser.start()
            prechecked.clear()
            group.decide()
            releaser.join()
            assert prechecked == [len(secrets)]
            codes = sorted(check_reply(sent[raw[1]], raw).code for raw in (sink.recv(4096) for _ in sent))
            expected = ACCESS_ACCEPT if attempt == "first" else ACCESS_REJECT
            assert codes == [expected] * len(secrets), attempt
        verifier = guarded._verifier
        assert verifier.codes.prechecked == {}  # every result was used by its login
        rows = [r for r in verifier.store.audit_rows() if r.door == "radius"]
        assert sorted(r.result for r in rows) == ["accept"] * len(secrets) + ["reject"] * len(secrets)
    finally:
        other.close()
        worker._shut_down()  # what serve() does when it ends: the verifiers closed, the threads joined
        out.close()
        sink.close()


def test_writer_turn_can_be_tried_without_waiting(tmp_path: Path) -> None:
    first, second = FlockTurn(tmp_path / "s", shared=True), FlockTurn(tmp_path / "s", shared=True)
    assert first.try_take()
    assert not second.try_take()
    with first:  # already taken: kept, and given back at the end
        assert not second.try_take()
    assert second.try_take()
    with second:
        pass
    assert first.try_take()
    first.__exit__(None, None, None)
    for turn in (first, second):
        turn.close()
    assert FlockTurn(tmp_path / "s", shared=False).try_take()  # one worker: nobody to wait for


def test_info_writer_writes_what_logging_would(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "log"
    logger = logging.getLogger("test.logsink.writer")
    root = logging.getLogger()
    saved_level, saved_handlers = root.level, root.handlers[:]
    with open(path, "w") as raw:
        handler = logsink._HeldStreamHandler(raw)
        handler.setFormatter(logging.Formatter(logsink._FORMAT))
        saved, logsink._handler = logsink._handler, handler
        root.handlers = [handler]  # as otp-radiusd has it (pytest adds its own)
        root.setLevel(logging.INFO)
        try:
            monkeypatch.setattr(logsink.time, "time", lambda: 1_700_000_000.25)
            write = logsink.info_writer(logger)
            assert isinstance(write, logsink._LineWriter)
            write("decision user=alice result=accept")
            record = logger.makeRecord(logger.name, logging.INFO, "", 0, "decision user=alice result=accept", (), None)
            record.created, record.msecs = 1_700_000_000.25, 250.0
            assert path.read_text() == handler.format(record) + "\n"
            # Another handler on the way: the records go through logging, which feeds both.
            other = logging.Handler()
            logger.addHandler(other)
            assert not isinstance(logsink.info_writer(logger), logsink._LineWriter)
            logger.removeHandler(other)
        finally:
            root.handlers = saved_handlers
            root.setLevel(saved_level)
            logsink._handler = saved


def test_only_code_checks_are_batchable() -> None:
    assert Verifier.batchable(b"123456", "none", None)
    assert not Verifier.batchable(b"", "none", None)  # an empty password asks for an email/sms code
    assert not Verifier.batchable(b"pw123456", "store", None)  # argon2
    assert not Verifier.batchable(b"pw123456", "pam", None)
    assert not Verifier.batchable(b"123456", "none", b"S" * 16)


def test_guarded_batch_drops_the_connection_after_a_store_fault(tmp_path: Path) -> None:
    _verifier(tmp_path)[0].close()
    config = load_config(tmp_path / "otp.toml")
    guarded = GuardedVerifier(config)
    first = guarded.store
    with pytest.raises(StoreError), guarded.batch():
        raise sqlite3.OperationalError("disk I/O error")
    assert guarded.store is not first  # reopened for the next call
    guarded.close()


def test_admission_get_without_blocking() -> None:
    admission = Admission(4)
    assert admission.get(block=False) is EMPTY
    admission.offer("a")
    admission.offer("b")
    assert [admission.get(block=False), admission.get(block=False)] == ["a", "b"]
    assert admission.get(block=False) is EMPTY


def test_held_log_lines_leave_together_at_the_end(tmp_path: Path) -> None:
    path = tmp_path / "log"
    with open(path, "w") as raw:
        handler = logsink._HeldStreamHandler(raw)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger = logging.getLogger("test.logsink")
        logger.addHandler(handler)
        logger.propagate = False
        logger.setLevel(logging.INFO)
        saved, logsink._handler = logsink._handler, handler
        try:
            with logsink.held():
                logger.info("one")
                logger.info("two")
                assert path.read_text() == ""  # still in the buffer
            assert path.read_text() == "one\ntwo\n"
            logger.info("three")  # outside held(): at once
            assert path.read_text().endswith("three\n")
        finally:
            logsink._handler = saved
            logger.removeHandler(handler)


def test_wal_checkpoints_can_be_left_to_another_connection(tmp_path: Path) -> None:
    verifier, secrets = _verifier(tmp_path, users=1)
    database = tmp_path / "otp.sqlite"
    other = SqliteStore.open(database)
    other.checkpoint()  # whatever opening left in the WAL
    now = time.time()

    def write(at: float) -> bytes:
        """A code accepted (a commit); returns the database file as it was before."""
        before = database.read_bytes()
        decision = verifier.verify_code("u0", totp(encode_base32(secrets[0]), at), door="t", client="t", now=at)
        assert decision.verdict is Verdict.ACCEPT
        return before

    verifier.store.set_wal_autocheckpoint(1)
    assert write(now) != database.read_bytes()  # the commit checkpointed itself
    verifier.store.set_wal_autocheckpoint(0)
    before = write(now + 30)
    assert database.read_bytes() == before  # the commit left its pages in the WAL: no checkpoint on this connection
    wal_pages, copied = other.checkpoint()
    assert wal_pages > 0 and copied == wal_pages  # the other connection copied them all (nobody was reading)
    assert database.read_bytes() != before
    other.close()
    verifier.close()


@pytest.mark.parametrize("workers", [1, 2])
def test_concurrent_code_checks_through_the_server(make_server: type[RadiusServer], workers: int) -> None:
    """Many code checks in flight at once (so they are decided in groups, by both workers): each valid code is
    accepted once, its replay refused, and every decision has its audit row."""
    srv = make_server(clients=[Client("otp", "127.0.0.2", secret=OTP_SECRET.decode(), first_factor="none")],
                      workers=workers)
    users = [srv.add_user(f"g{i}", None) for i in range(40)]
    srv.start()
    now = time.time()
    ports = 8  # several source ports, so that both workers get requests
    outgoing: list[list[tuple[str, Sent]]] = [[] for _ in range(ports)]
    for n, u in enumerate(users):
        code = totp(u.secret_b32, now).encode()
        for copy in range(2):  # the code, then the same code again: a replay
            queue = outgoing[(2 * n + copy) % ports]
            queue.append((u.name, build_request(u.name, code, secret=OTP_SECRET, ident=len(queue))))
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(ports)]
    verdicts: dict[str, list[int]] = {}
    try:
        for s, queue in zip(socks, outgoing, strict=True):
            s.bind(("127.0.0.2", 0))
            s.settimeout(5)
            for _, req in queue:
                s.sendto(req.raw, srv.address)
        for s, queue in zip(socks, outgoing, strict=True):
            for _ in queue:
                raw = s.recv(4096)
                user, req = queue[raw[1]]
                verdicts.setdefault(user, []).append(check_reply(req, raw).code)
    finally:
        for s in socks:
            s.close()
    assert all(sorted(v) == [2, 3] for v in verdicts.values()) and len(verdicts) == len(users)
    store = SqliteStore.open(load_config(srv.config_path).store.path)
    rows = [r for r in store.audit_rows() if r.door == "radius"]
    store.close()
    per_user: dict[str, list[str]] = {}
    for r in rows:
        per_user.setdefault(r.user or "", []).append(r.result)
    assert len(rows) == 2 * len(users)
    assert all(sorted(v) == ["accept", "reject"] for v in per_user.values())


def test_an_scrv1_password_that_joins_to_nothing_is_not_batched() -> None:
    """`SCRV1::` decodes to an empty password, which may send an email/SMS code: never inside a group commit."""
    from types import SimpleNamespace

    from radiusd.decide import batchable

    def job(password: bytes) -> SimpleNamespace:
        return SimpleNamespace(request=SimpleNamespace(password=password, state=None, proof=None),
                               client=SimpleNamespace(first_factor="none"))

    assert batchable(Verifier, job(b"123456"))
    assert not batchable(Verifier, job(b"SCRV1::"))
    assert not batchable(Verifier, job(b"SCRV1::IA=="))
