"""A real otp-radiusd on a loopback port, driven by radclient, pyrad's client and hand-made packets."""

from __future__ import annotations

import glob
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyrad import packet as rpacket
from pyrad.client import Timeout

from otpbase.radius import (
    ACCESS_ACCEPT,
    ACCESS_CHALLENGE,
    ACCESS_REJECT,
    BAD_AUTHENTICATOR,
    MISSING_MESSAGE_AUTHENTICATOR,
    STATUS_SERVER,
)
from tests.kit.config import Client
from tests.kit.pamservices import pam_service_file, pwdfile_with
from tests.kit.ports import free_udp_port
from tests.kit.radius_client import SECRET, SILENCE_TIMEOUT, UdpClient, build_request, pyrad_client, pyrad_login
from tests.kit.radiusd import RadiusServer
from tests.kit.tools import tool

CLIENTS = [
    Client("wide", "127.0.0.0/24", secret="wide-secret"),
    Client("local", "127.0.0.1"),
    Client("otp-only", "127.0.0.2", first_factor="none"),
    Client("legacy", "127.0.0.3", require_message_authenticator=False),
    Client("v6", "::1"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RadiusServer]:
    tmp = tmp_path_factory.mktemp("radius")
    srv = RadiusServer(tmp, clients=CLIENTS)
    srv.listen.append(f"[::1]:{srv.auth_port}")
    srv.write_config()
    srv.start()
    yield srv
    assert srv.stop() == 0, srv.log()
    log = srv.log()
    assert "stopped" in log
    for secret in ("alice-pw", "bob-pw", "jo-pw", "testing123", "wide-secret", "pass\\xff"):
        assert secret not in log, f"{secret!r} in the log"


def radclient(server: RadiusServer, attrs: str, command: str = "auth", secret: str = SECRET.decode(),
              host: str = "127.0.0.1") -> subprocess.CompletedProcess[str]:
    target = f"[{host}]:{server.auth_port}" if ":" in host else f"{host}:{server.auth_port}"
    return subprocess.run([tool("radclient"), "-x", "-t", "1", "-r", "1", target, command, secret],
                          input=attrs, capture_output=True, text=True, timeout=30)


# -- password + code ---------------------------------------------------------------------------------------------------


def test_accept_with_password_and_code_through_pyrad(server: RadiusServer) -> None:
    alice = server.add_user("alice", "alice-pw")
    with pyrad_client(server) as client:
        reply = pyrad_login(client, "alice", f"alice-pw{alice.code()}".encode())
    assert reply.code == rpacket.AccessAccept
    assert next(iter(reply.keys())) == "Message-Authenticator"  # verified by pyrad (enforce_ma)
    assert server.decisions("alice")[-1]["result"] == "accept"


def test_accept_with_radclient_and_radtest(server: RadiusServer) -> None:
    bob = server.add_user("bob", "bob-pw")
    out = radclient(server, f'User-Name = "bob", User-Password = "bob-pw{bob.code()}", Message-Authenticator = 0x00')
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Received Access-Accept" in out.stdout
    code = bob.code(time.time() + 30)  # the next step: the current one is used
    out = subprocess.run([tool("radtest"), "bob", f"bob-pw{code}", f"127.0.0.1:{server.auth_port}", "0", "testing123"],
                         capture_output=True, text=True, timeout=30)
    assert "Received Access-Accept" in out.stdout, out.stdout + out.stderr


@pytest.mark.parametrize("case", ["wrong_code", "wrong_password", "unknown_user", "invalid_utf8"])
def test_rejects(server: RadiusServer, case: str) -> None:
    user = server.add_user(f"rej-{case}", "password")
    code = user.code()
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    name, password = {
        "wrong_code": (user.name, b"password" + wrong.encode()),
        "wrong_password": (user.name, b"passw0rd" + code.encode()),
        "unknown_user": ("nobody-" + case, b"password" + code.encode()),
        "invalid_utf8": (user.name, b"pass\xffword" + code.encode()),  # must not match "password"
    }[case]
    with UdpClient(server.address) as client:
        reply = client.ask(build_request(name, password))
    assert reply.code == ACCESS_REJECT
    assert reply.message == "Authentication failed"  # says nothing of which factor failed
    with UdpClient(server.address) as client:  # the code was not used up: the right password still works
        ok = client.ask(build_request(user.name, b"password" + code.encode()))
    assert ok.code == ACCESS_ACCEPT


def test_same_code_twice_is_rejected(server: RadiusServer) -> None:
    carol = server.add_user("carol", "pw")
    password = f"pw{carol.code()}".encode()
    with UdpClient(server.address) as client:
        assert client.ask(build_request("carol", password)).code == ACCESS_ACCEPT
        assert client.ask(build_request("carol", password)).code == ACCESS_REJECT
    assert [d["reason"] for d in server.decisions("carol")] == ["ok", "replay"]


def test_retransmission_gets_identical_accept_bytes_and_is_not_evaluated_again(server: RadiusServer) -> None:
    dan = server.add_user("dan", "pw")
    sent = build_request("dan", f"pw{dan.code()}".encode())
    with UdpClient(server.address) as client:
        first = client.exchange(sent)
        assert first is not None and first[0] == ACCESS_ACCEPT
        for _ in range(3):
            assert client.exchange(sent) == first
    assert len(server.decisions("dan")) == 1


# -- Message-Authenticator, secrets, clients ---------------------------------------------------------------------------


def test_every_reply_has_a_valid_message_authenticator_first(server: RadiusServer) -> None:
    erin = server.add_user("erin", "pw")
    with UdpClient(server.address) as client:
        for sent, code in ((build_request("erin", f"pw{erin.code()}".encode()), ACCESS_ACCEPT),
                           (build_request("erin", b"pw000000x"), ACCESS_REJECT),
                           (build_request("erin", b"pw"), ACCESS_CHALLENGE),
                           (build_request(None, None, code=STATUS_SERVER), ACCESS_ACCEPT)):  # RFC 5997
            assert client.ask(sent).code == code  # check_reply asserts the Message-Authenticator's place and value


def test_missing_message_authenticator_gets_no_answer(server: RadiusServer) -> None:
    fay = server.add_user("fay", "pw")
    before = server.counters()
    with UdpClient(server.address) as client:
        sent = build_request("fay", f"pw{fay.code()}".encode(), ma=False)
        assert client.exchange(sent, timeout=SILENCE_TIMEOUT) is None
    assert server.counters()[MISSING_MESSAGE_AUTHENTICATOR] == before[MISSING_MESSAGE_AUTHENTICATOR] + 1
    assert server.decisions("fay") == []


def test_wrong_secret_gets_no_answer(server: RadiusServer) -> None:
    gus = server.add_user("gus", "pw")
    before = server.counters()
    out = radclient(server, f'User-Name = "gus", User-Password = "pw{gus.code()}", Message-Authenticator = 0x00',
                    secret="wrong-secret")
    assert out.returncode != 0 and "Received" not in out.stdout
    assert server.counters()[BAD_AUTHENTICATOR] >= before[BAD_AUTHENTICATOR] + 1
    assert server.decisions("gus") == []


def test_unknown_client_gets_no_answer(server: RadiusServer) -> None:
    before = server.counters()
    with UdpClient(server.address, source="127.0.1.1") as stranger:
        assert stranger.exchange(build_request("x", b"pw123456"), timeout=SILENCE_TIMEOUT) is None
    assert server.counters()["unknown_client"] == before["unknown_client"] + 1


def test_status_server_is_answered(server: RadiusServer) -> None:
    out = radclient(server, "Message-Authenticator = 0x00", command="status")
    assert "Received Access-Accept" in out.stdout, out.stdout + out.stderr
    with pyrad_client(server) as client:
        req = client.CreateAuthPacket(code=rpacket.StatusServer)
        req.add_message_authenticator()
        assert client.SendPacket(req).code == rpacket.AccessAccept


def test_most_specific_client_wins(server: RadiusServer) -> None:
    with UdpClient(server.address, source="127.0.0.5") as wide:  # only in 127.0.0.0/24
        sent = build_request(None, None, code=STATUS_SERVER, secret=b"wide-secret")
        assert wide.ask(sent).code == ACCESS_ACCEPT
    with UdpClient(server.address) as local:  # 127.0.0.1 is in both: its own entry wins
        assert local.exchange(build_request(None, None, code=STATUS_SERVER, secret=b"wide-secret"),
                              timeout=SILENCE_TIMEOUT) is None
        assert local.ask(build_request(None, None, code=STATUS_SERVER)).code == ACCESS_ACCEPT


def test_client_without_message_authenticator_requirement(server: RadiusServer) -> None:
    hal = server.add_user("hal", "pw")
    with UdpClient(server.address, source="127.0.0.3") as legacy:
        reply = legacy.ask(build_request("hal", f"pw{hal.code()}".encode(), ma=False))
        assert reply.code == ACCESS_ACCEPT
        # Proxy-State without a Message-Authenticator: dropped even here (BlastRADIUS).
        sent = build_request("hal", b"pw", ma=False, proxy_state=[b"p1"])
        assert legacy.exchange(sent, timeout=SILENCE_TIMEOUT) is None


def test_proxy_state_is_echoed_in_order(server: RadiusServer) -> None:
    with UdpClient(server.address) as client:
        reply = client.ask(build_request("nobody", b"pw123456", proxy_state=[b"one", b"two", b"\x00three"]))
    assert reply.get(33) == [b"one", b"two", b"\x00three"]


def test_ipv6_listen_and_client(server: RadiusServer) -> None:
    ivy = server.add_user("ivy", "pw")
    with UdpClient(("::1", server.auth_port), source="::1") as client:
        assert client.ask(build_request("ivy", f"pw{ivy.code()}".encode())).code == ACCESS_ACCEPT
    out = radclient(server, "Message-Authenticator = 0x00", command="status", host="::1")
    assert "Received Access-Accept" in out.stdout, out.stdout + out.stderr


# -- challenge ---------------------------------------------------------------------------------------------------------


def test_challenge_round_trip(server: RadiusServer) -> None:
    jo = server.add_user("jo", "jo-pw")
    with pyrad_client(server) as client:
        challenge = pyrad_login(client, "jo", b"jo-pw")
        assert challenge.code == rpacket.AccessChallenge
        state = challenge["State"][0]
        assert len(state) >= 16 and challenge["Reply-Message"] == ["Enter your one-time password"]
        accept = pyrad_login(client, "jo", jo.code().encode(), state=state)
        assert accept.code == rpacket.AccessAccept
        # The same State again, even with a good code of the next step: single use.
        again = pyrad_login(client, "jo", jo.code(time.time() + 30).encode(), state=state)
        assert again.code == rpacket.AccessReject
    assert [d["reason"] for d in server.decisions("jo")] == ["challenge", "ok", "bad_state"]


def test_expired_state_is_rejected(make_server: type[RadiusServer]) -> None:
    srv = make_server(clients=[Client("local", "127.0.0.1")], policy={"challenge_timeout": 1})
    kim = srv.add_user("kim", "pw")
    srv.start()
    with UdpClient(srv.address) as client:
        challenge = client.ask(build_request("kim", b"pw"))
        assert challenge.code == ACCESS_CHALLENGE
        time.sleep(1.1)  # challenge_timeout = 1
        reply = client.ask(build_request("kim", kim.code().encode(), state=challenge.state))
    assert reply.code == ACCESS_REJECT
    assert srv.decisions("kim")[-1]["reason"] == "expired_state"


def test_state_is_bound_to_the_user(server: RadiusServer) -> None:
    lea = server.add_user("lea", "pw")
    mo = server.add_user("mo", "pw")
    with UdpClient(server.address) as client:
        challenge = client.ask(build_request("lea", b"pw"))
        reply = client.ask(build_request("mo", mo.code().encode(), state=challenge.state))
        assert reply.code == ACCESS_REJECT
        # The State is used up by the attempt: lea has to start over.
        assert client.ask(build_request("lea", lea.code().encode(), state=challenge.state)).code == ACCESS_REJECT


# -- first factors -----------------------------------------------------------------------------------------------------


def test_first_factor_none_takes_the_code_alone(server: RadiusServer) -> None:
    ned = server.add_user("ned", "pw")
    with UdpClient(server.address, source="127.0.0.2") as otp_only:
        assert otp_only.ask(build_request("ned", f"pw{ned.code()}".encode())).code == ACCESS_REJECT
        assert otp_only.ask(build_request("ned", ned.code().encode())).code == ACCESS_ACCEPT


def test_first_factor_pam_through_a_real_pam_stack(make_server: type[RadiusServer], tmp_path: Path) -> None:
    assert glob.glob("/usr/lib/*/security/pam_pwdfile.so") or glob.glob("/lib/*/security/pam_pwdfile.so"), \
        "libpam-pwdfile is required (./dev test installs it)"
    pwdfile = pwdfile_with(tmp_path, "pamuser", "pam-secret")
    # nodelay: PAM's failure delay (2 s) would stall this worker's evaluating thread for every wrong password.
    with pam_service_file([f"auth required pam_pwdfile.so pwdfile={pwdfile} nodelay",
                           "account required pam_permit.so"]) as service:
        srv = make_server(clients=[Client("pam", "127.0.0.1", first_factor="pam")],
                          policy={"pam_service": service})
        user = srv.add_user("pamuser", None)  # no password in the store: PAM checks it
        srv.start()
        with UdpClient(srv.address) as client:
            assert client.ask(build_request("pamuser", f"pam-secret{user.code()}".encode())).code == \
                ACCESS_ACCEPT
            assert client.ask(build_request("pamuser", f"pam-secreX{user.code(time.time() + 30)}".encode())
                              ).code == ACCESS_REJECT
            challenge = client.ask(build_request("pamuser", b"pam-secret"))
            assert challenge.code == ACCESS_CHALLENGE
        assert [d["reason"] for d in srv.decisions("pamuser")] == ["ok", "wrong_password", "challenge"]


# -- lockout -----------------------------------------------------------------------------------------------------------


def test_lockout_unlock_and_audit(server: RadiusServer) -> None:
    olga = server.add_user("olga", "pw")
    with UdpClient(server.address) as client:
        for wrong in ("000001", "000002", "000003"):  # max_failures = 3 in this server
            if wrong in (olga.code(), olga.code(time.time() - 30), olga.code(time.time() + 30)):
                continue
            assert client.ask(build_request("olga", f"pw{wrong}".encode())).code == ACCESS_REJECT
        locked = client.ask(build_request("olga", f"pw{olga.code()}".encode()))
        assert locked.code == ACCESS_REJECT
        assert server.decisions("olga")[-1]["result"] == "locked"
        out = server.otp_admin("user", "unlock", "olga")
        assert out.returncode == 0, out.stderr
        reply = client.ask(build_request("olga", f"pw{olga.code(time.time() + 30)}".encode()))
        assert reply.code == ACCESS_ACCEPT
    audit = server.otp_admin("audit", "--user", "olga")
    assert audit.returncode == 0, audit.stderr
    assert "locked" in audit.stdout and "unlocked" in audit.stdout
    assert re.search(r"radius.*local.*accept", audit.stdout), audit.stdout


# -- process behaviour -------------------------------------------------------------------------------------------------


def test_sighup_reloads_clients_and_policy(make_server: type[RadiusServer]) -> None:
    srv = make_server(clients=[Client("local", "127.0.0.1")]).start()
    with UdpClient(srv.address, source="127.0.0.7") as newcomer:
        status = build_request(None, None, code=STATUS_SERVER, secret=b"new-secret")
        assert newcomer.exchange(status, timeout=SILENCE_TIMEOUT) is None
        srv.clients.append(Client("newcomer", "127.0.0.7", secret="new-secret"))
        srv.policy["challenge"] = False
        srv.write_config()
        assert srv.proc is not None
        srv.proc.send_signal(signal.SIGHUP)
        srv.wait_log(r"reloaded .*2 clients")
        assert newcomer.ask(build_request(None, None, code=STATUS_SERVER, secret=b"new-secret")).code == \
            ACCESS_ACCEPT
    srv.add_user("pat", "pw")
    with UdpClient(srv.address) as client:  # challenge = false now: the password alone is rejected
        assert client.ask(build_request("pat", b"pw")).code == ACCESS_REJECT
    # A broken file on SIGHUP keeps the running configuration.
    srv.config_path.write_text("[radius]\nworkers = 'many'\n")
    srv.proc.send_signal(signal.SIGHUP)
    srv.wait_log(r"reload failed.*radius\.workers")
    with UdpClient(srv.address) as client:
        assert client.ask(build_request(None, None, code=STATUS_SERVER)).code == ACCESS_ACCEPT


def test_config_error_exits_2_with_one_line_naming_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[radius.clients]]\nname = "x"\naddress = "10.0.0.0/33"\nsecret = "s"\n')
    out = subprocess.run([tool("otp-radiusd"), "--config", str(bad)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "radius.clients[0].address" in out.stderr
    missing = subprocess.run([tool("otp-radiusd"), "--config", str(tmp_path / "nope.toml")], capture_output=True,
                             text=True, timeout=30)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1


def test_missing_store_exits_1_with_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "otp.toml"
    cfg.write_text(f'[store]\npath = "none.sqlite"\nkey_file = "none.key"\n[radius]\nlisten = ["127.0.0.1:'
                   f'{free_udp_port()}"]\n')
    out = subprocess.run([tool("otp-radiusd"), "--config", str(cfg)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    assert out.stderr.count("\n") == 1 and "none." in out.stderr, out.stderr


def test_address_in_use_exits_1(server: RadiusServer, tmp_path: Path) -> None:
    out = subprocess.run([tool("otp-radiusd"), "--config", str(server.config_path)], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 1
    assert "radius.listen" in out.stderr and "in use" in out.stderr


def test_pyrad_client_times_out_on_wrong_secret(server: RadiusServer) -> None:
    with pyrad_client(server, secret=b"bad") as client:
        client.timeout = SILENCE_TIMEOUT
        with pytest.raises(Timeout):
            pyrad_login(client, "alice", b"whatever123456")
