"""Secrets: after a full run with debug logging everywhere (otp-radiusd --log-level debug, the PAM module's `debug`,
otp-admin), no password, code, token secret, RADIUS shared secret or sealing key appears in the server's log, the
PAM module's syslog lines, otp-admin's output, the audit rows, the messages of the faults provoked on the way, or
the raw store file and its WAL.

Timing and messages: a wrong password, an unknown user and a known user without a token cost the same argon2 work
(median of 30 interleaved RADIUS round trips each, within a ratio robust on a noisy 2-core machine), and all get the
same Reply-Message.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import socket
import sqlite3
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from otpbase.radius import ACCESS_ACCEPT, ACCESS_CHALLENGE, ACCESS_REJECT
from otpcore import oath
from otpcore.admin import Admin, TokenSpec, UserSpec
from otpcore.config import load_config
from otpcore.errors import OtpError
from tests.kit.config import Client
from tests.kit.pamservices import local_pam_service
from tests.kit.pamtester import pamtester
from tests.kit.radius_client import UdpClient, build_request, check_reply
from tests.kit.radiusd import RadiusServer

from .helpers import NO_LIMITS, blast

pytestmark = pytest.mark.slow

SHARED = {"pw": "Sh4red-radius-s3cret", "otp": "0tp-only-rad1us-s3cret"}
PASSWORDS = {"alice": "Al1ce-S3cret-pw", "carol": "Car0l-S3cret-pw", "bob": "B0b-S3cret-pw"}
WRONG_PASSWORD = "Wr0ng-Gu3ss-pw"
DEV_LOG = Path("/dev/log")


@contextlib.contextmanager
def syslog_capture(folder: Path) -> Iterator[tuple[Path, list[bytes]]]:
    """Catch what the PAM module sends to /dev/log. Yields (socket, lines): pamtester(dev_log=socket) logs to it (the
    socket is /dev/log itself when the machine has none)."""
    lines: list[bytes] = []
    own = not DEV_LOG.exists()
    path = DEV_LOG if own else folder / "log.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.2)
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                lines.append(sock.recv(65536))

    thread = threading.Thread(target=read)
    thread.start()

    try:
        yield path, lines
    finally:
        time.sleep(0.3)
        stop.set()
        thread.join()
        sock.close()
        if own:
            path.unlink(missing_ok=True)


def test_no_secret_anywhere_after_a_full_debug_run(make_server: Callable[..., RadiusServer], tmp_path: Path) -> None:
    srv = make_server(clients=[Client("pw", "127.0.0.1", secret=SHARED["pw"]),
                               Client("otp", "127.0.0.2", secret=SHARED["otp"], first_factor="none")],
                      policy={"max_failures": 4, "lockout_seconds": 0}, args=["--log-level", "debug"])
    alice_secret, carol_secret = os.urandom(20), os.urandom(20)
    with Admin(load_config(srv.config_path)) as admin:
        now = time.time()
        admin.add_user(UserSpec("alice", password=PASSWORDS["alice"].encode()), now=now)
        admin.add_token("alice", TokenSpec(type="hotp", secret=alice_secret), now=now)
        admin.add_user(UserSpec("carol", password=PASSWORDS["carol"].encode()), now=now)
        admin.add_token("carol", TokenSpec(type="totp", secret=carol_secret), now=now)
        admin.add_user(UserSpec("bob", password=PASSWORDS["bob"].encode()), now=now)
    key_text = srv.key_path.read_text().strip()
    srv.start()
    pw, otp = SHARED["pw"].encode(), SHARED["otp"].encode()
    codes_used: set[str] = set()
    outputs: list[str] = []  # what people and programs get to see: CLI output, exception messages

    def hotp(k: int) -> str:
        code = oath.hotp(alice_secret, k)
        codes_used.add(code)
        return code

    def wrong() -> str:
        valid = {oath.hotp(alice_secret, k) for k in range(40)} | {oath.totp(carol_secret, time.time() + 30 * d)
                                                                   for d in range(-3, 4)}
        while True:
            code = f"{int.from_bytes(os.urandom(3), 'big') % 10**6:06d}"
            if code not in valid:
                codes_used.add(code)
                return code

    def radius(user: str, password: str, *, secret: bytes = pw, source: str = "127.0.0.1",
               state: bytes | None = None) -> tuple[int | None, bytes | None]:
        sent = build_request(user, password.encode(), secret=secret, state=state)
        with UdpClient(srv.address, source=source) as c:
            raw = c.exchange(sent, timeout=10)
        if raw is None:
            return None, None
        reply = check_reply(sent, raw)
        return reply.code, reply.state

    a = PASSWORDS["alice"]
    # RADIUS, password + code: challenge flow, accept, replay, wrong code, wrong password, unknown and tokenless users.
    code, state = radius("alice", a)
    assert code == ACCESS_CHALLENGE and state
    assert radius("alice", hotp(0), state=state)[0] == ACCESS_ACCEPT
    code_state = radius("alice", a)[1]
    assert radius("alice", wrong(), state=code_state)[0] in (ACCESS_REJECT, ACCESS_CHALLENGE)
    assert radius("alice", a + hotp(1))[0] == ACCESS_ACCEPT
    assert radius("alice", a + hotp(1))[0] == ACCESS_REJECT  # replay
    w = wrong()
    assert radius("alice", a + w)[0] == ACCESS_REJECT
    assert radius("alice", a + w)[0] == ACCESS_REJECT
    assert radius("alice", WRONG_PASSWORD + hotp(2))[0] == ACCESS_REJECT
    assert radius("ghost", WRONG_PASSWORD + wrong())[0] == ACCESS_REJECT
    assert radius("bob", PASSWORDS["bob"] + wrong())[0] == ACCESS_REJECT
    assert radius("alice", a + hotp(2))[0] == ACCESS_ACCEPT
    # The OTP-only client: carol's TOTP code alone; four wrong codes lock her; then even the right one is refused.
    carol_code = oath.totp(carol_secret, time.time())
    codes_used.add(carol_code)
    assert radius("carol", carol_code, secret=otp, source="127.0.0.2")[0] == ACCESS_ACCEPT
    for _ in range(4):
        assert radius("carol", wrong(), secret=otp, source="127.0.0.2")[0] == ACCESS_REJECT
    later = oath.totp(carol_secret, time.time() + 30)
    codes_used.add(later)
    assert radius("carol", later, secret=otp, source="127.0.0.2")[0] == ACCESS_REJECT  # locked
    # Dropped packets: a bad Message-Authenticator, the wrong shared secret.
    bad = bytearray(build_request("alice", (a + hotp(3)).encode(), secret=pw).raw)
    bad[25] ^= 1
    assert blast(srv.address, [build_request("alice", (a + hotp(3)).encode(), secret=otp)], sockets=1,
                 timeout=0.5, retransmit=1, check=False) == [None]
    with UdpClient(srv.address) as c:
        c.send(bytes(bad))

    # PAM, local mode with debug, password + code and code alone.
    with syslog_capture(tmp_path) as (log, syslog), \
            local_pam_service(srv.config_path, "debug", "first_factor=store") as both, \
            local_pam_service(srv.config_path, "debug") as code_only:
        outputs.append(pamtester(both, "alice", [a + hotp(3)], dev_log=log).output)
        assert "successfully authenticated" in outputs[-1], outputs[-1]
        outputs.append(pamtester(both, "alice", [WRONG_PASSWORD + hotp(4)], dev_log=log).output)
        outputs.append(pamtester(both, "ghost", [a + wrong()], dev_log=log).output)
        outputs.append(pamtester(code_only, "alice", [hotp(4)], dev_log=log).output)
        assert "successfully authenticated" in outputs[-1], outputs[-1]
        outputs.append(pamtester(code_only, "alice", [hotp(4)], dev_log=log).output)  # replay
        # The password alone: a challenge, answered wrong.
        outputs.append(pamtester(both, "alice", [a], dev_log=log).output)
        time.sleep(0.3)
    assert syslog, "the PAM module logged nothing with debug on"

    # otp-admin: verify, refused operations, listings.
    def admin(*args: str, stdin: str | None = None) -> None:
        p = srv.otp_admin(*args, stdin=stdin)
        outputs.append(p.stdout + p.stderr)

    admin("token", "verify", "alice", hotp(5))
    admin("token", "verify", "alice", hotp(5))
    admin("token", "verify", "alice", wrong())
    admin("token", "resync", "alice", wrong(), wrong())
    bad_b32 = base64.b32encode(alice_secret).decode().rstrip("=")[:-1] + "1"
    admin("token", "add", "alice", "--type", "totp", "--secret", bad_b32, "--qr", "none")
    csv = tmp_path / "bad.csv"
    csv.write_text(f"user,type,secret\nzed,totp,{bad_b32}\n")
    admin("import", "--format", "csv", str(csv))
    admin("user", "passwd", "nobody-here", "--password-stdin", stdin=PASSWORDS["alice"] + "\n")
    for listing in (["audit", "--json"], ["user", "show", "alice", "--json"], ["token", "list", "--json"],
                    ["user", "list", "--json"]):
        admin(*listing)

    # Faults provoked on the way: their messages.
    from otpcore.seal import create_key_file
    from otpcore.service import Verifier
    from radiusd.storeguard import GuardedVerifier

    other = tmp_path / "other" / "otp.key"
    create_key_file(other)
    config = load_config(srv.config_path)
    import dataclasses

    wrong_key = dataclasses.replace(config, store=dataclasses.replace(config.store, key_file=other))
    for attempt in (lambda: Verifier.open(wrong_key).login("alice", (a + hotp(6)).encode(), first_factor="store",
                                                            door="t", client="t", now=time.time()),
                    lambda: Verifier.open(wrong_key).verify_code("alice", hotp(6), door="t", client="t",
                                                                 now=time.time()),
                    lambda: GuardedVerifier(dataclasses.replace(config, store=dataclasses.replace(
                        config.store, path=tmp_path / "missing.sqlite"))),
                    lambda: Verifier.open(dataclasses.replace(config, store=dataclasses.replace(
                        config.store, key_file=tmp_path / "none.key")))):
        try:
            attempt()
        except OtpError as exc:
            outputs.append(f"{type(exc).__name__}: {exc}")
    assert len([o for o in outputs if o.startswith(("SealError", "StoreError"))]) == 4, outputs[-4:]

    # The raw store while the server holds it (WAL included), then after a clean stop.
    srv.counters()
    raw_store = srv.store_path.read_bytes()
    wal = Path(f"{srv.store_path}-wal")
    raw_wal = wal.read_bytes() if wal.exists() else b""
    assert srv.stop() == 0
    raw_store += srv.store_path.read_bytes()
    with sqlite3.connect(srv.store_path) as conn:
        audit = "\n".join(repr(row) for row in conn.execute("SELECT * FROM audit"))
    log = srv.log()
    assert "DEBUG" in log or "decision" in log

    # The needles.
    texts = {"server log": log, "PAM syslog": b"\n".join(syslog).decode("utf-8", "replace"),
             "otp-admin and fault messages": "\n".join(outputs), "audit rows": audit}
    blobs = {"store file": raw_store, "store WAL": raw_wal}
    secrets_ = {**{f"password {k}": v for k, v in PASSWORDS.items()}, "wrong password": WRONG_PASSWORD,
                **{f"shared secret {k}": v for k, v in SHARED.items()}, "sealing key": key_text}
    for name, secret in (("alice's token secret", alice_secret), ("carol's token secret", carol_secret)):
        b32 = base64.b32encode(secret).decode()
        for form in (b32, b32.rstrip("="), secret.hex(), secret.hex().upper()):
            secrets_[f"{name} ({form[:6]}...)"] = form
    raw_secrets = {"alice's token secret (raw)": alice_secret, "carol's token secret (raw)": carol_secret,
                   "sealing key (raw)": base64.b64decode(key_text)}
    found = []
    for where, text in texts.items():
        for what, secret in secrets_.items():
            if secret in text:
                found.append(f"{what} in {where}")
        for code in codes_used:
            if re.search(rf"(?<!\d){code}(?!\d)", text):
                found.append(f"code {code} in {where}")
    for where, blob in blobs.items():
        for what, secret in secrets_.items():
            if secret.encode() in blob:
                found.append(f"{what} in {where}")
        for what, secret_bytes in raw_secrets.items():
            if secret_bytes in blob:
                found.append(f"{what} in {where}")
        for code in codes_used:
            if code.encode() in blob:
                found.append(f"code {code} in {where}")
    print(f"secrets: {len(secrets_) + len(raw_secrets)} secrets and {len(codes_used)} codes searched in "
          f"{', '.join(texts)} ({sum(len(t) for t in texts.values())} chars) and the store file + WAL "
          f"({len(raw_store) + len(raw_wal)} bytes): {len(found)} found")
    assert found == []


# -- timing and messages ----------------------------------------------------------------------------------------------

SAMPLES = 30


def test_wrong_password_unknown_user_and_tokenless_user_look_the_same(make_server: Callable[..., RadiusServer]) -> None:
    srv = make_server(clients=[Client("pw", "127.0.0.1")], policy=NO_LIMITS)
    srv.add_user("alice", "alice-pw")  # a TOTP token
    srv.add_user("bob", "bob-pw")
    with Admin(load_config(srv.config_path)) as admin:  # bob keeps no token
        for token, _ in admin.tokens("bob"):
            admin.delete_token(token.id, now=time.time())
    srv.start()
    cases = {
        "wrong password, 6 digits": ("alice", b"not-alice-pw123456"),
        "unknown user, 6 digits": ("nobody", b"not-alice-pw123456"),
        "tokenless user, 6 digits": ("bob", b"not-bob-pw123456"),
        "wrong password, no digits": ("alice", b"not-alice-pw"),
        "unknown user, no digits": ("nobody", b"not-alice-pw"),
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    messages: dict[str, set[str]] = {name: set() for name in cases}
    with UdpClient(srv.address) as client:
        for user, password in cases.values():  # warm-up: argon2's memory, the store's pages
            client.ask(build_request(user, password))
        for _ in range(SAMPLES):
            for name, (user, password) in cases.items():  # interleaved: every case sees the same noise
                sent = build_request(user, password)
                t = time.perf_counter()
                reply = client.ask(sent)
                times[name].append(time.perf_counter() - t)
                assert reply.code == ACCESS_REJECT
                messages[name].add(reply.message)
    medians = {name: statistics.median(values) * 1000 for name, values in times.items()}
    print("timing (median ms of 30): " + ", ".join(f"{n} {m:.1f}" for n, m in medians.items()))
    assert all(m == {"Authentication failed"} for m in messages.values()), messages
    reference = medians["wrong password, 6 digits"]
    for name in ("unknown user, 6 digits", "tokenless user, 6 digits"):
        ratio = medians[name] / reference
        assert 0.75 < ratio < 1.33, f"{name}: {medians[name]:.1f} ms vs wrong password {reference:.1f} ms"
    ratio = medians["unknown user, no digits"] / medians["wrong password, no digits"]
    assert 0.75 < ratio < 1.33, medians
