"""`otp-admin`, the real command in a subprocess: init, users and tokens, listings, audit, QR codes (the code
flows are in test_cli_codes.py, imports in test_cli_import.py)."""

from __future__ import annotations

import json
import re
import stat
import time
from pathlib import Path

from otpcore import oath
from otpcore.store.sqlite import SqliteStore
from tests.kit.codes import OathTool

from .helpers import B32_20, B32_64, SEED20, SEED32, SEED64, Cli, refused, sha256_file, uri_of, user_json

# -- init --------------------------------------------------------------------------------------------------------------


def test_init_creates_store_and_key_0600_and_is_idempotent(cli: Cli) -> None:
    out = cli.run("init", umask=0)  # whatever the umask, both files are private
    assert out.returncode == 0, out.stderr
    assert "key file" in out.stdout and "store" in out.stdout
    assert stat.S_IMODE(cli.store.stat().st_mode) == 0o600
    assert stat.S_IMODE(cli.key.stat().st_mode) == 0o600
    key, store = cli.key.read_bytes(), sha256_file(cli.store)
    again = cli.run("init", umask=0)
    assert again.returncode == 0 and "already present" in again.stdout
    assert cli.key.read_bytes() == key and sha256_file(cli.store) == store


def test_raw_store_holds_no_token_secret(cli_alice: Cli, tmp_path: Path) -> None:
    cli = cli_alice
    secrets = [SEED20, SEED32, SEED64]
    for kind, secret in zip(("totp", "hotp", "totp"), secrets, strict=True):
        cli.ok("token", "add", "alice", "--type", kind, "--secret", oath.encode_base32(secret), "--qr", "none")
    for _ in range(2):  # random secrets, as printed in the URI
        secrets.append(oath.decode_base32(uri_of(cli.ok("token", "add", "alice", "--type", "totp", "--qr",
                                                         "none"))[1]["secret"]))
    files = [p for p in cli.folder.iterdir() if p.name.startswith("otp.sqlite")]  # the store, and any -wal left
    raw = b"".join(p.read_bytes() for p in files)
    assert len(raw) > 4096
    for secret in secrets:
        b32 = oath.encode_base32(secret)
        for form in (secret, b32.encode(), b32.lower().encode(), secret.hex().encode(), secret.hex().upper().encode()):
            assert form not in raw
    assert stat.S_IMODE(cli.store.stat().st_mode) == 0o600 and stat.S_IMODE(cli.key.stat().st_mode) == 0o600


# -- users and tokens --------------------------------------------------------------------------------------------------


def test_user_and_token_management(cli_alice: Cli, oathtool: OathTool) -> None:
    cli = cli_alice
    cli.ok("user", "add", "bob", "--email", "bob@example.org", "--phone", "+41 79 000 00 00")
    users = json.loads(cli.ok("user", "list", "--json"))
    assert [u["name"] for u in users] == ["alice", "bob"]
    assert users[0]["password"] is True and users[1]["password"] is False
    assert users[1]["email"] == "bob@example.org" and users[1]["phone"] == "+41 79 000 00 00"
    cli.ok("user", "passwd", "bob", "--password-stdin", stdin="n3w\n")
    assert user_json(cli, "bob")["password"] is True

    cli.ok("token", "add", "bob", "--type", "totp", "--secret", B32_20, "--qr", "none")
    cli.ok("token", "add", "bob", "--type", "hotp", "--secret", B32_64, "--qr", "none")
    tokens = json.loads(cli.ok("token", "list", "bob", "--json"))
    assert [(t["id"], t["type"], t["active"]) for t in tokens] == [(1, "totp", True), (2, "hotp", True)]
    assert user_json(cli, "bob")["active_tokens"] == 2

    cli.ok("token", "disable", "2")
    assert refused(cli.run("token", "verify", "bob", oathtool.hotp(SEED64, 0)))
    cli.ok("token", "enable", "2")
    assert cli.run("token", "verify", "bob", oathtool.hotp(SEED64, 1)).returncode == 0
    cli.ok("token", "delete", "1")
    assert [t["id"] for t in json.loads(cli.ok("token", "list", "--json"))] == [2]
    assert refused(cli.run("token", "verify", "bob", oathtool.totp(SEED20, time.time())))

    cli.ok("user", "delete", "bob")
    assert [u["name"] for u in json.loads(cli.ok("user", "list", "--json"))] == ["alice"]
    assert json.loads(cli.ok("token", "list", "--json")) == []


