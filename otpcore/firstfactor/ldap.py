"""First factor "ldap": the directory of [ldap] (OpenLDAP, Active Directory) checks the password; it also holds the
e-mail addresses and phone numbers of its users, read when a code is sent.

A check searches the user's entry with the service account (bind_dn), binds as the entry it found with the password,
and with group_dn asks the group whether it lists that entry as a member (after the bind: a guesser learns nothing
about groups). With reply_groups, the entry's groups (group_attribute, read by the same search) name the user's reply
group: the first group of the table the entry is a member of (DNs compared as otpcore.ldap_config.dn_key says), looked
up only after the bind. Every name costs the same round trips whether the directory has it or not (a name it does not
have is answered by a search that matches nothing, in place of the bind).

Bounded: each URL gets `timeout` seconds for everything a check does there (the socket's timeout is set to what is
left before each step), then the next URL is tried; a URL that failed is tried after the others for SKIP_SECONDS.
So a check ends within timeout x URLs, a down or silent directory included (DirectoryError). A server that trickles
an answer byte by byte can stretch one step: ldap3 has no deadline of its own.

Reused: a Directory holds one session per URL in use, the service account's bound connection (searches) and one for
users' binds, and is used by one thread at a time (it belongs to a Verifier, as the store connection does).
ldap3 traps avoided here (docs/notes of the kit, tests/kit): SAFE_SYNC results as values, no ServerPool, no referral
chasing (it would send the bind password to any host), certificates always verified, whole-second receive_timeout,
an empty password refused before the wire (a DN with an empty password is an anonymous bind that servers accept).
"""

from __future__ import annotations

import contextlib
import logging
import math
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from otpbase.escape import escape

from ..decision import Reason
from ..errors import DirectoryError
from ..ldap_config import DnKey, LdapConfig, dn_key
from ..store import UserRow
from .checked import Checked

__all__ = ["Directory", "Entry", "LdapPassword"]

log = logging.getLogger("otpcore.ldap")

SKIP_SECONDS = 30.0  # a URL that failed is tried after the others this long
IDLE_SECONDS = 60.0  # a session unused this long is reopened (firewalls forget idle connections without a word)
_NEVER = "(!(objectClass=*))"  # matches no entry: every entry has an objectClass
_BUSY = {51, 52, 80}  # busy, unavailable, other: the server cannot answer now, another may
_T = TypeVar("_T")


class _Failed(Exception):
    """This URL cannot answer now (network, TLS, timeout, the service account refused): try the next one."""


@dataclass(frozen=True)
class Entry:
    dn: str  # as the server spells it: the one to bind with
    email: str | None
    phone: str | None
    groups: tuple[str, ...] = ()  # the DNs of group_attribute as the directory wrote them; only with reply_groups


class LdapPassword:
    """The FirstFactor of kind "ldap"."""

    def __init__(self, directory: Directory) -> None:
        self.directory = directory

    def check(self, user: str, row: UserRow | None, password: bytes) -> Checked:
        """OK also for a user the store does not know: the directory does (the service decides what follows)."""
        try:
            secret: str | bytes = password.decode("utf-8")  # str: ldap3 prepares it (SASLprep), as other clients do
        except UnicodeDecodeError:
            secret = password
        try:
            return self.directory.check(row.name if row is not None else user, secret)
        except DirectoryError:
            return Checked(Reason.FIRST_FACTOR_UNAVAILABLE)  # logged by the Directory, URL by URL


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise _Failed("timed out")
        return left

    def arm(self, connection: Any) -> None:
        """The socket waits at most what is left for this URL."""
        connection.socket.settimeout(self.left())


class _Session:
    """A URL's connections: the service account's, bound, and (made at the first password check) the users'."""

    def __init__(self, url: str, service: Any) -> None:
        self.url = url
        self.service = service
        self.binder: Any = None
        self.used = time.monotonic()

    def close(self) -> None:
        for connection in (self.service, self.binder):
            _close(connection)


