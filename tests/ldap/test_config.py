"""The [ldap] table: defaults, and one clear error naming the key for each bad value."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from otpcore.config import parse_config
from otpcore.errors import ConfigError
from otpcore.ldap_config import DEFAULT_USER_FILTER


def table(folder: Path, **overrides: Any) -> dict[str, Any]:
    (folder / "ldap.password").write_text("service-secret\n")
    values = {"urls": ["ldaps://dc1.example.org", "ldaps://dc2.example.org:3269"],
              "bind_dn": "cn=otp,dc=example,dc=org", "bind_password_file": "ldap.password",
              "base_dn": "dc=example,dc=org", **overrides}
    return {k: v for k, v in values.items() if v is not None}


def test_defaults_and_the_password_read_from_its_file(tmp_path: Path):
    config = parse_config({"ldap": table(tmp_path)}, base=tmp_path)
    ldap = config.ldap
    assert ldap is not None
    assert ldap.urls == ("ldaps://dc1.example.org", "ldaps://dc2.example.org:3269")
    assert (ldap.bind_password, ldap.start_tls, ldap.ca_file, ldap.user_filter, ldap.email_attribute,
            ldap.phone_attribute, ldap.group_dn, ldap.timeout) == (
        "service-secret", False, None, DEFAULT_USER_FILTER, "mail", "mobile", "", 2)
    assert "service-secret" not in repr(config)
    assert parse_config({}).ldap is None


def test_start_tls_and_a_ca_file(tmp_path: Path):
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    ldap = parse_config({"ldap": table(tmp_path, urls=["ldap://dc1.example.org"], start_tls=True,
                                       ca_file="ca.pem")}, base=tmp_path).ldap
    assert ldap is not None and ldap.start_tls and ldap.ca_file == tmp_path / "ca.pem"


@pytest.mark.parametrize(("overrides", "error"), [
    ({"urls": ["ldap://dc1.example.org"]},
     "ldap.urls: ldap://dc1.example.org would send passwords in the clear: use ldaps:// or start_tls = true"),
    ({"urls": []}, "ldap.urls: must be a list of ldaps:// or ldap:// URLs"),
    ({"urls": [389]}, "ldap.urls: must be a list of ldaps:// or ldap:// URLs"),
    ({"urls": ["ldapi:///run/slapd/ldapi"]}, "ldap.urls: must be ldaps://HOST[:PORT] or ldap://HOST[:PORT], not "),
    ({"urls": ["ldaps://dc1/dc=example,dc=org"]}, "ldap.urls: must be ldaps://HOST[:PORT]"),
    ({"urls": ["ldaps://dc1:99999"]}, "ldap.urls: not a URL: 'ldaps://dc1:99999'"),
    ({"bind_dn": None}, "ldap.bind_dn: missing"),
    ({"base_dn": " "}, "ldap.base_dn: must not be empty"),
    ({"bind_password_file": None}, "ldap.bind_password_file: missing"),
    ({"bind_password_file": "nowhere"}, "ldap.bind_password_file: cannot read "),
    ({"ca_file": "nowhere.pem"}, "ldap.ca_file: cannot read "),
    ({"timeout": 0}, "ldap.timeout: must be an integer from 1 to 60"),
    ({"timeout": 1.5}, "ldap.timeout: must be an integer from 1 to 60"),
    ({"user_filter": "(uid=%s)"}, "ldap.user_filter: must be a parenthesised LDAP filter containing {user}"),
    ({"user_filter": "uid={user}"}, "ldap.user_filter: must be a parenthesised LDAP filter containing {user}"),
    ({"email_attribute": "mail)(x"}, "ldap.email_attribute: not an attribute name"),
    ({"group": "cn=vpn"}, "ldap.group: unknown key"),
])
def test_bad_values_are_named(tmp_path: Path, overrides: dict[str, Any], error: str):
    with pytest.raises(ConfigError) as raised:
        parse_config({"ldap": table(tmp_path, **overrides)}, base=tmp_path)
    assert str(raised.value).startswith(error)


def test_an_empty_password_file(tmp_path: Path):
    data = {"ldap": table(tmp_path)}
    (tmp_path / "ldap.password").write_text("\n")
    with pytest.raises(ConfigError, match=r"^ldap.bind_password_file: .*ldap.password is empty$"):
        parse_config(data, base=tmp_path)


def test_a_client_with_first_factor_ldap_needs_the_table(tmp_path: Path):
    client = {"name": "vpn", "address": "10.0.0.0/24", "secret": "s", "first_factor": "ldap"}
    with pytest.raises(ConfigError, match=r"^radius.clients\[0\].first_factor: ldap needs an \[ldap\] table"):
        parse_config({"radius": {"clients": [client]}})
    config = parse_config({"radius": {"clients": [client]}, "ldap": table(tmp_path)}, base=tmp_path)
    assert config.radius.clients[0].first_factor == "ldap"


def test_the_readme_examples_are_accepted(tmp_path: Path):
    """The AD and OpenLDAP examples of the README's section "Users from Active Directory or LDAP", with their files."""
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    start = text.index("## Users from Active Directory or LDAP")
    blocks = re.findall(r"^```toml\n(.*?)^```$", text[start:text.index("\n## ", start)], re.MULTILINE | re.DOTALL)
    assert len(blocks) == 2
    for block in blocks:
        for path in set(re.findall(r'"(/etc/otp/[^"]+)"', block)):
            (tmp_path / Path(path).name).write_text("s3cret\n")
            block = block.replace(path, str(tmp_path / Path(path).name))
        ldap = parse_config(tomllib.loads(block)).ldap
        assert ldap is not None and ldap.bind_password == "s3cret" and "{user}" in ldap.user_filter
