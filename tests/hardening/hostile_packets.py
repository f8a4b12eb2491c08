"""The hostile RADIUS packets of the network fuzz (tests/hardening/hostile.py runs them): named families (see
FAMILIES) built for the target's four clients and users; `generate` yields (family, source, bytes). Every packet is a
new request (fresh Request Authenticator), so the duplicate cache never hides one."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator

from otpbase.radius import ACCESS_REQUEST
from otpbase.radius.authenticators import hmac_md5
from otpbase.radius.pap import pap_hide
from tests.kit.radius_client import attribute_offsets, sign_request

from .helpers import HotpUser

__all__ = ["FAMILIES", "SECRETS", "SOURCES", "generate", "request"]

SECRETS = {"local": b"testing123", "otp": b"otp-only-secret", "legacy": b"legacy-secret", "pw": b"pw-secret"}
SOURCES = {"local": "127.0.0.1", "otp": "127.0.0.2", "legacy": "127.0.0.3", "pw": "127.0.0.4", "stranger": "127.0.1.1"}

# RFC 2865 attribute numbers used below
USER_NAME, USER_PASSWORD, CHAP_PASSWORD, NAS_IP, VSA, STATE, PROXY_STATE, EAP, MA = 1, 2, 3, 4, 26, 24, 33, 79, 80
INVALID_UTF8 = [b"\xff", b"\xfe\xff", b"\xc0\x80", b"\xc1\xbf", b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xf4\x90\x80\x80",
                b"\xf8\x88\x80\x80\x80", b"\xe2\x82", b"\x80", b"caf\xe9", b"\xf0\x9f\x98", b"a\x00b", b"\x00"]


# -- building packets --------------------------------------------------------------------------------------------------


def attr(number: int, value: bytes) -> bytes:
    return bytes([number, len(value) + 2]) + value


def hide(password: bytes, secret: bytes, authenticator: bytes) -> bytes:
    """RFC 2865 §5.2 hiding for any length (the server must refuse more than 128 octets, not choke on them)."""
    return pap_hide(password, secret, authenticator, limit=None)


def assemble(attrs: bytes, *, secret: bytes, code: int = ACCESS_REQUEST, ma: bool = True,
             authenticator: bytes | None = None, ident: int | None = None) -> bytes:
    """A request with Message-Authenticator first (signed with `secret`) when `ma`, the Length field right."""
    authenticator = os.urandom(16) if authenticator is None else authenticator
    ident = os.urandom(1)[0] if ident is None else ident
    body = (bytes([MA, 18]) + bytes(16) if ma else b"") + attrs
    raw = bytes([code, ident]) + (20 + len(body)).to_bytes(2, "big") + authenticator + body
    if ma:
        raw = raw[:22] + hmac_md5(secret, raw) + raw[38:]
    return raw


def request(user: bytes, password: bytes | None, *, secret: bytes, ma: bool = True, extra: bytes = b"",
            hidden: bytes | None = None) -> bytes:
    """A well-formed PAP Access-Request (the base that the mutating families start from)."""
    authenticator = os.urandom(16)
    attrs = attr(USER_NAME, user) if user else b""
    if hidden is not None:
        attrs += attr(USER_PASSWORD, hidden)
    elif password is not None:
        attrs += attr(USER_PASSWORD, hide(password, secret, authenticator))
    attrs += attr(NAS_IP, bytes([127, 0, 0, 1])) + extra
    return assemble(attrs, secret=secret, ma=ma, authenticator=authenticator)


def resign(raw: bytes, secret: bytes) -> bytes:
    """Recompute the Message-Authenticator of a packet whose first attribute is one (and whose Length is honest)."""
    if len(raw) < 38 or raw[20] != MA or raw[21] != 18:
        return raw
    return sign_request(raw, secret)


# -- the families ------------------------------------------------------------------------------------------------------


class Hostile:
    """Packet families. carol's codes that could be accepted (`valid_codes`) are never sent."""

    def __init__(self, rng: random.Random, carol: HotpUser) -> None:
        self.rng = rng
        self.valid_codes = {carol.code(c) for c in range(0, 64)}
        self.pap_length = 0  # walks 0..260, one length per pap_lengths packet

    def wrong_code(self) -> bytes:
        while True:
            code = f"{self.rng.randrange(10**6):06d}"
            if code not in self.valid_codes:
                return code.encode()

    def user(self) -> bytes:
        r = self.rng.random()
        if r < 0.4:
            return b"carol"
        if r < 0.7:
            return b"bob"
        if r < 0.85:
            return b"fuzz-nobody"
        return self.rng.randbytes(self.rng.randrange(1, 40))

    def password(self) -> bytes:
        r = self.rng.random()
        if r < 0.5:
            return self.wrong_code()
        if r < 0.7:
            return b"carol-pw" + self.wrong_code()
        if r < 0.8:
            return b""
        return self.rng.randbytes(self.rng.randrange(0, 129))

    def base(self, secret: bytes, ma: bool = True) -> bytes:
        kind = self.rng.randrange(5)
        if kind == 0:
            return request(self.user(), self.password(), secret=secret, ma=ma)
        if kind == 1:
            return request(self.user(), self.password(), secret=secret, ma=ma,
                           extra=attr(STATE, self.rng.randbytes(16)))
        if kind == 2:
            return request(self.user(), self.password(), secret=secret, ma=ma,
                           extra=attr(PROXY_STATE, b"ps1") + attr(PROXY_STATE, b"ps2"))
        if kind == 3:
            return request(self.user(), None, secret=secret, ma=ma, extra=attr(CHAP_PASSWORD, self.rng.randbytes(17)))
        vsa = (311).to_bytes(4, "big") + attr(1, b"abcd")
        return request(self.user(), self.password(), secret=secret, ma=ma,
                       extra=attr(VSA, vsa) + attr(EAP, self.rng.randbytes(30)))

    # each family returns (client, packet)

    def random_bytes(self) -> tuple[str, bytes]:
        rng = self.rng
        size = rng.choice([rng.randrange(0, 20), rng.randrange(20, 200), rng.randrange(200, 4200)])
        data = bytearray(rng.randbytes(size))
        if size >= 4 and rng.random() < 0.6:
            data[0] = rng.choice([1, 12, 4, 2, 11])
            data[2:4] = min(size, 65535).to_bytes(2, "big")
        return rng.choice(["otp", "legacy"]), bytes(data)

    def truncated(self) -> tuple[str, bytes]:
        raw = self.base(SECRETS["otp"])
        return "otp", raw[:self.rng.randrange(0, len(raw))]

    def length_field(self) -> tuple[str, bytes]:
        raw = bytearray(self.base(SECRETS["otp"]))
        rng = self.rng
        length = rng.choice([0, 1, 19, 20, rng.randrange(20, len(raw)), len(raw) + rng.randrange(1, 300), 4096, 4097,
                             65535, rng.randrange(65536)])
        raw[2:4] = length.to_bytes(2, "big")
        if rng.random() < 0.5:
            raw = bytearray(resign(bytes(raw), SECRETS["otp"]))  # signed as sent: only the framing is wrong
        return "otp", bytes(raw)

    def oversize(self) -> tuple[str, bytes]:
        """Datagrams past the RFC 2865 maximum of 4096 octets, Length honest or capped."""
        rng = self.rng
        filler = b"".join(attr(NAS_IP + 100, rng.randbytes(200)) for _ in range(21))
        raw = bytearray(assemble(attr(USER_NAME, b"bob") + filler, secret=SECRETS["otp"]))
        if rng.random() < 0.5:
            raw[2:4] = (4096).to_bytes(2, "big")
        return "otp", bytes(raw[:rng.randrange(4097, len(raw) + 1)])

    def bad_attribute_length(self) -> tuple[str, bytes]:
        raw = bytearray(self.base(SECRETS["otp"]))
        offsets = attribute_offsets(bytes(raw))
        at = self.rng.choice(offsets)
        raw[at + 1] = self.rng.choice([0, 1, 2, 255, len(raw) - at + 1, self.rng.randrange(256)])
        packet = bytes(raw)
        if self.rng.random() < 0.5 and at != 20:
            packet = resign(packet, SECRETS["otp"])
        return "otp", packet

    def zero_length_vendor(self) -> tuple[str, bytes]:
        rng = self.rng
        vendor = rng.choice([b"", (9).to_bytes(4, "big"), (311).to_bytes(4, "big"), (0).to_bytes(4, "big"),
                             (311).to_bytes(4, "big") + bytes([1, 0]), (311).to_bytes(4, "big") + bytes([1, 2]),
                             (311).to_bytes(4, "big") + bytes([1, 1]), (311).to_bytes(4, "big") + bytes([1, 200]),
                             (14122).to_bytes(4, "big") + bytes([26, 2]) + bytes([0, 2])])
        extra = attr(VSA, vendor) * rng.randint(1, 3)
        client = rng.choice(["otp", "legacy"])
        return client, request(self.user(), self.password(), secret=SECRETS[client], ma=client == "otp",
                               extra=extra)

    def pap_lengths(self) -> tuple[str, bytes]:
        """User-Password of every length 0..260 in turn: hidden properly while it fits, raw octets, split in two."""
        n = self.pap_length
        self.pap_length = (n + 1) % 261
        rng = self.rng
        secret = SECRETS["otp"]
        authenticator = os.urandom(16)
        how = rng.randrange(3)
        if n <= 253 and how == 0:
            value = hide(rng.choice([b"x", b"\xff", b"9x"]) * n, secret, authenticator)[:253] if n else b""
            attrs = attr(USER_NAME, self.user()) + attr(USER_PASSWORD, value[:n] if n % 16 else value)
        elif n <= 253:
            attrs = attr(USER_NAME, self.user()) + attr(USER_PASSWORD, rng.randbytes(n))
        else:  # 254..260 octets cannot be one attribute: two, or a Length octet that wrapped around
            value = rng.randbytes(n)
            if how == 1:
                attrs = attr(USER_NAME, b"carol") + attr(USER_PASSWORD, value[:253]) + attr(USER_PASSWORD, value[253:])
            else:
                attrs = attr(USER_NAME, b"carol") + bytes([USER_PASSWORD, (n + 2) % 256]) + value
        return "otp", assemble(attrs, secret=secret, authenticator=authenticator)

    def invalid_utf8(self) -> tuple[str, bytes]:
        rng = self.rng
        bad = rng.choice(INVALID_UTF8)
        where = rng.randrange(3)
        user = (b"carol" + bad) if where == 0 else bad if where == 1 else b"bob"
        password = self.wrong_code()[:3] + bad + self.wrong_code()[:3] if where == 2 else self.password()
        client = rng.choice(["otp", "legacy", "pw"]) if rng.random() < 0.02 else rng.choice(["otp", "legacy"])
        return client, request(user, password, secret=SECRETS[client], ma=client != "legacy")

    def huge_state(self) -> tuple[str, bytes]:
        rng = self.rng
        states = rng.choice([[rng.randbytes(253)], [b""], [rng.randbytes(253)] * rng.randint(2, 15),
                             [rng.randbytes(rng.randrange(254)) for _ in range(rng.randint(1, 15))]])
        extra = b"".join(attr(STATE, s) for s in states)
        return "otp", request(self.user(), self.wrong_code(), secret=SECRETS["otp"], extra=extra)

    def repeated(self) -> tuple[str, bytes]:
        rng = self.rng
        secret = SECRETS["otp"]
        authenticator = os.urandom(16)
        parts = [attr(USER_NAME, b"carol"), attr(USER_PASSWORD, hide(self.wrong_code(), secret, authenticator)),
                 attr(NAS_IP, b"\x7f\x00\x00\x01"), attr(STATE, rng.randbytes(16))]
        attrs = b"".join(rng.choice(parts) for _ in range(rng.randint(2, 12)))
        if rng.random() < 0.3:  # two Message-Authenticators
            attrs += bytes([MA, 18]) + bytes(16)
            raw = assemble(attrs, secret=secret, authenticator=authenticator)
            return "otp", raw[:-16] + hmac_md5(secret, raw[:-16] + bytes(16))
        return "otp", assemble(attrs, secret=secret, authenticator=authenticator)

    def wrong_authenticator(self) -> tuple[str, bytes]:
        rng = self.rng
        kind = rng.randrange(5)
        raw = bytearray(request(b"carol", b"carol-pw" + self.wrong_code(), secret=SECRETS["otp"]))
        if kind == 0:  # random Message-Authenticator
            raw[22:38] = rng.randbytes(16)
        elif kind == 1:  # Request Authenticator changed after signing
            raw[4 + rng.randrange(16)] ^= 1 << rng.randrange(8)
        elif kind == 2:  # signed with another client's secret
            raw = bytearray(request(b"carol", self.wrong_code(), secret=SECRETS["legacy"]))
        elif kind == 3:  # Message-Authenticator of the wrong length
            size = rng.choice([2, 3, 17, 19, 34])
            raw = bytearray(assemble(attr(MA, rng.randbytes(size - 2)) + attr(USER_NAME, b"carol")
                                     + attr(USER_PASSWORD, rng.randbytes(16)), secret=SECRETS["otp"], ma=False))
        else:  # an attribute changed after signing
            raw[-1] ^= 1
        return "otp", bytes(raw)

    def proxy_state_without_ma(self) -> tuple[str, bytes]:
        """The BlastRADIUS pattern: Proxy-State and no Message-Authenticator, to both kinds of client."""
        rng = self.rng
        client = rng.choice(["legacy", "legacy", "otp", "pw"])
        extra = b"".join(attr(PROXY_STATE, rng.randbytes(rng.randrange(0, 60))) for _ in range(rng.randint(1, 4)))
        user = rng.choice([b"carol", b"bob", b"dave"])
        return client, request(user, self.wrong_code(), secret=SECRETS[client], ma=False, extra=extra)

    def other_codes(self) -> tuple[str, bytes]:
        rng = self.rng
        code = rng.choice([0, 2, 3, 4, 5, 11, 12, 13, 40, 41, 43, 44, 45, 255])
        ma = rng.random() < 0.7
        raw = request(self.user(), self.wrong_code(), secret=SECRETS["otp"], ma=False,
                      extra=attr(PROXY_STATE, b"p") if rng.random() < 0.3 else b"")
        raw = bytes([code]) + raw[1:]
        if ma:
            raw = assemble(raw[20:], secret=SECRETS["otp"], code=code)
        return "otp", raw

    def chap_eap(self) -> tuple[str, bytes]:
        rng = self.rng
        extra = rng.choice([attr(CHAP_PASSWORD, rng.randbytes(17)), attr(EAP, rng.randbytes(rng.randrange(0, 253))),
                            attr(70, rng.randbytes(16))])
        password = self.wrong_code() if rng.random() < 0.5 else None
        return "otp", request(self.user(), password, secret=SECRETS["otp"], extra=extra)

    def mutated(self) -> tuple[str, bytes]:
        rng = self.rng
        client = "legacy" if rng.random() < 0.1 else "otp"
        b = bytearray(self.base(SECRETS[client], ma=client == "otp"))
        op = rng.randrange(8)
        if op == 0:
            for _ in range(rng.randint(1, 4)):
                b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        elif op == 1:
            for _ in range(rng.randint(1, 4)):
                b[rng.randrange(len(b))] = rng.randrange(256)
        elif op == 2:
            b += rng.randbytes(rng.randint(1, 64))
            if rng.random() < 0.9:
                b[2:4] = len(b).to_bytes(2, "big")
        elif op == 3:
            at = rng.choice([*attribute_offsets(bytes(b)), len(b)])
            value = rng.randbytes(rng.randrange(0, 40))
            b[at:at] = bytes([rng.randrange(256), len(value) + 2]) + value
            b[2:4] = len(b).to_bytes(2, "big")
        elif op == 4:
            offsets = attribute_offsets(bytes(b))
            at = rng.choice(offsets)
            b += b[at:at + b[at + 1]]
            b[2:4] = len(b).to_bytes(2, "big")
        elif op == 5:
            b[0] = rng.randrange(256)
        elif op == 6:
            b[20:] = rng.randbytes(rng.randrange(0, 300))
            b[2:4] = len(b).to_bytes(2, "big")
        else:
            del b[rng.randrange(20, len(b)):]
            b[2:4] = len(b).to_bytes(2, "big")
        packet = bytes(b)
        if client == "otp" and rng.random() < 0.3:
            packet = resign(packet, SECRETS["otp"])  # past the signature check, into the parser and the core
        return client, packet

    def stranger(self) -> tuple[str, bytes]:
        return "stranger", self.base(SECRETS["otp"]) if self.rng.random() < 0.5 else self.random_bytes()[1]

    def store_client(self) -> tuple[str, bytes]:
        """A few well-formed requests through the argon2 path (first_factor store): wrong passwords, bad codes."""
        user = self.rng.choice([b"carol", b"bob", b"fuzz-nobody", b"dave"])
        password = self.rng.choice([b"carol-pw", b"dave-pw", b"x"]) + self.wrong_code()
        if user == b"dave":
            password = b"not-dave-pw" + self.wrong_code()
        return "pw", request(user, password, secret=SECRETS["pw"])


# name -> weight
FAMILIES = {
    "random_bytes": 8, "truncated": 6, "length_field": 6, "oversize": 1, "bad_attribute_length": 8,
    "zero_length_vendor": 6, "pap_lengths": 8, "invalid_utf8": 6, "huge_state": 5, "repeated": 6,
    "wrong_authenticator": 8, "proxy_state_without_ma": 5, "other_codes": 4, "chap_eap": 3, "mutated": 18,
    "stranger": 1.5, "store_client": 0.05,
}


def generate(rng: random.Random, carol: HotpUser) -> Iterator[tuple[str, str, bytes]]:
    """Endless (family, client, packet)."""
    hostile = Hostile(rng, carol)
    names = list(FAMILIES)
    weights = list(FAMILIES.values())
    makers = {name: getattr(hostile, name) for name in names}
    while True:
        for name in rng.choices(names, weights, k=1024):
            client, packet = makers[name]()
            yield name, client, packet
