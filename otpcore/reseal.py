"""Secrets sealed before schema 4 were bound to their row id only, so a row given to another user still opened. The
first program that opens the store with its key (otp-radiusd, otp-admin, a PAM login) re-seals them bound to their
owner and parameters, in one transaction."""

from __future__ import annotations

import logging

from .errors import SealError
from .seal import Sealer, legacy_token_identity, token_identity
from .store import Store, TokenRow

__all__ = ["reseal_legacy_tokens", "row_identity"]

log = logging.getLogger("otpcore.reseal")
SEAL_VERSION = 2


def row_identity(token: TokenRow) -> bytes:
    return token_identity(token.id, token.user_id, token.type, token.algorithm, token.digits, token.period)


def reseal_legacy_tokens(store: Store, sealer: Sealer) -> int:
    """Re-seal every token still bound the old way; returns how many."""
    if not store.tokens_sealed_before(SEAL_VERSION):
        return 0
    resealed = 0
    with store.transaction():
        for token in store.tokens_sealed_before(SEAL_VERSION):  # under the write lock: another process may be done
            assert token.secret is not None
            try:
                secret = sealer.open(token.secret, legacy_token_identity(token.id))
            except SealError:  # a changed row: it stays unusable, and the rest of the store usable
                log.error("token %d does not open with this key: left as it is, it cannot be used", token.id)
                continue
            store.set_token_secret(token.id, sealer.seal(secret, row_identity(token)))
            resealed += 1
    if resealed:
        log.warning("re-sealed %d token secret(s) bound to their owner and parameters", resealed)
    return resealed
