"""workers = 2 sharing a port and a store; the --demo first try."""

from __future__ import annotations

import re
import shlex
import signal
import subprocess
import time
from pathlib import Path

from otpbase.radius import ACCESS_ACCEPT, ACCESS_REJECT
from tests.kit.codes import totp
from tests.kit.config import Client
from tests.kit.ports import free_udp_port
from tests.kit.radius_client import UdpClient, build_request
from tests.kit.radiusd import READY_TIMEOUT, RadiusServer
from tests.kit.tools import tool


def test_workers_share_the_port_and_refuse_a_code_accepted_by_the_other(make_server: type[RadiusServer]) -> None:
    srv = make_server(clients=[Client("local", "127.0.0.1", first_factor="none")], workers=2)
    wes = srv.add_user("wes", None)
    srv.start()
    assert len(srv.wait_log(r"ready: listening.* worker=\d", count=2)) == 2

    # SO_REUSEPORT spreads client ports over the workers: find one client socket served by each.
    probes = [UdpClient(srv.address) for _ in range(16)]
    try:
        for probe in probes:
            assert probe.ask(build_request(f"probe-{probe.port}", b"000000")).code == ACCESS_REJECT
        by_worker: dict[str, UdpClient] = {}
        for probe in probes:
            by_worker.setdefault(srv.decisions(f"probe-{probe.port}")[0]["worker"], probe)
        assert set(by_worker) == {"1", "2"}, "both workers should answer"
        first, second = by_worker["1"], by_worker["2"]
        code = wes.code().encode()
        assert first.ask(build_request("wes", code)).code == ACCESS_ACCEPT
        assert second.ask(build_request("wes", code)).code == ACCESS_REJECT
    finally:
        for probe in probes:
            probe.close()
    decisions = srv.decisions("wes")
    assert [(d["worker"], d["result"], d["reason"]) for d in decisions] == [("1", "accept", "ok"),
                                                                            ("2", "reject", "replay")]
    counters = srv.counters()  # summed over both workers
    assert counters["accept"] == 1 and counters["reject"] == 17


def test_workers_reload_on_sighup(make_server: type[RadiusServer]) -> None:
    srv = make_server(clients=[Client("local", "127.0.0.1")], workers=2).start()
    srv.clients.append(Client("newcomer", "127.0.0.7", secret="new-secret"))
    srv.write_config()
    assert srv.proc is not None
    srv.proc.send_signal(signal.SIGHUP)
    srv.wait_log(r"reloaded .*2 clients worker=\d", count=2)


def _start_demo(cwd: Path, port: int, out: Path, err: Path) -> subprocess.Popen[bytes]:
    with open(out, "wb") as o, open(err, "wb") as e:
        proc = subprocess.Popen([tool("otp-radiusd"), "--demo", "--listen", f"127.0.0.1:{port}"], cwd=cwd,
                                stdout=o, stderr=e, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + READY_TIMEOUT
    while "ready: listening" not in err.read_text():
        assert proc.poll() is None, err.read_text()
        assert time.monotonic() < deadline, err.read_text()
        time.sleep(0.02)
    return proc


def test_demo_prints_a_working_radtest_and_radclient_line(tmp_path: Path) -> None:
    port = free_udp_port()
    out, err = tmp_path / "out", tmp_path / "err"
    proc = _start_demo(tmp_path, port, out, err)
    try:
        text = out.read_text()
        secret = re.search(r"oathtool --totp -b ([A-Z2-7]+)", text).group(1)  # type: ignore[union-attr]
        assert "otpauth://totp/" in text and "▀" in text  # the QR code, drawn in the terminal
        radtest = next(line.strip() for line in text.splitlines() if line.strip().startswith("radtest "))
        argv = shlex.split(radtest.replace("demo123456", f"demo{totp(secret)}"))
        result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        assert "Received Access-Accept" in result.stdout, result.stdout + result.stderr
        lines = text.splitlines()
        i = next(n for n, line in enumerate(lines) if line.strip().startswith("echo "))
        pipeline = (lines[i].rstrip("\\ ") + " " + lines[i + 1].strip()).replace(
            "demo123456", f"demo{totp(secret, time.time() + 30)}")
        result = subprocess.run(["bash", "-c", pipeline], capture_output=True, text=True, timeout=30)
        assert "Received Access-Accept" in result.stdout, result.stdout + result.stderr

        # A second demo on the port the first one holds: the reason in one line, no banner, no QR code before it.
        second = subprocess.run([tool("otp-radiusd"), "--demo", "--listen", f"127.0.0.1:{port}"], cwd=tmp_path,
                                capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
        assert (second.returncode, second.stdout, second.stderr) == (
            1, "", f"otp-radiusd: radius.listen: cannot listen on 127.0.0.1:{port}: Address already in use\n")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    state = tmp_path / "state"
    assert {p.name for p in state.iterdir()} >= {"otp.toml", "otp.sqlite", "otp.key"}
    assert (state / "otp.key").stat().st_mode & 0o077 == 0 and (state / "otp.sqlite").stat().st_mode & 0o077 == 0

    # A second start reuses the state: same user, same token.
    proc = _start_demo(tmp_path, port, out, err)
    try:
        assert f"oathtool --totp -b {secret}" in out.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
