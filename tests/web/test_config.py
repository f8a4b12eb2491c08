"""[web] and [[web.apps]]: checked at load time like every other key, one line naming the key that is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from otpcore.config import parse_config
from otpcore.errors import ConfigError
from otpcore.web_config import WebConfig

KEY = "k" * 20


def web(table: dict, **extra: object) -> WebConfig:
    return parse_config({"web": table, **extra}).web


def test_defaults() -> None:
    config = web({})
    assert config.listen == ("127.0.0.1", 8080) and config.self_enrollment == "open"
    assert config.enrollment_types == ("totp",) and config.apps == () and not config.secure_cookies
    assert config.enrollment_hint() == ""  # no public_url: nowhere to point at


def test_a_full_table(tmp_path: Path) -> None:
    (tmp_path / "app.key").write_text(KEY + "\n")
    config = parse_config({"web": {
        "listen": "0.0.0.0:8443", "tls_cert": "cert.pem", "tls_key": "key.pem", "public_url": "https://otp.example/",
        "self_enrollment": "invite", "enrollment_types": ["totp", "email"], "issuer": "Example",
        "apps": [{"name": "intranet", "key_file": "app.key", "first_factor": "none"}]}}, base=tmp_path).web
    assert config.tls and config.secure_cookies and config.tls_cert == tmp_path / "cert.pem"
    assert config.public_url == "https://otp.example" and config.enrollment_hint() == "https://otp.example"
    assert config.apps[0].key == KEY.encode() and config.apps[0].first_factor == "none"


@pytest.mark.parametrize(("table", "error"), [
    ({"listen": "10.0.0.1:8080"}, "web.listen: 10.0.0.1 is not a loopback address"),
    ({"listen": "host:80"}, "web.listen:"),
    ({"tls_cert": "c.pem"}, "web.tls_cert: give both"),
    ({"self_enrollment": "maybe"}, "web.self_enrollment: must be one of open, invite, off"),
    ({"enrollment_types": ["totp", "yubikey"]}, "web.enrollment_types: 'yubikey' is not one of"),
    ({"public_url": "otp.example.org"}, "web.public_url: not an http(s) URL"),
    ({"colour": "blue"}, "web.colour: unknown key"),
    ({"apps": [{"name": "a", "key": "short"}]}, "web.apps[0].key: at least 16 characters"),
    ({"apps": [{"name": "a"}]}, "web.apps[0].key: give exactly one of key or key_file"),
    ({"apps": [{"name": "a", "key": KEY}, {"name": "a", "key": KEY + "x"}]}, "duplicate application name 'a'"),
    ({"apps": [{"name": "a", "key": KEY, "first_factor": "ldap"}]}, "web.apps[0].first_factor: ldap needs"),
    ({"apps": [{"name": "a", "key_file": "/nonexistent/key"}]}, "web.apps[0].key_file: cannot read"),
])
def test_bad_keys_are_refused_naming_the_key(table: dict, error: str) -> None:
    with pytest.raises(ConfigError) as info:
        web(table)
    assert error in str(info.value)


def test_a_proxy_in_front_allows_any_address() -> None:
    config = web({"listen": "0.0.0.0:8080", "behind_proxy": True})
    assert config.listen == ("0.0.0.0", 8080) and config.secure_cookies


def test_no_token_hint_is_a_policy_key() -> None:
    assert parse_config({"policy": {"no_token_hint": False}}).policy.no_token_hint is False
    with pytest.raises(ConfigError, match=r"policy\.no_token_hint: must be true or false"):
        parse_config({"policy": {"no_token_hint": "yes"}})
