"""`otp-web` as a command: one line and the documented exit status when it cannot start, 0 after SIGTERM."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.kit.config import config_text
from tests.kit.ports import free_tcp_port
from tests.kit.tools import tool
from tests.kit.web import WebServer


def otp_web(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("otp-web"), *args], capture_output=True, text=True, timeout=60)


def test_a_config_error_is_exit_2_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "otp.toml"
    config.write_text(config_text(extra='[web]\nlisten = "192.0.2.10:8080"\n'))
    p = otp_web("--config", str(config))
    assert p.returncode == 2 and p.stderr.count("\n") == 1
    assert "web.listen: 192.0.2.10 is not a loopback address" in p.stderr
    assert otp_web("--config", str(tmp_path / "missing.toml")).returncode == 2
    assert otp_web("--bogus").returncode == 2


def test_a_missing_store_or_a_taken_port_is_exit_1(tmp_path: Path, web_server: Callable[..., WebServer]) -> None:
    config = tmp_path / "otp.toml"
    config.write_text(config_text(extra=f'[web]\nlisten = "127.0.0.1:{free_tcp_port()}"\n'))
    p = otp_web("--config", str(config))
    assert p.returncode == 1 and "otp-admin init" in p.stderr and p.stderr.count("\n") == 1
    running = web_server()
    p = otp_web("--config", str(running.config_path))
    assert p.returncode == 1 and p.stderr.strip() == "otp-web: web.listen: Address already in use"


def test_listen_on_the_command_line_is_checked_like_the_key(web_server: Callable[..., WebServer]) -> None:
    web = web_server()
    p = otp_web("--config", str(web.config_path), "--listen", "192.0.2.10:8080")
    assert p.returncode == 2 and "not a loopback address" in p.stderr
