"""The values a verification returns. Each door turns them into its own answer once."""

from __future__ import annotations

import enum
from typing import NamedTuple

__all__ = ["Decision", "Reason", "Verdict"]


class Verdict(enum.StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"
    CHALLENGE = "challenge"
    LOCKED = "locked"


class Reason(enum.StrEnum):
    OK = "ok"
    WRONG_PASSWORD = "wrong_password"
    WRONG_CODE = "wrong_code"
    REPLAY = "replay"
    LOCKED = "locked"
    UNKNOWN_USER = "unknown_user"
    NO_TOKEN = "no_token"
    NO_TOKEN_ACCEPTED = "no_token_accepted"
    CHALLENGE_SENT = "challenge"
    BAD_STATE = "bad_state"
    EXPIRED_STATE = "expired_state"
    FIRST_FACTOR_UNAVAILABLE = "first_factor_unavailable"
    DELIVERY_FAILED = "delivery_failed"
    RESEND_TOO_SOON = "resend_too_soon"
    TOO_MANY_ATTEMPTS = "too_many_attempts"
    EXPIRED_CODE = "expired_code"
    CODE_SENT = "code_sent"  # an email/sms code was sent; no challenge (policy.challenge off): log in again with it
    SEND_LIMIT = "send_limit"  # no code sent: the user had policy.oob_max_per_hour / oob_max_per_day already
    THROTTLED = "throttled"  # the client caused too many failed logins lately (policy.client_max_failures)
    NO_PASSWORD = "no_password"  # first factor "store" and the user has no password in the store
    NOT_IN_GROUP = "not_in_group"  # first factor "ldap": the password is right, the entry is not in ldap.group_dn
    RESYNC = "resync"  # accepted: two consecutive codes moved the token's counter or clock drift (token resync)
    WRONG_RESPONSE = "wrong_response"  # a CHAP/MS-CHAP response that no password + code of the user's matches


class Decision(NamedTuple):
    verdict: Verdict
    reason: Reason
    user: str
    token_id: int | None = None
    state: bytes | None = None  # set with CHALLENGE: the RADIUS State / PAM challenge handle
    message: str = ""  # short text for the user (Reply-Message / PAM prompt); never says which factor failed
    # With ACCEPT: the reply attributes granted, (name, value) pairs in order (otpcore.replies); PAM ignores them
    reply: tuple[tuple[str, str], ...] = ()

    @property
    def accepted(self) -> bool:
        return self.verdict is Verdict.ACCEPT
