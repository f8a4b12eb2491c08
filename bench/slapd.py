"""A private OpenLDAP slapd for the benchmarks (bench/ does not import tests/, whose kit has the full-featured one).

    with running_slapd({"dave": "dave-password"}) as directory:
        directory.url, directory.ca_file, directory.bind_dn, directory.password_file, directory.base_dn

Debian's /usr/sbin/slapd (package slapd, installed unconfigured by ./dev test) on a free loopback port, ldaps only,
with a self-signed certificate for 127.0.0.1, from a temporary cn=config and database made offline with slapadd:
an organisation, a service account that may read users, and one inetOrgPerson per user (uid, mail, {SSHA} password).
Stopped and deleted when the `with` block ends.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

SLAPD = Path("/usr/sbin/slapd")
BASE_DN = "dc=bench,dc=example"
SERVICE_DN = f"cn=otp,{BASE_DN}"
USER_FILTER = "(&(objectClass=inetOrgPerson)(uid={user}))"


@dataclass(frozen=True)
class Directory:
    url: str
    ca_file: Path
    password_file: Path  # the service account's password
    bind_dn: str = SERVICE_DN
    base_dn: str = BASE_DN
    user_filter: str = USER_FILTER

    def ldap_table(self, urls: list[str] | None = None) -> str:
        """The [ldap] table of otp.toml for this directory (other `urls` for fault scenarios)."""
        listed = ", ".join(f'"{u}"' for u in (urls or [self.url]))
        return (f'[ldap]\nurls = [{listed}]\nca_file = "{self.ca_file}"\nbind_dn = "{self.bind_dn}"\n'
                f'bind_password_file = "{self.password_file}"\nbase_dn = "{self.base_dn}"\n'
                f'user_filter = "{self.user_filter}"\n')


@contextlib.contextmanager
def running_slapd(users: Mapping[str, str]) -> Iterator[Directory]:
    if not SLAPD.exists() or shutil.which("slapadd", path="/usr/sbin:/usr/bin") is None:
        raise SystemExit("slapd is not installed (./dev test installs Debian's slapd and ldap-utils)")
    folder = Path(tempfile.mkdtemp(prefix="otp-bench-slapd-"))
    process: subprocess.Popen[bytes] | None = None
    try:
        service_password = base64.b32encode(os.urandom(10)).decode()
        (folder / "service.password").write_text(service_password + "\n")
        _certificate(folder)
        (folder / "db").mkdir()
        (folder / "slapd.d").mkdir()
        (folder / "config.ldif").write_text(_config(folder))
        (folder / "data.ldif").write_text(_data(service_password, users))
        for number, ldif in (("0", "config.ldif"), ("1", "data.ldif")):
            subprocess.run(["/usr/sbin/slapadd", "-n", number, "-F", str(folder / "slapd.d"), "-l",
                            str(folder / ldif)], check=True, capture_output=True, timeout=60)
        port = _free_port()
        with open(folder / "slapd.log", "wb") as log:
            process = subprocess.Popen([str(SLAPD), "-F", str(folder / "slapd.d"), "-h", f"ldaps://127.0.0.1:{port}/",
                                        "-d", "0"], stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        _wait_listening(process, port, folder)
        yield Directory(f"ldaps://127.0.0.1:{port}", folder / "cert.pem", folder / "service.password")
    finally:
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(folder, ignore_errors=True)


def _certificate(folder: Path) -> None:
    """A self-signed certificate for 127.0.0.1, its own CA (the client trusts exactly this one)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    (folder / "key.pem").chmod(0o600)


def _config(folder: Path) -> str:
    schemas = "".join(f"include: file:///etc/ldap/schema/{name}.ldif\n\n"
                      for name in ("core", "cosine", "inetorgperson"))
    return f"""\
dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: {folder}/slapd.pid
olcTLSCertificateFile: {folder}/cert.pem
olcTLSCertificateKeyFile: {folder}/key.pem

dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

{schemas}dn: olcDatabase={{-1}}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {{-1}}frontend

dn: olcDatabase={{0}}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{0}}config
olcAccess: {{0}}to * by * none

dn: olcDatabase={{1}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{1}}mdb
olcSuffix: {BASE_DN}
olcDbDirectory: {folder}/db
olcDbIndex: objectClass eq
olcDbIndex: uid eq
olcAccess: {{0}}to attrs=userPassword by anonymous auth by * none
olcAccess: {{1}}to * by dn.exact="{SERVICE_DN}" read by self read by * none
"""


def _data(service_password: str, users: Mapping[str, str]) -> str:
    entries = [f"dn: {BASE_DN}\nobjectClass: dcObject\nobjectClass: organization\ndc: bench\no: otp bench\n",
               f"dn: {SERVICE_DN}\nobjectClass: applicationProcess\nobjectClass: simpleSecurityObject\ncn: otp\n"
               f"userPassword: {_ssha(service_password)}\n"]
    entries += [f"dn: uid={name},{BASE_DN}\nobjectClass: inetOrgPerson\nuid: {name}\ncn: {name}\nsn: {name}\n"
                f"mail: {name}@bench.example\nuserPassword: {_ssha(password)}\n" for name, password in users.items()]
    return "\n".join(entries)


def _ssha(password: str) -> str:
    salt = os.urandom(8)
    return "{SSHA}" + base64.b64encode(hashlib.sha1(password.encode() + salt).digest() + salt).decode()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(process: subprocess.Popen[bytes], port: int, folder: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.02)
    raise SystemExit("slapd did not start:\n" + (folder / "slapd.log").read_text(errors="replace")[-3000:])
