"""`otp-admin token verify / resync` with real TOTP and HOTP codes (oathtool's): the flows of issue 2's "Done
when": replay, wrong codes, lockout, look-ahead, resync."""

from __future__ import annotations

import json
import time

from otpcore import oath
from tests.kit.codes import OathTool

from .helpers import B32_20, B32_32, SEED20, SEED32, Cli, refused, uri_of, user_json


def nearby(secret: bytes, *, digits: int = 6, algorithm: str = "SHA1", period: int = 30) -> set[str]:
    """Every code of the steps around now (so a wrong code can be chosen outside them)."""
    step = oath.time_step(time.time(), period)
    return {oath.hotp(secret, s, digits, algorithm) for s in range(step - 4, step + 6)}


def wrong_codes(valid: set[str], n: int, digits: int = 6) -> list[str]:
    out = [c for c in (str(i * 1111111 % 10**digits).zfill(digits) for i in range(1, 50)) if c not in valid]
    return out[:n]



# -- TOTP --------------------------------------------------------------------------------------------------------------


def test_totp_sha256_8_digits_verify_replay_wrong(cli_alice: Cli, oathtool: OathTool) -> None:
    cli = cli_alice
    out = cli.ok("token", "add", "alice", "--type", "totp", "--secret", B32_32, "--algorithm", "SHA256",
                 "--digits", "8", "--qr", "none")
    label, params = uri_of(out)
    assert label == "totp/alice"
    assert params == {"secret": B32_32, "algorithm": "SHA256", "digits": "8", "period": "30"}
    assert "█" not in out and "▀" not in out  # --qr none: no QR code
    code = oathtool.totp(SEED32, time.time(), algorithm="SHA256", digits=8)
    assert cli.run("token", "verify", "alice", code).returncode == 0
    assert refused(cli.run("token", "verify", "alice", code), "replay")
    wrong = wrong_codes(nearby(SEED32, digits=8, algorithm="SHA256"), 1, 8)[0]
    assert refused(cli.run("token", "verify", "alice", wrong), "wrong_code")


def test_totp_lockout_until_unlock(cli_alice: Cli, oathtool: OathTool) -> None:
    cli = cli_alice  # max_failures = 3, lockout_seconds = 300
    cli.ok("token", "add", "alice", "--type", "totp", "--secret", B32_20, "--qr", "none")
    for wrong in wrong_codes(nearby(SEED20), 3):
        assert refused(cli.run("token", "verify", "alice", wrong))
    user = user_json(cli, "alice")
    assert user["locked"] is True and user["failures"] == 3
    code = oathtool.totp(SEED20, time.time())
    assert refused(cli.run("token", "verify", "alice", code), "locked")
    assert refused(cli.run("token", "verify", "alice", code), "locked")
    cli.ok("user", "unlock", "alice")
    assert user_json(cli, "alice")["locked"] is False
    assert cli.run("token", "verify", "alice", code).returncode == 0


def test_totp_lockout_seconds_zero(cli_alice: Cli, oathtool: OathTool) -> None:
    cli = cli_alice
    cli.set_policy(max_failures=1, lockout_seconds=0)
    cli.ok("token", "add", "alice", "--type", "totp", "--secret", B32_20, "--qr", "none")
    assert refused(cli.run("token", "verify", "alice", wrong_codes(nearby(SEED20), 1)[0]))
    assert refused(cli.run("token", "verify", "alice", oathtool.totp(SEED20, time.time())), "locked")
    cli.ok("user", "unlock", "alice")
    assert cli.run("token", "verify", "alice", oathtool.totp(SEED20, time.time())).returncode == 0


