"""What the stub verifiers of the worker tests share: nothing is batched, so every request goes to the evaluating
threads, where the stub's own login() and answer_challenge() answer it."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

__all__ = ["UnbatchedVerifier"]


class UnbatchedVerifier:
    closed: bool = False
    store: object = None  # none: no accounting and no checkpoints in these tests

    @staticmethod
    def batchable(password: bytes | None, first_factor: str, state: bytes | None, *, response: bool = False) -> bool:
        return False  # every request goes to the evaluating threads

    def precheck(self, logins: Sequence[tuple[str, bytes, str]], *, now: float) -> None:
        raise AssertionError("nothing is batched")

    def batch(self, users: Sequence[str] = ()) -> contextlib.AbstractContextManager[None]:
        raise AssertionError("nothing is batched")

    def close(self) -> None:
        self.closed = True
