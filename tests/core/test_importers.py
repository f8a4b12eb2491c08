"""The import parsers (pure: text in, records out; errors name the line)."""

from __future__ import annotations

import pytest

from otpcore import oath
from otpcore.errors import InputError
from otpcore.importers import parse_csv, parse_google_authenticator, parse_oath_usersfile, parse_records

from .helpers import SEED20, SEED32

B32 = oath.encode_base32(SEED20)
HEX = SEED20.hex()


# -- google-authenticator ----------------------------------------------------------------------------------------------


def test_google_authenticator_totp_with_options() -> None:
    text = f'{B32}\n" RATE_LIMIT 3 30 1700000000\n" WINDOW_SIZE 17\n" DISALLOW_REUSE 56666666\n" TOTP_AUTH\n' \
           "12345678\n87654321\n"
    user, token = parse_google_authenticator(text, "gus")
    assert user.name == "gus" and user.password is None
    assert (token.type, token.secret, token.period, token.digits, token.window) == ("totp", SEED20, 30, 6, 8)


def test_google_authenticator_defaults_and_step_size() -> None:
    _, token = parse_google_authenticator(f"{B32}\n", "gus")
    assert (token.type, token.period, token.window) == ("totp", 30, None)  # the policy's window applies
    _, token = parse_google_authenticator(f'{B32}\n" STEP_SIZE 60\n" WINDOW_SIZE 3\n', "gus")
    assert (token.period, token.window) == (60, 1)


def test_google_authenticator_hotp() -> None:
    _, token = parse_google_authenticator(f'{B32}\n" HOTP_COUNTER 7\n" WINDOW_SIZE 5\n', "hal")
    assert (token.type, token.counter, token.window) == ("hotp", 7, 4)  # counters 7..11


@pytest.mark.parametrize("text", ["", "\n\n", "NOT*BASE32\n", f'{B32}\n" HOTP_COUNTER x\n',
                                  f'{B32}\n" WINDOW_SIZE\n', f"{B32}\nsomething else\n", f"{B32}\n1234\n"])
def test_google_authenticator_bad_files(text: str) -> None:
    with pytest.raises(InputError):
        parse_google_authenticator(text, "gus")


def test_google_authenticator_needs_a_user() -> None:
    with pytest.raises(InputError, match="--user"):
        parse_records("google-authenticator", f"{B32}\n")


# -- oath-toolkit usersfile --------------------------------------------------------------------------------------------


def test_usersfile_types() -> None:
    records = parse_oath_usersfile(
        "# comment\n\n"
        f"HOTP harry - {HEX}\n"
        f"HOTP/E/8 ian + {HEX} 12\n"
        f"HOTP/T30 jo 1234 {HEX}\n"
        f"HOTP/T60/8\tkay\t-\t{SEED32.hex()}\t0\n"
        f"hotp/t30/7 lu - {HEX}\n"
    )
    summary = [(u.name, u.password, t.type, t.digits, t.period, t.counter, t.secret) for u, t in records]
    assert summary == [
        ("harry", None, "hotp", 6, 30, 0, SEED20),
        ("ian", None, "hotp", 8, 30, 12, SEED20),
        ("jo", b"1234", "totp", 6, 30, 0, SEED20),
        ("kay", None, "totp", 8, 60, 0, SEED32),
        ("lu", None, "totp", 7, 30, 0, SEED20),
    ]


def test_usersfile_hotp_line_written_by_pam_oath_has_its_counter_used() -> None:
    # After a login pam_oath rewrites the line with the matched counter and that OTP: the next counter is one on.
    otp = oath.hotp(SEED20, 41)
    (_, token), = parse_oath_usersfile(f"HOTP\tmax\t-\t{HEX}\t41\t{otp}\t2024-05-01T10:00:00L\n")
    assert token.counter == 42
    (_, token), = parse_oath_usersfile(f"HOTP max - {HEX} 41\n")  # set by hand: not used yet
    assert token.counter == 41


def test_usersfile_totp_moving_factor_is_not_a_time_step() -> None:
    # pam_oath keeps a position sum there for TOTP lines, not a step: it must not be taken as the last step
    (_, token), = parse_oath_usersfile(f"HOTP/T30 max - {HEX} {2**70} 123456 2024-05-01T10:00:00L\n")
    assert token.type == "totp" and token.last_step == -1


@pytest.mark.parametrize(("line", "why"), [
    ("HOTP harry -", "expected"),
    (f"TOTP harry - {HEX}", "type"),
    (f"HOTP/X30 harry - {HEX}", "type"),
    ("HOTP harry - nothex", "hex"),
    (f"HOTP/T30/5 harry - {HEX}", "digits"),
    (f"HOTP/T0 harry - {HEX}", "period"),
    (f"HOTP harry - {HEX[:10]}", "short"),
    (f"HOTP harry - {HEX} x12", "counter"),
    (f"HOTP harry - {HEX} -3", "counter"),
    (f"HOTP harry - {HEX} \u00b2", "counter"),
    (f"HOTP harry - {HEX} {2**64}", "counter"),
])
def test_usersfile_bad_lines_name_the_line(line: str, why: str) -> None:
    with pytest.raises(InputError, match=f"usersfile line 3: .*{why}"):
        parse_oath_usersfile(f"# users\nHOTP ok - {HEX}\n{line}\n")


# -- CSV ---------------------------------------------------------------------------------------------------------------


def test_csv_full_and_minimal_columns() -> None:
    records = parse_csv(
        " User , TYPE,secret,algorithm,digits,period,counter,email,phone\n"
        f"ann,TOTP,{B32},sha256,8,60,,ann@example.org,+4179\n"
        f"bea,hotp,{B32.lower()},,,,9,,\n"
        ",,,,,,,,\n"
    )
    (ann_u, ann_t), (bea_u, bea_t) = records
    assert (ann_u.name, ann_u.email, ann_u.phone) == ("ann", "ann@example.org", "+4179")
    assert (ann_t.type, ann_t.algorithm, ann_t.digits, ann_t.period, ann_t.secret) == ("totp", "SHA256", 8, 60, SEED20)
    assert (bea_u.email, bea_t.type, bea_t.counter, bea_t.algorithm, bea_t.digits) == (None, "hotp", 9, "SHA1", 6)


def test_csv_with_byte_order_mark() -> None:
    ((user, _),) = parse_csv(f"\ufeffuser,type,secret\ncid,totp,{B32}\n")
    assert user.name == "cid"


@pytest.mark.parametrize(("text", "message"), [
    ("user,secret\n", "required"),
    ("user,type,secret,colour\n", "unknown"),
    ("", "required"),
])
def test_csv_bad_header(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_csv(text)


def test_csv_bad_row_names_its_line() -> None:
    with pytest.raises(InputError, match=r"CSV line 3: .*digits"):
        parse_csv(f"user,type,secret,digits\nok,totp,{B32},6\nbad,totp,{B32},x\n")


def test_records_filter_by_user_and_issuer() -> None:
    text = f"user,type,secret\nann,totp,{B32}\nbea,totp,{B32}\n"
    records = parse_records("csv", text, user="bea", issuer="ACME")
    assert [(u.name, t.issuer) for u, t in records] == [("bea", "ACME")]
    with pytest.raises(InputError, match="nothing to import"):
        parse_records("csv", text, user="zed")
    with pytest.raises(InputError, match="nothing to import"):
        parse_records("oath-usersfile", "# empty\n")
