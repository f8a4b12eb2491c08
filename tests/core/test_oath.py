"""The TOTP/HOTP maths: RFC vectors, windows, drift, look-ahead, resynchronisation, base32."""

from __future__ import annotations

import pytest

from otpcore import oath
from otpcore.errors import InputError
from otpcore.oath import Match

from .helpers import SEED20, SEED32, SEED64

# RFC 4226 Appendix D: HOTP(K = "12345678901234567890", C) for C = 0..9.
RFC4226 = ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"]

# RFC 6238 Appendix B: (time, T, TOTP, mode); each mode with its own seed length.
RFC6238 = [
    (59, 0x1, "94287082", "SHA1"),
    (59, 0x1, "46119246", "SHA256"),
    (59, 0x1, "90693936", "SHA512"),
    (1111111109, 0x23523EC, "07081804", "SHA1"),
    (1111111109, 0x23523EC, "68084774", "SHA256"),
    (1111111109, 0x23523EC, "25091201", "SHA512"),
    (1111111111, 0x23523ED, "14050471", "SHA1"),
    (1111111111, 0x23523ED, "67062674", "SHA256"),
    (1111111111, 0x23523ED, "99943326", "SHA512"),
    (1234567890, 0x273EF07, "89005924", "SHA1"),
    (1234567890, 0x273EF07, "91819424", "SHA256"),
    (1234567890, 0x273EF07, "93441116", "SHA512"),
    (2000000000, 0x3F940AA, "69279037", "SHA1"),
    (2000000000, 0x3F940AA, "90698825", "SHA256"),
    (2000000000, 0x3F940AA, "38618901", "SHA512"),
    (20000000000, 0x27BC86AA, "65353130", "SHA1"),
    (20000000000, 0x27BC86AA, "77737706", "SHA256"),
    (20000000000, 0x27BC86AA, "47863826", "SHA512"),
]
SEEDS = {"SHA1": SEED20, "SHA256": SEED32, "SHA512": SEED64}


@pytest.mark.parametrize(("counter", "code"), list(enumerate(RFC4226)))
def test_rfc4226_appendix_d(counter: int, code: str) -> None:
    assert oath.hotp(SEED20, counter) == code


@pytest.mark.parametrize(("now", "step", "code", "algorithm"), RFC6238)
def test_rfc6238_appendix_b(now: int, step: int, code: str, algorithm: str) -> None:
    assert oath.time_step(now) == step
    assert oath.totp(SEEDS[algorithm], now, digits=8, algorithm=algorithm) == code


def test_digits_are_zero_padded_and_truncated() -> None:
    # RFC 6238: 1111111109 SHA1 is 07081804 with 8 digits; the 6- and 7-digit codes are its low digits.
    assert oath.totp(SEED20, 1111111109, digits=8) == "07081804"
    assert oath.totp(SEED20, 1111111109, digits=7) == "7081804"
    assert oath.totp(SEED20, 1111111109, digits=6) == "081804"


def test_period_and_t0() -> None:
    assert oath.time_step(119, period=60) == 1
    assert oath.time_step(1000, period=60, t0=100) == 15
    assert oath.totp(SEED20, 1000, period=60, t0=100) == oath.hotp(SEED20, 15)
    assert oath.time_step(59.999) == 1 and oath.time_step(60.0) == 2


# -- verify_totp -------------------------------------------------------------------------------------------------------


NOW = 1_700_000_000.0  # step 56666666, 20 s into it
STEP = oath.time_step(NOW)


def code_at(step: int, digits: int = 6) -> str:
    return oath.hotp(SEED20, step, digits)


@pytest.mark.parametrize("delta", [-1, 0, 1])
def test_verify_totp_accepts_the_window(delta: int) -> None:
    assert oath.verify_totp(SEED20, code_at(STEP + delta), NOW, window=1) == Match(STEP + delta, delta)


