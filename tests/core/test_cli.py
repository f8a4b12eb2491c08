"""`otp-admin`, the real command in a subprocess: the flows of issue 2's "Done when", imports, QR codes, listings."""

from __future__ import annotations

import json
import re
import stat
import subprocess
import time
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from otpcore import oath
from otpcore.store.sqlite import SqliteStore
from tests.kit.codes import OathTool

from .helpers import SEED20, SEED32, SEED64, Cli, sha256_file

B32_20 = oath.encode_base32(SEED20)  # GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ
B32_32 = oath.encode_base32(SEED32)
B32_64 = oath.encode_base32(SEED64)


def uri_of(output: str) -> tuple[str, dict[str, str]]:
    """The otpauth:// URI printed by `token add`: (label path, parameters)."""
    match = re.search(r"otpauth://\S+", output)
    assert match, output
    parts = urlsplit(match[0])
    return f"{parts.netloc}{unquote(parts.path)}", {k: v[0] for k, v in parse_qs(parts.query).items()}


def nearby(secret: bytes, *, digits: int = 6, algorithm: str = "SHA1", period: int = 30) -> set[str]:
    """Every code of the steps around now (so a wrong code can be chosen outside them)."""
    step = oath.time_step(time.time(), period)
    return {oath.hotp(secret, s, digits, algorithm) for s in range(step - 4, step + 6)}


def wrong_codes(valid: set[str], n: int, digits: int = 6) -> list[str]:
    out = [c for c in (str(i * 1111111 % 10**digits).zfill(digits) for i in range(1, 50)) if c not in valid]
    return out[:n]


def refused(out: subprocess.CompletedProcess[str], text: str = "") -> bool:
    """Exit 1 with one line on stderr (containing `text`)."""
    lines = out.stderr.splitlines()
    return out.returncode == 1 and len(lines) == 1 and text in lines[0]


def user_json(cli: Cli, name: str) -> dict[str, object]:
    return json.loads(cli.ok("user", "show", name, "--json"))


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
