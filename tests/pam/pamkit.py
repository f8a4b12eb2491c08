"""Helpers for the PAM door's tests (fixtures are in conftest.py; pamtester, codes, PAM services and otp-radiusd
are the kit's, tests/kit): PAM's argument splitting, a store provisioned with otp-admin, a fake pamh and RADIUS replies
for unit tests.

A module of its own: test modules import helpers from it (`from .pamkit import ...`), fixtures live in conftest.
"""

from __future__ import annotations

import json
import struct
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from otpbase.radius.authenticators import MA_PLACEHOLDER, hmac_md5, packet_authenticator
from pam_module.pamconfig import auth_line
from tests.kit.codes import new_secret
from tests.kit.config import Client, config_text
from tests.kit.tools import otp_admin


def split_pam_args(line: str) -> list[str]:
    """PAM's own splitting: white space, except inside [brackets] where \\] is a literal ]."""
    out, i = [], 0
    while i < len(line):
        if line[i].isspace():
            i += 1
        elif line[i] == "[":
            j, buf = i + 1, ""
            while line[j] != "]":
                if line[j] == "\\" and line[j + 1] == "]":
                    buf += "]"
                    j += 2
                else:
                    buf += line[j]
                    j += 1
            out.append(buf)
            i = j + 1
        else:
            j = i
            while j < len(line) and not line[j].isspace():
                j += 1
            out.append(line[i:j])
            i = j
    return out


def module_line(mode: str, *options: str, config: Path | None = None, servers: Sequence[str] = (),
                secret_file: Path | None = None, control: str = "required") -> str:
    """The auth line otp-admin pam-config prints, with extra options."""
    return auth_line(mode, servers, secret_file, config=config, control=control, options=options)


# -- the store and its config ---------------------------------------------------------------------------------------


@dataclass
class OtpEnv:
    """A config and store in `root` (absolute paths in the config: the PAM module reads it from anywhere)."""

    root: Path
    policy: dict[str, Any] = field(default_factory=dict)
    clients: list[Client] = field(default_factory=list)
    auth_port: int = 0
    acct_port: int = 0

    @property
    def config(self) -> Path:
        return self.root / "otp.toml"

    def write_config(self) -> None:
        self.config.write_text(config_text(
            folder=self.root, listen=[f"127.0.0.1:{self.auth_port}"], accounting_listen=[f"127.0.0.1:{self.acct_port}"],
            clients=self.clients, policy=self.policy))

    def admin(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        p = otp_admin(self.config, *args, stdin=input)
        if check and p.returncode != 0:
            raise AssertionError(f"otp-admin {' '.join(args)} failed ({p.returncode}): {p.stderr}")
        return p

    def add_user(self, name: str, *, password: str | None = None, token: str | None = "totp",
                 counter: int = 0) -> str:
        """Adds NAME (with a store password if given) and a token; returns the token's base32 secret."""
        if password is None:
            self.admin("user", "add", name)
        else:
            self.admin("user", "add", name, "--password-stdin", input=password + "\n")
        secret = new_secret()
        if token == "totp":
            self.admin("token", "add", name, "--type", "totp", "--secret", secret, "--qr", "none")
        elif token == "hotp":
            self.admin("token", "add", name, "--type", "hotp", "--secret", secret, "--counter", str(counter),
                       "--qr", "none")
        return secret

    def audit(self, user: str) -> list[dict[str, Any]]:
        return list(json.loads(self.admin("audit", "--user", user, "--json").stdout))


# -- fake pamh for unit tests of the glue ---------------------------------------------------------------------------


class FakePamError(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.pam_result = code


class FakePamh:
    """The parts of pam_python's handle the door uses. `answers` feed the conversation; `asked` records prompts."""

    PAM_SUCCESS = 0
    PAM_SERVICE_ERR = 3
    PAM_SYSTEM_ERR = 4
    PAM_AUTH_ERR = 7
    PAM_AUTHINFO_UNAVAIL = 9
    PAM_USER_UNKNOWN = 10
    PAM_MAXTRIES = 11
    PAM_CONV_ERR = 19
    PAM_IGNORE = 25
    PAM_PROMPT_ECHO_OFF = 1
    PAM_PROMPT_ECHO_ON = 2

    exception = FakePamError

    class Message:
        def __init__(self, style: int, text: str) -> None:
            self.msg_style = style
            self.msg = text

    class Response:
        def __init__(self, resp: str | None, retcode: int = 0) -> None:
            self.resp = resp
            self.resp_retcode = retcode

    def __init__(self, user: str | None = "alice", answers: Sequence[str] = (), *, authtok: str | None = None,
                 service: str = "otp-unit", rhost: str | None = None) -> None:
        self.user = user
        self.answers = list(answers)
        self.asked: list[str] = []
        self.authtok = authtok
        self.service = service
        self.rhost = rhost

    def get_user(self, prompt: str | None = None) -> str | None:
        return self.user

    def conversation(self, message: Any) -> Any:
        self.asked.append(message.msg)
        if not self.answers:
            raise FakePamError(self.PAM_CONV_ERR)
        return self.Response(self.answers.pop(0))


# -- replies for the kit's scripted server, in unit tests of the client -----------------------------------------


def make_reply(request: bytes, code: int, secret: bytes, attrs: Sequence[tuple[int, bytes]] = (), *,
               message_authenticator: bool = True, break_authenticator: bool = False, break_mac: bool = False,
               ident: int | None = None) -> bytes:
    """A reply to `request` signed as RFC 2865 / 3579 say (or deliberately broken)."""
    body = MA_PLACEHOLDER if message_authenticator else b""
    for kind, value in attrs:
        body += bytes((kind, len(value) + 2)) + value
    rid = request[1] if ident is None else ident
    header = struct.pack("!BBH", code, rid, 20 + len(body))
    if message_authenticator:
        mac = bytes(16) if break_mac else hmac_md5(secret, header + request[4:20] + body)
        body = body[:2] + mac + body[18:]
    auth = packet_authenticator(header, request[4:20], body, secret)
    if break_authenticator:
        auth = bytes(16)
    return header + auth + body