@pytest.mark.parametrize("delta", [-3, -2, 2, 3])
def test_verify_totp_refuses_outside_the_window(delta: int) -> None:
    assert oath.verify_totp(SEED20, code_at(STEP + delta), NOW, window=1) is None


def test_verify_totp_window_zero_is_the_current_step_only() -> None:
    assert oath.verify_totp(SEED20, code_at(STEP), NOW, window=0) == Match(STEP, 0)
    assert oath.verify_totp(SEED20, code_at(STEP + 1), NOW, window=0) is None
    assert oath.verify_totp(SEED20, code_at(STEP - 1), NOW, window=0) is None


def test_verify_totp_window_is_centred_on_the_drift() -> None:
    # A token whose clock runs 5 steps ahead: with window 1 the steps +4..+6 pass, the clock's own step does not.
    for delta in (4, 5, 6):
        assert oath.verify_totp(SEED20, code_at(STEP + delta), NOW, window=1, drift=5) == Match(STEP + delta, delta)
    for delta in (0, 1, 3, 7):
        assert oath.verify_totp(SEED20, code_at(STEP + delta), NOW, window=1, drift=5) is None
    # and one running behind
    assert oath.verify_totp(SEED20, code_at(STEP - 9), NOW, window=1, drift=-8) == Match(STEP - 9, -9)
    assert oath.verify_totp(SEED20, code_at(STEP), NOW, window=1, drift=-8) is None


def test_verify_totp_offset_is_relative_to_the_clock_not_the_drift() -> None:
    hit = oath.verify_totp(SEED20, code_at(STEP + 3), NOW, window=2, drift=2)
    assert hit == Match(STEP + 3, 3)  # stored as the new drift


def test_verify_totp_with_algorithm_digits_period_t0() -> None:
    now = 1_234_567_890
    code = oath.totp(SEED64, now, digits=8, algorithm="SHA512", period=60, t0=30)
    step = oath.time_step(now, 60, 30)
    assert oath.verify_totp(SEED64, code, now, window=0, digits=8, algorithm="SHA512", period=60, t0=30) == Match(
        step, 0)
    # the same code is not valid for another algorithm, period or length
    assert oath.verify_totp(SEED64, code, now, window=1, digits=8, algorithm="SHA256", period=60, t0=30) is None
    assert oath.verify_totp(SEED64, code, now, window=1, digits=8, algorithm="SHA512", period=30, t0=30) is None
    assert oath.verify_totp(SEED64, code, now, window=1, digits=6, algorithm="SHA512", period=60, t0=30) is None
    # (a 6-digit token's code is the 8-digit code's low digits)
    assert oath.verify_totp(SEED64, code[2:], now, window=0, digits=6, algorithm="SHA512", period=60, t0=30) == Match(
        step, 0)


FULLWIDTH_123456 = "\uff11\uff12\uff13\uff14\uff15\uff16"


@pytest.mark.parametrize("code", ["", "12345", "1234567", "12345a", " 12345", FULLWIDTH_123456, "+12345", "-12345"])
def test_verify_refuses_malformed_codes(code: str) -> None:
    assert oath.verify_totp(SEED20, code, NOW, window=100) is None
    assert oath.verify_hotp(SEED20, code, 0, 100) is None


def test_verify_totp_never_tries_negative_steps() -> None:
    # At time 10 (step 0) with window 2, steps -1 and -2 do not exist.
    assert oath.verify_totp(SEED20, oath.hotp(SEED20, 0), 10, window=2) == Match(0, 0)
    assert oath.verify_totp(SEED20, oath.hotp(SEED20, 2), 10, window=2) == Match(2, 2)


# -- verify_hotp -------------------------------------------------------------------------------------------------------