class Directory:
    """The directory of one [ldap] table. One thread at a time (see the module's docstring)."""

    def __init__(self, config: LdapConfig) -> None:
        from ldap3 import NONE, Server, Tls

        self.config = config
        tls = Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(config.ca_file) if config.ca_file else None)
        self._servers = {url: Server(url, use_ssl=url.lower().startswith("ldaps:"), tls=tls, get_info=NONE,
                                     connect_timeout=config.timeout) for url in config.urls}
        self._session: _Session | None = None
        self._failed: dict[str, float] = {}  # url -> when it last failed (monotonic)
        # (the group's DN as compared, reply group); the config's DNs are checked when it is loaded
        self._reply_groups: list[tuple[DnKey, str]] = [
            (key, group) for dn, group in config.reply_groups if (key := dn_key(dn)) is not None]

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    # -- what the directory answers -----------------------------------------------------------------------------------

    def find(self, name: str) -> Entry | None:
        """The user's entry: None if no entry matches, or more than one. Raises DirectoryError."""
        return self._on_any_url(lambda session, deadline: self._search(session, deadline, name))

    def authenticate(self, name: str, password: str | bytes) -> Reason:
        """OK, WRONG_PASSWORD, UNKNOWN_USER (no entry, or more than one) or NOT_IN_GROUP. Raises DirectoryError."""
        return self.check(name, password).reason

    def check(self, name: str, password: str | bytes) -> Checked:
        """authenticate(), and with OK and reply_groups the user's reply group. Raises DirectoryError."""
        return self._on_any_url(lambda session, deadline: self._authenticate(session, deadline, name, password))

    def _authenticate(self, session: _Session, deadline: _Deadline, name: str, password: str | bytes) -> Checked:
        entry = self._search(session, deadline, name)
        if not password:  # never sent: a DN with an empty password is an anonymous bind, which servers accept
            return Checked(Reason.WRONG_PASSWORD if entry is not None else Reason.UNKNOWN_USER)
        if entry is None:
            self._search_nothing(session, deadline)  # the round trip a bind would have cost
            return Checked(Reason.UNKNOWN_USER)
        if not self._bind_as(session, deadline, entry.dn, password):
            return Checked(Reason.WRONG_PASSWORD)
        if self.config.group_dn and not self._in_group(session, deadline, entry.dn):
            return Checked(Reason.NOT_IN_GROUP)
        if not self._reply_groups:
            return Checked(Reason.OK)
        # only now, after the bind: what parsing a user's groups costs tells nobody who exists
        member_of = {key for key in map(dn_key, entry.groups) if key is not None}
        group = next((group for key, group in self._reply_groups if key in member_of), None)
        return Checked(Reason.OK, sets_group=True, reply_group=group)

    # -- the steps ----------------------------------------------------------------------------------------------------

    def _search(self, session: _Session, deadline: _Deadline, name: str) -> Entry | None:
        from ldap3 import SUBTREE
        from ldap3.utils.conv import escape_filter_chars

        config = self.config
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:  # undecodable input: nobody's name, but the same round trip
            self._search_nothing(session, deadline)
            return None
        # replace(), not format(): braces elsewhere in an admin's filter are the filter's own
        search_filter = config.user_filter.replace("{user}", escape_filter_chars(name))
        attributes = [config.email_attribute, config.phone_attribute]
        if self._reply_groups:
            attributes.append(config.group_attribute)
        deadline.arm(session.service)
        _, result, response, _ = session.service.search(config.base_dn, search_filter, SUBTREE, attributes=attributes,
                                                        size_limit=2, time_limit=config.timeout)
        entries = [r for r in response or () if r.get("type") == "searchResEntry"]
        if result["result"] == 4 or len(entries) > 1:  # sizeLimitExceeded: two entries or more
            log.warning("directory: ldap.user_filter matches more than one entry for %s: refused", escape(name))
            return None
        _answered(result, "the search of a user")
        if not entries:
            return None
        values = entries[0].get("raw_attributes") or {}
        groups = tuple(_texts(values, config.group_attribute)) if self._reply_groups else ()
        return Entry(entries[0]["dn"], _first(values, config.email_attribute), _first(values, config.phone_attribute),
                     groups)

    def _search_nothing(self, session: _Session, deadline: _Deadline) -> None:
        from ldap3 import BASE, NO_ATTRIBUTES

        deadline.arm(session.service)
        _, result, _, _ = session.service.search(self.config.base_dn, _NEVER, BASE, attributes=NO_ATTRIBUTES)
        _answered(result, "a search")

    def _bind_as(self, session: _Session, deadline: _Deadline, dn: str, password: str | bytes) -> bool:
        from ldap3 import SIMPLE
        from ldap3.core.exceptions import LDAPPasswordIsMandatoryError, LDAPSASLPrepError

        if session.binder is None or session.binder.closed:
            _close(session.binder)
            session.binder = None
            session.binder = self._connect(session.url, deadline)
        binder = session.binder
        binder.user, binder.password, binder.authentication = dn, password, SIMPLE
        deadline.arm(binder)
        try:
            _, result, _, _ = binder.bind(read_server_info=False)
        except (LDAPPasswordIsMandatoryError, LDAPSASLPrepError):  # empty once prepared, or prohibited characters
            return False
        finally:
            binder.password = None  # the connection keeps no password
        code = int(result["result"])
        if code in _BUSY:
            raise _Failed(f"the bind of a user was answered {result['description']}")
        if code != 0:  # invalidCredentials (AD's "data 52e"...), or any other refusal
            message = f": {escape(result['message'])}" if result.get("message") else ""
            log.info("directory %s: bind as %s refused (%s%s)", session.url, escape(dn), result["description"], message)
        return code == 0

    def _in_group(self, session: _Session, deadline: _Deadline, dn: str) -> bool:
        """The group, read with the service account, lists the entry in `member`; the server compares the DNs."""
        from ldap3 import BASE, NO_ATTRIBUTES
        from ldap3.utils.conv import escape_filter_chars

        deadline.arm(session.service)
        _, result, response, _ = session.service.search(self.config.group_dn, f"(member={escape_filter_chars(dn)})",
                                                        BASE, attributes=NO_ATTRIBUTES)
        _answered(result, "the search of ldap.group_dn")
        return any(r.get("type") == "searchResEntry" for r in response or ())

    # -- URLs, sessions, connections ----------------------------------------------------------------------------------

    def _on_any_url(self, operation: Callable[[_Session, _Deadline], _T]) -> _T:
        from ldap3.core.exceptions import LDAPException

        failures = []
        for url in self._order():
            deadline = _Deadline(self.config.timeout)
            try:
                return self._on_url(url, deadline, operation)
            except (_Failed, LDAPException, OSError) as exc:
                self._drop()
                self._failed[url] = time.monotonic()
                failures.append(f"{url}: {escape(str(exc) or type(exc).__name__)}")
                log.warning("directory %s failed: %s", url, failures[-1].partition(": ")[2])
        raise DirectoryError(f"no directory answered ({'; '.join(failures)})")

    def _order(self) -> list[str]:
        """The session's URL first (its connections are open), then the URLs in their order; those that failed in
        the last SKIP_SECONDS last (still tried: they may be all there is)."""
        now = time.monotonic()
        current = [self._session.url] if self._session is not None else []
        rest = [u for u in self.config.urls if u not in current]
        fresh = [u for u in rest if now - self._failed.get(u, -math.inf) >= SKIP_SECONDS]
        return current + fresh + [u for u in rest if u not in fresh]

    def _on_url(self, url: str, deadline: _Deadline, operation: Callable[[_Session, _Deadline], _T]) -> _T:
        from ldap3.core.exceptions import LDAPException

        session = self._session
        if session is not None and (session.url != url or time.monotonic() - session.used > IDLE_SECONDS):
            self._drop()
            session = None
        if session is not None:
            try:
                result = operation(session, deadline)
            except (LDAPException, OSError) as exc:  # the server may have closed an idle connection: one fresh try
                log.info("directory %s: reconnecting (%s)", url, escape(str(exc) or type(exc).__name__))
                self._drop()
            else:
                session.used = time.monotonic()
                return result
        session = self._session = self._open(url, deadline)
        result = operation(session, deadline)
        session.used = time.monotonic()
        return result

    def _open(self, url: str, deadline: _Deadline) -> _Session:
        config = self.config
        service = self._connect(url, deadline, config.bind_dn, config.bind_password)
        try:
            deadline.arm(service)
            _, result, _, _ = service.bind(read_server_info=False)
        except BaseException:
            _close(service)
            raise
        if result["result"] != 0:
            _close(service)
            raise _Failed(f"the service account's bind (ldap.bind_dn) was refused: {result['description']}")
        return _Session(url, service)

    def _connect(self, url: str, deadline: _Deadline, user: str | None = None, password: str | None = None) -> Any:
        """An open connection to `url`, encrypted (ldaps://, or StartTLS), not bound yet."""
        from ldap3 import SAFE_SYNC, Connection

        server = self._servers[url]
        server.connect_timeout = deadline.left()
        server.reset_availability()  # ldap3 would skip an address that failed lately, at once: URLs are ours to order
        # receive_timeout bounds the TLS handshake; ldap3 needs whole seconds (it packs them into SO_RCVTIMEO)
        connection = Connection(server, user=user, password=password, client_strategy=SAFE_SYNC,
                                receive_timeout=max(1, math.ceil(deadline.left())), auto_referrals=False,
                                read_only=True)
        try:
            connection.open(read_server_info=False)
            if not server.ssl:
                deadline.arm(connection)
                if not connection.start_tls(read_server_info=False):
                    raise _Failed("StartTLS was refused")
        except BaseException:
            _close(connection)
            raise
        if not (server.ssl or connection.tls_started):  # never a password in the clear
            _close(connection)
            raise _Failed("the connection is not encrypted")
        return connection

    def _drop(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None


def _answered(result: dict[str, Any], what: str) -> None:
    if result["result"] != 0:
        raise _Failed(f"{what} was answered {result['description']}: {escape(result.get('message') or '')}")


def _texts(attributes: dict[str, Any], name: str) -> list[str]:
    """The attribute's values as text (attribute names are case-insensitive: AD may spell them its way)."""
    for key, values in attributes.items():
        if key.lower() == name.lower():
            return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values or ()]
    return []


def _first(attributes: dict[str, Any], name: str) -> str | None:
    """The attribute's first value; None for a value with control characters (it goes into mail headers and logs)."""
    texts = _texts(attributes, name)
    return texts[0] if texts and texts[0].isprintable() else None


def _close(connection: Any) -> None:
    """Closes a connection and its socket (ldap3 leaves the socket open after some failures to open)."""
    if connection is None:
        return
    with contextlib.suppress(Exception):  # closing what may be broken anyway
        if not connection.closed:
            connection.unbind()
    sock = getattr(connection, "socket", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.close()
