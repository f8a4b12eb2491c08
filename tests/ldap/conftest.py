"""Fixtures of the LDAP first-factor tests: the kit's private slapd in both flavours (OpenLDAP, AD-like), shared by
the tests that only read it, a fresh one for those that change it, and installations pointing at them."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.kit.config import Client
from tests.kit.mail import Mailbox
from tests.kit.radiusd import RadiusServer
from tests.kit.slapd import Slapd, running_slapd

from .kit import Site, ldap_table

__all__ = ["Mailbox"]


@pytest.fixture(scope="session")
def openldap() -> Iterator[Slapd]:
    with running_slapd("openldap") as directory:
        yield directory


@pytest.fixture(scope="session")
def ad() -> Iterator[Slapd]:
    with running_slapd("ad") as directory:
        yield directory


@pytest.fixture(params=["openldap", "ad"])
def directory(request: pytest.FixtureRequest) -> Slapd:
    """Each flavour in turn (read only: tests that add entries take `fresh`)."""
    return request.getfixturevalue(request.param)


@pytest.fixture(params=["openldap", "ad"])
def fresh(request: pytest.FixtureRequest) -> Iterator[Slapd]:
    """A slapd of each flavour for this test alone (it may add and change entries)."""
    with running_slapd(request.param) as directory:
        yield directory


@pytest.fixture
def make_site(tmp_path: Path) -> Iterator[Callable[..., Site]]:
    """make_site(directory, urls=..., extra=TOML, policy=..., **ldap_overrides) -> an initialised installation."""
    sites: list[Site] = []

    def make(directory: Slapd, *, extra: str = "", policy: dict[str, Any] | None = None, **ldap: Any) -> Site:
        folder = tmp_path / f"site{len(sites)}"
        folder.mkdir()
        site = Site.make(folder, ldap_table(directory, folder, **ldap), extra, **(policy or {}))
        sites.append(site)
        return site

    yield make
    for site in sites:
        site.close()


@pytest.fixture
def radius_server(tmp_path: Path) -> Iterator[Callable[..., RadiusServer]]:
    """make(directory, urls=None, extra=TOML) -> otp-radiusd (not started) whose config has an [ldap] table for that
    directory, then `extra`; clients "vpn" (127.0.0.1, first_factor ldap) and "otp" (127.0.0.2, the code alone)."""
    started: list[RadiusServer] = []

    def make(directory: Slapd, urls: Sequence[str] | None = None, extra: str = "") -> RadiusServer:
        folder = tmp_path / f"radiusd{len(started)}"
        folder.mkdir()
        clients = [Client("vpn", "127.0.0.1", first_factor="ldap"), Client("otp", "127.0.0.2", first_factor="none")]
        server = RadiusServer(folder, clients=clients,
                              extra_config=ldap_table(directory, folder, urls=urls) + "\n" + extra)
        started.append(server)
        return server

    yield make
    for server in started:
        if server.proc is not None:
            assert server.stop() == 0, server.log()