def test_verify_hotp_lookahead() -> None:
    # counter 3 expected; look-ahead 4 accepts counters 3..7 and returns the matched one
    for c in range(3, 8):
        assert oath.verify_hotp(SEED20, RFC4226[c], 3, 4) == Match(c, c - 3)
    assert oath.verify_hotp(SEED20, RFC4226[8], 3, 4) is None  # too far ahead
    assert oath.verify_hotp(SEED20, RFC4226[2], 3, 4) is None  # already used (behind the counter)


def test_verify_hotp_lookahead_zero() -> None:
    assert oath.verify_hotp(SEED20, RFC4226[5], 5, 0) == Match(5, 0)
    assert oath.verify_hotp(SEED20, RFC4226[6], 5, 0) is None


def test_verify_hotp_digits_and_algorithm() -> None:
    code = oath.hotp(SEED32, 42, 8, "SHA256")
    assert oath.verify_hotp(SEED32, code, 40, 5, 8, "SHA256") == Match(42, 2)
    assert oath.verify_hotp(SEED32, code, 40, 5, 8, "SHA1") is None


# -- resync ------------------------------------------------------------------------------------------------------------


def test_resync_hotp_finds_two_consecutive_codes_far_ahead() -> None:
    c1, c2 = oath.hotp(SEED20, 500), oath.hotp(SEED20, 501)
    assert oath.verify_hotp(SEED20, c1, 0, 10) is None  # out of the normal look-ahead
    assert oath.resync_hotp(SEED20, c1, c2, 0, 1000) == Match(501, 501)
    assert oath.resync_hotp(SEED20, c1, c2, 0, 100) is None  # beyond the search range
    assert oath.resync_hotp(SEED20, c2, c1, 0, 1000) is None  # wrong order
    assert oath.resync_hotp(SEED20, c1, oath.hotp(SEED20, 502), 0, 1000) is None  # not consecutive


def test_resync_totp_far_off_clock_both_directions() -> None:
    for delta in (-200, 200):
        c1, c2 = code_at(STEP + delta), code_at(STEP + delta + 1)
        assert oath.verify_totp(SEED20, c1, NOW, window=1) is None
        assert oath.resync_totp(SEED20, c1, c2, NOW, 1000) == Match(STEP + delta + 1, delta + 1)
        assert oath.resync_totp(SEED20, c1, c2, NOW, 100) is None
        assert oath.resync_totp(SEED20, c2, c1, NOW, 1000) is None


def test_resync_refuses_malformed_codes() -> None:
    assert oath.resync_hotp(SEED20, "abcdef", RFC4226[1], 0, 10) is None
    assert oath.resync_totp(SEED20, code_at(STEP), "12345", NOW, 10) is None


# -- base32 ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", "gezdgnbvgy3tqojqgezdgnbvgy3tqojq",
                                  "GEZD GNBV GY3T QOJQ GEZD GNBV GY3T QOJQ", "GEZD-GNBV-GY3T-QOJQ-GEZD-GNBV-GY3T-QOJQ",
                                  "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ===="[:32]])
def test_decode_base32_forms(text: str) -> None:
    assert oath.decode_base32(text) == SEED20


def test_decode_base32_unpadded_odd_length() -> None:
    # 26 characters: a 16-byte secret without its padding (as google-authenticator writes them)
    secret = bytes(range(16))
    text = oath.encode_base32(secret)
    assert len(text) == 26 and "=" not in text
    assert oath.decode_base32(text) == secret
    assert oath.decode_base32(text + "======") == secret


@pytest.mark.parametrize("text", ["", "   ", "NOT-BASE32!", "GEZDGNBVGY3TQOJ1", "GEZDGNBVGY3TQOJQ0", "GEZDGNBV",
                                  "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQA"])
def test_decode_base32_refuses_bad_input(text: str) -> None:
    with pytest.raises(InputError):
        oath.decode_base32(text)


def test_encode_base32_round_trip() -> None:
    for secret in (SEED20, SEED32, SEED64, bytes(10), bytes(range(256))[:37]):
        assert oath.decode_base32(oath.encode_base32(secret)) == secret
