"""`otp-admin sessions [--active] [--user NAME] [--json]`, the real command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from otpcore.store import SessionEvent
from otpcore.store.sqlite import SqliteStore
from tests.kit.config import config_text
from tests.kit.tools import otp_admin

T0 = 1_700_000_000.0


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "otp.toml"
    path.write_text(config_text(folder=tmp_path))
    assert otp_admin(path, "init").returncode == 0
    store = SqliteStore.open(tmp_path / "otp.sqlite")
    try:
        store.session_start(SessionEvent("vpn", "s-alice", T0, user="alice", nas_address="192.0.2.1",
                                         nas_identifier="OpenVpn", framed_ip="10.8.0.6"))
        store.session_start(SessionEvent("vpn", "s-bob", T0 + 1, user="bob", nas_address="192.0.2.1"))
        store.session_stop(SessionEvent("vpn", "s-bob", T0 + 61, input_octets=2**32 + 1, output_octets=5,
                                        session_time=60, terminate_cause="User-Request"))
    finally:
        store.close()
    return path


def test_sessions_json(config: Path) -> None:
    out = otp_admin(config, "sessions", "--json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [(r["user"], r["status"]) for r in rows] == [("alice", "active"), ("bob", "stopped")]
    alice, bob = rows
    assert alice["start"] == "2023-11-14T22:13:20Z" and alice["stop"] is None
    assert (alice["client"], alice["nas"], alice["framed_ip"], alice["session_id"]) == \
        ("vpn", "OpenVpn", "10.8.0.6", "s-alice")
    assert (bob["input_octets"], bob["output_octets"], bob["session_time"], bob["terminate_cause"]) == \
        (2**32 + 1, 5, 60, "User-Request")
    assert bob["stop"] == "2023-11-14T22:14:21Z"


def test_sessions_filters(config: Path) -> None:
    active = json.loads(otp_admin(config, "sessions", "--active", "--json").stdout)
    assert [r["user"] for r in active] == ["alice"]
    bob = json.loads(otp_admin(config, "sessions", "--user", "bob", "--json").stdout)
    assert [r["session_id"] for r in bob] == ["s-bob"]
    assert json.loads(otp_admin(config, "sessions", "--user", "bob", "--active", "--json").stdout) == []


def test_sessions_table(config: Path) -> None:
    out = otp_admin(config, "sessions")
    assert out.returncode == 0, out.stderr
    header, *lines = out.stdout.splitlines()
    assert header.split()[:4] == ["USER", "CLIENT", "NAS", "SESSION_ID"]
    assert len(lines) == 2 and lines[0].startswith("alice") and "active" in lines[0]
    assert "User-Request" in lines[1] and "stopped" in lines[1]


def test_bad_usage(config: Path) -> None:
    out = otp_admin(config, "sessions", "--bogus")
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1
