"""What a first factor answers (otpcore.firstfactor)."""

from __future__ import annotations

from typing import NamedTuple

from ..decision import Reason

__all__ = ["Checked"]


class Checked(NamedTuple):
    reason: Reason
    # With OK, `sets_group`: the first factor decides the user's reply group (the directory with [ldap.reply_groups]),
    # `reply_group` (None: none). Otherwise the store's users.reply_group stands.
    sets_group: bool = False
    reply_group: str | None = None
