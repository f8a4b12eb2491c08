"""A private OpenLDAP slapd for tests: Debian's /usr/sbin/slapd on two free loopback ports (ldap:// with StartTLS,
and ldaps://), from a temporary cn=config made with `slapadd -n0`, an mdb database filled with `ldapadd`, and a
certificate from a throw-away CA.

    with running_slapd("ad") as directory:
        directory.ldaps_url, directory.ca_file, directory.layout.service_dn, directory.user("alice").password

What is in the directory: tests.kit.directory. `directory.untrusted_ca_file` is a CA that did not issue the server's
certificate, for refusal tests. slapd runs as the user running the tests (root in this suite: no -u/-g, so no
privilege switch and no file ownership to arrange); it never uses the system's slapd, its config or its ports.
Leaving the `with` block stops slapd (SIGTERM, then SIGKILL) and removes every file, also when the test failed.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.kit.certs import make_ca
from tests.kit.directory import DirectoryUser, Flavour, Layout, TlsFiles, config_ldif, data_ldif, layout_for
from tests.kit.netfaults import HOST, free_tcp_port
from tests.kit.tools import find_tool

__all__ = ["Slapd", "SlapdError", "running_slapd", "tool"]

SLAPD = "/usr/sbin/slapd"  # not on a non-root PATH; Debian's slapd package
START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
PORT_ATTEMPTS = 5  # free ports can be taken by another process between the probe and slapd's bind


class SlapdError(RuntimeError):
    """The harness could not set up or start slapd (the message carries slapd's own words)."""


def tool(name: str) -> str:
    """The path of a required program; missing means the suite was not set up by ./dev test, which is a failure."""
    path = SLAPD if name == "slapd" else find_tool(name)
    if path is None or not Path(path).exists():
        raise SlapdError(f"required tool {name!r} is not installed (./dev test installs slapd and ldap-utils)")
    return path


@dataclass
class Slapd:
    layout: Layout
    workdir: Path
    ldap_port: int
    ldaps_port: int
    ca_file: Path
    untrusted_ca_file: Path
    admin_password: str
    process: subprocess.Popen[bytes] | None = None

    @property
    def ldap_url(self) -> str:
        return f"ldap://{HOST}:{self.ldap_port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://{HOST}:{self.ldaps_port}"

    @property
    def log_file(self) -> Path:
        return self.workdir / "slapd.log"

    def user(self, login: str) -> DirectoryUser:
        return next(u for u in self.layout.users if u.login == login)

    def add(self, ldif: str) -> None:
        """Adds entries as the directory's administrator (rootdn), through the real `ldapadd`."""
        self._ldap_tool("ldapadd", ldif)

    def modify(self, ldif: str) -> None:
        """Applies an LDIF change record (changetype: modify/delete/...) through the real `ldapmodify`."""
        self._ldap_tool("ldapmodify", ldif)

    def _ldap_tool(self, name: str, ldif: str) -> None:
        password_file = self.workdir / "admin.password"
        if not password_file.exists():
            password_file.touch(mode=0o600)
            password_file.write_text(self.admin_password)  # -y reads the file whole: no newline
        ldif_file = self.workdir / f"{name}-{secrets.token_hex(4)}.ldif"
        ldif_file.write_text(ldif)
        _run([tool(name), "-x", "-H", self.ldap_url, "-D", self.layout.admin_dn, "-y", str(password_file),
              "-f", str(ldif_file)])

    def start(self) -> None:
        tls = self._write_certificates()
        config_dir = self.workdir / "slapd.d"
        config_dir.mkdir()
        (self.workdir / "db").mkdir()
        config = self.workdir / "config.ldif"
        config.write_text(config_ldif(self.layout, self.workdir, tls, self.admin_password))
        _run([tool("slapadd"), "-n0", "-F", str(config_dir), "-l", str(config)])
        self._start_on_free_ports(config_dir)
        self.add(data_ldif(self.layout))

    def _write_certificates(self) -> TlsFiles:
        ca = make_ca("otp-server test LDAP CA")
        ca.write_cert(self.ca_file)
        make_ca("otp-server test untrusted CA").write_cert(self.untrusted_ca_file)
        tls = TlsFiles(ca_cert=self.ca_file, cert=self.workdir / "server.pem", key=self.workdir / "server.key")
        ca.issue_server().write(tls.cert, tls.key)
        return tls

    def _start_on_free_ports(self, config_dir: Path) -> None:
        for attempt in range(PORT_ATTEMPTS):
            if attempt:
                self.ldap_port, self.ldaps_port = two_free_ports()
            urls = f"{self.ldap_url}/ {self.ldaps_url}/"
            with self.log_file.open("ab") as log:
                # -d: stay in the foreground (a child we can wait for and signal), logging connections and
                # operations (never passwords) to slapd.log, whose tail explains a failure.
                self.process = subprocess.Popen([tool("slapd"), "-F", str(config_dir), "-h", urls, "-d", "stats"],
                                                stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            if self._wait_listening():
                return
            if "Address already in use" not in self.log_tail():
                break
        raise SlapdError(f"slapd did not start:\n{self.log_tail()}")

    def _wait_listening(self) -> bool:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            if all(_accepts(port) for port in (self.ldap_port, self.ldaps_port)):
                return True
            time.sleep(0.02)
        self.stop()
        return False

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_file.exists():
            return ""
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def running_slapd(flavour: Flavour = "openldap") -> Iterator[Slapd]:
    """A started slapd holding the flavour's directory; stopped and deleted on exit, whatever happened."""
    workdir = Path(tempfile.mkdtemp(prefix=f"otp-slapd-{flavour}-"))
    ldap_port, ldaps_port = two_free_ports()
    server = Slapd(layout=layout_for(flavour), workdir=workdir, ldap_port=ldap_port, ldaps_port=ldaps_port,
                   ca_file=workdir / "ca.pem", untrusted_ca_file=workdir / "other-ca.pem",
                   admin_password=secrets.token_urlsafe(16))
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def two_free_ports() -> tuple[int, int]:
    first = free_tcp_port()
    while (second := free_tcp_port()) == first:
        pass
    return first, second


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def _run(argv: list[str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    if result.returncode != 0:
        raise SlapdError(f"{Path(argv[0]).name} failed (exit {result.returncode}): "
                         f"{(result.stderr or result.stdout).strip()}")
