"""`otp-admin import`: Google Authenticator URIs, oath users files and CSV, all or nothing."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.kit.codes import OathTool

from .helpers import B32_20, B32_32, B32_64, SEED20, SEED32, SEED64, Cli, refused, sha256_file, user_json

# -- imports -----------------------------------------------------------------------------------------------------------


def test_import_google_authenticator_totp(cli_alice: Cli, oathtool: OathTool, tmp_path: Path) -> None:
    cli = cli_alice
    ga = tmp_path / "google_authenticator"
    ga.write_text(f'{B32_20}\n" RATE_LIMIT 3 30 1700000000\n" WINDOW_SIZE 17\n" DISALLOW_REUSE\n" TOTP_AUTH\n'
                  "12345678\n23456789\n34567890\n45678901\n56789012\n")
    out = cli.run("import", "--format", "google-authenticator", str(ga), "--user", "gus")
    assert out.returncode == 0, out.stderr
    assert "imported 1 token(s) for 1 user(s)" in out.stdout
    token = json.loads(cli.ok("token", "list", "gus", "--json"))[0]
    assert (token["type"], token["period"], token["digits"]) == ("totp", 30, 6)
    # WINDOW_SIZE 17 = 8 steps either side: a code 5 steps ahead passes (the policy's window is 1)
    assert cli.run("token", "verify", "gus", oathtool.totp(SEED20, time.time() + 150)).returncode == 0
    scratch = cli.run("token", "verify", "gus", "12345678")  # scratch codes are not imported: not a code of his
    assert scratch.returncode == 2 and "not a code of gus's tokens" in scratch.stderr


def test_import_google_authenticator_hotp(cli_alice: Cli, oathtool: OathTool, tmp_path: Path) -> None:
    cli = cli_alice
    ga = tmp_path / "google_authenticator"
    ga.write_text(f'{B32_32}\n" HOTP_COUNTER 7\n" WINDOW_SIZE 3\n" RATE_LIMIT 3 30\n87654321\n')
    assert cli.run("import", "--format", "google-authenticator", str(ga), "--user", "hal").returncode == 0
    token = json.loads(cli.ok("token", "list", "hal", "--json"))[0]
    assert (token["type"], token["counter"]) == ("hotp", 7)
    assert refused(cli.run("token", "verify", "hal", oathtool.hotp(SEED32, 6)))  # used before the import
    assert cli.run("token", "verify", "hal", oathtool.hotp(SEED32, 7)).returncode == 0
    assert cli.run("token", "verify", "hal", oathtool.hotp(SEED32, 10)).returncode == 0  # 8, 9, 10: WINDOW_SIZE 3
    assert refused(cli.run("token", "verify", "hal", oathtool.hotp(SEED32, 14)))  # 11, 12, 13 only


def test_import_google_authenticator_needs_user(cli_alice: Cli, tmp_path: Path) -> None:
    ga = tmp_path / "ga"
    ga.write_text(f"{B32_20}\n")
    before = sha256_file(cli_alice.store)
    out = cli_alice.run("import", "--format", "google-authenticator", str(ga))
    assert out.returncode == 2 and len(out.stderr.splitlines()) == 1 and "--user" in out.stderr
    assert sha256_file(cli_alice.store) == before


def test_import_oath_usersfile(cli_alice: Cli, oathtool: OathTool, tmp_path: Path) -> None:
    cli = cli_alice
    users = tmp_path / "users.oath"
    users.write_text(
        "# /etc/users.oath\n"
        f"HOTP\tharry\t-\t{SEED20.hex()}\n"
        f"HOTP/T30/8 ida 1234 {SEED32.hex()}\n"
        f"HOTP/T60 jo + {SEED64.hex()} 0\n"
        "\n"
        f"HOTP/E/8 kay - {SEED20.hex()} 5 {oathtool.hotp(SEED20, 5, digits=8)} 2024-05-01T10:00:00L\n"
    )
    out = cli.run("import", "--format", "oath-usersfile", str(users))
    assert out.returncode == 0, out.stderr
    assert "imported 4 token(s) for 4 user(s)" in out.stdout
    now = time.time()
    assert cli.run("token", "verify", "harry", oathtool.hotp(SEED20, 0)).returncode == 0
    assert cli.run("token", "verify", "ida", oathtool.totp(SEED32, now, digits=8)).returncode == 0
    assert cli.run("token", "verify", "jo", oathtool.totp(SEED64, now, period=60)).returncode == 0
    # kay's line records counter 5 as used (its OTP is the last one accepted by pam_oath): 6 is next
    assert refused(cli.run("token", "verify", "kay", oathtool.hotp(SEED20, 5, digits=8)))
    assert cli.run("token", "verify", "kay", oathtool.hotp(SEED20, 6, digits=8)).returncode == 0
    shown = {u["name"]: u for u in json.loads(cli.ok("user", "list", "--json"))}
    assert shown["ida"]["password"] is True  # the PIN becomes the first-factor password
    assert shown["harry"]["password"] is False and shown["jo"]["password"] is False


def test_import_csv(cli_alice: Cli, oathtool: OathTool, tmp_path: Path) -> None:
    cli = cli_alice
    csv_file = tmp_path / "users.csv"
    csv_file.write_text(
        "user,type,secret,algorithm,digits,period,counter,email,phone\n"
        f"kim,totp,{B32_64},SHA512,8,60,,kim@example.org,\n"
        f"leo,hotp,{B32_20.lower()},,,,3,,+41790000000\n"
        f"alice,totp,{B32_32},SHA256,,,,,\n"
    )
    out = cli.run("import", "--format", "csv", str(csv_file))
    assert out.returncode == 0, out.stderr
    assert "imported 3 token(s) for 3 user(s)" in out.stdout
    now = time.time()
    assert cli.run("token", "verify", "kim", oathtool.totp(SEED64, now, algorithm="SHA512", digits=8,
                                                           period=60)).returncode == 0
    assert refused(cli.run("token", "verify", "leo", oathtool.hotp(SEED20, 2)))
    assert cli.run("token", "verify", "leo", oathtool.hotp(SEED20, 3)).returncode == 0
    assert cli.run("token", "verify", "alice", oathtool.totp(SEED32, now, algorithm="SHA256")).returncode == 0
    assert user_json(cli, "kim")["email"] == "kim@example.org"
    assert user_json(cli, "leo")["phone"] == "+41790000000"
    assert user_json(cli, "alice")["password"] is True  # an existing user keeps her password


def test_import_csv_from_stdin_with_bom(cli_alice: Cli, oathtool: OathTool) -> None:
    cli = cli_alice
    out = cli.run("import", "--format", "csv", "-", stdin=f"\ufeffuser,type,secret\nmia,hotp,{B32_20}\n")
    assert out.returncode == 0, out.stderr
    assert cli.run("token", "verify", "mia", oathtool.hotp(SEED20, 0)).returncode == 0


@pytest.mark.parametrize("bad_line", [  # (more bad rows in test_importers: these go through the whole CLI)
    "bad,totp,NOT-BASE32!!",
    "bad,totp,JBSWY3DPEHPK3PXP,SHA1,5",
    "bad,hotp,JBSWY3DPEHPK3PXP,,,,99999999999999999999999",
    "bad,totp,JBSWY3DPEHPK3PXP,,,,,,,,extra",
])
def test_import_csv_is_all_or_nothing(cli_alice: Cli, tmp_path: Path, bad_line: str) -> None:
    cli = cli_alice
    csv_file = tmp_path / "users.csv"
    csv_file.write_text(f"user,type,secret,algorithm,digits,period,counter,email,phone\n"
                        f"nora,totp,{B32_20},,,,,,\n{bad_line}\nolga,totp,{B32_20},,,,,,\n")
    before = sha256_file(cli.store)
    out = cli.run("import", "--format", "csv", str(csv_file))
    assert out.returncode == 2, out
    assert len(out.stderr.splitlines()) == 1 and "line 3" in out.stderr, out.stderr
    assert sha256_file(cli.store) == before
    assert [u["name"] for u in json.loads(cli.ok("user", "list", "--json"))] == ["alice"]
