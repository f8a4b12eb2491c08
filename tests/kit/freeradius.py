"""A private FreeRADIUS 3.2 (Debian's `freeradius`) as the EAP front end of an otp-radiusd, as README's 802.1X recipe
configures it: EAP-TLS tunnels (EAP-TTLS, PEAP) ended here, their inner request proxied as plain RADIUS to otp-radiusd:
EAP-TTLS's inner PAP (password and code in one field) from one source address, PEAP's inner MS-CHAPv2 (the code as
the password) from another (`src_ipaddr`), so that otp-radiusd tells them apart as two clients with their own first
factor. Debian's tree is copied to a throw-away folder for its dictionaries; everything that shapes the request path
is written here. Driven by `eapol_test` (Debian's `eapoltest`) as the supplicant.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Self

from .certs import make_ca
from .ports import free_udp_port
from .tools import tool

__all__ = ["DEBIAN_CONFIG", "FRONT_END_SECRET", "PAP_SOURCE", "PEAP_SOURCE", "FreeRadiusFrontEnd", "RunningFreeradius",
           "copy_debian_config", "eapol_test"]

DEBIAN_CONFIG = Path("/etc/freeradius/3.0")
FRONT_END_SECRET = "front-end-secret"  # between FreeRADIUS and otp-radiusd
SUPPLICANT_SECRET = "testing123"  # between eapol_test (the access point) and FreeRADIUS
PAP_SOURCE = "127.0.0.2"  # FreeRADIUS proxies EAP-TTLS/PAP from here (otp-radiusd: first_factor "store")
PEAP_SOURCE = "127.0.0.3"  # ... and PEAP's MS-CHAPv2 from here (first_factor "none")

# The recipe of README.md ("Wi-Fi and wired 802.1X"), with the paths and ports of the test filled in.
RADIUSD_CONF = """\
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
certdir = {dir}/tls
cadir = {dir}/tls
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
    auth = yes
}}

security {{
    allow_core_dumps = no
    max_attributes = 200
    reject_delay = 0
    status_server = yes
}}

client access-point {{
    ipaddr = 127.0.0.1
    secret = {supplicant_secret}
}}

proxy server {{
    default_fallback = no
}}

home_server otp-pap {{
    type = auth
    ipaddr = 127.0.0.1
    port = {otp_port}
    src_ipaddr = {pap_source}
    secret = {front_end_secret}
    response_window = 10
    status_check = none
}}
home_server_pool otp-pap {{
    type = fail-over
    home_server = otp-pap
}}
realm otp-pap {{
    auth_pool = otp-pap
    nostrip
}}

home_server otp-mschap {{
    type = auth
    ipaddr = 127.0.0.1
    port = {otp_port}
    src_ipaddr = {peap_source}
    secret = {front_end_secret}
    response_window = 10
    status_check = none
}}
home_server_pool otp-mschap {{
    type = fail-over
    home_server = otp-mschap
}}
realm otp-mschap {{
    auth_pool = otp-mschap
    nostrip
}}

modules {{
    eap {{
        default_eap_type = peap
        timer_expire = 60
        ignore_unknown_eap_types = no
        max_sessions = ${{max_requests}}
        tls-config tls-common {{
            private_key_file = {dir}/tls/server.key
            certificate_file = {dir}/tls/server.pem
            ca_file = {dir}/tls/ca.pem
            cipher_list = "DEFAULT"
            tls_min_version = "1.2"
            tls_max_version = "1.2"
            ecdh_curve = "prime256v1"
        }}
        ttls {{
            tls = tls-common
            default_eap_type = mschapv2
            virtual_server = "otp-inner"
        }}
        peap {{
            tls = tls-common
            default_eap_type = mschapv2
            virtual_server = "otp-inner"
        }}
        mschapv2 {{
        }}
    }}
    mschap {{
    }}
}}

instantiate {{
}}

server default {{
    listen {{
        type = auth
        ipaddr = 127.0.0.1
        port = {port}
    }}
    authorize {{
        eap {{
            ok = return
        }}
    }}
    authenticate {{
        eap
    }}
    post-proxy {{
        eap
    }}
}}

