"""Eight processes verify the same valid code against one store at the same moment: exactly one accepts."""

from __future__ import annotations

import multiprocessing
import time
from collections import Counter

from otpcore import oath
from tests.kit.codes import OathTool

from .helpers import SEED20, SEED32, Cli, Installation, race_verify

CONTENDERS = 8
NOW = 1_700_000_000.0


def race(inst: Installation, user: str, code: str) -> Counter[tuple[str, str]]:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(CONTENDERS)
    results = ctx.Queue()
    config_path = str(inst.folder / "otp.toml")
    procs = [ctx.Process(target=race_verify, args=(config_path, user, code, NOW, barrier, results))
             for _ in range(CONTENDERS)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return Counter(outcomes)


def test_race_totp_exactly_one_accepts(inst: Installation) -> None:
    inst.add_user("alice")
    inst.add_token("alice", type="totp", secret=SEED20)
    outcomes = race(inst, "alice", oath.totp(SEED20, NOW))
    assert outcomes == Counter({("accept", "ok"): 1, ("reject", "replay"): CONTENDERS - 1})
    assert inst.token(1).last_step == oath.time_step(NOW)


def test_race_hotp_exactly_one_accepts(inst: Installation) -> None:
    inst.add_user("alice")
    inst.add_token("alice", type="hotp", secret=SEED32, digits=8, counter=3)
    outcomes = race(inst, "alice", oath.hotp(SEED32, 5, 8))
    assert outcomes == Counter({("accept", "ok"): 1, ("reject", "wrong_code"): CONTENDERS - 1})
    assert inst.token(1).counter == 6


def test_race_of_cli_processes(cli_alice: Cli, oathtool: OathTool) -> None:
    cli = cli_alice
    cli.ok("token", "add", "alice", "--type", "totp", "--secret", oath.encode_base32(SEED20), "--qr", "none")
    code = oathtool.totp(SEED20, time.time())
    procs = [cli.popen("token", "verify", "alice", code) for _ in range(CONTENDERS)]  # started together
    results = [(p.communicate(timeout=120), p.returncode) for p in procs]
    statuses = Counter(status for _, status in results)
    assert statuses == Counter({0: 1, 1: CONTENDERS - 1}), results
    assert all("replay" in err for (_, err), status in results if status == 1)
