"""README's 802.1X recipe, tested: a private FreeRADIUS (tests/kit/freeradius.py) ends the EAP tunnels and proxies
their inner request to otp-radiusd as plain RADIUS, from two source addresses (`src_ipaddr`) that otp-radiusd takes
for two clients: EAP-TTLS with inner PAP (password and code in one field; first factor "store") and PEAP-MSCHAPv2 (the
code as the password; first factor "none"), driven by `eapol_test`, which plays the Wi-Fi client and the access point.
An Accept ends in EAP-Success with the MPPE keys the access point encrypts with; a used code is refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kit.config import Client
from tests.kit.freeradius import FRONT_END_SECRET, PAP_SOURCE, PEAP_SOURCE, FreeRadiusFrontEnd, eapol_test
from tests.kit.radiusd import RadiusServer, User

CLIENTS = [Client("wifi-ttls", PAP_SOURCE, secret=FRONT_END_SECRET),
           Client("wifi-peap", PEAP_SOURCE, secret=FRONT_END_SECRET, first_factor="none")]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RadiusServer, FreeRadiusFrontEnd]]:
    otp = RadiusServer(tmp_path_factory.mktemp("otp"), clients=CLIENTS)
    otp.start()
    front = FreeRadiusFrontEnd(tmp_path_factory.mktemp("freeradius"), otp.auth_port)
    try:
        with front:
            yield otp, front
    finally:
        assert otp.stop() == 0, otp.log()


def peap(user: User, password: str) -> str:
    return (f'    eap=PEAP\n    identity="{user.name}"\n    anonymous_identity="anonymous"\n'
            f'    password="{password}"\n    phase1="peapver=0"\n    phase2="auth=MSCHAPV2"')


def ttls(user: User, password: str) -> str:
    return (f'    eap=TTLS\n    identity="{user.name}"\n    anonymous_identity="anonymous"\n'
            f'    password="{password}"\n    phase2="auth=PAP"')


def succeeded(run: object) -> bool:
    out = getattr(run, "stdout", "")
    return getattr(run, "returncode", 1) == 0 and "CTRL-EVENT-EAP-SUCCESS" in out and "\nSUCCESS" in out


def test_peap_mschapv2_with_the_code(servers: tuple[RadiusServer, FreeRadiusFrontEnd], tmp_path: Path) -> None:
    otp, front = servers
    user = otp.add_user("laptop", None)
    code = user.code()
    run = eapol_test(tmp_path, front, peap(user, code))
    assert succeeded(run), run.stdout[-3000:] + front.log()[-5000:]
    assert "MS-MPPE-Send-Key" in run.stdout and "MS-MPPE-Recv-Key" in run.stdout  # the access point's keys
    assert otp.decisions(user.name)[-1] | {"from": ""} == {"user": user.name, "client": "wifi-peap", "from": "",
                                                          "result": "accept", "reason": "ok"}
    # otp-radiusd's answer to the proxied MS-CHAPv2, as FreeRADIUS read it: the proof it knew the code, the keys
    proxied = front.log()
    assert "MS-CHAP2-Success = 0x" in proxied and "MS-MPPE-Send-Key = 0x" in proxied
    replay = eapol_test(tmp_path, front, peap(user, code), name="replay")
    assert not succeeded(replay)
    assert otp.decisions(user.name)[-1]["reason"] == "replay"
    assert not succeeded(eapol_test(tmp_path, front, peap(user, user.wrong_code()), name="wrong"))
    assert otp.decisions(user.name)[-1]["reason"] == "wrong_code"


def test_ttls_pap_with_password_and_code(servers: tuple[RadiusServer, FreeRadiusFrontEnd], tmp_path: Path) -> None:
    otp, front = servers
    user = otp.add_user("phone", "ph0ne-pw")
    run = eapol_test(tmp_path, front, ttls(user, "ph0ne-pw" + user.code()))
    assert succeeded(run), run.stdout[-3000:] + front.log()[-5000:]
    assert "MS-MPPE-Send-Key" in run.stdout
    assert otp.decisions(user.name)[-1]["client"] == "wifi-ttls"
    assert not succeeded(eapol_test(tmp_path, front, ttls(user, user.code()), name="code-alone"))
    assert otp.decisions(user.name)[-1]["result"] == "reject"
