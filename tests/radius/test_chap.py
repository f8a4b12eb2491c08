"""CHAP, MS-CHAP and MS-CHAPv2 against a real otp-radiusd, from FreeRADIUS's radtest and radclient: radtest computes
CHAP (`-t chap`) and MS-CHAP (`-t mschap`, version 1) itself; MS-CHAPv2 goes as attributes the test computes
(RFC 2759, checked against the RFC's example in tests/core), and radclient decodes the reply, opening the MPPE keys
with the shared secret. The code is consumed as PAP consumes it: a second use is a replay."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator

import pytest

from otpcore import mschap
from otpcore.admin import TokenSpec, UserSpec
from otpcore.oath import hotp
from tests.kit.config import Client
from tests.kit.radiusd import RadiusServer
from tests.kit.tools import tool

CLIENTS = [Client("vpn-code", "127.0.0.1", first_factor="none"), Client("vpn-password", "127.0.0.2"),
           Client("vpn-pam", "127.0.0.3", first_factor="pam")]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RadiusServer]:
    srv = RadiusServer(tmp_path_factory.mktemp("chap"), clients=CLIENTS)
    srv.start()
    yield srv
    assert srv.stop() == 0, srv.log()


def radtest(server: RadiusServer, method: str, user: str, password: str, source: str = "127.0.0.1") -> str:
    """`radtest -t METHOD` (its radclient computes the CHAP or MS-CHAP response from the password)."""
    out = subprocess.run([tool("radtest"), "-t", method, "-x", user, password, f"127.0.0.1:{server.auth_port}", "0",
                          "testing123", "0", source], capture_output=True, text=True, timeout=30)
    return out.stdout


def radclient(server: RadiusServer, attrs: str, source: str = "127.0.0.1") -> str:
    """radclient with these attributes, sent from `source` (radclient's Packet-Src-IP-Address: another client)."""
    out = subprocess.run([tool("radclient"), "-x", "-t", "3", "-r", "1", f"127.0.0.1:{server.auth_port}", "auth",
                          "testing123"], input=f"{attrs}Packet-Src-IP-Address = {source}\n", capture_output=True,
                         text=True, timeout=30)
    return out.stdout


def test_radtest_chap_code_once(server: RadiusServer) -> None:
    user = server.add_user("chap-user")
    code = user.code()
    assert "Received Access-Accept" in radtest(server, "chap", user.name, code)
    assert "Received Access-Reject" in radtest(server, "chap", user.name, code)
    assert [d["reason"] for d in server.decisions(user.name)] == ["ok", "replay"]
    assert "Received Access-Reject" in radtest(server, "chap", user.name, user.wrong_code())
    assert server.decisions(user.name)[-1]["reason"] == "wrong_code"


def test_radtest_mschap_v1_with_mppe_keys(server: RadiusServer) -> None:
    user = server.add_user("mschap-user")
    code = user.code()
    reply = radtest(server, "mschap", user.name, code)
    assert "Received Access-Accept" in reply, reply
    keys = re.search(r"MS-CHAP-MPPE-Keys = 0x([0-9a-f]+)", reply)
    assert keys is not None, reply  # radclient opened them with the shared secret
    nt_key = mschap.password_hash_hash(mschap.nt_password_hash(code))
    assert bytes.fromhex(keys.group(1))[:24] == bytes(8) + nt_key
    assert "MS-MPPE-Encryption-Policy = Encryption-Allowed" in reply
    assert "Received Access-Reject" in radtest(server, "mschap", user.name, code)  # a replay


def mschapv2_attributes(user: str, secret: str) -> tuple[str, bytes, bytes]:
    """What a Windows VPN client sends for `secret` (radclient input), with the challenge hash and NT-Response."""
    challenge, peer = os.urandom(16), os.urandom(16)
    challenge8 = mschap.challenge_hash(peer, challenge, mschap.peer_name(user))
    nt = mschap.nt_response_v2(challenge8, secret)
    attrs = (f'User-Name = "{user}"\nMS-CHAP-Challenge = 0x{challenge.hex()}\n'
             f"MS-CHAP2-Response = 0x2a00{peer.hex()}{bytes(8).hex()}{nt.hex()}\nMessage-Authenticator = 0x00\n")
    return attrs, challenge8, nt


def test_mschapv2_success_and_keys(server: RadiusServer) -> None:
    user = server.add_user("windows-user")
    code = user.code()
    attrs, challenge8, nt = mschapv2_attributes(user.name, code)
    reply = radclient(server, attrs)
    assert "Received Access-Accept" in reply, reply
    success = re.search(r"MS-CHAP2-Success = 0x([0-9a-f]+)", reply)
    assert success is not None, reply
    assert bytes.fromhex(success.group(1)) == b"\x2a" + mschap.authenticator_response(code, nt, challenge8)
    keys = mschap.mppe_keys_v2(code, nt)
    assert f"MS-MPPE-Send-Key = 0x{keys.send_key.hex()}" in reply
    assert f"MS-MPPE-Recv-Key = 0x{keys.recv_key.hex()}" in reply
    reply = radclient(server, mschapv2_attributes(user.name, code)[0])  # the same code in a new exchange
    assert "Received Access-Reject" in reply and "MS-CHAP-Error" in reply
    assert server.decisions(user.name)[-1]["reason"] == "replay"


def test_hotp_look_ahead(server: RadiusServer) -> None:
    secret = os.urandom(20)
    with server.admin() as admin:
        admin.add_user(UserSpec("hotp-user"), now=0)
        admin.add_token("hotp-user", TokenSpec(type="hotp", secret=secret, counter=0), now=0)
    assert "Received Access-Accept" in radtest(server, "chap", "hotp-user", hotp(secret, 4))
    assert "Received Access-Reject" in radtest(server, "chap", "hotp-user", hotp(secret, 3))  # behind the counter
    assert "Received Access-Accept" in radtest(server, "mschap", "hotp-user", hotp(secret, 5))


def test_password_and_code_needs_the_reversible_opt_in(server: RadiusServer) -> None:
    user = server.add_user("vpn-pw-user", "Pa55word")
    attrs, _, _ = mschapv2_attributes(user.name, "Pa55word" + user.code())
    assert "Received Access-Reject" in radclient(server, attrs, "127.0.0.2")
    assert server.decisions(user.name)[-1]["reason"] == "no_password"
    done = server.otp_admin("user", "passwd", user.name, "--password-stdin", "--reversible", stdin="Pa55word\n")
    assert done.returncode == 0, done.stderr
    assert "reversible_password: yes" in server.otp_admin("user", "show", user.name).stdout
    code = user.code()
    attrs, _, _ = mschapv2_attributes(user.name, "Pa55word" + code)
    assert "Received Access-Accept" in radclient(server, attrs, "127.0.0.2")
    chap_code_alone = f'User-Name = "{user.name}"\nCHAP-Password = "{code}"\nMessage-Authenticator = 0x00\n'
    assert "Received Access-Reject" in radclient(server, chap_code_alone, "127.0.0.2")
    assert server.decisions(user.name)[-1]["reason"] == "wrong_response"
    # PAP still checks the argon2 hash (the same password): the next step's code
    pap = f'User-Name = "{user.name}"\nUser-Password = "Pa55word{user.code(time.time() + 30)}"\n' \
          "Message-Authenticator = 0x00\n"
    assert "Received Access-Accept" in radclient(server, pap, "127.0.0.2")


def test_a_first_factor_that_needs_the_password_refuses(server: RadiusServer) -> None:
    user = server.add_user("pam-user")
    attrs = f'User-Name = "{user.name}"\nCHAP-Password = "{user.code()}"\nMessage-Authenticator = 0x00\n'
    assert "Received Access-Reject" in radclient(server, attrs, "127.0.0.3")
    assert server.decisions(user.name)[-1]["reason"] == "unsupported_auth"


def test_responses_join_the_receiving_threads_group_commits() -> None:
    """A response of a "none" or "store" client is hashes and store writes: decided with the PAP code checks."""
    from types import SimpleNamespace

    from otpbase.radius.chap import MsChap2Proof
    from otpcore.service import Verifier
    from radiusd.decide import batchable

    def job(first_factor: str) -> SimpleNamespace:
        proof = MsChap2Proof(1, bytes(16), bytes(16), bytes(24))
        return SimpleNamespace(request=SimpleNamespace(password=None, state=b"their State", proof=proof),
                               client=SimpleNamespace(first_factor=first_factor))

    assert batchable(Verifier, job("none")) and batchable(Verifier, job("store"))  # type: ignore[arg-type]
    assert not batchable(Verifier, job("pam"))  # type: ignore[arg-type]
