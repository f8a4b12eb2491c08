"""The client table: which configured client a source address belongs to (the most specific network wins).

Over UDP a client is found by its address alone, among the clients that have a shared secret; over TLS (RadSec) by
its address and its certificate's names, among all of them (a client with `tls_subject` needs its certificate to
carry that name)."""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Iterable, Iterator

from otpcore.config import ClientConfig

__all__ = ["ClientTable"]

_CACHE_LIMIT = 65_536  # source addresses remembered (known or not); spoofed floods just refill it


class ClientTable:
    """Immutable once built; a reload builds a new table. Lookups are cached per source address string."""

    def __init__(self, clients: Iterable[ClientConfig], *, tls: bool = False) -> None:
        # Longest prefix first: the first match is the most specific one.
        self._clients = sorted((c for c in clients if tls or not c.tls_only), key=lambda c: c.network.prefixlen,
                               reverse=True)
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

    def lookup_tls(self, host: str, names: Collection[str]) -> ClientConfig | None:
        """The most specific client of this address whose tls_subject, if it has one, is among `names` (the peer
        certificate's subject common name and subjectAltNames, DNS names in lower case)."""
        for client in self._matches(host):
            subject = client.tls_subject
            if subject is None or subject in names or subject.lower() in names:
                return client
        return None

    def _match(self, host: str) -> ClientConfig | None:
        return next(self._matches(host), None)

    def _matches(self, host: str) -> Iterator[ClientConfig]:
        try:
            ip = ipaddress.ip_address(host.partition("%")[0])  # drop an IPv6 scope (fe80::1%eth0)
        except ValueError:
            return
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # an IPv4 client seen on a dual-stack socket
        for client in self._clients:
            if client.network.version == ip.version and ip in client.network:
                yield client
