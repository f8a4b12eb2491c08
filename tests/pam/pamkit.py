"""Helpers for the PAM door's tests (fixtures are in conftest.py): pamtester runs, codes from oathtool, a store
provisioned with otp-admin, otp-radiusd readiness, a fake pamh and a scripted RADIUS server for unit tests.

A module of its own: test modules import helpers from it (`from .pamkit import ...`), fixtures live in conftest.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from otpbase.radius import Drop
from otpbase.radius.authenticators import MA_PLACEHOLDER, hmac_md5, packet_authenticator
from otpbase.radius.client import decode_reply
from otpbase.radius.client import status_server as status_server_request
from otpbase.radius.constants import NAS_IDENTIFIER
from pam_module.log import DEV_LOG
from pam_module.pamconfig import auth_line

PAM_D = Path("/etc/pam.d")
BIN = Path(sys.executable).parent
SECRET = "testing123"

# pam_strerror texts pamtester prints after "pamtester: "
PAM_TEXT = {
    "Authentication failure": "PAM_AUTH_ERR",
    "Have exhausted maximum number of retries for service": "PAM_MAXTRIES",
    "Authentication service cannot retrieve authentication info": "PAM_AUTHINFO_UNAVAIL",
    "User not known to the underlying authentication module": "PAM_USER_UNKNOWN",
    "Permission denied": "PAM_PERM_DENIED",
    "Conversation error": "PAM_CONV_ERR",
    "Module is unknown": "PAM_MODULE_UNKNOWN",
    "System error": "PAM_SYSTEM_ERR",
    "Error in service module": "PAM_SERVICE_ERR",
}


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"required tool {name!r} is not installed (./dev test installs it)")
    return path


def venv_tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{path} missing: install the project (./dev test)")
    return str(path)


# -- pamtester ----------------------------------------------------------------------------------------------------


@dataclass
class PamResult:
    rc: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def status(self) -> str:
        """PAM_SUCCESS, PAM_AUTH_ERR, ... from pamtester's message."""
        if self.rc == 0 and "successfully authenticated" in self.stdout + self.stderr:
            return "PAM_SUCCESS"
        m = re.search(r"pamtester: (.+)$", self.stderr.strip())
        text = m.group(1).strip() if m else self.stderr.strip()
        return PAM_TEXT.get(text, f"?{text}")

    @property
    def output(self) -> str:
        """Prompts (misc_conv writes them to stderr) and pamtester's messages."""
        return self.stdout + self.stderr


def pamtester(service: str, user: str, answers: Sequence[str] = (), *, timeout: float = 60,
              env: dict[str, str] | None = None, log_to_stderr: bool = False) -> PamResult:
    """`env`: pamtester's environment (default: ours). `log_to_stderr`: the module's log lines in the output, as on a
    host without a syslog socket (if this one has /dev/log, pamtester runs where /dev/null is mounted over it)."""
    stdin = "".join(a + "\n" for a in answers)
    command = [tool("pamtester"), service, user, "authenticate"]
    if log_to_stderr and os.path.exists(DEV_LOG):
        command = [tool("unshare"), "--mount", "--propagation", "private", "sh", "-c",
                   f'mount --bind /dev/null {DEV_LOG} && exec "$@"', "sh", *command]
    start = time.monotonic()
    p = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=timeout, env=env)
    return PamResult(p.returncode, p.stdout, p.stderr, time.monotonic() - start)


def log_lines(result: PamResult) -> list[str]:
    """The module's log lines in a `log_to_stderr` run."""
    return [line for line in result.stderr.splitlines() if " pam_otp(" in line]


def pwdfile_with(folder: Path, user: str, password: str) -> Path:
    """A pam_pwdfile (the stand-in for pam_unix) password file (SHA-512 crypt from libcrypt, as /etc/shadow has)."""
    import ctypes

    libcrypt = ctypes.CDLL("libcrypt.so.1")
    libcrypt.crypt.restype = ctypes.c_char_p
    salt = "$6$" + secrets.token_hex(8) + "$"
    crypted = libcrypt.crypt(password.encode(), salt.encode()).decode()
    path = folder / "passwd"
    path.write_text(f"{user}:{crypted}\n")
    return path


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


