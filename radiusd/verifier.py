"""What a worker calls on its verifiers (otpcore.service.Verifier, or radiusd.storeguard.GuardedVerifier around one),
and how it opens them: each thread of a worker that decides requests owns one (its own store connection), whose
checkpoints are left to the worker's Checkpointer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Protocol

from otpcore.chap import Response
from otpcore.config import Config
from otpcore.decision import Decision
from otpcore.store import Store

from .checkpoint import no_autocheckpoint

__all__ = ["VerifierFactory", "VerifierLike", "open_verifier", "reopen"]

log = logging.getLogger("otp.radiusd")


class VerifierLike(Protocol):
    """`source` (where a request came from, the RADIUS peer's address) goes to the audit rows of its decision."""

    @property
    def store(self) -> Store: ...

    def login(self, user: str, password: bytes, *, first_factor: str, door: str, client: str, now: float,
              source: str | None = None) -> Decision:
        """Password and code in one (or the code alone with first_factor "none")."""
        ...

    def answer_challenge(self, state: bytes, user: str, code: bytes, *, door: str, client: str, now: float,
                         source: str | None = None) -> Decision:
        """The second leg: the State of our Access-Challenge and the code alone."""
        ...

    def login_response(self, user: str, response: Response, *, first_factor: str, door: str, client: str, now: float,
                       source: str | None = None) -> Decision:
        """CHAP, MS-CHAP or MS-CHAPv2 (otpcore.chap): the code, or the reversible password and the code, proved."""
        ...

    def batchable(self, password: bytes | None, first_factor: str, state: bytes | None, *, response: bool = False
                  ) -> bool:
        """Whether login() (login_response() with `response`) of this request may share a batch() with others."""
        ...

    def precheck(self, logins: Sequence[tuple[str, bytes, str]], *, now: float) -> None:
        """Check the codes of batchable logins (user, password, first_factor) ahead, before the batch's write lock."""
        ...

    def batch(self, users: Sequence[str] = ()) -> AbstractContextManager[None]:
        """One transaction around several batchable calls (group commit), for `users`."""
        ...

    def close(self) -> None: ...


VerifierFactory = Callable[[Config], VerifierLike]


def open_verifier(factory: VerifierFactory, config: Config) -> tuple[VerifierLike, bool]:
    """A new verifier, and whether its checkpoints are left to a Checkpointer (its store has checkpoints)."""
    verifier = factory(config)
    return verifier, no_autocheckpoint(verifier)


def reopen(verifier: VerifierLike, factory: VerifierFactory, config: Config, label: str) -> VerifierLike:
    """A verifier for a reloaded configuration; the running one when the store cannot be opened (logged)."""
    try:
        new, _ = open_verifier(factory, config)
    except Exception as exc:
        log.error("reload: cannot open the store, keeping the running one: %s%s", exc, label)
        return verifier
    verifier.close()
    return new
