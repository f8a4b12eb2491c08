"""Fixtures of the LDAP first-factor tests: the kit's private slapd in both flavours (OpenLDAP, AD-like), shared by
the tests that only read it, a fresh one for those that change it, and installations pointing at them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.kit.mail import Mailbox
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