# -- codes ----------------------------------------------------------------------------------------------------------


def totp(secret: str, offset_steps: int = 0, now: float | None = None) -> str:
    when = int((now if now is not None else time.time()) + 30 * offset_steps)
    out = subprocess.run([tool("oathtool"), "--totp", "-b", "-N", f"@{when}", secret], capture_output=True, text=True,
                         check=True)
    return out.stdout.strip()


def hotp(secret: str, counter: int) -> str:
    out = subprocess.run([tool("oathtool"), "--hotp", "-b", "-c", str(counter), secret], capture_output=True,
                         text=True, check=True)
    return out.stdout.strip()


def wrong_totp(secret: str) -> str:
    """A 6-digit code that is valid at no time near now."""
    near = {totp(secret, k) for k in range(-3, 4)}
    while True:
        code = f"{secrets.randbelow(10**6):06d}"
        if code not in near:
            return code


def new_secret() -> str:
    import base64

    return base64.b32encode(os.urandom(20)).decode()


# -- the store and its config ---------------------------------------------------------------------------------------


@dataclass
class RadiusClientSpec:
    address: str = "127.0.0.1"
    secret: str = SECRET
    first_factor: str = "none"
    require_message_authenticator: bool = True
    name: str = "pam"


@dataclass
class OtpEnv:
    root: Path
    policy: dict[str, Any] = field(default_factory=dict)
    clients: list[RadiusClientSpec] = field(default_factory=list)
    auth_port: int = 0
    acct_port: int = 0

    @property
    def config(self) -> Path:
        return self.root / "otp.toml"

    def write_config(self) -> None:
        lines = ["[store]", f'path = "{self.root / "otp.sqlite"}"', f'key_file = "{self.root / "otp.key"}"', ""]
        lines += ["[radius]", f'listen = ["127.0.0.1:{self.auth_port}"]',
                  f'accounting_listen = ["127.0.0.1:{self.acct_port}"]', ""]
        for c in self.clients:
            lines += ["[[radius.clients]]", f'name = "{c.name}"', f'address = "{c.address}"', f'secret = "{c.secret}"',
                      f'first_factor = "{c.first_factor}"',
                      f"require_message_authenticator = {'true' if c.require_message_authenticator else 'false'}",
                      ""]
        lines.append("[policy]")
        for k, v in self.policy.items():
            lines.append(f"{k} = {_toml(v)}")
        self.config.write_text("\n".join(lines) + "\n")

    def admin(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        p = subprocess.run([venv_tool("otp-admin"), "--config", str(self.config), *args], input=input,
                           capture_output=True, text=True, timeout=60)
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
        import json

        return list(json.loads(self.admin("audit", "--user", user, "--json").stdout))


def _toml(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    return '"' + str(v) + '"'


# -- otp-radiusd ----------------------------------------------------------------------------------------------------


def status_server(port: int, secret: bytes, host: str = "127.0.0.1", timeout: float = 0.3) -> bool:
    """RFC 5997 Status-Server: True when an authentic answer comes back."""
    packet = status_server_request(secrets.randbelow(256), os.urandom(16), secret, [(NAS_IDENTIFIER, b"test")])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(packet, (host, port))
        try:
            data = s.recv(4096)
        except OSError:
            return False
    try:
        decode_reply(data, packet, secret)
    except Drop:
        return False
    return True


@dataclass
class Radiusd:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


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


# -- a scripted RADIUS server for unit tests of the client ----------------------------------------------------------


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


class ScriptedServer:
    """A UDP socket on loopback answering with `handler(request) -> list of datagrams` in a thread."""

    def __init__(self, handler: Callable[[bytes], Sequence[bytes]]) -> None:
        import threading

        self.handler = handler
        self.requests: list[bytes] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port = int(self.sock.getsockname()[1])
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while self.running:
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            self.requests.append(data)
            for reply in self.handler(data):
                self.sock.sendto(reply, peer)

    def close(self) -> None:
        self.running = False
        self.thread.join(2)
        self.sock.close()


