"""The RadSec keys of the configuration: [radius] tls_*, a client's tls_subject, and the secret "radsec" of a client
that has none (reached over TLS only)."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from otpcore.config import RADSEC_SECRET, parse_config
from otpcore.errors import ConfigError
from radiusd.clients import ClientTable
from radiusd.tlssetup import server_context
from tests.kit.config import Client
from tests.kit.radiusd import RadiusServer
from tests.kit.radsec import RadsecPki

TLS = {"tls_listen": ["0.0.0.0:2083", "[::]"], "tls_cert": "c.pem", "tls_key": "k.pem", "tls_ca": "/ca.pem"}


def test_tls_keys() -> None:
    config = parse_config({"radius": {**TLS, "tls_idle_timeout": 60,
                                      "clients": [{"address": "10.0.0.0/8", "tls_subject": "nas.example"},
                                                  {"address": "10.1.0.0/16", "secret": "s"}]}}, base=Path("/etc/otp"))
    tls = config.radius.tls
    assert tls is not None
    assert tls.listen == (("0.0.0.0", 2083), ("::", 2083)) and tls.idle_timeout == 60
    assert (tls.cert, tls.key, tls.ca) == (Path("/etc/otp/c.pem"), Path("/etc/otp/k.pem"), Path("/ca.pem"))
    radsec_only, both = config.radius.clients
    assert radsec_only.tls_only and radsec_only.secret == RADSEC_SECRET == b"radsec"
    assert radsec_only.tls_subject == "nas.example" and not both.tls_only and both.secret == b"s"
    # Over UDP a RadSec-only client is nobody: its secret would be "radsec", which anyone can guess.
    assert ClientTable(config.radius.clients).lookup("10.2.0.1") is None
    assert ClientTable(config.radius.clients, tls=True).lookup_tls("10.2.0.1", {"nas.example"}) is radsec_only
    assert ClientTable(config.radius.clients, tls=True).lookup_tls("10.2.0.1", {"other"}) is None
    assert ClientTable(config.radius.clients, tls=True).lookup_tls("10.1.0.1", set()) is both


@pytest.mark.parametrize(("radius", "message"), [
    ({"tls_cert": "c.pem"}, "radius.tls_cert: RadSec needs radius.tls_listen too"),
    ({**TLS, "tls_ca": 5}, "radius.tls_ca: must be a string"),
    ({k: v for k, v in TLS.items() if k != "tls_key"}, "radius.tls_key: missing (radius.tls_listen is set)"),
    ({**TLS, "tls_idle_timeout": 0}, "radius.tls_idle_timeout: must be an integer from 1 to 86400"),
    ({"clients": [{"address": "10.0.0.1"}]}, "radius.clients[0].secret: missing (without one a client is reached "
                                             "only over RadSec, and radius.tls_listen is not set)"),
    ({"clients": [{"address": "10.0.0.1", "secret": "a", "secret_file": "f"}]},
     "radius.clients[0].secret: give one of secret or secret_file, not both"),
    ({**TLS, "clients": [{"address": "10.0.0.1", "tls_subject": ""}]}, "radius.clients[0].tls_subject: must not be "
                                                                        "empty"),
])
def test_bad_tls_keys_are_refused_with_one_line(radius: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"radius": radius})
    assert str(info.value) == message


def test_the_server_context_wants_tls12_and_a_client_certificate(tmp_path: Path) -> None:
    pki = RadsecPki(tmp_path)
    config = parse_config({"radius": pki.radius_keys()}).radius.tls
    assert config is not None
    context = server_context(config)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2 and context.verify_mode == ssl.CERT_REQUIRED


def test_a_certificate_that_cannot_be_loaded_stops_the_start_with_one_line(make_server: object,
                                                                           tmp_path: Path) -> None:
    pki = RadsecPki(tmp_path)
    keys = pki.radius_keys()
    keys["tls_key"] = str(tmp_path / "missing.key")
    server: RadiusServer = make_server(clients=[Client("nas", "127.0.0.1", secret=None)],  # type: ignore[operator]
                                       radius=keys)
    server.start(wait=False)
    assert server.wait_exit() == 2
    lines = server.log().splitlines()
    assert len(lines) == 1 and lines[0].startswith("otp-radiusd: radius.tls_cert, radius.tls_key: cannot load ")
    assert "missing.key" in lines[0]
