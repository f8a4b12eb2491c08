"""Accounting on a real otp-radiusd: its own port, the shared-secret check, the duplicate cache, the store."""

from __future__ import annotations

import base64
import contextlib
import signal
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

from otpbase.radius.constants import (
    ACCOUNTING_ON,
    ACCT_INPUT_OCTETS,
    ACCT_STATUS_TYPE,
    NAS_IP_ADDRESS,
    PROXY_STATE,
    START,
    STOP,
)
from otpcore.admin import Admin
from otpcore.config import load_config
from tests.kit.config import Client, config_text
from tests.kit.ports import free_udp_port
from tests.kit.radius_client import SECRET
from tests.kit.radiusd import RadiusServer
from tests.kit.tools import tool

from .helpers import (
    Udp,
    accounting_request,
    check_response,
    integer,
    ip,
    radclient_acct,
    session_attrs,
    status_server,
)


def test_start_and_stop_are_recorded_and_answered(server: RadiusServer, nas: Udp) -> None:
    start = accounting_request(session_attrs(START, "s1", extra=[(PROXY_STATE, b"px")]), ident=1)
    reply = nas.ask(start)
    assert reply is not None
    assert [v for t, v in check_response(start, reply) if t == PROXY_STATE] == [b"px"]
    (row,) = server.sessions()  # recorded before the answer left
    assert (row.client, row.session_id, row.user, row.status) == ("nas", "s1", "alice", "active")

    stop = accounting_request(session_attrs(STOP, "s1", extra=[(ACCT_INPUT_OCTETS, integer(42))]), ident=2)
    assert nas.ask(stop) is not None
    (row,) = server.sessions()
    assert (row.status, row.input_octets) == ("stopped", 42)
    assert "accounting user=alice client=nas" in server.log()


def test_wrong_secret_gets_no_answer_and_is_counted(server: RadiusServer, nas: Udp) -> None:
    raw = accounting_request(session_attrs(START, "forged"), secret=b"not-the-secret")
    assert nas.ask(raw, timeout=0.5) is None
    assert server.sessions() == []
    assert server.counters()["acct_bad_authenticator"] == 1


def test_a_retransmission_is_answered_from_the_cache_and_recorded_once(server: RadiusServer, nas: Udp) -> None:
    raw = accounting_request(session_attrs(START, "r1"), ident=9)
    first = nas.ask(raw)
    second = nas.ask(raw)  # same source port, ID and authenticator: a retransmission
    assert first is not None and second == first
    assert len(server.sessions()) == 1
    counters = server.counters()
    assert (counters["acct_recorded"], counters["acct_duplicate_answered"]) == (1, 1)
    # A NAS that resends from a new socket (Debian's radiusplugin does) escapes the cache, not the store.
    other = Udp(server.acct_port)
    try:
        assert other.ask(raw) == first
    finally:
        other.close()
    assert len(server.sessions()) == 1
    assert "start (already recorded)" in server.log()


def test_accounting_on_closes_the_nas_sessions(server: RadiusServer, nas: Udp) -> None:
    for i, session in enumerate(("a", "b")):
        assert nas.ask(accounting_request(session_attrs(START, session), ident=i)) is not None
    on = accounting_request([(ACCT_STATUS_TYPE, integer(ACCOUNTING_ON)), (NAS_IP_ADDRESS, ip("192.0.2.1"))],
                            ident=3)
    assert nas.ask(on) is not None
    assert [r.status for r in server.sessions()] == ["closed", "closed"]
    assert "accounting-on: 2 open session(s) closed" in server.log()


def test_status_server_on_the_accounting_port(server: RadiusServer, nas: Udp) -> None:
    raw = status_server()
    reply = nas.ask(raw)
    assert reply is not None
    check_response(raw, reply)


