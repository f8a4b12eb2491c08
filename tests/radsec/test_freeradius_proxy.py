"""FreeRADIUS 3.2 (Debian) as a RadSec client: radclient -> FreeRADIUS (UDP) -> otp-radiusd (TLS, its certificate)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.kit.config import Client
from tests.kit.radiusd import RadiusServer
from tests.kit.radsec import RadsecPki

from .freeradius_proxy import FreeradiusProxy


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RadiusServer, FreeradiusProxy]]:
    folder = tmp_path_factory.mktemp("freeradius-proxy")
    pki = RadsecPki(folder)
    (folder / "server").mkdir()
    server = RadiusServer(folder / "server", clients=[Client("freeradius", "127.0.0.1", secret=None,
                                                             tls_subject="fr-proxy")],
                          radius=pki.radius_keys())
    server.start()
    proxy = FreeradiusProxy(folder, pki, pki.client("fr-proxy"))
    try:
        yield server, proxy
    finally:
        proxy.stop()
        assert server.stop() == 0, server.log()


def test_freeradius_proxies_password_and_code_over_tls(setup: tuple[RadiusServer, FreeradiusProxy]) -> None:
    server, proxy = setup
    user = server.add_user("frtls", "pw")
    done = proxy.radclient(f'User-Name = "frtls"\nUser-Password = "pw{user.code()}"\n')
    assert "Received Access-Accept" in done.stdout, done.stdout + done.stderr + proxy.log()[-4000:]
    done = proxy.radclient(f'User-Name = "frtls"\nUser-Password = "pw{user.wrong_code()}"\n')
    assert "Received Access-Reject" in done.stdout, done.stdout + done.stderr
    decisions = server.decisions("frtls")
    assert [d["result"] for d in decisions] == ["accept", "reject"] and decisions[0]["client"] == "freeradius"
    assert "client=freeradius names=fr-proxy protocol=TLSv1" in server.log()


def test_the_password_challenge_reaches_the_nas_through_freeradius(
        setup: tuple[RadiusServer, FreeradiusProxy]) -> None:
    server, proxy = setup
    server.add_user("frchal", "pw")
    done = proxy.radclient('User-Name = "frchal"\nUser-Password = "pw"\n')
    assert "Received Access-Challenge" in done.stdout, done.stdout + done.stderr
    assert [d["result"] for d in server.decisions("frchal")] == ["challenge"]
