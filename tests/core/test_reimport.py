"""Importing a secret a user already holds (issue 13, item 11): refused, all or nothing, unless `--replace`, which
keeps the held token's counter / last step, so a code once accepted stays used. The real otp-admin, oathtool codes."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.kit.codes import OathTool

from .helpers import B32_20, B32_32, SEED20, SEED32, Cli, sha256_file

USERS_CSV = f"user,type,secret,digits\ndave,hotp,{B32_20},\nerin,totp,{B32_32},\n"


def tokens(cli: Cli, user: str) -> list[dict[str, object]]:
    return json.loads(cli.ok("token", "list", user, "--json"))


def refused_unchanged(cli: Cli, *args: str, stdin: str | None = None) -> str:
    before = sha256_file(cli.store)
    out = cli.run(*args, stdin=stdin)
    assert out.returncode == 1, out
    assert out.stdout == "" and len(out.stderr.splitlines()) == 1, out
    assert sha256_file(cli.store) == before
    return out.stderr


def test_reimport_is_refused_and_a_used_code_stays_used(cli_alice: Cli, oathtool: OathTool, tmp_path: Path) -> None:
    cli = cli_alice
    users = tmp_path / "users.csv"
    users.write_text(USERS_CSV)
    assert "imported 2 token(s) for 2 user(s)" in cli.ok("import", "--format", "csv", str(users))
    used = oathtool.hotp(SEED20, 5)
    assert cli.run("token", "verify", "dave", used).returncode == 0
    totp_used = oathtool.totp(SEED32, time.time())
    assert cli.run("token", "verify", "erin", totp_used).returncode == 0

    error = refused_unchanged(cli, "import", "--format", "csv", str(users))
    assert "CSV line 2: dave already holds this secret" in error and "--replace" in error
    assert cli.run("token", "verify", "dave", used).returncode == 1  # still a replay
    assert len(tokens(cli, "dave")) == 1 and len(tokens(cli, "erin")) == 1

    # --replace: the held tokens take the file's settings (8 digits for dave), their counters stay where they were
    users.write_text(USERS_CSV.replace(f"{B32_20},", f"{B32_20.lower()},8"))
    out = cli.ok("import", "--format", "csv", "--replace", str(users))
    assert "imported 2 token(s) for 2 user(s): 2 replaced, their counters kept" in out
    (dave,) = tokens(cli, "dave")
    assert (dave["digits"], dave["counter"]) == (8, 6)
    assert cli.run("token", "verify", "dave", oathtool.hotp(SEED20, 5, digits=8)).returncode == 1
    assert cli.run("token", "verify", "dave", oathtool.hotp(SEED20, 6, digits=8)).returncode == 0
    assert cli.run("token", "verify", "erin", totp_used).returncode == 1  # its last step was kept too
    audit = json.loads(cli.ok("audit", "--json"))
    assert [r["reason"] for r in audit if r["reason"].startswith("imported")] == \
        ["imported_2_tokens", "imported_0_tokens_replaced_2"]


def test_a_disabled_token_holds_its_secret_too(cli_alice: Cli, tmp_path: Path) -> None:
    cli = cli_alice
    cli.ok("token", "add", "alice", "--type", "hotp", "--secret-stdin", "--qr", "none", stdin=B32_20 + "\n")
    cli.ok("token", "disable", "1")
    users = tmp_path / "users.csv"
    users.write_text(f"user,type,secret\nalice,totp,{B32_32}\nalice,hotp,{B32_20}\n")
    assert "CSV line 3: alice already holds this secret (token 1)" in \
        refused_unchanged(cli, "import", "--format", "csv", str(users))
    assert len(tokens(cli, "alice")) == 1  # the first row, a new secret, was not written either


@pytest.mark.parametrize("replace", [[], ["--replace"]])
def test_the_same_secret_twice_in_one_file_is_refused(cli_alice: Cli, tmp_path: Path, replace: list[str]) -> None:
    users = tmp_path / "users.csv"
    users.write_text(f"user,type,secret\nfred,hotp,{B32_20}\ngina,hotp,{B32_20}\nfred,totp,{B32_20.lower()}\n")
    assert "CSV line 4: fred is given the same secret as in CSV line 2" in \
        refused_unchanged(cli_alice, "import", "--format", "csv", *replace, str(users))
    assert json.loads(cli_alice.ok("user", "list", "--json"))[0]["name"] == "alice"  # nobody was added


def test_google_authenticator_file_imported_twice(cli_alice: Cli, tmp_path: Path) -> None:
    ga = tmp_path / "google_authenticator"
    ga.write_text(f'{B32_20}\n" HOTP_COUNTER 3\n')
    cli_alice.ok("import", "--format", "google-authenticator", str(ga), "--user", "hal")
    assert "google-authenticator file: hal already holds this secret" in \
        refused_unchanged(cli_alice, "import", "--format", "google-authenticator", str(ga), "--user", "hal")
