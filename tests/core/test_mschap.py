"""Challenge-response logins in the core: the maths against the RFCs' own examples (RFC 2759 §9.2, RFC 3079 §3.5.3,
RFC 2433 §B.2), and Verifier.login_response against a real store with an explicit clock: the candidate codes of the
TOTP window and the HOTP look-ahead, consumed once, failures counted, the reversible password (opt-in) before them."""

from __future__ import annotations

import hashlib

import pytest

from otpcore import mschap, oath
from otpcore.chap import ChapResponse, MsChap2Response, MsChapResponse
from otpcore.decision import Reason, Verdict
from otpcore.errors import InputError
from otpcore.service import Verifier

from .helpers import SEED20, Installation

NOW = 1_700_000_000.0
STEP = oath.time_step(NOW)
DOOR = {"door": "radius", "client": "vpn"}

# RFC 2759 §9.2
USER, PASSWORD = "User", "clientPass"
AUTH_CHALLENGE = bytes.fromhex("5B5D7C7D7B3F2F3E3C2C602132262628")
PEER_CHALLENGE = bytes.fromhex("21402324255E262A28295F2B3A337C7E")
NT_RESPONSE = bytes.fromhex("82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF")


def test_rfc2759_section_9_2() -> None:
    assert mschap.nt_password_hash(PASSWORD).hex().upper() == "44EBBA8D5312B8D611474411F56989AE"
    assert mschap.password_hash_hash(mschap.nt_password_hash(PASSWORD)).hex().upper() == \
        "41C00C584BD2D91C4017A2A12FA59F3F"
    challenge8 = mschap.challenge_hash(PEER_CHALLENGE, AUTH_CHALLENGE, mschap.peer_name(USER))
    assert challenge8.hex().upper() == "D02E4386BCE91226"
    assert mschap.nt_response_v2(challenge8, PASSWORD) == NT_RESPONSE
    assert mschap.authenticator_response(PASSWORD, NT_RESPONSE, challenge8) == \
        b"S=407A5589115FD0D6209F510FE9C04566932CDA56"
    # RFC 2759 §4: the NT domain before a backslash is not part of the name hashed
    assert mschap.challenge_hash(PEER_CHALLENGE, AUTH_CHALLENGE, mschap.peer_name("BIGCO\\User")) == challenge8


def test_rfc3079_section_3_5_3_keys() -> None:
    assert mschap.master_key(PASSWORD, NT_RESPONSE).hex().upper() == "FDECE3717A8C838CB388E527AE3CDD31"
    keys = mschap.mppe_keys_v2(PASSWORD, NT_RESPONSE)
    # The RFC's SendStartKey128 is the server's send key, the client's receive key (GetAsymmetricStartKey, Magic3)
    assert keys.send_key.hex().upper() == "8B7CDC149B993A1BA118CB153F56DCCB"
    assert keys.recv_key == mschap.asymmetric_start_key(mschap.master_key(PASSWORD, NT_RESPONSE), send=True,
                                                        server=False)
    assert keys.recv_key != keys.send_key


def test_rfc2433_ms_chap_v1_example() -> None:
    assert mschap.nt_password_hash("MyPw").hex().upper() == "FC156AF7EDCD6C0EDDE3337D427F4EAC"
    assert mschap.nt_response_v1(bytes.fromhex("102DB5DF085D3041"), "MyPw").hex().upper() == \
        "4E9D3C8F9CFD385D5BF4D3246791956CA4C351AB409A3D61"


def test_chap_is_rfc_1994_md5() -> None:
    assert mschap.chap_response(7, b"secret", b"challenge") == hashlib.md5(b"\x07secretchallenge").digest()


# -- the service ------------------------------------------------------------------------------------------------------


def code(step: int, seed: bytes = SEED20) -> str:
    return oath.hotp(seed, step)


def mschap2(secret: str, user: str = "alice") -> MsChap2Response:
    """What a client proving `secret` sends, with fresh challenges."""
    challenge, peer = bytes(range(16)), bytes(range(16, 32))
    nt = mschap.nt_response_v2(mschap.challenge_hash(peer, challenge, mschap.peer_name(user)), secret)
    return MsChap2Response(user, challenge, peer, nt)


def chap(secret: str) -> ChapResponse:
    return ChapResponse(3, mschap.chap_response(3, secret.encode(), b"C" * 16), b"C" * 16)


def mschap1(secret: str) -> MsChapResponse:
    return MsChapResponse(b"c" * 8, mschap.nt_response_v1(b"c" * 8, secret))


def login(v: Verifier, response: MsChap2Response | ChapResponse | MsChapResponse, *, user: str = "alice",
          first_factor: str = "none", now: float = NOW) -> tuple[Verdict, Reason]:
    d = v.login_response(user, response, first_factor=first_factor, now=now, **DOOR)
    return d.verdict, d.reason


@pytest.fixture
def alice(inst: Installation) -> Installation:
    inst.add_user("alice", b"password")
    inst.add_token("alice", type="totp", secret=SEED20)
    return inst


@pytest.mark.parametrize("make", [mschap2, chap, mschap1])
def test_a_code_of_the_window_is_accepted_once(alice: Installation, make: object) -> None:
    v = alice.verifier()
    assert callable(make)
    response = make(code(STEP - 1))  # the window is around the clock: a step behind is in it
    assert login(v, response) == (Verdict.ACCEPT, Reason.OK)
    assert response.matched == code(STEP - 1)
    assert login(v, make(code(STEP - 1))) == (Verdict.REJECT, Reason.REPLAY)
    assert login(v, make(code(STEP + 3))) == (Verdict.REJECT, Reason.WRONG_CODE)  # outside the window
    assert login(v, make(code(STEP))) == (Verdict.ACCEPT, Reason.OK)


