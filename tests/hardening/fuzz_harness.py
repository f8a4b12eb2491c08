"""The in-process fuzz target: request parsing (otpbase.radius.access) and the worker's handling
(radiusd.server.Worker) with the real verifier on a real store, driven by a fuzzer's choices.

One input is a short sequence of packets. Each packet is either raw fuzzer bytes, a retransmission of the previous
one, or a request assembled from the fuzzer's choices (client, code, user, password template — among them alice's
valid codes and her password, so the accept and challenge paths are reachable —, State, extra attributes,
Proxy-States, Message-Authenticator right / missing / wrong), then optionally mutated octet by octet and re-signed.
The packet goes through the worker's `Receiver.access` (what the receiving thread does) and the queued job through
its `Decider.answer` (what an evaluating thread does), synchronously.

The oracle, after every packet:
- nothing raises, and nothing is logged as an unexpected error (`log.exception`);
- every reply is authentic (Response Authenticator, Message-Authenticator first and right) and answers the request;
- a retransmission gets the same bytes as the first answer;
- an Access-Accept answers a Status-Server, or carries one of alice's codes that the store had not consumed (the
  counter moved exactly past it), never a code accepted before;
- alice's HOTP counter never moves back.

Driven by atheris (coverage-guided, libFuzzer: tests/hardening/atheris_fuzz.py) and by hypothesis
(tests/hardening/test_fuzz_inprocess.py) through the small `Chooser` interface.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from otpbase.radius import ACCESS_ACCEPT, ACCESS_CHALLENGE, STATUS_SERVER
from otpbase.radius.access import decode_request
from otpbase.radius.authenticators import authenticator_ok, hmac_md5, message_authenticator_ok
from otpbase.radius.pap import pap_hide
from otpcore import oath
from otpcore.admin import Admin, TokenSpec, UserSpec
from otpcore.config import load_config
from radiusd.decide import EVALUATE_COUNTERS
from radiusd.server import Worker
from radiusd.storeguard import GuardedVerifier
from tests.kit.config import Client, config_text
from tests.kit.radius_client import attributes

__all__ = ["Chooser", "FuzzFailure", "Harness"]

SECRETS = {"otp": b"otp-secret", "legacy": b"legacy-secret", "pw": b"pw-secret", "stranger": b"nobody-knows"}
ADDRESSES = {"otp": "127.0.0.2", "legacy": "127.0.0.3", "pw": "127.0.0.4", "stranger": "127.0.1.1"}
ALICE_SECRET = bytes(range(20))
ALICE_PASSWORD = b"alice-pw"
INVALID_UTF8 = [b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82", b"a\x00b"]


class Chooser(Protocol):
    def int(self, low: int, high: int) -> int: ...

    def bytes(self, max_size: int) -> bytes: ...


class FuzzFailure(AssertionError):
    """The oracle found a bug."""


class _FakeSocket:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, Any]] = []

    def sendto(self, data: bytes, addr: Any) -> int:
        self.sent.append((data, addr))
        return len(data)


class _Unexpected(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or "unexpected" in record.getMessage():
            self.records.append(record)


def _cheap_argon2() -> Callable[[], None]:
    """The same code path with argon2 parameters a fuzzer can afford (the real ones cost ~20 ms per check).
    Returns the function that puts the real ones back (hashes made meanwhile must not leak into other tests)."""
    from argon2 import PasswordHasher

    from otpcore import passwords

    real = passwords._hasher
    cheap = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1, hash_len=16, salt_len=16)
    passwords._hasher = lambda: cheap  # type: ignore[assignment]
    passwords._dummy_hash.cache_clear()

    def restore() -> None:
        passwords._hasher = real  # type: ignore[assignment]
        passwords._dummy_hash.cache_clear()

    return restore


@dataclass
class Stats:
    packets: int = 0
    replies: dict[int, int] = field(default_factory=dict)
    accepts: int = 0
    challenges: int = 0


class Harness:
    def __init__(self, folder: Path) -> None:
        self._restore_argon2 = _cheap_argon2()
        folder.mkdir(parents=True, exist_ok=True)
        self.config_path = folder / "otp.toml"
        clients = [Client(name, ADDRESSES[name], SECRETS[name].decode(), first_factor, ma)
                   for name, first_factor, ma in (("otp", "none", True), ("legacy", "none", False),
                                                  ("pw", "store", True))]
        self.config_path.write_text(config_text(
            listen=["127.0.0.1:1812"], clients=clients,
            policy={"max_failures": 5, "lockout_seconds": 1, "hotp_lookahead": 5, "client_max_failures": 0}))
        config = load_config(self.config_path)
        with Admin(config) as admin:
            admin.init()
            now = time.time()
            admin.add_user(UserSpec("alice", password=ALICE_PASSWORD), now=now)
            admin.add_token("alice", TokenSpec(type="hotp", secret=ALICE_SECRET), now=now)
            admin.add_user(UserSpec("bob", password=b"bob-pw"), now=now)  # no token
            admin.add_user(UserSpec("carol", password=b"carol-pw"), now=now)
            admin.add_token("carol", TokenSpec(type="totp", secret=bytes(20)), now=now)
        self.store_path = config.store.path
        self.verifier = GuardedVerifier(config)
        self.worker = Worker(config, [], verifier_factory=lambda _c: self.verifier)
        self.evaluated = dict.fromkeys(EVALUATE_COUNTERS, 0)  # the counters of the evaluating "thread"
        self.watch = sqlite3.connect(f"file:{self.store_path}?mode=ro", uri=True)
        self.unexpected = _Unexpected()
        # Quiet for the fuzz, restored by close(): other tests in this process read these loggers.
        self._log_levels = {name: logging.getLogger(name).level for name in ("otp", "otpcore")}
        logging.getLogger("otp").addHandler(self.unexpected)
        logging.getLogger("otp").setLevel(logging.ERROR)
        logging.getLogger("otpcore").setLevel(logging.CRITICAL)
        self.counter = self._alice_counter()
        self.accepted: set[int] = set()  # alice's counters accepted so far
        self.states: list[bytes] = []  # States of the challenges we got
        self.previous: tuple[str, bytes, list[bytes]] | None = None
        self.stats = Stats()
        self._port = 40000
        self._previous_port = 0

    def close(self) -> None:
        self._restore_argon2()
        self.watch.close()
        self.verifier.close()
        logging.getLogger("otp").removeHandler(self.unexpected)
        for name, level in self._log_levels.items():
            logging.getLogger(name).setLevel(level)

    def _alice_counter(self) -> int:
        return int(self.watch.execute("SELECT counter FROM tokens WHERE user_id = "
                                      "(SELECT id FROM users WHERE name = 'alice')").fetchone()[0])

    # -- one input ----------------------------------------------------------------------------------------------------

    def run(self, ch: Chooser) -> int:
        """Packets from the chooser, checked one by one. Returns how far the last one got (for targeting):
        0 dropped, 1 answered by the receiving thread, 2 evaluated, 3 challenged, 4 accepted."""
        depth = 0
        for _ in range(ch.int(1, 4)):
            client, raw = self._packet(ch)
            depth = self.send(client, raw)
        return depth

    def _packet(self, ch: Chooser) -> tuple[str, bytes]:
        clients = ["otp", "legacy", "pw", "stranger"]
        mode = ch.int(0, 9)
        if mode == 0:
            return clients[ch.int(0, 3)], ch.bytes(4200)
        if mode == 1 and self.previous is not None:
            return self.previous[0], self.previous[1]
        client = clients[ch.int(0, 3) if ch.int(0, 7) == 0 else ch.int(0, 2)]
        secret = SECRETS[client]
        codes = [1, 1, 1, 1, 12, 4, 2, 11]
        code = codes[ch.int(0, 7)] if ch.int(0, 15) else ch.int(0, 255)
        authenticator = ch.bytes(16).ljust(16, b"\0")
        attrs = b""
        user_choice = ch.int(0, 7)
        users = [b"alice", b"alice", b"bob", b"carol", b"nobody", b"", b"alice" + INVALID_UTF8[ch.int(0, 5)]]
        user = users[user_choice] if user_choice < len(users) else ch.bytes(60)
        if ch.int(0, 15):
            attrs += _attr(1, user)
        password = self._password(ch, client)
        if password is not None:
            if ch.int(0, 7):
                attrs += _attr(2, pap_hide(password, secret, authenticator, limit=None)[:253])
            else:
                attrs += _attr(2, ch.bytes(253))  # raw octets of any length
        state_choice = ch.int(0, 5)
        if state_choice == 1 and self.states:
            attrs += _attr(24, self.states[-1])
        elif state_choice == 2:
            attrs += _attr(24, ch.bytes(253))
        for _ in range(ch.int(0, 3) if ch.int(0, 3) == 0 else 0):
            attrs += _attr(ch.int(0, 255), ch.bytes(253))
        for _ in range(ch.int(0, 2) if ch.int(0, 3) == 0 else 0):
            attrs += _attr(33, ch.bytes(40))
        ma = ch.int(0, 5)  # 0-2 right, 3 none, 4 wrong secret, 5 random
        body = (bytes([80, 18]) + bytes(16) if ma != 3 else b"") + attrs
        raw = bytearray(bytes([code, ch.int(0, 255)]) + (20 + len(body)).to_bytes(2, "big") + authenticator + body)
        if ma != 3:
            key = secret if ma <= 2 else SECRETS["stranger"]
            raw[22:38] = hmac_md5(key, bytes(raw)) if ma != 5 else ch.bytes(16).ljust(16, b"\0")
        for _ in range(ch.int(0, 3) if ch.int(0, 2) == 0 else 0):  # octet mutations after the fact
            if raw:
                raw[ch.int(0, len(raw) - 1)] = ch.int(0, 255)
        if ch.int(0, 7) == 0 and len(raw) >= 38 and raw[20:22] == bytes([80, 18]):
            zeroed = bytes(raw[:22]) + bytes(16) + bytes(raw[38:])
            raw[22:38] = hmac_md5(secret, zeroed)  # re-signed: the mutation reaches the parser and core
        return client, bytes(raw)

    def _password(self, ch: Chooser, client: str) -> bytes | None:
        kind = ch.int(0, 9)
        near = self.counter + ch.int(-2, 7)
        code = oath.hotp(ALICE_SECRET, max(near, 0)).encode()
        if kind == 0:
            return None
        if kind == 1:
            return b""
        if kind in (2, 3):  # a code of alice's, maybe valid, maybe used, maybe ahead of the window
            return ALICE_PASSWORD + code if client == "pw" else code
        if kind == 4:
            return ALICE_PASSWORD  # the password alone: a challenge from the store client
        if kind == 5:
            return code
        if kind == 6:
            return ALICE_PASSWORD + code if ch.int(0, 1) else b"wrong" + code
        return ch.bytes(140)

    # -- one packet through the worker --------------------------------------------------------------------------------

    def send(self, client: str, raw: bytes) -> int:
        self.stats.packets += 1
        worker = self.worker
        if self.stats.packets % 1000 == 0:  # the receive loop's housekeeping
            worker._shared.cache.expire(time.monotonic())
            worker._shared.states.expire()
        sock = _FakeSocket()
        self._port += 1  # a new source port per request (a fake address: never wraps within the cache's 30 s)
        retransmission = self.previous is not None and self.previous[1] == raw and self.previous[0] == client
        addr = (ADDRESSES[client], self._port if not retransmission else self._previous_port)
        before = self.counter
        try:
            worker._receiver.access(sock, raw, addr)  # type: ignore[arg-type]
            depth = 1 if sock.sent else 0
            while len(worker._admission):
                job = worker._admission.get()
                worker._decider.answer(self.verifier, job, self.evaluated)
                depth = max(depth, 2)
        except Exception as exc:
            raise FuzzFailure(f"the worker raised on {raw.hex()}: {exc!r}") from exc
        if self.unexpected.records:
            record = self.unexpected.records[0]
            raise FuzzFailure(f"unexpected error logged for {raw.hex()}: {record.getMessage()}")
        after = self._alice_counter()
        if after < before:
            raise FuzzFailure(f"alice's counter moved back from {before} to {after}")
        self.counter = after
        replies = [data for data, _ in sock.sent]
        repeated = retransmission and self.previous is not None and bool(self.previous[2])
        if repeated and self.previous is not None and replies != self.previous[2]:
            raise FuzzFailure("a retransmission got a different answer")
        if repeated and after != before:
            raise FuzzFailure("a retransmission was evaluated again")
        for reply in replies if not repeated else ():  # the same bytes as before: checked then
            depth = max(depth, self._check_reply(client, raw, reply, before, after))
        if after != before and not any(r[0] == ACCESS_ACCEPT for r in replies):
            raise FuzzFailure(f"alice's counter moved {before} -> {after} without an Access-Accept")
        self.previous = (client, raw, replies or (self.previous[2] if retransmission and self.previous else []))
        self._previous_port = addr[1]
        return depth

    def _check_reply(self, client: str, raw: bytes, reply: bytes, before: int, after: int) -> int:
        secret = SECRETS[client]
        if len(reply) < 38 or int.from_bytes(reply[2:4], "big") != len(reply) or reply[1] != raw[1]:
            raise FuzzFailure(f"malformed reply {reply.hex()}")
        if not authenticator_ok(reply, raw[4:20], secret):
            raise FuzzFailure("bad Response Authenticator")
        if reply[20:22] != bytes([80, 18]):
            raise FuzzFailure("Message-Authenticator is not the first attribute")
        if not message_authenticator_ok(reply, 20, secret, raw[4:20]):
            raise FuzzFailure("bad Message-Authenticator in a reply")
        code = reply[0]
        self.stats.replies[code] = self.stats.replies.get(code, 0) + 1
        if code == ACCESS_CHALLENGE:
            self.stats.challenges += 1
            state = _attrs(reply).get(24)
            if not state:
                raise FuzzFailure("Access-Challenge without State")
            self.states = [*self.states[-7:], state[0]]
            return 3
        if code != ACCESS_ACCEPT:
            return 2
        if raw[0] == STATUS_SERVER:
            return 1
        # An Access-Accept for a login: it must be alice, with the code the store had next, consumed now.
        self.stats.accepts += 1
        request = decode_request(raw, secret, require_message_authenticator=client != "legacy")
        used = after - 1
        code_given = request.password[-6:] if request.password else b""
        if request.user != "alice" or after <= before or used in self.accepted:
            raise FuzzFailure(f"accepted {request!r}: counter {before} -> {after}, accepted before {self.accepted}")
        if code_given != oath.hotp(ALICE_SECRET, used).encode():
            raise FuzzFailure(f"accepted code {code_given!r} is not alice's code {used}")
        self.accepted.add(used)
        return 4


def _attr(number: int, value: bytes) -> bytes:
    value = value[:253]
    return bytes([number, len(value) + 2]) + value


def _attrs(raw: bytes) -> dict[int, list[bytes]]:
    out: dict[int, list[bytes]] = {}
    for number, value in attributes(raw):
        out.setdefault(number, []).append(value)
    return out