def test_plain_listings(cli_alice: Cli) -> None:
    cli = cli_alice
    cli.ok("token", "add", "alice", "--type", "totp", "--secret", B32_20, "--qr", "none")
    assert re.search(r"^alice\s", cli.ok("user", "list"), re.M)
    assert re.search(r"^1\s+alice\s+totp\s+SHA1\s+6\s+30", cli.ok("token", "list"), re.M)
    assert "name: alice" in cli.ok("user", "show", "alice")
    assert "token_added" in cli.ok("audit")


def test_json_listings_parse(cli_alice: Cli) -> None:
    cli = cli_alice
    out = cli.ok("token", "add", "alice", "--type", "totp", "--secret", B32_20, "--qr", "none", "--json")
    added = json.loads(out)
    assert added["id"] == 1 and added["user"] == "alice" and added["uri"].startswith("otpauth://totp/alice?")
    assert isinstance(json.loads(cli.ok("user", "list", "--json")), list)
    shown = json.loads(cli.ok("user", "show", "alice", "--json"))
    assert shown["name"] == "alice" and [t["id"] for t in shown["tokens"]] == [1]
    assert json.loads(cli.ok("token", "list", "--json"))[0]["user"] == "alice"
    assert json.loads(cli.ok("token", "list", "alice", "--json"))[0]["algorithm"] == "SHA1"
    audit = json.loads(cli.ok("audit", "--json"))
    assert {"time", "user", "door", "client", "result", "reason"} <= set(audit[0])


def test_audit_filters(cli_alice: Cli, oathtool: OathTool) -> None:
    cli = cli_alice
    cli.ok("user", "add", "bob")
    cli.ok("token", "add", "alice", "--type", "totp", "--secret", B32_20, "--qr", "none")
    cli.ok("token", "verify", "alice", oathtool.totp(SEED20, time.time()))
    store = SqliteStore.open(cli.store)  # an old row, written before the CLI runs again (and closed)
    try:
        with store.transaction():
            store.audit(now=time.time() - 7200, user="alice", door="radius", client="vpn", result="reject",
                        reason="wrong_code")
    finally:
        store.close()

    rows = json.loads(cli.ok("audit", "--user", "alice", "--json"))
    assert {r["user"] for r in rows} == {"alice"}
    assert [r["reason"] for r in rows] == ["wrong_code", "user_added", "token_added", "ok"]  # oldest first
    recent = json.loads(cli.ok("audit", "--user", "alice", "--since", "1h", "--json"))
    assert [r["reason"] for r in recent] == ["user_added", "token_added", "ok"]
    assert len(json.loads(cli.ok("audit", "--user", "alice", "--since", "3h", "--json"))) == 4
    assert [r["user"] for r in json.loads(cli.ok("audit", "--user", "bob", "--json"))] == ["bob"]
    assert json.loads(cli.ok("audit", "--since", "2999-01-01", "--json")) == []
    assert len(json.loads(cli.ok("audit", "--since", str(int(time.time()) - 60), "--json"))) == 4
    assert "ok" in cli.ok("audit", "--user", "alice", "--since", "1h")


# -- QR codes ----------------------------------------------------------------------------------------------------------


def test_qr_png_svg_and_terminal(cli_alice: Cli, tmp_path: Path) -> None:
    cli = cli_alice
    png, svg = tmp_path / "alice.png", tmp_path / "alice.svg"
    out = cli.ok("token", "add", "alice", "--type", "totp", "--qr", str(png))
    assert str(png) in out and uri_of(out)[0] == "totp/alice"
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    cli.ok("token", "add", "alice", "--type", "hotp", "--qr", str(svg))
    text = svg.read_text()
    assert "<svg" in text and "</svg>" in text
    for image in (png, svg):  # the image holds the secret: private like the key
        assert stat.S_IMODE(image.stat().st_mode) == 0o600, image

    out = cli.ok("token", "add", "alice", "--type", "totp")  # --qr terminal is the default
    lines = out.splitlines()
    assert lines[0] == "token 3 added for alice" and lines[1].startswith("otpauth://totp/alice?")
    qr = lines[2:]
    assert len(qr) >= 15 and all(len(line) == len(qr[0]) for line in qr[:-1])
    assert any(ch in "".join(qr) for ch in "█▀▄")
    explicit = cli.ok("token", "add", "alice", "--type", "totp", "--qr", "terminal").splitlines()
    assert len(explicit) == len(lines)
