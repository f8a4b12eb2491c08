"""The auth line for `otp-admin pam-config`, and how pam_otp.py finds the package inside pam_python."""

from __future__ import annotations

import importlib.util
import sys
import sysconfig
from pathlib import Path

import pytest

import pam_module
from pam_module.options import parse_options
from pam_module.pamconfig import auth_line, compatibility_warnings, module_path, pam_quote, python_path

from .pamkit import split_pam_args


def test_local_line():
    line = auth_line("local", config="/etc/otp/otp.toml")
    words = split_pam_args(line)
    assert words[:3] == ["auth", "required", "pam_python.so"]
    assert words[3] == str(module_path()) and Path(words[3]).is_file()
    assert Path(words[3]).parent == Path(pam_module.__file__).resolve().parent
    site = str(Path(sysconfig.get_path("purelib")).resolve())
    assert f"pythonpath={site}" in words  # this venv: where cryptography & co. are installed
    assert words[-2:] == ["mode=local", "config=/etc/otp/otp.toml"]
    parse_options(words[4:])


def test_radius_line_and_options():
    line = auth_line("radius", ["10.0.0.1", "[2001:db8::1]:1645"], "/etc/otp/pam.secret", control="requisite",
                     options=["nullok", "prompt=Code for ssh: "])
    words = split_pam_args(line)
    assert words[1] == "requisite"
    o = parse_options(words[4:])
    assert o.mode == "radius" and o.servers == [("10.0.0.1", 1812), ("2001:db8::1", 1645)]
    assert o.secret_file == "/etc/otp/pam.secret" and o.nullok and o.prompt == "Code for ssh: "
    assert "[prompt=Code for ssh: ]" in line


def test_relative_paths_are_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert f"config={tmp_path}/otp.toml" in auth_line("local", config="otp.toml")
    assert f"secret_file={tmp_path}/s" in auth_line("radius", ["h:1"], "s")


@pytest.mark.parametrize(("kwargs", "text"), [
    ({"mode": "ldap"}, "mode"),
    ({"mode": "radius", "secret_file": "/s"}, "server"),
    ({"mode": "radius", "servers": ["h"]}, "secret"),
    ({"mode": "radius", "servers": ["h:0"], "secret_file": "/s"}, "port"),
    ({"mode": "local", "servers": ["h"]}, "radius"),
])
def test_bad_requests(kwargs, text):
    with pytest.raises(ValueError, match=text):
        auth_line(**kwargs)


def test_quoting():
    assert pam_quote("mode=local") == "mode=local"
    assert pam_quote("prompt=Code: ") == "[prompt=Code: ]"
    assert pam_quote("prompt=[x]") == "prompt=[x]"
    assert pam_quote("[odd]") == "[[odd\\]]"
    assert split_pam_args(pam_quote("prompt=a ]b")) == ["prompt=a ]b"]


def test_python_path_is_the_venv_site_dir():
    assert python_path() == [str(Path(sysconfig.get_path("purelib")).resolve())]


def test_this_host_is_compatible():
    assert compatibility_warnings() == []  # pam_python.so embeds python3.11, as the venv runs


def test_bootstrap_puts_the_venv_ahead_of_debian_packages(monkeypatch):
    spec = importlib.util.spec_from_file_location("pam_otp_under_test", module_path())
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    site = str(Path(sysconfig.get_path("purelib")).resolve())
    fake = ["/usr/lib/python311.zip", "/usr/lib/python3.11", "/usr/lib/python3.11/lib-dynload",
            "/usr/local/lib/python3.11/dist-packages", "/usr/lib/python3/dist-packages"]
    monkeypatch.setattr(sys, "path", list(fake))
    mod._add_site_dirs([site])
    assert sys.path[:4] == [*fake[:3], site]  # as in the venv: its packages win over python3-cryptography & co.
    assert sys.path[-2:] == fake[-2:]
