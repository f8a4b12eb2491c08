"""The PAM door's radius mode: the login is asked of otp-radiusd (or any RADIUS server) with the module's own small
client. Standard library only."""

from __future__ import annotations

from .log import WARNING, Log
from .options import Options
from .outcome import ACCEPT, CHALLENGE, REJECT, Outcome, Unavailable

TYPE_CHECKING = False  # typing itself costs a login several milliseconds: imported for type checkers only
if TYPE_CHECKING:
    from typing import Any

__all__ = ["RadiusBackend"]


class RadiusBackend:
    """Asks otp-radiusd (or any RADIUS server) with the module's own small client."""

    def __init__(self, opts: Options, service: str | None, rhost: str | None, log: Log) -> None:
        self.opts = opts
        self.rhost = rhost
        self.log = log
        self.nas_identifier = opts.nas_identifier or service or "pam_otp"
        self.client: Any = None

    def open(self) -> None:
        from .radius_client import RadiusClient, RadiusError

        assert self.opts.secret_file is not None
        try:
            with open(self.opts.secret_file, "rb") as fh:
                secret = fh.readline().strip()
        except OSError as exc:
            raise Unavailable(f"secret_file {self.opts.secret_file}: {exc.strerror}") from None
        try:
            self.client = RadiusClient(self.opts.servers, secret, timeout=self.opts.timeout,
                                       retries=self.opts.retries, nas_identifier=self.nas_identifier)
        except RadiusError as exc:
            raise Unavailable(str(exc)) from None

    def has_token(self, user: str) -> bool | None:
        return None  # the server decides (policy.no_token); nullok has no effect in radius mode

    def check(self, user: str, entry: str) -> Outcome:
        return self._ask(user, entry, None)

    def answer(self, user: str, state: bytes, answer: str) -> Outcome:
        return self._ask(user, answer, state)

    def close(self) -> None:
        self.client = None

    def _ask(self, user: str, password: str, state: bytes | None) -> Outcome:
        from otpbase.radius import ACCESS_ACCEPT, ACCESS_CHALLENGE

        from .radius_client import RadiusError, RadiusUnavailable

        try:
            reply = self.client.authenticate(user, password.encode("utf-8", "surrogateescape"), state=state,
                                             calling_station=self.rhost)
        except RadiusUnavailable:
            raise Unavailable("; ".join(self.client.failures)) from None
        except RadiusError as exc:  # a user name or password too long for RADIUS: refused, not a fault
            return Outcome(REJECT, str(exc))
        for failure in self.client.failures:
            self.log(WARNING, f"RADIUS server {failure}, failed over")
        where = f"server={reply.server[0]}:{reply.server[1]}"
        if reply.code == ACCESS_ACCEPT:
            return Outcome(ACCEPT, where)
        if reply.code == ACCESS_CHALLENGE:
            if not reply.state:
                return Outcome(REJECT, f"{where} Access-Challenge without State")
            return Outcome(CHALLENGE, where, reply.message, reply.state)
        return Outcome(REJECT, where)
