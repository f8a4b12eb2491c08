"""Text a NAS sends (User-Name, Acct-Session-Id, NAS-Identifier) reaches the admin's terminal and the server log
escaped: a forged newline cannot fake a row or a log line, an ANSI sequence cannot clear the screen. `--json` keeps
the exact text. Sent by FreeRADIUS's radclient to a real otp-radiusd, read back with the real otp-admin."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable

from otpbase.escape import escape
from tests.kit.radius_client import SECRET
from tests.kit.radiusd import RadiusServer

# A User-Name whose second line poses as an audit row that accepted the admin.
FORGED = "mallory\n2026-01-01T00:00:00Z  admin  radius  nas  accept  ok"
CLEAR_SCREEN = "eve\x1b[2J\x1b[H"
NAS_TITLE = "nas\x1b]0;owned\x07"  # sets the terminal's title


def radclient_text(value: str) -> str:
    """A value as radclient reads it in double quotes: control characters as octal escapes."""
    out = []
    for c in value:
        if c in '"\\':
            out.append("\\" + c)
        elif c.isprintable():
            out.append(c)
        else:
            out.append(f"\\{ord(c):03o}")
    return '"' + "".join(out) + '"'


def send(radclient: str, port: int, kind: str, attributes: dict[str, str]) -> str:
    lines = [f"{k} = {radclient_text(v)}" for k, v in attributes.items()] + ["Message-Authenticator = 0x00"]
    out = subprocess.run([radclient, "-x", "-r", "1", "-t", "5", f"127.0.0.1:{port}", kind, SECRET.decode()],
                         input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=30)
    return out.stdout + out.stderr


def otp_admin(server: RadiusServer, *args: str) -> str:
    out = server.otp_admin(*args)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_network_text_is_escaped_in_tables_and_log_and_exact_in_json(
        server: RadiusServer, require_tool: Callable[[str], str]) -> None:
    radclient = require_tool("radclient")
    for name in (FORGED, CLEAR_SCREEN):
        reply = send(radclient, server.auth_port, "auth", {"User-Name": name, "User-Password": "pw123456"})
        assert "Received Access-Reject" in reply, reply + server.log()
        reply = send(radclient, server.acct_port, "acct", {
            "Acct-Status-Type": "Start", "Acct-Session-Id": f"s\n{name}", "User-Name": name,
            "NAS-Identifier": NAS_TITLE})
        assert "Received Accounting-Response" in reply, reply + server.log()

    audit = otp_admin(server, "audit")
    assert "\x1b" not in audit and "\x07" not in audit
    rows = audit.splitlines()[1:]  # under the header: one row per request, none forged
    assert len(rows) == 2, audit
    assert escape(FORGED) in rows[0] and escape(CLEAR_SCREEN) in rows[1]
    assert [json.loads(otp_admin(server, "audit", "--json"))[i]["user"] for i in (0, 1)] == [FORGED, CLEAR_SCREEN]

    sessions = otp_admin(server, "sessions")
    assert "\x1b" not in sessions and "\x07" not in sessions
    rows = sessions.splitlines()[1:]
    assert len(rows) == 2, sessions
    assert escape(FORGED) in rows[0] and escape(f"s\n{FORGED}") in rows[0]
    assert escape(CLEAR_SCREEN) in rows[1] and escape(NAS_TITLE) in rows[1]
    exact = json.loads(otp_admin(server, "sessions", "--json"))
    assert [(s["user"], s["session_id"], s["nas_identifier"]) for s in exact] == \
        [(n, f"s\n{n}", NAS_TITLE) for n in (FORGED, CLEAR_SCREEN)]

    log = server.log()
    assert "\x1b" not in log and "\x07" not in log
    for name in (FORGED, CLEAR_SCREEN):
        user, session = escape(name, space=True), escape("s\n" + name, space=True)
        (decision,) = [line for line in log.splitlines() if f"decision user={user} " in line]
        assert "result=reject" in decision
        (accounting,) = [line for line in log.splitlines() if f"accounting user={user} " in line]
        assert f"session={session} " in accounting
    assert not any(line.startswith("2026-01-01T00:00:00Z") for line in log.splitlines())
