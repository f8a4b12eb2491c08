"""What a login imports, in the interpreter pam_python embeds (/usr/bin/python3, isolated): small and no servers."""

from __future__ import annotations

import json
import subprocess
import sysconfig
from pathlib import Path

from pam_module.pamconfig import auth_line
from tests.kit.ports import free_udp_port

from .pamkit import OtpEnv, split_pam_args

PROBE = r'''
import json, sys
argv = json.loads(sys.argv[1])
g = {"__file__": argv[0], "__name__": "pam_otp"}
exec(compile(open(argv[0]).read(), argv[0], "exec"), g)

class Exc(Exception):
    pass

class Pamh:
    PAM_SUCCESS, PAM_SERVICE_ERR, PAM_AUTH_ERR, PAM_AUTHINFO_UNAVAIL, PAM_USER_UNKNOWN = 0, 3, 7, 9, 10
    PAM_MAXTRIES, PAM_CONV_ERR, PAM_IGNORE, PAM_PROMPT_ECHO_OFF = 11, 19, 25, 1
    exception = Exc
    service, rhost, authtok, user = "probe", None, None, "alice"
    class Message:
        def __init__(self, style, text):
            self.msg = text
    class Response:
        resp = "000000"
    def get_user(self, prompt):
        return self.user
    def conversation(self, message):
        return self.Response()

rc = g["pam_sm_authenticate"](Pamh(), 0, argv)
crypto = sys.modules.get("cryptography")
print(json.dumps({"rc": rc, "modules": sorted(sys.modules), "cryptography": getattr(crypto, "__file__", None)}))
'''

HEAVY = ("pyrad", "asyncio", "click", "argon2", "sqlite_utils", "segno", "pam", "radiusd", "otpadmin", "otpweb",
         "starlette", "uvicorn", "jinja2", "anyio")
# What a code-only login in local mode never needs: the other doors' checks (CHAP/MS-CHAP responses, first factors,
# the directory, PostgreSQL) and the RADIUS client
LOCAL_NEVER = ("ldap3", "psycopg", "Crypto", "otpcore.chap", "otpcore.mschap", "otpcore.responsecheck",
               "otpcore.emptycode", "otpcore.firstfactor", "otpcore.ldap_config", "pam_module.backend_radius",
               "pam_module.radius_client")


def probe(line: str) -> dict:
    argv = split_pam_args(line)[3:]
    out = subprocess.run(["/usr/bin/python3", "-I", "-c", PROBE, json.dumps(argv)], capture_output=True, text=True,
                         check=True, timeout=60)
    return json.loads(out.stdout)


def roots(modules: list[str]) -> set[str]:
    return {m.split(".")[0] for m in modules} | set(modules)


def test_local_login_imports(otp: OtpEnv):
    otp.add_user("alice")
    result = probe(auth_line("local", config=otp.config))
    assert result["rc"] == 7  # a wrong code, really checked against the store
    mods = roots(result["modules"])
    assert {"otpcore.service", "sqlite3", "cryptography"} <= mods
    assert not mods & {*HEAVY, *LOCAL_NEVER}, mods & {*HEAVY, *LOCAL_NEVER}
    venv_site = str(Path(sysconfig.get_path("purelib")).resolve())
    assert result["cryptography"].startswith(venv_site + "/")  # the venv's pinned one, not Debian's python3-...


def test_radius_login_imports_only_the_standard_library(tmp_path: Path):
    secret = tmp_path / "s"
    secret.write_text("x\n")
    line = auth_line("radius", [f"127.0.0.1:{free_udp_port()}"], secret, options=["timeout=0.2", "retries=0"])
    result = probe(line)
    assert result["rc"] == 9  # nobody listens: unavailable
    mods = roots(result["modules"])
    assert "pam_module.radius_client" in mods
    assert not mods & {*HEAVY, "otpcore", "cryptography", "typing", "dataclasses", "sqlite3"}, mods
