"""100 000 random and mutated packets: the server keeps answering, accepts none of them, and its memory stays flat."""

from __future__ import annotations

import random
import time

from otpbase.radius import (
    ACCESS_ACCEPT,
    ACCESS_REJECT,
    BAD_AUTHENTICATOR,
    MALFORMED,
    MISSING_MESSAGE_AUTHENTICATOR,
    STATUS_SERVER,
    UNSUPPORTED_CODE,
)
from tests.kit.config import Client
from tests.kit.radius_client import Sent, UdpClient, attribute_offsets, build_request, sign_request
from tests.kit.radiusd import RadiusServer

FUZZ_PACKETS = 100_000
BATCH = 500  # fuzz packets between two Status-Server round trips (flow control: the server's queue is FIFO)
RESIGN_RATE = 0.005  # mutated packets given a valid Message-Authenticator again, to reach the core
OTP_SECRET = b"otp-only-secret"
LEGACY_SECRET = b"legacy-secret"


def _fix_length(b: bytearray) -> None:
    b[2:4] = len(b).to_bytes(2, "big")


def mutate(rng: random.Random, raw: bytes) -> bytes:
    b = bytearray(raw)
    op = rng.randrange(10)
    if op == 0:  # bit flips
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
    elif op == 1:  # random octets
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] = rng.randrange(256)
    elif op == 2:  # truncated
        del b[rng.randrange(len(b)):]
    elif op == 3:  # trailing octets, counted by Length or not
        b += rng.randbytes(rng.randint(1, 64))
        if rng.random() < 0.9:
            _fix_length(b)
    elif op == 4:  # any Length
        b[2:4] = rng.randrange(5000).to_bytes(2, "big")
    elif op == 5:  # a wrong attribute length
        offsets = attribute_offsets(raw)
        if offsets:
            b[rng.choice(offsets) + 1] = rng.randrange(256)
    elif op == 6:  # an extra attribute anywhere
        offsets = [*attribute_offsets(raw), len(raw)]
        at = rng.choice(offsets)
        value = rng.randbytes(rng.randrange(0, 40))
        b[at:at] = bytes([rng.randrange(256), len(value) + 2]) + value
        _fix_length(b)
    elif op == 7:  # a repeated attribute (User-Password, State, Message-Authenticator ...)
        offsets = attribute_offsets(raw)
        if offsets:
            at = rng.choice(offsets)
            b += raw[at:at + raw[at + 1]]
            _fix_length(b)
    elif op == 8:  # any code
        b[0] = rng.randrange(256)
    else:  # random attributes behind a valid header
        b[20:] = rng.randbytes(rng.randrange(0, 300))
        _fix_length(b)
    return bytes(b)


def random_packet(rng: random.Random) -> bytes:
    size = rng.choice([rng.randrange(0, 20), rng.randrange(20, 200), rng.randrange(200, 4200)])
    data = bytearray(rng.randbytes(size))
    if size >= 4 and rng.random() < 0.5:
        data[0] = rng.choice([1, 12, 4, 2, 11])
        data[2:4] = size.to_bytes(2, "big")[-2:]
    return bytes(data)


def base(rng: random.Random, secret: bytes, ma: bool) -> bytes:
    """A fresh request (new ID and Request Authenticator, so the duplicate cache does not answer its mutations)."""
    kind = rng.randrange(6)
    if kind == 0:
        return build_request("bob", b"123456", secret=secret, ma=ma).raw  # bob has no token: always rejected
    if kind == 1:
        return build_request("fuzz-nobody", b"654321", secret=secret, ma=ma).raw
    if kind == 2:
        return build_request("bob", b"123456", secret=secret, ma=ma, state=rng.randbytes(16)).raw
    if kind == 3:
        return build_request("bob", b"000000", secret=secret, ma=ma, proxy_state=[b"ps1", b"ps2"]).raw
    if kind == 4:
        return build_request("bob", None, secret=secret, ma=ma, extra=[(3, rng.randbytes(17))]).raw
    vsa = (311).to_bytes(4, "big") + bytes([1, 6]) + b"abcd"
    return build_request("bob", b"1" * 100, secret=secret, ma=ma, extra=[(26, vsa), (79, rng.randbytes(30))]).raw


