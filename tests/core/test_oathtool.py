"""Property test: otpcore.oath agrees with oath-toolkit's `oathtool` on random secrets, times and parameters."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from otpcore import oath
from tests.kit.codes import OathTool

secrets = st.binary(min_size=10, max_size=64)
digits = st.sampled_from([6, 7, 8])


@settings(max_examples=120, deadline=None)
@given(
    secret=secrets,
    now=st.integers(min_value=0, max_value=2**35),  # well past 2038 and 2106
    algorithm=st.sampled_from(sorted(oath.ALGORITHMS)),
    digits=digits,
    period=st.sampled_from([1, 15, 30, 60, 90, 300, 3600]) | st.integers(min_value=1, max_value=3600),
    t0=st.sampled_from([0, 0, 0]) | st.integers(min_value=0, max_value=2**31),
)
def test_totp_matches_oathtool(oathtool: OathTool, secret: bytes, now: int, algorithm: str, digits: int,
                               period: int, t0: int) -> None:
    now = max(now, t0)  # oathtool refuses times before T0
    expected = oathtool.totp(secret, now, algorithm=algorithm, digits=digits, period=period, t0=t0)
    assert oath.totp(secret, now, digits=digits, algorithm=algorithm, period=period, t0=t0) == expected
    hit = oath.verify_totp(secret, expected, now, window=0, digits=digits, algorithm=algorithm, period=period, t0=t0)
    assert hit is not None and hit.value == oath.time_step(now, period, t0)


@settings(max_examples=60, deadline=None)
@given(secret=secrets, counter=st.integers(min_value=0, max_value=2**48) | st.integers(0, 20), digits=digits)
def test_hotp_matches_oathtool(oathtool: OathTool, secret: bytes, counter: int, digits: int) -> None:
    expected = oathtool.hotp(secret, counter, digits=digits)
    assert oath.hotp(secret, counter, digits) == expected
    assert oath.verify_hotp(secret, expected, max(0, counter - 3), 3, digits) is not None
