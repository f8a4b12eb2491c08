"""The files packaging/ ships, checked without building anything: the example config against otpcore.config, the
systemd unit's contract, the maintainer scripts' promises."""

from __future__ import annotations

import dataclasses
import re
import shlex
import tomllib
from pathlib import Path

from otpcore.config import ClientConfig, Policy, RadiusConfig, StoreConfig, TlsConfig, parse_config
from otpcore.delivery_config import SmsConfig, SmtpConfig
from otpcore.ldap_config import LdapConfig
from otpcore.web_config import WebConfig

PACKAGING = Path(__file__).resolve().parents[2] / "packaging"
EXAMPLE = PACKAGING / "otp.toml.example"
# A commented-out key or table header: "#key = value", "#[table]", "#[[array]]".
COMMENTED = re.compile(r"^#(?=\[|[a-z_]+ = )", re.MULTILINE)
# An alternative to the key above it (both cannot be on at once): "# or: key = value".
ALTERNATIVE = re.compile(r"^# or: ([a-z_]+) = ", re.MULTILINE)
# Config fields named differently in the file.
FILE_KEYS = {"sender": {"from"}, "password": {"password", "password_file"}, "token": {"token_file"},
             "bind_password": {"bind_password_file"}}


def uncommented(tmp_path: Path) -> dict:
    """The example with every commented-out key and table switched on (secret files pointed at a real file)."""
    text = COMMENTED.sub("", EXAMPLE.read_text())
    for name in ("localhost.secret", "sms.token", "ldap.password", "intranet.key"):
        (tmp_path / name).write_text("s3cret\n" if name != "intranet.key" else "s3cret-api-key-0123456789\n")
        text = text.replace(f'"/etc/otp/{name}"', f'"{tmp_path / name}"')
    return tomllib.loads(text)


def section_keys(data: dict, table: str) -> set[str]:
    """The keys of a table of the uncommented example, with the alternatives written under them."""
    text = EXAMPLE.read_text()
    start = text.index(f"#[{table}]")
    end = text.find("\n#[", start + 1)
    block = text[start:] if end < 0 else text[start:end]
    for name in table.split("."):
        data = data[name]
    return set(data) | set(ALTERNATIVE.findall(block))


def store_keys(data: dict) -> set[str]:
    """The keys of [store] in the example, with the alternatives written in it (url, password_file)."""
    text = EXAMPLE.read_text()
    block = text[text.index("\n[store]"):text.index("\n[radius]")]
    return set(data["store"]) | set(ALTERNATIVE.findall(block))


def file_keys(cls: type) -> set[str]:
    return set().union(*(FILE_KEYS.get(f.name, {f.name}) for f in dataclasses.fields(cls)))


def test_the_example_as_shipped_gives_the_defaults_and_no_client():
    config = parse_config(tomllib.loads(EXAMPLE.read_text()))
    assert config.store == StoreConfig()
    assert config.radius == RadiusConfig()
    assert config.policy == Policy()
    assert config.radius.clients == ()


