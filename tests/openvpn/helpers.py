"""A real OpenVPN server with Debian's RADIUS plugin in front of a real otp-radiusd, and real OpenVPN clients.

Everything runs on 127.0.0.1. The server has a tun device but configures nothing (`ifconfig-noexec`, `route-noexec`);
the clients use `dev null`. The server's certificate comes from a throw-away CA (tests/kit/certs.py); clients present
none (`verify-client-cert none`): the user name and password (+ one-time code) are the credentials.
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import re
import signal
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.kit.certs import make_ca
from tests.kit.config import Client
from tests.kit.ports import free_udp_port
from tests.kit.radiusd import RadiusServer, User
from tests.kit.tools import tool

RADIUS_PLUGIN = Path("/usr/lib/openvpn/radiusplugin.so")
VPN_SECRET = "vpn-shared-secret"
VPN_NETWORK = "10.213.7.0"
CHALLENGE_TEXT = "Enter your one-time password"
TIMEOUT = 20.0


def need_plugin() -> Path:
    assert RADIUS_PLUGIN.exists(), f"{RADIUS_PLUGIN} is required (Debian package openvpn-auth-radius; ./dev test)"
    return RADIUS_PLUGIN


def ensure_tun() -> None:
    """The OpenVPN server opens /dev/net/tun; containers often lack the node (the kernel has the driver)."""
    tun = Path("/dev/net/tun")
    if tun.exists():
        return
    try:
        tun.parent.mkdir(exist_ok=True)
        os.mknod(tun, 0o666 | stat.S_IFCHR, os.makedev(10, 200))
    except OSError as exc:
        raise AssertionError(f"/dev/net/tun is missing and cannot be created ({exc.strerror}): run as root "
                             "or give the container the tun device") from None


def make_certificates(folder: Path) -> None:
    """ca.crt, server.crt and server.key."""
    ca = make_ca("otp-server test VPN CA")
    ca.write_cert(folder / "ca.crt")
    ca.issue_server(dns_names=("vpn.test",)).write(folder / "server.crt", folder / "server.key")


class Process:
    """A child in its own process group, its output in a log file. stop() ends the child, then whatever it left
    in its group (the RADIUS plugin forks helper processes)."""

    def __init__(self, argv: list[str], log: Path, *, cwd: Path, stdin: int | None = None) -> None:
        self.log_path = log
        with open(log, "ab") as out:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(argv, cwd=cwd, stdin=stdin if stdin is not None else subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def running(self) -> bool:
        return self.proc.poll() is None

    def wait_log(self, pattern: str, *, timeout: float = TIMEOUT, count: int = 1) -> None:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while len(regex.findall(self.log())) < count:
            if not self.running():
                raise AssertionError(f"exited ({self.proc.returncode}) before {pattern!r}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {pattern!r}:\n{self.log()}")
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = TIMEOUT) -> int:
        # The main process only: the RADIUS plugin's helper processes must outlive it, as it waits for them.
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            raise AssertionError(f"did not stop in {timeout} s:\n{self.log()}") from None
        finally:
            with contextlib.suppress(ProcessLookupError):  # the plugin's helpers, if the main process left them
                os.killpg(self.proc.pid, signal.SIGKILL)


class OtpRadiusd:
    """The kit's otp-radiusd as the OpenVPN tests look at it: one client (the OpenVPN server on 127.0.0.1), ports
    below 10000, sessions read with `otp-admin sessions --json`, decisions as log lines."""

    def __init__(self, folder: Path) -> None:
        # radiusplugin sends no Message-Authenticator and reads at most four digits of a port.
        self.server = RadiusServer(folder, clients=[Client("openvpn", "127.0.0.1", secret=VPN_SECRET,
                                                           require_message_authenticator=False)],
                                   policy={"max_failures": 10}, port_below=10000)
        self.auth_port = self.server.auth_port
        self.acct_port = self.server.acct_port

    def start(self) -> OtpRadiusd:
        self.server.start(ready=r"ready: listening on .* \(accounting ")
        return self

    def stop(self) -> int:
        return self.server.stop()

    def log(self) -> str:
        return self.server.log()

    def add_user(self, name: str, password: str) -> User:
        return self.server.add_user(name, password)

    def sessions(self, *args: str) -> list[dict[str, Any]]:
        out = self.server.otp_admin("sessions", "--json", *args)
        assert out.returncode == 0, out.stderr
        return list(json.loads(out.stdout))

    def wait_sessions(self, predicate: Any, *args: str, timeout: float = TIMEOUT) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            rows = self.sessions(*args)
            if predicate(rows):
                return rows
            if time.monotonic() > deadline:
                raise AssertionError(f"sessions never matched: {rows}\n{self.log()}")
            time.sleep(0.1)

    def decisions(self, user: str) -> list[str]:
        return self.server.decision_lines(user)


class OpenVpnServer:
    """openvpn in server mode with radiusplugin pointed at otp-radiusd."""

    def __init__(self, folder: Path, radiusd: OtpRadiusd) -> None:
        self.dir = folder
        self.port = free_udp_port()
        make_certificates(folder)
        self.config_path = folder / "server.conf"
        self.plugin_config = folder / "radiusplugin.cnf"
        # The plugin copies each value into a 50-octet buffer: keep paths and the secret short.
        self.plugin_config.write_text(f"""\
