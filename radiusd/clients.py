"""The client table: which configured client a source address belongs to (the most specific network wins)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from otpcore.config import ClientConfig

__all__ = ["ClientTable"]

_CACHE_LIMIT = 65_536  # source addresses remembered (known or not); spoofed floods just refill it


class ClientTable:
    """Immutable once built; a reload builds a new table. Lookups are cached per source address string."""

    def __init__(self, clients: Iterable[ClientConfig]) -> None:
        # Longest prefix first: the first match is the most specific one.
        self._clients = sorted(clients, key=lambda c: c.network.prefixlen, reverse=True)
        self._cache: dict[str, ClientConfig | None] = {}

    def __len__(self) -> int:
        return len(self._clients)

    def lookup(self, host: str) -> ClientConfig | None:
        try:
            return self._cache[host]
        except KeyError:
            pass
        client = self._match(host)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[host] = client
        return client

    def _match(self, host: str) -> ClientConfig | None:
        try:
            ip = ipaddress.ip_address(host.partition("%")[0])  # drop an IPv6 scope (fe80::1%eth0)
        except ValueError:
            return None
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # an IPv4 client seen on a dual-stack socket
        for client in self._clients:
            if client.network.version == ip.version and ip in client.network:
                return client
        return None
