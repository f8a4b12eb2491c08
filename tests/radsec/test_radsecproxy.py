"""radsecproxy (Debian's, 1.9) as a real RadSec client: radclient sends UDP to radsecproxy, which forwards over TLS
with its client certificate to otp-radiusd, watching it with Status-Server."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kit.config import Client
from tests.kit.ports import free_udp_port
from tests.kit.radiusd import RadiusServer
from tests.kit.radsec import ClientFiles, RadsecPki
from tests.kit.tools import tool

NAS_SECRET = "nas-secret"


def radsecproxy_conf(pki: RadsecPki, files: ClientFiles, udp_port: int) -> str:
    return f"""\
ListenUDP 127.0.0.1:{udp_port}
LogLevel 4
tls otp {{
    CACertificateFile {pki.ca_path}
    CertificateFile {files.cert}
    CertificateKeyFile {files.key}
}}
client nas {{
    host 127.0.0.1
    type udp
    secret {NAS_SECRET}
}}
server otp-radiusd {{
    host 127.0.0.1
    port {pki.port}
    type tls
    tls otp
    StatusServer on
    CertificateNameCheck on
}}
realm * {{
    server otp-radiusd
}}
"""


class Radsecproxy:
    def __init__(self, folder: Path, pki: RadsecPki, files: ClientFiles) -> None:
        self.port = free_udp_port()
        self.log = folder / "radsecproxy.log"
        self.conf = folder / "radsecproxy.conf"
        self.conf.write_text(radsecproxy_conf(pki, files, self.port))
        with open(self.log, "wb") as log:  # in the foreground it logs to stderr
            self.proc = subprocess.Popen([tool("radsecproxy"), "-f", "-c", str(self.conf), "-i",
                                          str(folder / "radsecproxy.pid")], stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT)

    def radclient(self, attrs: str, command: str = "auth") -> subprocess.CompletedProcess[str]:
        return subprocess.run([tool("radclient"), "-x", "-t", "5", "-r", "2", f"127.0.0.1:{self.port}", command,
                               NAS_SECRET], input=attrs, capture_output=True, text=True, timeout=60)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RadiusServer, Radsecproxy]]:
    folder = tmp_path_factory.mktemp("radsecproxy")
    pki = RadsecPki(folder)
    (folder / "server").mkdir()
    server = RadiusServer(folder / "server",
                          clients=[Client("radsecproxy", "127.0.0.1", secret=None, first_factor="none",
                                          tls_subject="radsecproxy.example")],
                          radius=pki.radius_keys())
    server.start()
    proxy = Radsecproxy(folder, pki, pki.client("radsecproxy", dns_names=("radsecproxy.example",)))
    try:
        yield server, proxy
    finally:
        proxy.stop()
        assert server.stop() == 0, server.log()


def test_radclient_through_radsecproxy_gets_accept_and_reject(setup: tuple[RadiusServer, Radsecproxy]) -> None:
    server, proxy = setup
    user = server.add_user("proxied", None)
    done = proxy.radclient(f'User-Name = "proxied"\nUser-Password = "{user.code()}"\n')
    assert "Received Access-Accept" in done.stdout, done.stdout + done.stderr + proxy.log.read_text()
    done = proxy.radclient(f'User-Name = "proxied"\nUser-Password = "{user.wrong_code()}"\n')
    assert "Received Access-Reject" in done.stdout, done.stdout + done.stderr
    assert [d["result"] for d in server.decisions("proxied")] == ["accept", "reject"]
    assert [d["client"] for d in server.decisions("proxied")] == ["radsecproxy"] * 2
    assert "client=radsecproxy names=" in server.log()


def test_radsecproxy_watchdog_is_answered(setup: tuple[RadiusServer, Radsecproxy]) -> None:
    server, proxy = setup
    deadline = time.monotonic() + 90
    # radsecproxy sends a Status-Server after 30 s without a reply on its connection
    while "got status server response from otp-radiusd" not in proxy.log.read_text():
        assert time.monotonic() < deadline, proxy.log.read_text()
        time.sleep(1)
    assert server.counters()["status_server"] >= 1


def test_a_dead_radsecproxy_connection_is_cleaned_up(setup: tuple[RadiusServer, Radsecproxy]) -> None:
    server, proxy = setup
    assert server.counters()["tls_open"] == 1
    proxy.proc.kill()  # its kernel closes the connection; nothing is said at the TLS level
    proxy.proc.wait()
    server.wait_log(r"radsec connection closed: from=127\.0\.0\.1:\d+ client=radsecproxy reason=")
    counters = server.counters()
    assert counters["tls_open"] == 0 and counters["tls_closed_by_peer"] + counters["tls_closed_error"] == 1