NAS-Identifier=OpenVpn
Service-Type=5
Framed-Protocol=1
NAS-Port-Type=5
NAS-IP-Address=127.0.0.1
OpenVPNConfig={self.config_path}
subnet=255.255.255.0
overwriteccfiles=false

server
{{
\tacctport={radiusd.acct_port}
\tauthport={radiusd.auth_port}
\tname=127.0.0.1
\tretry=1
\twait=5
\tsharedsecret={VPN_SECRET}
}}
""")
        self.config_path.write_text(f"""\
local 127.0.0.1
port {self.port}
proto udp
dev tun
topology subnet
server {VPN_NETWORK} 255.255.255.0
ifconfig-noexec
route-noexec
ca {folder}/ca.crt
cert {folder}/server.crt
key {folder}/server.key
dh none
verify-client-cert none
username-as-common-name
duplicate-cn
plugin {need_plugin()} {self.plugin_config}
status {folder}/status.log 1
status-version 1
verb 4
""")
        self.process: Process | None = None

    def start(self) -> OpenVpnServer:
        self.process = Process([tool("openvpn"), "--config", str(self.config_path)], self.dir / "server.log",
                               cwd=self.dir)
        try:
            self.process.wait_log(r"Initialization Sequence Completed")
        except BaseException:
            self.process.stop()
            raise
        return self

    def stop(self) -> int:
        assert self.process is not None
        return self.process.stop()

    def log(self) -> str:
        assert self.process is not None
        return self.process.log()


class OpenVpnClient:
    """openvpn in client mode (`dev null`): user name and password from a file, or a static-challenge prompt."""

    def __init__(self, folder: Path, server: OpenVpnServer, user: str, password: str, *, label: str,
                 static_challenge: str | None = None) -> None:
        self.dir = folder
        self.label = label
        auth = folder / f"{label}.auth"
        auth.write_text(f"{user}\n{password}\n")
        auth.chmod(0o600)
        lines = [
            "client", "dev null", "proto udp", f"remote 127.0.0.1 {server.port}", "nobind",
            f"ca {server.dir}/ca.crt", "remote-cert-tls server", f"auth-user-pass {auth}", "auth-retry none",
            "explicit-exit-notify 1", "ifconfig-noexec", "route-noexec", "connect-retry-max 1", "verb 3",
        ]
        if static_challenge is not None:
            lines.append(f'static-challenge "{CHALLENGE_TEXT}" 1')
        config = folder / f"{label}.conf"
        config.write_text("\n".join(lines) + "\n")
        self._response = static_challenge
        self._pty: int | None = None
        stdin = None
        if static_challenge is not None:
            # OpenVPN asks for the response on a terminal: give it one, as a user at a console would have.
            self._pty, stdin = pty.openpty()
        self.process = Process([tool("openvpn"), "--config", str(config)], folder / f"{label}.log", cwd=folder,
                               stdin=stdin)
        if stdin is not None:
            os.close(stdin)

    def log(self) -> str:
        return self.process.log()

    def outcome(self, timeout: float = TIMEOUT) -> str:
        """'connected', 'auth_failed', or an AssertionError with the log."""
        deadline = time.monotonic() + timeout
        answered = False
        while time.monotonic() < deadline:
            log = self.log()
            if self._pty is not None and not answered and "CHALLENGE:" in log:
                assert self._response is not None
                os.write(self._pty, self._response.encode() + b"\n")
                answered = True
            if "Initialization Sequence Completed" in log:
                return "connected"
            if "AUTH_FAILED" in log:
                return "auth_failed"
            if not self.process.running():
                raise AssertionError(f"client {self.label} exited ({self.process.proc.returncode}):\n{log}")
            time.sleep(0.05)
        raise AssertionError(f"client {self.label}: no outcome in {timeout} s:\n{self.log()}")

    def stop(self) -> int:
        try:
            return self.process.stop()
        finally:
            if self._pty is not None:
                os.close(self._pty)
                self._pty = None
