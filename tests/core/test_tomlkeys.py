"""One set of TOML getters for every section: the same fault gets the same one-line error, naming the key."""

from __future__ import annotations

from typing import Any

import pytest

from otpcore.config import parse_config
from otpcore.errors import ConfigError


@pytest.mark.parametrize(("data", "message"), [
    ({"policy": {"max_failures": "5"}}, "policy.max_failures: must be an integer"),
    ({"policy": {"max_failures": True}}, "policy.max_failures: must be an integer"),
    ({"policy": {"totp_window": 101}}, "policy.totp_window: must be an integer from 0 to 100"),
    ({"policy": {"oob_length": 11}}, "policy.oob_length: must be an integer from 4 to 10"),
    ({"radius": {"workers": 0}}, "radius.workers: must be at least 1"),
    ({"radius": {"login_threads": 0}}, "radius.login_threads: must be an integer from 1 to 64"),
    ({"radius": {"login_threads": "4"}}, "radius.login_threads: must be an integer from 1 to 64"),
    ({"delivery": {"smtp": {"port": "25"}}}, "delivery.smtp.port: must be an integer from 1 to 65535"),
    ({"delivery": {"smtp": {"port": 0}}}, "delivery.smtp.port: must be an integer from 1 to 65535"),
    ({"policy": {"challenge": "yes"}}, "policy.challenge: must be true or false"),
    ({"delivery": {"smtp": {"starttls": 1}}}, "delivery.smtp.starttls: must be true or false"),
    ({"policy": {"pam_service": 1}}, "policy.pam_service: must be a string"),
    ({"delivery": {"smtp": {"host": 1}}}, "delivery.smtp.host: must be a string"),
    ({"delivery": {"smtp": {"username": ""}}}, "delivery.smtp.username: must not be empty"),
    ({"policy": {"no_token": "maybe"}}, "policy.no_token: must be one of reject, accept"),
    ({"polcy": {}}, "polcy: unknown key"),
    ({"policy": {"max_failure": 3}}, "policy.max_failure: unknown key"),
    ({"delivery": {"smtp": {"hots": "x"}}}, "delivery.smtp.hots: unknown key"),
    ({"policy": 3}, "policy: must be a table"),
    ({"delivery": {"sms": "x"}}, "delivery.sms: must be a table"),
    ({"radius": {"clients": [{"secret": "s"}]}}, "radius.clients[0].address: missing"),
    ({"radius": {"listen": ["127.0.0.1:99999"]}}, "radius.listen: bad port in '127.0.0.1:99999'"),
    ({"radius": {"listen": ["[::1"]}}, "radius.listen: expected [ipv6]:port, got '[::1'"),
])
def test_the_key_and_the_fault_in_one_line(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    assert str(caught.value) == message


def test_relative_paths_are_relative_to_the_config_folder(tmp_path: Any) -> None:
    config = parse_config({"store": {"path": "otp.sqlite", "key_file": "/etc/otp/otp.key"},
                           "delivery": {"smtp": {"ca_file": "ca.pem"}}}, base=tmp_path)
    assert config.store.path == tmp_path / "otp.sqlite"
    assert str(config.store.key_file) == "/etc/otp/otp.key"
    assert config.delivery.smtp is not None and config.delivery.smtp.ca_file == tmp_path / "ca.pem"


def test_login_threads_default_and_set() -> None:
    assert parse_config({}).radius.login_threads == 4
    assert parse_config({"radius": {"login_threads": 1}}).radius.login_threads == 1
