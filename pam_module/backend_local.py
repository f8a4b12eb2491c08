"""The PAM door's local mode: the login is verified against the shared store with the core (otpcore is imported when
a login opens it, never by the radius mode)."""

from __future__ import annotations

import os
from collections.abc import Callable

from .options import Options
from .outcome import ACCEPT, CHALLENGE, DOOR, LOCKED, REJECT, UNAVAILABLE, Outcome, Unavailable

TYPE_CHECKING = False  # typing itself costs a login several milliseconds: imported for type checkers only
if TYPE_CHECKING:
    from typing import Any

__all__ = ["LocalBackend"]


class LocalBackend:
    """Verifies against the shared store with the core."""

    def __init__(self, opts: Options, client: str, clock: Callable[[], float], rhost: str | None = None) -> None:
        self.opts = opts
        self.client = client
        self.clock = clock
        self.rhost = rhost  # the audit's source of each decision
        self.verifier: Any = None

    def open(self) -> None:
        from otpcore.errors import OtpError
        from otpcore.service import Verifier

        from .trust import Untrusted

        try:
            self.verifier = Verifier.open(_trusted_config(self.opts.config))
        except (Untrusted, OtpError) as exc:
            raise Unavailable(str(exc)) from None
        except OSError as exc:
            raise Unavailable(f"store: {exc}") from None

    def has_token(self, user: str) -> bool | None:
        return bool(self._guarded(self.verifier.has_active_token, user))

    def check(self, user: str, entry: str) -> Outcome:
        if self.opts.first_factor != "none":  # store or ldap: password and code in one entry
            return self._decide(self.verifier.login, user, entry.encode("utf-8", "surrogateescape"),
                                first_factor=self.opts.first_factor)
        return self._decide(self.verifier.verify_code, user, "".join(entry.split()))

    def answer(self, user: str, state: bytes, answer: str) -> Outcome:
        return self._decide(self.verifier.answer_challenge, state, user, "".join(answer.split()).encode())

    def close(self) -> None:
        if self.verifier is not None:
            self.verifier.close()
            self.verifier = None

    def _decide(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Outcome:
        from otpcore.decision import Reason, Verdict

        decision = self._guarded(call, *args, door=DOOR, client=self.client, now=self.clock(), source=self.rhost,
                                 **kwargs)
        reason = str(decision.reason)
        if decision.verdict is Verdict.ACCEPT:
            return Outcome(ACCEPT, reason)
        if decision.verdict is Verdict.LOCKED:
            return Outcome(LOCKED, reason)
        if decision.verdict is Verdict.CHALLENGE and decision.state:
            return Outcome(CHALLENGE, reason, decision.message, decision.state)
        if decision.reason in (Reason.FIRST_FACTOR_UNAVAILABLE, Reason.DELIVERY_FAILED):
            return Outcome(UNAVAILABLE, reason)
        if decision.reason is Reason.NO_TOKEN:  # the password was right: where to enrol a token, if anywhere
            return Outcome(REJECT, reason, decision.message if "enrol" in decision.message else "")
        return Outcome(REJECT, reason)

    @staticmethod
    def _guarded(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        from otpcore.errors import OtpError
        try:
            return call(*args, **kwargs)
        except OtpError as exc:
            raise Unavailable(str(exc)) from None


def _trusted_config(path: str) -> Any:
    """The config at `path` (never one the environment names: setuid programs keep their caller's), with the store,
    key and directory CA file it names, each checked by .trust and then used by its real path. Raises Untrusted."""
    import dataclasses
    from pathlib import Path

    from otpcore.config import load_config

    from .trust import trusted_owners, trusted_path

    owners = trusted_owners()
    config = load_config(trusted_path(path, "config file", owners))
    store = config.store
    if store.url is None:
        sqlite = trusted_path(store.path, "store file", owners)
        for suffix in ("-wal", "-shm"):  # SQLite reads these as part of the store
            if os.path.lexists(sqlite + suffix):
                trusted_path(sqlite + suffix, "store file", owners)
        store = dataclasses.replace(store, path=Path(sqlite))
    elif store.password_file is not None:  # PostgreSQL: its access rules guard the database, a file its password
        store = dataclasses.replace(store, password_file=Path(trusted_path(store.password_file, "password file",
                                                                           owners)))
    store = dataclasses.replace(store, key_file=Path(trusted_path(store.key_file, "key file", owners)))
    ldap = config.ldap
    if ldap is not None and ldap.ca_file is not None:  # whoever can write it can stand in for the directory
        ldap = dataclasses.replace(ldap, ca_file=Path(trusted_path(ldap.ca_file, "directory CA file", owners)))
    return dataclasses.replace(config, store=store, ldap=ldap)