def test_every_key_is_documented_with_its_default(tmp_path):
    data = uncommented(tmp_path)
    assert store_keys(data) == {f.name for f in dataclasses.fields(StoreConfig)}
    tls_keys = {f"tls_{f.name}" for f in dataclasses.fields(TlsConfig)}  # [radius] tls_listen, ... make a TlsConfig
    assert set(data["radius"]) == {f.name for f in dataclasses.fields(RadiusConfig)} - {"tls"} | tls_keys
    assert set(data["policy"]) == {f.name for f in dataclasses.fields(Policy)}
    client_keys = set().union(*(set(c) for c in data["radius"]["clients"]))
    expected = {f.name for f in dataclasses.fields(ClientConfig)} - {"network", "tls_only"} | {"address",
                                                                                              "secret_file"}
    assert client_keys == expected
    assert section_keys(data, "delivery.smtp") == file_keys(SmtpConfig)
    assert section_keys(data, "delivery.sms") == file_keys(SmsConfig)

    config = parse_config(data, base=tmp_path)  # every documented key and value is accepted ...
    assert config.policy == Policy()  # ... and the commented values are the defaults
    assert config.store == StoreConfig()
    defaults = RadiusConfig()
    assert (config.radius.listen, config.radius.accounting_listen, config.radius.workers) == (
        defaults.listen, defaults.accounting_listen, defaults.workers)
    assert [c.name for c in config.radius.clients] == ["vpn", "localhost", "site-b"]
    assert config.radius.clients[1].secret == b"s3cret"
    assert config.radius.clients[2].tls_only and config.radius.tls is not None
    assert config.radius.tls.idle_timeout == TlsConfig.idle_timeout
    smtp = config.delivery.smtp
    assert smtp is not None and (smtp.username, smtp.password) == ("otp", "secret")
    assert dataclasses.replace(smtp, username=None, password=None) == SmtpConfig()
    sms = config.delivery.sms
    assert sms is not None and sms.url == "http://127.0.0.1:8080/send" and sms.token == "s3cret"
    assert dataclasses.replace(sms, url=None, token=None) == SmsConfig()
    assert section_keys(data, "ldap") == file_keys(LdapConfig)
    ldap = config.ldap
    assert ldap is not None and ldap.bind_password == "s3cret"
    assert ldap == LdapConfig(urls=ldap.urls, bind_dn=ldap.bind_dn, bind_password="s3cret", base_dn=ldap.base_dn)
    assert section_keys(data, "web") == {f.name for f in dataclasses.fields(WebConfig)}
    assert set(data["web"]["apps"][0]) == {"name", "key_file", "first_factor"}
    web = config.web
    assert dataclasses.replace(web, public_url="", apps=()) == WebConfig()
    assert web.apps[0].key == b"s3cret-api-key-0123456789" and web.public_url == "https://otp.example.org"


def test_the_web_unit_is_installed_not_enabled_and_hardened_like_the_radius_one(unit, web_unit):
    web = web_unit
    assert shlex.split(web["Service"]["ExecStart"][0]) == ["/usr/bin/otp-web", "--config", "/etc/otp/otp.toml"]
    shared = ("User", "Group", "UMask", "StateDirectory", "ReadWritePaths", "NoNewPrivileges", "ProtectSystem",
              "ProtectHome", "PrivateTmp", "PrivateDevices", "CapabilityBoundingSet", "AmbientCapabilities",
              "RestrictAddressFamilies", "RestrictNamespaces", "RestrictSUIDSGID", "LockPersonality",
              "SystemCallArchitectures")
    for key in shared:
        assert web["Service"][key] == unit["Service"][key], key
    assert set(unit["Service"]["SystemCallFilter"]) <= set(web["Service"]["SystemCallFilter"])
    code = [line for line in (PACKAGING / "debian" / "postinst").read_text().splitlines()
            if "otp-web" in line and not line.lstrip().startswith("#")]
    assert code and not any("enable" in line or " start " in line for line in code), code  # only try-restart


def test_the_unit_runs_the_server_as_otp_with_the_shipped_config(unit):
    service = unit["Service"]
    assert shlex.split(service["ExecStart"][0]) == ["/usr/bin/otp-radiusd", "--config", "/etc/otp/otp.toml"]
    assert service["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert service["User"] == ["otp"] and service["Group"] == ["otp"]
    assert service["StateDirectory"] == ["otp"] and service["ReadWritePaths"] == ["/var/lib/otp"]
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]


def test_the_unit_is_hardened(unit):
    service = {key: values[-1] for key, values in unit["Service"].items()}
    for key in ("NoNewPrivileges", "ProtectHome", "PrivateTmp", "PrivateDevices", "ProtectKernelTunables",
                "ProtectKernelModules", "ProtectControlGroups", "RestrictNamespaces", "RestrictSUIDSGID",
                "LockPersonality"):
        assert service[key] == "yes", key
    assert service["ProtectSystem"] == "strict"
    assert service["CapabilityBoundingSet"] == "" and service["AmbientCapabilities"] == ""
    assert service["RestrictAddressFamilies"].split() == ["AF_INET", "AF_INET6", "AF_UNIX"]
    assert "@system-service" in unit["Service"]["SystemCallFilter"]
    assert service["UMask"] == "0077"


def test_the_maintainer_scripts_never_touch_pam_d():
    for name in ("postinst", "prerm", "postrm"):
        code = [line for line in (PACKAGING / "debian" / name).read_text().splitlines()
                if not line.lstrip().startswith("#")]
        assert not any("pam.d" in line for line in code), name


def test_the_config_is_the_only_conffile():
    assert (PACKAGING / "debian" / "conffiles").read_text().split() == ["/etc/otp/otp.toml"]
