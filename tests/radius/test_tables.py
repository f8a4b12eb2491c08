"""The RADIUS door's client table and duplicate cache, without a server."""

from __future__ import annotations

import ipaddress

from otpcore.config import ClientConfig
from radiusd.clients import ClientTable
from radiusd.dedup import IN_FLIGHT, ReplyCache

# -- client table ------------------------------------------------------------------------------------------------------


def _client(name: str, net: str) -> ClientConfig:
    return ClientConfig(name=name, network=ipaddress.ip_network(net), secret=name.encode())


def test_most_specific_client_wins() -> None:
    table = ClientTable([_client("wide", "10.0.0.0/8"), _client("host", "10.1.2.3/32"), _client("lan", "10.1.2.0/24"),
                         _client("v6", "2001:db8::/32"), _client("v6host", "2001:db8::1/128")])
    assert table.lookup("10.1.2.3").name == "host"  # type: ignore[union-attr]
    assert table.lookup("10.1.2.4").name == "lan"  # type: ignore[union-attr]
    assert table.lookup("10.9.9.9").name == "wide"  # type: ignore[union-attr]
    assert table.lookup("11.0.0.1") is None
    assert table.lookup("::ffff:10.1.2.3").name == "host"  # type: ignore[union-attr]
    assert table.lookup("2001:db8::1").name == "v6host"  # type: ignore[union-attr]
    assert table.lookup("2001:db8::2").name == "v6"  # type: ignore[union-attr]
    assert table.lookup("fe80::1%lo") is None
    assert table.lookup("not-an-address") is None


# -- duplicate cache ---------------------------------------------------------------------------------------------------


def test_reply_cache_in_flight_then_answered_then_expired() -> None:
    cache = ReplyCache(ttl=30)
    key = ("127.0.0.1", 5000, 7, b"a" * 16)
    assert cache.lookup(key, 100.0) is None
    cache.begin(key)
    assert cache.lookup(key, 100.0) is IN_FLIGHT
    cache.finish(key, b"reply", 101.0)
    assert cache.lookup(key, 130.9) == b"reply"
    assert cache.lookup(("127.0.0.1", 5001, 7, b"a" * 16), 102.0) is None  # another port is another request
    assert cache.lookup(key, 131.0) is None
    assert len(cache) == 0


def test_reply_cache_expire_and_abandon() -> None:
    cache = ReplyCache(ttl=30, max_entries=3)
    for i in range(5):
        cache.begin(("h", i, 0, b""))
        cache.finish(("h", i, 0, b""), b"r%d" % i, float(i))
    assert len(cache) == 3  # bounded: the oldest went first
    assert cache.expire(32.5) == 1
    assert cache.lookup(("h", 4, 0, b""), 33.0) == b"r4"
    key = ("h", 9, 0, b"")
    cache.begin(key)
    cache.abandon(key)
    assert cache.lookup(key, 40.0) is None and cache.in_flight == 0
