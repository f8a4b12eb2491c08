"""otpbase.hostport: the one host:port parser of the config, `otp-radiusd --listen` and the PAM module's server=."""

from __future__ import annotations

import pytest

from otpbase.hostport import parse_hostport


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1", ("127.0.0.1", 99)), ("127.0.0.1:1645", ("127.0.0.1", 1645)), ("[::1]", ("::1", 99)),
    ("[fe80::1]:18120", ("fe80::1", 18120)), ("::1", ("::1", 99)), ("radius.example", ("radius.example", 99)),
    (" 10.0.0.1:1812 ", ("10.0.0.1", 1812)), ("[::]:1", ("::", 1)), ("host:65535", ("host", 65535)),
])
def test_host_and_port(text: str, expected: tuple[str, int]) -> None:
    assert parse_hostport(text, 99) == expected


@pytest.mark.parametrize(("text", "reason"), [
    ("host:0", "bad port"), ("host:65536", "bad port"), ("host:x", "bad port"), ("host:١٢", "bad port"),
    ("host:-1", "bad port"), ("[::1", "expected [ipv6]:port"), ("[::1]x", "expected [ipv6]:port"),
    (":1812", "missing host"), ("", "missing host"), ("[]:1812", "missing host"),
])
def test_bad_text_is_one_value_error_quoting_it(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=r"^[^\n]*$") as caught:
        parse_hostport(text, 1812)
    assert reason in str(caught.value) and repr(text.strip()) in str(caught.value)