def test_fuzz(make_server: type[RadiusServer]) -> None:
    srv = make_server(clients=[
        Client("local", "127.0.0.1"),
        Client("otp-only", "127.0.0.2", secret=OTP_SECRET.decode(), first_factor="none"),
        Client("legacy", "127.0.0.3", secret=LEGACY_SECRET.decode(), first_factor="none",
               require_message_authenticator=False),
    ])
    alice = srv.add_user("alice", "alice-pw")
    srv.add_user("bob", "bob-pw")
    from otpcore.admin import Admin
    from otpcore.config import load_config

    with Admin(load_config(srv.config_path)) as admin:  # bob keeps no token: nothing he sends can be accepted
        for token, _ in admin.tokens("bob"):
            admin.delete_token(token.id, now=time.time())
    srv.start()

    rng = random.Random(20240611)
    fuzzer = UdpClient(srv.address, source="127.0.0.2")
    legacy = UdpClient(srv.address, source="127.0.0.3")
    stranger = UdpClient(srv.address, source="127.0.1.1")
    control = UdpClient(srv.address)
    fuzzer.sock.setblocking(False)
    legacy.sock.setblocking(False)
    replies = {"fuzz": 0}
    accepted: list[bytes] = []
    rss: list[int] = []
    sent_total = 0

    def drain(sock: UdpClient) -> None:
        while True:
            try:
                data = sock.sock.recv(8192)
            except BlockingIOError:
                return
            replies["fuzz"] += 1
            if data and data[0] == ACCESS_ACCEPT:
                accepted.append(data)

    def status_round_trip() -> None:
        sent = build_request(None, None, code=STATUS_SERVER)
        assert control.ask(sent).code == ACCESS_ACCEPT, "the server stopped answering"

    def login(user: str, password: bytes) -> int:
        sent: Sent = build_request(user, password)
        return control.ask(sent).code

    try:
        assert login("alice", f"alice-pw{alice.code()}".encode()) == ACCESS_ACCEPT
        for n in range(FUZZ_PACKETS):
            roll = rng.random()
            if roll < 0.01:
                stranger.send(random_packet(rng))
            elif roll < 0.10:
                fuzzer.send(random_packet(rng))
            elif roll < 0.11:
                legacy.send(mutate(rng, base(rng, LEGACY_SECRET, ma=False)))
            else:
                packet = mutate(rng, base(rng, OTP_SECRET, ma=True))
                if rng.random() < RESIGN_RATE and len(packet) >= 38 and packet[0] != STATUS_SERVER \
                        and packet[20:22] == bytes([80, 18]):
                    packet = sign_request(packet, OTP_SECRET)
                fuzzer.send(packet)
            sent_total += 1
            if n % BATCH == BATCH - 1:
                status_round_trip()
                drain(fuzzer)
                drain(legacy)
            if n % 20_000 == 19_999:
                assert login("ghost", b"pw123456") == ACCESS_REJECT
                rss.append(srv.rss_kib())
        status_round_trip()
        time.sleep(0.2)
        drain(fuzzer)
        drain(legacy)
        assert login("alice", f"alice-pw{alice.code(time.time() + 30)}".encode()) == ACCESS_ACCEPT
    finally:
        for c in (fuzzer, legacy, stranger, control):
            c.close()

    assert accepted == [], f"{len(accepted)} fuzzed packets were accepted"
    counters = srv.counters()
    assert counters["received"] >= FUZZ_PACKETS, counters  # the server saw them all (none lost to a full buffer)
    assert counters["accept"] == 2  # alice, twice
    assert counters["errors"] == 0 and counters["evaluate_errors"] == 0, counters
    dropped = sum(counters[k] for k in ("unknown_client", MALFORMED, BAD_AUTHENTICATOR,
                                        MISSING_MESSAGE_AUTHENTICATOR, UNSUPPORTED_CODE))
    assert dropped > 0.9 * FUZZ_PACKETS, counters
    # Memory: flat after the first 20 000 (allow 4 MiB of allocator noise and 30 s of cached replies).
    growth = rss[-1] - rss[0]
    assert growth < 4096, f"RSS grew by {growth} KiB: {rss}"
    print(f"fuzz: {sent_total} packets, {replies['fuzz']} replies, RSS {rss} KiB, counters {counters}")
