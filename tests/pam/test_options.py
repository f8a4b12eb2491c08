"""Module arguments as PAM passes them (brackets already stripped by libpam)."""

from __future__ import annotations

import pytest

from pam_module.options import DEFAULT_PROMPT, FORWARD_PROMPT, OptionError, parse_options, parse_server


def test_defaults():
    o = parse_options([])
    assert o.mode == "local" and o.config == "/etc/otp/otp.toml" and o.servers == []
    assert o.timeout == 3.0 and o.retries == 1 and o.digits == 6
    assert not (o.use_first_pass or o.try_first_pass or o.forward_pass or o.nullok or o.debug)
    assert o.prompt_text() == DEFAULT_PROMPT == "One-time password: "


def test_all_options():
    o = parse_options(["mode=radius", "server=10.0.0.1", "server=[::1]:1645", "server=a.example:1812,b.example",
                       "secret_file=/etc/otp/s", "timeout=0.5", "retries=0", "nas_identifier=host1",
                       "prompt=Code please: ", "use_first_pass", "try_first_pass", "forward_pass", "nullok", "debug",
                       "digits=8", "pythonpath=/a:/b"])
    assert o.servers == [("10.0.0.1", 1812), ("::1", 1645), ("a.example", 1812), ("b.example", 1812)]
    assert (o.secret_file, o.timeout, o.retries, o.nas_identifier) == ("/etc/otp/s", 0.5, 0, "host1")
    assert o.prompt_text() == "Code please: "
    assert o.use_first_pass and o.try_first_pass and o.forward_pass and o.nullok and o.debug
    assert o.digits == 8 and o.pythonpath == ["/a", "/b"]


def test_forward_pass_default_prompt_asks_for_both():
    assert parse_options(["forward_pass"]).prompt_text() == FORWARD_PROMPT
    assert parse_options(["first_factor=store"]).prompt_text() == FORWARD_PROMPT


def test_unknown_arguments_are_kept_for_the_log():
    o = parse_options(["frobnicate", "colour=blue"])
    assert o.unknown == ["frobnicate", "colour=blue"]


@pytest.mark.parametrize("args", [
    ["mode=ldap"],
    ["mode=radius"],  # no server
    ["mode=radius", "server=127.0.0.1"],  # no secret file
    ["mode=radius", "server=127.0.0.1", "secret_file=/x", "first_factor=store"],
    ["timeout=0"], ["timeout=abc"], ["timeout=nan"], ["retries=-1"], ["retries=x"], ["digits=3"],
    ["first_factor=pam"], ["server=host:0"], ["server=host:99999"], ["server=[::1"], ["config="],
])
def test_bad_values_are_errors(args):
    with pytest.raises(OptionError):
        parse_options(args)


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1", ("127.0.0.1", 1812)), ("127.0.0.1:1645", ("127.0.0.1", 1645)), ("[::1]", ("::1", 1812)),
    ("[fe80::1]:18120", ("fe80::1", 18120)), ("::1", ("::1", 1812)), ("radius.example", ("radius.example", 1812)),
])
def test_server_default_port_1812(text, expected):
    assert parse_server(text) == expected
