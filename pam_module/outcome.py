"""What a backend of the PAM door answers: an Outcome (accept, reject, challenge, locked, unavailable), or Unavailable
when it cannot be used at all. Standard library only, and no `typing` at import: a login imports it."""

from __future__ import annotations

__all__ = ["ACCEPT", "CHALLENGE", "DOOR", "LOCKED", "REJECT", "UNAVAILABLE", "Outcome", "Unavailable"]

DOOR = "pam"
ACCEPT, REJECT, CHALLENGE, LOCKED, UNAVAILABLE = "accept", "reject", "challenge", "locked", "unavailable"


class Outcome:
    __slots__ = ("detail", "kind", "message", "state")

    def __init__(self, kind: str, detail: str = "", message: str = "", state: bytes | None = None) -> None:
        self.kind = kind
        self.detail = detail  # for the log: a reason or the server that answered (never a code)
        self.message = message  # challenge prompt; with REJECT, a text shown to the user (where to enrol a token)
        self.state = state


class Unavailable(Exception):
    """The backend cannot be used (config, key, store, secret file, all servers down)."""
