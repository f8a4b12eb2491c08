"""FreeRADIUS 3.2 (Debian) as a RadSec client: a private instance that takes UDP requests from radclient and proxies
every one of them to otp-radiusd over TLS (home_server with `proto = tcp` and a `tls` section), from a throw-away
config directory (the Debian tree copied for its dictionaries, radiusd.conf written anew)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.kit.freeradius import RunningFreeradius, copy_debian_config
from tests.kit.ports import free_udp_port
from tests.kit.radsec import ClientFiles, RadsecPki
from tests.kit.tools import tool

__all__ = ["NAS_SECRET", "FreeradiusProxy"]

NAS_SECRET = "nas-secret"

_CONF = """\
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = ${{exec_prefix}}/sbin
logdir = {dir}/log
raddbdir = {dir}
radacctdir = ${{logdir}}/radacct
name = freeradius
confdir = ${{raddbdir}}
modconfdir = ${{confdir}}/mods-config
certdir = ${{confdir}}/certs
cadir = ${{confdir}}/certs
run_dir = {dir}/run
db_dir = ${{raddbdir}}
libdir = /usr/lib/freeradius
pidfile = ${{run_dir}}/${{name}}.pid
max_request_time = 30
cleanup_delay = 5
max_requests = 1024
hostname_lookups = no

log {{
    destination = files
    file = ${{logdir}}/radius.log
    colourise = no
}}

security {{
    allow_core_dumps = no
    max_attributes = 200
    reject_delay = 0
    status_server = yes
}}

proxy_requests = yes
proxy server {{
    default_fallback = no
}}

home_server otp {{
    type = auth
    ipaddr = 127.0.0.1
    port = {otp_port}
    proto = tcp
    secret = radsec
    status_check = none
    tls {{
        private_key_file = {key}
        certificate_file = {cert}
        ca_file = {ca}
        fragment_size = 8192
        cipher_list = "DEFAULT"
        connect_timeout = 10
    }}
}}
home_server_pool otp {{
    type = fail-over
    home_server = otp
}}
realm otp {{
    auth_pool = otp
    nostrip
}}

client radclient {{
    ipaddr = 127.0.0.1
    secret = {nas_secret}
    require_message_authenticator = no
}}

modules {{
}}

server default {{
    listen {{
        type = auth
        ipaddr = 127.0.0.1
        port = {port}
    }}
    authorize {{
        update control {{
            &Proxy-To-Realm := "otp"
        }}
    }}
    authenticate {{
    }}
    post-proxy {{
    }}
}}
"""


class FreeradiusProxy:
    def __init__(self, folder: Path, pki: RadsecPki, files: ClientFiles) -> None:
        self.port = free_udp_port()
        self.dir = folder / "raddb"
        copy_debian_config(self.dir, "log", "run")
        (self.dir / "radiusd.conf").write_text(_CONF.format(
            dir=self.dir, otp_port=pki.port, key=files.key, cert=files.cert, ca=pki.ca_path, nas_secret=NAS_SECRET,
            port=self.port))
        self.server = RunningFreeradius(self.dir, folder / "freeradius.out")

    def log(self) -> str:
        return self.server.log()

    def radclient(self, attrs: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([tool("radclient"), "-x", "-t", "10", "-r", "1", f"127.0.0.1:{self.port}", "auth",
                               NAS_SECRET], input=attrs, capture_output=True, text=True, timeout=60)

    def stop(self) -> None:
        self.server.stop()
