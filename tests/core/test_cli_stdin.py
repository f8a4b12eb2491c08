"""Secrets and codes on standard input (`token add --secret-stdin`, `token verify NAME -`, `token resync NAME - -`),
so they never show in `ps`. The real otp-admin; codes from oathtool."""

from __future__ import annotations

import json

import pytest

from otpcore import oath
from tests.kit.codes import OathTool

from .helpers import SEED20, Cli, sha256_file

B32 = oath.encode_base32(SEED20)


def unchanged(cli: Cli, args: list[str], stdin: str, status: int, message: str) -> None:
    before = sha256_file(cli.store)
    out = cli.run(*args, stdin=stdin)
    assert out.returncode == status, out
    assert len(out.stderr.splitlines()) == 1 and message in out.stderr, out.stderr
    assert sha256_file(cli.store) == before


def test_secret_and_codes_from_stdin(cli_alice: Cli, oathtool: OathTool) -> None:
    cli = cli_alice
    added = json.loads(cli.ok("token", "add", "alice", "--type", "hotp", "--secret-stdin", "--qr", "none", "--json",
                              stdin=f"{B32.lower()}\n"))
    assert f"secret={B32}" in added["uri"]  # the secret read is the one used
    assert cli.run("token", "verify", "alice", "-", stdin=oathtool.hotp(SEED20, 0) + "\n").returncode == 0
    assert cli.run("token", "verify", "alice", "-", stdin=oathtool.hotp(SEED20, 0) + "\n").returncode == 1  # replay
    # far beyond the look-ahead: resynchronised with two consecutive codes, one per line
    codes = [oathtool.hotp(SEED20, c) for c in (200, 201, 202, 203)]
    out = cli.run("token", "resync", "alice", "-", "-", stdin=f"{codes[0]}\n{codes[1]}\n")
    assert out.returncode == 0, out.stderr
    assert json.loads(cli.ok("token", "list", "alice", "--json"))[0]["counter"] == 202
    assert cli.run("token", "resync", "alice", "-", codes[3], stdin=f"{codes[2]}\r\n").returncode == 0


@pytest.mark.parametrize(("args", "stdin", "message"), [
    (["token", "add", "alice", "--type", "totp", "--secret", B32, "--secret-stdin", "--qr", "none"], B32,
     "not allowed with"),
    (["token", "add", "alice", "--type", "totp", "--secret-stdin", "--qr", "none"], "", "no base32 secret"),
    (["token", "add", "alice", "--type", "totp", "--secret-stdin", "--qr", "none"], "\n" + B32, "no base32 secret"),
    (["token", "add", "alice", "--type", "totp", "--secret-stdin", "--qr", "none"], "NOT*BASE32\n", "base32"),
    (["token", "add", "alice", "--type", "email", "--secret-stdin"], B32, "--secret-stdin: email tokens"),
    (["token", "verify", "alice", "-"], "", "no code"),
    (["token", "resync", "alice", "-", "-"], "123456\n", "no second code"),
])
def test_bad_stdin_is_bad_usage_and_changes_nothing(cli_alice: Cli, args: list[str], stdin: str,
                                                    message: str) -> None:
    cli_alice.ok("token", "add", "alice", "--type", "totp", "--secret", B32, "--qr", "none")
    unchanged(cli_alice, args, stdin, 2, message)
