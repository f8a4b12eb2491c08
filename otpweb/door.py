"""What the web door's handlers share: the configuration, the Verifiers, the sessions, the templates."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import Request

from otpbase.escape import escape
from otpcore.config import Config
from otpcore.seal import Sealer, load_key_file
from otpcore.service import Verifier

from .pages import Pages
from .sessions import Sessions
from .verifiers import FastLane, VerifierPool

__all__ = ["DOOR", "Door", "client_address", "log_decision"]

DOOR = "web"  # the doors' name in the audit trail and the throttle (otpcore.context)

log = logging.getLogger("otp.web")


@dataclass
class Door:
    config: Config
    sealer: Sealer
    api: VerifierPool  # the validate API: the policy as configured
    portal: VerifierPool  # the portal: always two steps (password, then the code), whatever policy.challenge says
    fast: FastLane  # the API's code-only logins
    sessions: Sessions
    pages: Pages

    @classmethod
    def open(cls, config: Config) -> Door:
        sealer = load_key_file(config.store.key_file)
        Verifier.open(config).close()  # a missing store or key: said once, at start
        portal_config = dataclasses.replace(config, policy=dataclasses.replace(config.policy, challenge=True))
        return cls(config=config, sealer=sealer, api=VerifierPool(_opener(config)),
                   portal=VerifierPool(_opener(portal_config)), fast=FastLane(_opener(config), DOOR),
                   sessions=Sessions(sealer, config.web), pages=Pages(config.web))

    def start(self) -> None:
        self.fast.start()

    def close(self) -> None:
        self.fast.stop()
        self.api.close()
        self.portal.close()


def _opener(config: Config) -> Callable[[], Verifier]:
    return lambda: Verifier.open(config)


def client_address(request: Request) -> str:
    """The peer's address (the proxy's X-Forwarded-For, behind_proxy: uvicorn trusts it from loopback only)."""
    return request.client.host if request.client is not None else "-"


def log_decision(what: str, user: str, client: str, source: str, result: str, reason: str) -> None:
    """One line per decision, as the other doors log them: never a password, a code or a session."""
    log.info("%s user=%s client=%s from=%s result=%s reason=%s", what, escape(user, space=True),
             escape(client, space=True), source, result, reason)
