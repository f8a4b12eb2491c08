"""`otp-admin` failures: exit status, exactly one line on stderr, and a store left byte for byte unchanged."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from otpcore import oath

from .helpers import SEED20, Cli, sha256_file, write_config

B32 = oath.encode_base32(SEED20)


@pytest.fixture(scope="module")
def provisioned_template(tmp_path_factory: pytest.TempPathFactory, alice_template: Path) -> Path:
    folder = tmp_path_factory.mktemp("provisioned-template")
    for name in ("otp.sqlite", "otp.key"):
        shutil.copy2(alice_template / name, folder / name)
    Cli(folder, write_config(folder)).ok("token", "add", "alice", "--type", "totp", "--secret", B32, "--qr", "none")
    return folder


@pytest.fixture
def provisioned(cli: Cli, provisioned_template: Path) -> Cli:
    """alice with a password and one TOTP token (id 1)."""
    for name in ("otp.sqlite", "otp.key"):
        shutil.copy2(provisioned_template / name, cli.folder / name)
    return cli


def snapshot(cli: Cli) -> tuple[str, list[str]]:
    """The store's bytes and the folder's file names (no -wal/-shm may be left behind, no stray file written)."""
    return sha256_file(cli.store), sorted(p.name for p in cli.folder.iterdir())


def check_failure(cli: Cli, args: list[str], status: int, stdin: str | None = None) -> str:
    before = snapshot(cli)
    out = cli.run(*args, stdin=stdin)
    assert out.returncode == status, out
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("otp-admin"), lines[0]
    assert "Traceback" not in out.stderr
    assert snapshot(cli) == before
    return lines[0]


REFUSED = [
    # unknown user
    (["token", "add", "bob", "--type", "totp", "--qr", "none"], "no such user"),
    (["token", "verify", "bob", "123456"], "no such user"),
    (["token", "resync", "bob", "123456", "654321"], "no such user"),
    (["token", "list", "bob"], "no such user"),
    (["user", "show", "bob"], "no such user"),
    (["user", "unlock", "bob"], "no such user"),
    (["user", "delete", "bob"], "no such user"),
    # unknown token
    (["token", "disable", "99"], "no such token"),
    (["token", "enable", "99"], "no such token"),
    (["token", "delete", "99"], "no such token"),
    (["user", "set", "bob", "--email", "bob@example.org"], "no such user"),
    # duplicate user
    (["user", "add", "alice"], "already exists"),
]


@pytest.mark.parametrize(("args", "message"), REFUSED, ids=[" ".join(a) for a, _ in REFUSED])
def test_refused_operations_exit_1(provisioned: Cli, args: list[str], message: str) -> None:
    assert message in check_failure(provisioned, args, 1)


def test_user_passwd_of_unknown_user(provisioned: Cli) -> None:
    assert "no such user" in check_failure(provisioned, ["user", "passwd", "bob", "--password-stdin"], 1,
                                           stdin="pw\n")


BAD_INPUT = [
    (["token", "add", "alice", "--type", "totp", "--secret", "NOT*BASE32", "--qr", "none"], "base32"),
    (["token", "add", "alice", "--type", "totp", "--secret", "JBSWY3DP", "--qr", "none"], "too short"),
    (["token", "add", "alice", "--type", "totp", "--secret", B32 + "1", "--qr", "none"], "base32"),
    (["token", "add", "alice", "--type", "totp", "--digits", "5", "--qr", "none"], "digits"),
    (["token", "add", "alice", "--type", "totp", "--digits", "9", "--qr", "none"], "digits"),
    (["token", "add", "alice", "--type", "totp", "--period", "0", "--qr", "none"], "period"),
    (["token", "add", "alice", "--type", "hotp", "--counter", "-1", "--qr", "none"], "counter"),
    (["token", "add", "alice", "--type", "hotp", "--counter", str(2**64), "--qr", "none"], "counter"),
    (["token", "add", "alice", "--type", "totp", "--qr", "qr.txt"], "--qr"),
    (["token", "add", "alice", "--type", "totp", "--qr", "/nonexistent/dir/qr.png"], "--qr"),
    (["token", "add", "bob", "--type", "totp", "--secret", "NOT*BASE32", "--qr", "none"], "base32"),
    (["user", "add", "bad name"], "user name"),
    (["user", "add", ""], "user name"),
    (["user", "add", "carol", "--password-stdin"], "password"),  # nothing on stdin
    (["user", "passwd", "alice", "--password-stdin"], "password"),
    (["token", "verify", "alice", ""], "empty"),
    (["token", "verify", "alice", "\udcff12345"], "UTF-8"),  # the byte 0xff on the command line
    (["token", "verify", "\udcffalice", "123456"], "UTF-8"),
    (["user", "add", "b\udce9a"], "UTF-8"),
    (["audit", "--user", "\udcff"], "UTF-8"),
    (["audit", "--since", "last tuesday"], "--since"),
    (["import", "--format", "csv", "/nonexistent/users.csv"], "cannot read"),
    # what none of alice's tokens (one 6-digit TOTP) could have made is not counted as a wrong code
    (["token", "verify", "alice", "abc"], "not a code of alice's tokens, which take 6 digits"),
    (["token", "verify", "alice", "12345"], "not a code of alice's tokens"),
    (["token", "verify", "alice", "1234567"], "not a code of alice's tokens"),
    (["token", "verify", "alice", "12345a"], "not a code of alice's tokens"),
    (["token", "verify", "alice", "\uff11\uff12\uff13\uff14\uff15\uff16"], "not a code of alice"),  # wide digits
    (["token", "resync", "alice", "123456", "abcdef"], "not a code of alice's tokens"),
    (["user", "set", "alice"], "nothing to change"),
    (["user", "set", "alice", "--email", ""], "--email: empty"),
    (["user", "set", "alice", "--phone", " "], "--phone: empty"),
    (["user", "set", "alice", "--email", "a@example.org", "--clear-email"], "not allowed with"),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUT, ids=[" ".join(a) for a, _ in BAD_INPUT])
def test_bad_input_is_bad_usage_and_changes_nothing(provisioned: Cli, args: list[str], message: str) -> None:
    assert message in check_failure(provisioned, args, 2, stdin="")


def test_failed_qr_file_leaves_no_token_and_no_file(provisioned: Cli, tmp_path: Path) -> None:
    target = tmp_path / "missing" / "bob.png"
    check_failure(provisioned, ["token", "add", "bob", "--type", "totp", "--qr", str(tmp_path / "bob.png")], 1)
    assert not (tmp_path / "bob.png").exists()  # unknown user: no QR code of a token that does not exist
    check_failure(provisioned, ["token", "add", "alice", "--type", "totp", "--qr", str(target)], 2)
    assert [t for t in os.listdir(tmp_path) if t.endswith((".png", ".svg"))] == []


@pytest.mark.parametrize("token_id", ["0", "-1", str(2**63), str(10**30)])
def test_out_of_range_token_id(provisioned: Cli, token_id: str) -> None:
    assert "not a token id" in check_failure(provisioned, ["token", "disable", token_id], 2)


MISSING_KEY = [
    ["user", "add", "carol"],
    ["user", "list"],
    ["user", "unlock", "alice"],
    ["token", "add", "alice", "--type", "totp", "--qr", "none"],
    ["token", "verify", "alice", "123456"],
    ["token", "resync", "alice", "123456", "654321"],
    ["token", "list"],
    ["audit"],
    ["init"],  # a new key would not open the existing secrets
]


@pytest.mark.parametrize("args", MISSING_KEY, ids=" ".join)
def test_missing_key_file(provisioned: Cli, args: list[str]) -> None:
    provisioned.key.rename(provisioned.folder.parent / f"{provisioned.folder.name}.key.bak")
    assert "key file" in check_failure(provisioned, args, 1)
    assert not provisioned.key.exists()


def test_missing_store(cli: Cli) -> None:
    cli.ok("init")
    cli.store.unlink()
    for args in (["user", "list"], ["token", "verify", "alice", "123456"]):
        out = cli.run(*args)
        assert out.returncode == 1 and len(out.stderr.splitlines()) == 1 and "otp-admin init" in out.stderr
        assert not cli.store.exists()


def test_missing_or_bad_config(cli: Cli, tmp_path: Path) -> None:
    cli.config.write_text('[store]\npath = "x"\nbogus = 1\n')
    out = cli.run("init")
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "store.bogus" in out.stderr
    cli.config.unlink()
    out = cli.run("init")
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "config file not found" in out.stderr
    assert list(tmp_path.iterdir()) == []


USAGE = [
    [],
    ["frobnicate"],
    ["user"],
    ["user", "add"],
    ["token"],
    ["token", "add", "alice"],
    ["token", "add", "alice", "--type", "yubikey"],
    ["token", "add", "alice", "--type", "totp", "--digits", "six"],
    ["token", "add", "alice", "--type", "totp", "--algorithm", "MD5"],
    ["token", "disable", "abc"],
    ["token", "verify", "alice"],
    ["import", "--format", "xml", "users.xml"],
    ["import", "users.csv"],
    ["user", "list", "--bogus"],
]


@pytest.mark.parametrize("args", USAGE, ids=lambda a: " ".join(a) or "(none)")
def test_usage_errors_exit_2_with_one_line(provisioned: Cli, args: list[str]) -> None:
    line = check_failure(provisioned, args, 2)
    assert "error" in line


def test_failed_verify_writes_only_state_and_audit(provisioned: Cli) -> None:
    # a wrong code is a refused operation that is recorded (failure count, audit), but never the code itself
    out = provisioned.run("token", "verify", "alice", "918273")
    assert out.returncode == 1 and out.stderr.count("\n") == 1
    assert b"918273" not in provisioned.store.read_bytes()