def test_success_proves_the_code_and_gives_the_keys(alice: Installation) -> None:
    v = alice.verifier()
    response = mschap2(code(STEP))
    assert login(v, response)[0] is Verdict.ACCEPT
    success = response.success()
    assert success.authenticator_response == mschap.authenticator_response(code(STEP), response.nt_response,
                                                                           response.challenge8)
    assert success.keys.send_key == mschap.mppe_keys_v2(code(STEP), response.nt_response).send_key


def test_hotp_look_ahead_moves_the_counter(inst: Installation) -> None:
    inst.add_user("bob")
    token = inst.add_token("bob", type="hotp", secret=SEED20, counter=5)
    v = inst.verifier(hotp_lookahead=3)
    assert login(v, chap(oath.hotp(SEED20, 9)), user="bob") == (Verdict.REJECT, Reason.WRONG_CODE)  # past it
    assert login(v, chap(oath.hotp(SEED20, 8)), user="bob") == (Verdict.ACCEPT, Reason.OK)
    assert inst.token(token).counter == 9
    assert login(v, chap(oath.hotp(SEED20, 8)), user="bob") == (Verdict.REJECT, Reason.WRONG_CODE)


def test_failures_lock_and_the_same_response_counts_once(alice: Installation) -> None:
    v = alice.verifier(max_failures=3, lockout_seconds=0)
    wrong = mschap2("000000")
    for _ in range(3):
        assert login(v, wrong) == (Verdict.REJECT, Reason.WRONG_CODE)  # a retransmitted response: one failure
    assert alice.user("alice").failures == 1
    assert login(v, mschap2("111111"))[1] is Reason.WRONG_CODE
    assert login(v, mschap2("222222")) == (Verdict.LOCKED, Reason.WRONG_CODE)
    assert login(v, mschap2(code(STEP))) == (Verdict.LOCKED, Reason.LOCKED)


def test_unknown_user_and_user_without_token(alice: Installation) -> None:
    alice.add_user("carol")
    v = alice.verifier()
    assert login(v, mschap2(code(STEP), "nobody"), user="nobody") == (Verdict.REJECT, Reason.UNKNOWN_USER)
    assert login(v, mschap2(code(STEP), "carol"), user="carol") == (Verdict.REJECT, Reason.NO_TOKEN)


def test_reversible_password_then_code(alice: Installation) -> None:
    v = alice.verifier()
    assert login(v, mschap2("password" + code(STEP)), first_factor="store") == (Verdict.REJECT, Reason.NO_PASSWORD)
    with alice.admin() as admin:
        admin.set_password("alice", b"pass\xc3\xa9", now=NOW, reversible=True)
        assert admin.has_reversible_password("alice")
    response = mschap2("passé" + code(STEP))
    assert login(v, response, first_factor="store") == (Verdict.ACCEPT, Reason.OK)
    assert response.matched == "passé" + code(STEP)
    assert login(v, mschap2("passé" + code(STEP)), first_factor="store") == (Verdict.REJECT, Reason.REPLAY)
    assert login(v, mschap2("wrong" + code(STEP + 1)), first_factor="store") == (
        Verdict.REJECT, Reason.WRONG_RESPONSE)
    assert login(v, mschap2(code(STEP + 1)), first_factor="store")[1] is Reason.WRONG_RESPONSE  # no password
    with alice.admin() as admin:  # a new password without --reversible drops the kept one
        admin.set_password("alice", b"new password", now=NOW)
        assert not admin.has_reversible_password("alice")
    assert login(v, mschap2("passé" + code(STEP + 1)), first_factor="store")[1] is Reason.NO_PASSWORD


def test_reversible_password_must_be_text_and_leaves_with_its_user(alice: Installation) -> None:
    with alice.admin() as admin:
        with pytest.raises(InputError):
            admin.set_password("alice", b"\xff\xfe", now=NOW, reversible=True)
        assert not admin.has_reversible_password("alice")
        admin.set_password("alice", b"pw", now=NOW, reversible=True)
        user_id = admin.store.require_user("alice").id
        admin.delete_user("alice", now=NOW)
        assert admin.store.reversible_password(user_id) is None


def test_responses_share_a_group_commit(alice: Installation) -> None:
    v = alice.verifier()
    assert v.batchable(None, "none", None, response=True) and v.batchable(None, "store", b"state", response=True)
    assert not v.batchable(None, "pam", None, response=True)
    with v.batch(["alice", "nobody"]):
        first = login(v, mschap2(code(STEP)))
        second = login(v, mschap2(code(STEP)))
        third = login(v, mschap2(code(STEP), "nobody"), user="nobody")
    assert (first, second, third) == ((Verdict.ACCEPT, Reason.OK), (Verdict.REJECT, Reason.REPLAY),
                                      (Verdict.REJECT, Reason.UNKNOWN_USER))


def test_pam_cannot_check_a_response(alice: Installation) -> None:
    with pytest.raises(ValueError, match="pam"):
        login(alice.verifier(), mschap2(code(STEP)), first_factor="pam")


def test_the_verifier_batches_responses_of_the_first_factors_that_check_them() -> None:
    from otpcore import chap, service

    assert service.RESPONSE_FIRST_FACTORS == chap.FIRST_FACTORS