# The inner tunnel: its requests go to otp-radiusd. EAP-TTLS's inner PAP as it is; PEAP's inner EAP-MSCHAPv2 turned
# into plain MS-CHAPv2 (Proxy-Tunneled-Request-As-EAP := no), the client's identity in User-Name.
server otp-inner {{
    authorize {{
        if (&User-Password) {{
            update control {{
                &Proxy-To-Realm := "otp-pap"
            }}
        }}
        else {{
            update control {{
                &Proxy-Tunneled-Request-As-EAP := no
            }}
            eap {{
                ok = return
            }}
            update control {{
                &Proxy-To-Realm := "otp-mschap"
            }}
        }}
    }}
    authenticate {{
        # rlm_eap_mschapv2 refuses to start without an MS-CHAP authentication to hand converted requests to.
        Auth-Type MS-CHAP {{
            mschap
        }}
        eap
    }}
    post-proxy {{
        eap
    }}
}}
"""


def copy_debian_config(confdir: Path, *subdirs: str) -> None:
    """Debian's FreeRADIUS tree in `confdir` (for its dictionaries), with no module or site enabled (the test writes
    all that shapes the request path into radiusd.conf), and the folders `subdirs` made."""
    shutil.copytree(DEBIAN_CONFIG, confdir, symlinks=True)
    for sub in ("mods-enabled", "sites-enabled"):
        shutil.rmtree(confdir / sub)
        (confdir / sub).mkdir()
    for sub in subdirs:
        (confdir / sub).mkdir(exist_ok=True)


class RunningFreeradius:
    """`freeradius -X -d CONFDIR` (the debug output, which says how each request was handled, in `output`): started
    once `freeradius -C` accepts the config, returned once it is ready to process requests."""

    def __init__(self, confdir: Path, output: Path, wait: float = 30.0) -> None:
        self.output = output
        binary = tool("freeradius")
        check = subprocess.run([binary, "-C", "-d", str(confdir)], capture_output=True, text=True, timeout=60)
        if check.returncode != 0:
            raise AssertionError(f"freeradius refused its config:\n{check.stdout[-4000:]}{check.stderr[-2000:]}")
        with open(output, "wb") as out:
            self.proc = subprocess.Popen([binary, "-X", "-d", str(confdir)], stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT)
        deadline = time.monotonic() + wait
        while "Ready to process requests" not in self.log():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"freeradius did not start:\n{self.log()[-4000:]}")
            time.sleep(0.05)

    def log(self) -> str:
        return self.output.read_text(errors="replace") if self.output.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class FreeRadiusFrontEnd:
    """FreeRADIUS on a free loopback port, proxying to an otp-radiusd on `otp_port`; `ca_pem` is what a supplicant
    trusts."""

    def __init__(self, folder: Path, otp_port: int) -> None:
        self.folder = folder
        self.confdir = folder / "raddb"
        self.otp_port = otp_port
        self.port = free_udp_port()
        self.server: RunningFreeradius | None = None
        self.ca_pem = folder / "ca.pem"

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def write_config(self) -> None:
        copy_debian_config(self.confdir, "log", "run", "tls")
        ca = make_ca("eap-ca")
        ca.write_cert(self.confdir / "tls" / "ca.pem")
        ca.write_cert(self.ca_pem)
        tls = self.confdir / "tls"
        ca.issue_server(("radius.test",)).write(tls / "server.pem", tls / "server.key")
        (self.confdir / "radiusd.conf").write_text(RADIUSD_CONF.format(
            dir=self.confdir, port=self.port, otp_port=self.otp_port, pap_source=PAP_SOURCE, peap_source=PEAP_SOURCE,
            front_end_secret=FRONT_END_SECRET, supplicant_secret=SUPPLICANT_SECRET))

    def start(self, wait: float = 30.0) -> None:
        self.write_config()
        self.server = RunningFreeradius(self.confdir, self.folder / "debug.log", wait)

    def log(self) -> str:
        return self.server.log() if self.server is not None else ""

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        self.server = None


def eapol_test(folder: Path, front_end: FreeRadiusFrontEnd, network: str, *, name: str = "eap"
               ) -> subprocess.CompletedProcess[str]:
    """`eapol_test` (the supplicant and the access point in one program) with one wpa_supplicant network block,
    against the front end; exit 0 is an EAP success."""
    conf = folder / f"{name}.conf"
    conf.write_text(f"network={{\n    key_mgmt=WPA-EAP\n    ca_cert=\"{front_end.ca_pem}\"\n{network}\n}}\n")
    return subprocess.run([tool("eapol_test"), "-c", str(conf), "-a", "127.0.0.1", "-p", str(front_end.port),
                           "-s", SUPPLICANT_SECRET, "-t", "20", "-r", "0"], capture_output=True, text=True,
                          timeout=60)
