"""What a new admin stumbled on in the first hour (issue 14), with the real `otp-admin`: contact details changed in
place, a warning for users no client can let in, and listings that read as finished."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from otpcore import oath
from tests.kit.codes import OathTool

from .helpers import B32_20, B32_32, B32_64, SEED20, SEED32, Cli, sha256_file, user_json, write_config

CLIENTS = """
[[radius.clients]]
name = "vpn"
address = "10.0.0.0/24"
secret = "s3cret"
first_factor = "store"

[[radius.clients]]
name = "switch"
address = "10.0.1.0/24"
secret = "s3cret"
first_factor = "none"
"""


def audit_reasons(cli: Cli, user: str) -> list[str]:
    return [r["reason"] for r in json.loads(cli.ok("audit", "--user", user, "--json"))]


def not_now(secret: bytes) -> list[str]:
    """Six-digit codes of none of the time steps around now."""
    step = oath.time_step(time.time(), 30)
    near = {oath.hotp(secret, s, 6, "SHA1") for s in range(step - 4, step + 6)}
    return [c for c in (f"{i:06d}" for i in range(100_001, 999_999, 111_111)) if c not in near]


# -- 1: contact details --------------------------------------------------------------------------------------------


def test_user_set_changes_or_clears_an_address_audited(cli_alice: Cli) -> None:
    cli = cli_alice
    cli.ok("user", "add", "bob")
    assert cli.run("token", "add", "bob", "--type", "email").returncode == 2  # no address yet
    out = cli.ok("user", "set", "bob", "--email", "bob@example.org", "--phone", "+15550100")
    assert out == "user bob: email bob@example.org, phone +15550100\n"
    cli.ok("token", "add", "bob", "--type", "email")
    cli.ok("user", "set", "bob", "--phone", "+15550199")
    assert (user_json(cli, "bob")["email"], user_json(cli, "bob")["phone"]) == ("bob@example.org", "+15550199")

    before = sha256_file(cli.store)
    refused = cli.run("user", "set", "bob", "--clear-email")  # the email token sends its codes there
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr == ("otp-admin: bob's email token 1 sends its codes there: delete it first "
                              "(otp-admin token delete 1)\n")
    assert sha256_file(cli.store) == before
    cli.ok("user", "set", "bob", "--clear-phone")
    assert (user_json(cli, "bob")["email"], user_json(cli, "bob")["phone"]) == ("bob@example.org", None)
    assert audit_reasons(cli, "bob") == ["user_added", "contact_set", "token_added", "contact_set", "contact_set"]


# -- 3: users without a password ------------------------------------------------------------------------------------


def test_user_add_without_a_password_warns_where_store_clients_would_refuse_it(cli: Cli) -> None:
    cli.config.write_text(cli.config.read_text() + CLIENTS)
    cli.ok("init")
    out = cli.run("user", "add", "bob")
    assert (out.returncode, out.stdout) == (0, "user bob added\n")
    assert out.stderr == ("otp-admin: warning: bob has no password: the clients that check it against the store "
                          "(vpn) refuse every login of theirs until `otp-admin user passwd bob --password-stdin`\n")
    with_password = cli.run("user", "add", "carol", "--password-stdin", stdin="pw\n")
    assert (with_password.returncode, with_password.stderr) == (0, "")
    write_config(cli.folder)  # no clients that check a password
    assert cli.run("user", "add", "dave").stderr == ""


# -- 10: listings ---------------------------------------------------------------------------------------------------


def test_user_show_says_yes_no_and_until_when_locked(cli_alice: Cli) -> None:
    cli = cli_alice  # max_failures = 3, lockout_seconds 300
    cli.ok("token", "add", "alice", "--type", "totp", "--secret", B32_20, "--qr", "none")
    text = cli.ok("user", "show", "alice")
    assert "password: yes\n" in text and "locked: no\n" in text
    assert "True" not in text and "False" not in text
    before = time.time()
    for code in not_now(SEED20)[:3]:
        assert cli.run("token", "verify", "alice", code).returncode == 1
    text = cli.ok("user", "show", "alice")
    assert "locked: yes\n" in text and "lockouts_in_a_row: 1\n" in text
    until = re.search(r"^locked_until: (\S+)$", text, re.MULTILINE)
    assert until, text
    at = time.mktime(time.strptime(until[1], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert before + 300 - 2 <= at <= time.time() + 300


def test_token_list_shows_each_tokens_window(cli_alice: Cli, tmp_path: Path) -> None:
    cli = cli_alice
    cli.ok("token", "add", "alice", "--type", "totp", "--secret", B32_20, "--qr", "none")
    cli.ok("token", "add", "alice", "--type", "hotp", "--secret", B32_32, "--qr", "none")
    ga = tmp_path / "google_authenticator"
    ga.write_text(f'{B32_64}\n" TOTP_AUTH\n" WINDOW_SIZE 7\n')
    cli.ok("import", "--format", "google-authenticator", str(ga), "--user", "alice")
    listed = json.loads(cli.ok("token", "list", "alice", "--json"))
    assert [(t["type"], t["window"], t["window_from"]) for t in listed] == [
        ("totp", 1, "policy"), ("hotp", 10, "policy"), ("totp", 3, "token")]
    table = cli.ok("token", "list", "alice").splitlines()
    assert table[0].split() == ["ID", "USER", "TYPE", "ALGORITHM", "DIGITS", "PERIOD", "COUNTER", "WINDOW", "ACTIVE"]
    assert [re.split(r"\s{2,}", line)[7] for line in table[1:]] == ["1 (policy)", "10 (policy)", "3"]
    assert "10 (policy)" in cli.ok("user", "show", "alice")


def test_a_resync_is_audited_as_a_resync_and_the_audit_has_a_source(cli_alice: Cli, oathtool: OathTool) -> None:
    cli = cli_alice
    cli.ok("token", "add", "alice", "--type", "hotp", "--secret", B32_32, "--qr", "none")
    out = cli.run("token", "resync", "alice", oathtool.hotp(SEED32, 40), oathtool.hotp(SEED32, 41))
    assert out.returncode == 0, out.stderr
    rows = json.loads(cli.ok("audit", "--user", "alice", "--json"))
    assert [(r["result"], r["reason"], r["source"]) for r in rows] == [
        ("ok", "user_added", None), ("ok", "token_added", None), ("accept", "resync", None)]
    table = cli.ok("audit", "--user", "alice").splitlines()
    assert table[0].split() == ["TIME", "USER", "DOOR", "CLIENT", "SOURCE", "RESULT", "REASON"]
    assert table[-1].split()[1:] == ["alice", "admin", "otp-admin", "-", "accept", "resync"]
    assert cli.run("token", "verify", "alice", oathtool.hotp(SEED32, 42)).returncode == 0  # the counter moved on
