"""The verification service every door calls: first factor, code, lockout, challenge, audit.

Each call reads the state, decides with the sans-I/O policy and commits the change and its audit row in one
transaction. The slow first-factor check (argon2, PAM, the directory) runs before that transaction, never inside it,
and exactly once per login whatever the outcome, so the time an answer takes tells nothing about which part of a
login was wrong: where the code ends in `password + code` is found first, by checking the user's codes (HMACs), not
by trying splits against the password. Every failed login counts toward the user's lockout and the client's
throttle.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from . import oob
from . import policy as pol
from .codecheck import RETRY_MESSAGE, CodeChecker
from .config import Config
from .context import CHALLENGE_MESSAGE, REJECT_MESSAGE, VerifyContext
from .decision import Decision, Reason, Verdict
from .delivery_config import DeliveryConfig
from .errors import ConfigError
from .oobsend import (
    NOT_SENT_MESSAGE,
    PENDING_MESSAGE,
    SENT_MESSAGES,
    SENT_REJECT_MESSAGE,
    WAIT_MESSAGE,
    CodeSender,
    sent_decision,
)
from .replies import follow_directory
from .reseal import reseal_legacy_tokens
from .seal import Sealer, load_key_file
from .store import ChallengeRow, Store, TokenRow, UserRow, open_store

if TYPE_CHECKING:
    from .chap import Response
    from .emptycode import EmptyCodes
    from .firstfactor import FirstFactor
    from .firstfactor.ldap import Directory
    from .ldap_config import LdapConfig
    from .responsecheck import ResponseChecker

# The first factors a CHAP / MS-CHAP response can be checked with (otpcore.chap, kept in step by a test there):
# written here so that a PAM login, which never sees a response, does not import the response checks.
RESPONSE_FIRST_FACTORS = ("none", "store")

__all__ = ["CHALLENGE_MESSAGE", "ENROL_MESSAGE", "NOT_SENT_MESSAGE", "PENDING_MESSAGE", "REJECT_MESSAGE",
           "RETRY_MESSAGE", "SENT_MESSAGES", "SENT_REJECT_MESSAGE", "WAIT_MESSAGE", "Verifier"]

ENROL_MESSAGE = "No one-time password token yet: enrol one at {url}"  # the password was right: no secret in it


class Verifier:
    def __init__(self, store: Store, sealer: Sealer, policy: pol.Policy, *, delivery: oob.Deliverer | None = None,
                 delivery_config: DeliveryConfig | None = None, ldap: LdapConfig | None = None,
                 enrollment_url: str = "") -> None:
        self.ctx = VerifyContext(store, sealer, policy)
        self.codes = CodeChecker(self.ctx)
        self.sender = CodeSender(self.ctx, self._deliverer, self.directory)
        self._responses: ResponseChecker | None = None  # CHAP / MS-CHAP (RADIUS only): made when first needed
        self._empty: EmptyCodes | None = None  # empty codes: made when first needed
        self.delivery = delivery  # sends email/sms codes; made from delivery_config when first needed
        self._delivery_config = delivery_config
        self._first_factors: dict[str, FirstFactor] = {}
        self._ldap = ldap
        self._directory: Directory | None = None  # its connections, opened when first used, kept for the next login
        self.enrollment_url = enrollment_url if policy.no_token_hint else ""  # the portal, for users without token

    @classmethod
    def open(cls, config: Config) -> Verifier:
        sealer = load_key_file(config.store.key_file)
        store = open_store(config.store)
        try:
            reseal_legacy_tokens(store, sealer)
        except BaseException:
            store.close()
            raise
        return cls(store, sealer, config.policy, delivery_config=config.delivery, ldap=config.ldap,
                   enrollment_url=config.web.enrollment_hint())

    @property
    def store(self) -> Store:
        return self.ctx.store

    @property
    def sealer(self) -> Sealer:
        return self.ctx.sealer

    @property
    def policy(self) -> pol.Policy:
        return self.ctx.policy

    def close(self) -> None:
        if self._directory is not None:
            self._directory.close()
        self.store.close()

    def directory(self) -> Directory:
        """The directory of [ldap] (first_factor "ldap", directory users' addresses); ConfigError without one."""
        if self._directory is None:
            if self._ldap is None:
                raise ConfigError("first_factor ldap and directory users need an [ldap] table in the config")
            from .firstfactor.ldap import Directory  # ldap3: only for the deployments that have a directory

            self._directory = Directory(self._ldap)
        return self._directory

    # -- group commit -------------------------------------------------------------------------------------------------

    @contextmanager
    def batch(self, users: Sequence[str] = ()) -> Iterator[None]:
        """One transaction around several calls (group commit): their writes become durable together, at its end,
        so a door must answer none of them before the block is left. Only for `batchable` calls: the write lock is
        held throughout, so nothing slow (argon2, PAM, a code sent by mail) may run inside. `users`: the users the
        calls are for, read together at the start."""
        with self.store.transaction():
            if users:
                self.store.prefetch(users)
            yield

    @staticmethod
    def batchable(password: bytes | None, first_factor: str, state: bytes | None, *, response: bool = False) -> bool:
        """Whether login() is a code check alone (first_factor "none", a code, no State), or login_response() one
        (`response`; a State is ignored): store reads and writes and hashes only, so it may share a `batch()`."""
        if response:
            return first_factor in RESPONSE_FIRST_FACTORS
        return first_factor == "none" and bool(password) and state is None

    def precheck(self, logins: Sequence[tuple[str, bytes, str]], *, now: float) -> None:
        """Before a batch takes the write lock: check the codes of batchable login() calls (user, password,
        first_factor) against the users' tokens as they are now, outside any transaction, so that unsealing and HMACs
        are done while another process may hold the lock (see otpcore.codecheck)."""
        codes = [(user, password) for user, password, first_factor in logins
                 if self.batchable(password, first_factor, None)]
        if codes:
            found = self.store.users_with_tokens([user for user, _ in codes])
            for user, password in codes:
                self.codes.precheck(found[user], password.decode("ascii", "replace"), now)

    # -- the doors' entry points --------------------------------------------------------------------------------------

    # Each entry point takes `source`, where the request came from (the RADIUS peer's address, the PAM rhost; None
    # for the admin), written to the audit rows of its decision.

    def login(self, user: str, password: bytes, *, first_factor: str, door: str, client: str, now: float,
              source: str | None = None) -> Decision:
        """A RADIUS-style login: `password` is password+code in one (or the code alone with first_factor "none").

        The password alone (first factor right, no code) answers with a challenge when the policy allows it.
        """
        self.ctx.source = source
        if first_factor == "none":
            return self.verify_code(user, password.decode("ascii", "replace"), door=door, client=client, now=now,
                                    source=source)
        return self._password_login(user, password, self._first_factor(first_factor), door=door, client=client,
                                    now=now)

    def login_response(self, user: str, response: Response, *, first_factor: str, door: str, client: str, now: float,
                       source: str | None = None) -> Decision:
        """CHAP, MS-CHAP, MS-CHAPv2 (otpcore.chap): the code ("none") or the reversible password and the code
        ("store"), proved by `response`; on ACCEPT, `response.matched` is what it proved."""
        self.ctx.source = source
        return self.responses.check(user, response, first_factor=first_factor, door=door, client=client, now=now)

    def verify_code(self, user: str, code: str, *, door: str, client: str, now: float, source: str | None = None
                    ) -> Decision:
        """The code alone (the password was checked elsewhere, e.g. by pam_unix, or there is none).

        An empty code asks for an email/sms code to be sent: every user, known or not, with such a token or not, gets
        the same challenge, so the answer tells nobody who has which tokens."""
        self.ctx.source = source
        if not code.strip():
            return self.empty.ask(user, door=door, client=client, now=now)
        return self.codes.check(user, code, door=door, client=client, now=now)

    def send_code(self, user: str, *, door: str, client: str, now: float, force: bool = False,
                  source: str | None = None) -> Decision:
        """Send a code to the user's email/sms tokens now, for a help desk (`otp-admin token send`): CHALLENGE with a
        State on success. The code is also accepted without the State (`token verify`, password+code, or the next
        challenge within the resend interval). `force` ignores the resend interval and the caps."""
        self.ctx.source = source
        row = self.store.user(user)
        if row is None:
            return self.ctx.finish(user, door, client, now, Verdict.REJECT, Reason.UNKNOWN_USER)
        sent = self.sender.send(row, door=door, client=client, now=now, force=force, move_pending=False)
        return sent_decision(self.ctx, row.name, sent, door=door, client=client, now=now, challenge=True)

    def answer_challenge(self, state: bytes, user: str, code: bytes, *, door: str, client: str, now: float,
                         source: str | None = None) -> Decision:
        """Second leg: the State from our Access-Challenge and the code alone."""
        ctx = self.ctx
        ctx.source = source
        with ctx.store.transaction():
            if ctx.throttled(door, client, now):
                return ctx.finish(user, door, client, now, Verdict.REJECT, Reason.THROTTLED)
            challenge = ctx.store.take_challenge(state)
            text = code.decode("ascii", "replace")
            if challenge is not None and challenge.user_id == 0 and challenge.client == client:
                return self.empty.answer_phantom(challenge, user, text, door=door, client=client, now=now)
            row = ctx.store.user_by_id(challenge.user_id) if challenge else None
            if challenge is None or row is None or row.name != user or challenge.client != client:
                return ctx.finish(user, door, client, now, Verdict.REJECT, Reason.BAD_STATE)
            if challenge.code_hash is not None:
                return self.codes.answer_sent(challenge, row, text, door=door, client=client, now=now)
            if now >= challenge.expires:
                return ctx.finish(user, door, client, now, Verdict.REJECT, Reason.EXPIRED_STATE)
            return self.codes.check(row.name, text, door=door, client=client, now=now)

    def has_active_token(self, user: str) -> bool:
        return bool((row := self.store.user(user)) and self.store.tokens(row.id, active_only=True))

    def resync(self, user: str, code1: str, code2: str, *, door: str, client: str, now: float,
               source: str | None = None) -> Decision:
        """Two consecutive codes over the wide resync range (policy.resync_window): audited as "resync"."""
        self.ctx.source = source
        return self.codes.resync(user, code1, code2, door=door, client=client, now=now)

    # -- password + code ----------------------------------------------------------------------------------------------

    def _password_login(self, user: str, password: bytes, factor: FirstFactor, *, door: str, client: str,
                        now: float) -> Decision:
        ctx = self.ctx
        if ctx.throttled(door, client, now):
            return ctx.finish(user, door, client, now, Verdict.REJECT, Reason.THROTTLED)
        row, token_rows = ctx.store.user_with_tokens(user)
        password_part, code, code_shaped = self._split(row, token_rows, password, now)
        checked = factor.check(user, row, password_part)  # the one slow check, on every path
        verdict = checked.reason
        if verdict is Reason.FIRST_FACTOR_UNAVAILABLE:
            return ctx.finish(user, door, client, now, Verdict.REJECT, verdict)
        if row is None and verdict is Reason.OK:  # a directory user the store does not know yet: no token
            if ctx.phantom_locked(user, now):
                return ctx.finish(user, door, client, now, Verdict.LOCKED, Reason.LOCKED)
            return self._without_token(user, None, door=door, client=client, now=now)
        if row is None or verdict is not Reason.OK or ctx.is_locked(row, now):
            if verdict is Reason.WRONG_PASSWORD and code is None and code_shaped:
                verdict = Reason.WRONG_CODE  # no code of the user's ends the entry: the code is wrong for sure
            return self._refused(user, password, verdict, door=door, client=client, now=now)
        if checked.sets_group:  # the directory's groups decide the reply group
            row = follow_directory(ctx.store, row, checked.reply_group)
        if code is not None:
            return self.codes.check(row.name, code, door=door, client=client, now=now)
        return self._password_only(row, token_rows, door=door, client=client, now=now)

    def _split(self, row: UserRow | None, token_rows: Sequence[TokenRow], password: bytes, now: float
               ) -> tuple[bytes, str | None, bool]:
        """(the password part, the code that ends the entry if it is one of the user's codes, whether the entry ends
        in something shaped like one of the user's codes). Unknown users are split as if they had a 6-digit token."""
        oob_settings = [s for _, s in self.ctx.oob_tokens(row, token_rows)]
        lengths = sorted({t.digits for t in token_rows if t.type in pol.OTP_TYPES} | {s.length for s in oob_settings},
                         reverse=True) or [6]
        shaped = False
        for digits in lengths:
            tail = password[-digits:]
            if len(password) <= digits or not tail.isascii():
                continue
            code = tail.decode()
            if not (code.isdigit() or any(oob.looks_like_code(oob.normalize_code(code), s) for s in oob_settings)):
                continue
            shaped = True
            if self.codes.matches(row, token_rows, code, now):
                return password[:-digits], code, True
        return password, None, shaped

    def _refused(self, user: str, entry: bytes, reason: Reason, *, door: str, client: str, now: float) -> Decision:
        """The first factor failed (or the user is locked): counted toward the lockout and the throttle."""
        ctx = self.ctx
        with ctx.store.transaction():
            row = ctx.store.user(user)  # the failure state under the write lock
            if ctx.phantom_locked(user, now) if row is None else ctx.is_locked(row, now):
                return ctx.finish(user, door, client, now, Verdict.LOCKED, reason if row is None else Reason.LOCKED)
            locked = ctx.count_failure(row, entry, door, client, now, user=user)
            return ctx.finish(user, door, client, now, Verdict.LOCKED if locked else Verdict.REJECT, reason)

    def _password_only(self, row: UserRow, token_rows: Sequence[TokenRow], *, door: str, client: str, now: float
                       ) -> Decision:
        ctx, user = self.ctx, row.name
        if ctx.oob_tokens(row, token_rows):  # the password opens the way to an email/sms code
            sent = self.sender.send(row, door=door, client=client, now=now, move_pending=ctx.policy.challenge)
            return sent_decision(ctx, user, sent, door=door, client=client, now=now, challenge=ctx.policy.challenge)
        if not any(t.type in pol.OTP_TYPES for t in token_rows):
            return self._without_token(user, row, door=door, client=client, now=now)
        if not ctx.policy.challenge:
            return ctx.finish(user, door, client, now, Verdict.REJECT, Reason.WRONG_CODE)
        state = os.urandom(16)
        with ctx.store.transaction():
            ctx.store.purge_challenges(now)
            ctx.store.add_challenge(ChallengeRow(state=state, user_id=row.id, client=client, token_id=None,
                                                 created=now, expires=now + ctx.policy.challenge_timeout,
                                                 code_hash=None, attempts=0))
            decision = ctx.finish(user, door, client, now, Verdict.CHALLENGE, Reason.CHALLENGE_SENT)
        return decision._replace(state=state, message=CHALLENGE_MESSAGE)

    def _without_token(self, user: str, row: UserRow | None, *, door: str, client: str, now: float) -> Decision:
        if self.ctx.policy.no_token == "accept":
            if row is not None:  # with what its reply group grants
                return self.ctx.accept(row, door, client, now, Reason.NO_TOKEN_ACCEPTED)
            return self.ctx.finish(user, door, client, now, Verdict.ACCEPT, Reason.NO_TOKEN_ACCEPTED)
        message = ENROL_MESSAGE.format(url=self.enrollment_url) if self.enrollment_url else REJECT_MESSAGE
        return self.ctx.finish(user, door, client, now, Verdict.REJECT, Reason.NO_TOKEN)._replace(message=message)

    # -- helpers ------------------------------------------------------------------------------------------------------

    @property
    def responses(self) -> ResponseChecker:
        if self._responses is None:
            from .responsecheck import ResponseChecker

            self._responses = ResponseChecker(self.ctx)
        return self._responses

    @property
    def empty(self) -> EmptyCodes:
        if self._empty is None:
            from .emptycode import EmptyCodes

            self._empty = EmptyCodes(self.ctx, self.codes, self.sender, self.has_active_token)
        return self._empty

    def _first_factor(self, kind: str) -> FirstFactor:
        factor = self._first_factors.get(kind)
        if factor is None:
            from .firstfactor import first_factor  # a code-only door (PAM after pam_unix) never needs one

            factor = self._first_factors[kind] = first_factor(kind, self.policy, self.directory)
        return factor

    def _deliverer(self) -> oob.Deliverer | None:
        if self.delivery is None and self._delivery_config is not None:
            from .delivery import Sender  # smtplib, http.client, ssl: only for the logins that send a code

            self.delivery = Sender(self._delivery_config)
        return self.delivery