def test_totp_resync_far_off_clock(cli_alice: Cli, oathtool: OathTool) -> None:
    cli = cli_alice
    cli.ok("token", "add", "alice", "--type", "totp", "--secret", B32_20, "--qr", "none")
    now = time.time()
    c1, c2, c3 = (oathtool.totp(SEED20, now + 30 * k) for k in (20, 21, 22))  # a token 10 minutes fast
    assert refused(cli.run("token", "verify", "alice", c1))
    out = cli.run("token", "resync", "alice", c1, c2)
    assert out.returncode == 0, out.stderr
    assert "resynchronised" in out.stdout
    assert json.loads(cli.ok("token", "list", "alice", "--json"))[0]["drift"] in (20, 21)
    assert cli.run("token", "verify", "alice", c3).returncode == 0  # the window follows the token's clock
    assert refused(cli.run("token", "resync", "alice", "123456", "654321"))


def test_token_without_secret_gets_a_random_160_bit_secret(cli_alice: Cli, oathtool: OathTool) -> None:
    cli = cli_alice
    out = cli.ok("token", "add", "alice", "--type", "totp", "--issuer", "ACME Corp", "--period", "60", "--qr", "none")
    label, params = uri_of(out)
    assert label == "totp/ACME Corp:alice"
    assert params["issuer"] == "ACME Corp" and params["period"] == "60"
    secret = oath.decode_base32(params["secret"])
    assert len(secret) == 20
    out2 = cli.ok("token", "add", "alice", "--type", "totp", "--qr", "none")
    assert uri_of(out2)[1]["secret"] != params["secret"]
    assert cli.run("token", "verify", "alice", oathtool.totp(secret, time.time(), period=60)).returncode == 0


# -- HOTP --------------------------------------------------------------------------------------------------------------


def test_hotp_flow_lookahead_lockout_resync(cli_alice: Cli, oathtool: OathTool) -> None:
    cli = cli_alice
    out = cli.ok("token", "add", "alice", "--type", "hotp", "--secret", B32_20, "--qr", "none")
    label, params = uri_of(out)
    assert label == "hotp/alice" and params["counter"] == "0" and "period" not in params

    def code(counter: int) -> str:
        return oathtool.hotp(SEED20, counter)

    def counter() -> int:
        return json.loads(cli.ok("token", "list", "alice", "--json"))[0]["counter"]

    assert cli.run("token", "verify", "alice", code(0)).returncode == 0
    assert refused(cli.run("token", "verify", "alice", code(0)))  # used
    assert cli.run("token", "verify", "alice", code(4)).returncode == 0  # a few counters ahead
    assert counter() == 5
    assert refused(cli.run("token", "verify", "alice", code(2)))  # skipped codes are gone
    assert refused(cli.run("token", "verify", "alice", code(5 + 11)))  # beyond hotp_lookahead = 10

    # lockout: 3 failures (one above, two more); the next valid code is refused until unlock
    hotp_codes = {code(c) for c in range(0, 40)}
    for wrong in wrong_codes(hotp_codes, 2):
        assert refused(cli.run("token", "verify", "alice", wrong))
    assert refused(cli.run("token", "verify", "alice", code(5)), "locked")
    cli.ok("user", "unlock", "alice")
    assert cli.run("token", "verify", "alice", code(5)).returncode == 0

    # resync with two consecutive codes far ahead
    assert refused(cli.run("token", "verify", "alice", code(100)))
    assert cli.run("token", "resync", "alice", code(200), code(201)).returncode == 0
    assert counter() == 202
    assert refused(cli.run("token", "verify", "alice", code(201)))
    assert cli.run("token", "verify", "alice", code(202)).returncode == 0
    assert refused(cli.run("token", "resync", "alice", code(205), code(207)))  # not consecutive


def test_hotp_initial_counter_and_8_digits(cli_alice: Cli, oathtool: OathTool) -> None:
    cli = cli_alice
    cli.ok("token", "add", "alice", "--type", "hotp", "--secret", B32_20, "--counter", "50", "--digits", "8",
           "--qr", "none")
    assert refused(cli.run("token", "verify", "alice", oathtool.hotp(SEED20, 49, digits=8)))
    assert cli.run("token", "verify", "alice", oathtool.hotp(SEED20, 50, digits=8)).returncode == 0