def test_access_request_on_the_accounting_port_is_dropped(server: RadiusServer, nas: Udp) -> None:
    raw = accounting_request(session_attrs(START), code=1)
    assert nas.ask(raw, timeout=0.5) is None
    assert server.counters()["acct_unsupported_code"] == 1


def test_radclient_accounting(server: RadiusServer, require_tool: Callable[[str], str]) -> None:
    radclient_acct(require_tool("radclient"), server.acct_port,
                   'Acct-Status-Type = Start\nAcct-Session-Id = "rc"\nUser-Name = "zoe"\n'
                   "Framed-IP-Address = 10.0.0.5\nMessage-Authenticator = 0x00\n")
    (row,) = server.sessions()
    assert (row.user, row.framed_ip) == ("zoe", "10.0.0.5")


def test_openvpn_static_challenge_password_on_the_auth_port(server: RadiusServer, require_tool: Callable[[str], str]
                                                            ) -> None:
    """User-Password `SCRV1:<base64 password>:<base64 code>` counts as password + code."""
    radclient = require_tool("radclient")
    code = server.add_user("olga", "olga-pw").code()
    password = f"SCRV1:{base64.b64encode(b'olga-pw').decode()}:{base64.b64encode(code.encode()).decode()}"
    out = subprocess.run([radclient, "-x", "-r", "1", "-t", "5", f"127.0.0.1:{server.auth_port}", "auth",
                          SECRET.decode()],
                         input=f'User-Name = "olga"\nUser-Password = "{password}"\nMessage-Authenticator = 0x00\n',
                         capture_output=True, text=True, timeout=20)
    assert "Received Access-Accept" in out.stdout, out.stdout + out.stderr + server.log()


# -- where accounting listens -----------------------------------------------------------------------------------------


def _config(folder: Path, listen: str, accounting_listen: str | None = None) -> Path:
    path = folder / "otp.toml"
    path.write_text(config_text(listen=[listen], accounting_listen=[accounting_listen] if accounting_listen else [],
                                clients=[Client("nas", "127.0.0.1")]))
    with Admin(load_config(path)) as admin:
        admin.init()
    return path


def _run_until_ready(config: Path, *args: str) -> tuple[int, str]:
    """Start otp-radiusd, wait for its ready line (or its exit), stop it; returns (exit status, stderr)."""
    lines = []
    with subprocess.Popen([tool("otp-radiusd"), "--config", str(config), *args], stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if "ready: listening" in line:
                proc.send_signal(signal.SIGTERM)
        return proc.wait(15), "".join(lines)


def test_a_busy_default_accounting_port_is_skipped_with_a_warning(tmp_path: Path) -> None:
    config = _config(tmp_path, f"127.0.0.1:{free_udp_port()}")  # accounting: the default, 1813
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        with contextlib.suppress(OSError):  # somebody else holds it already: just as busy
            holder.bind(("127.0.0.1", 1813))
        code, err = _run_until_ready(config)
    assert code == 0, err
    assert "accounting is off: cannot listen on 127.0.0.1:1813" in err


def test_a_busy_configured_accounting_port_stops_the_start(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("127.0.0.1", 0))
        busy = holder.getsockname()[1]
        config = _config(tmp_path, f"127.0.0.1:{free_udp_port()}", f"127.0.0.1:{busy}")
        code, err = _run_until_ready(config)
    assert code == 1
    assert err.strip().splitlines() == [f"otp-radiusd: radius.accounting_listen: cannot listen on 127.0.0.1:{busy}: "
                                        "Address already in use"]


def test_listen_on_the_command_line_moves_default_accounting_to_the_port_above(tmp_path: Path) -> None:
    config = _config(tmp_path, "127.0.0.1:1812")
    for _ in range(50):
        port = free_udp_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        break
    code, err = _run_until_ready(config, "--listen", f"127.0.0.1:{port}")
    assert code == 0, err
    assert f"ready: listening on 127.0.0.1:{port} (accounting 127.0.0.1:{port + 1})" in err
