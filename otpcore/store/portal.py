"""The self-service portal's state (otp-web): its sessions, and the one-time enrolment codes of `otp-admin user
invite`. A session is kept under a keyed fingerprint of its cookie and an invite under one of its code: the store never
holds either (a copy of the database opens no session and enrols nobody)."""

from __future__ import annotations

from typing import ClassVar

from .dialect import Dialect
from .rows import InviteRow, PortalSessionRow
from .sqlcore import SqlStore

__all__ = ["Portal", "PortalSql"]

_SESSION_COLS = "key, \"user\", stage, created, expires, data, sealed"


class PortalSql:
    """The portal's statements in one dialect."""

    def __init__(self, d: Dialect) -> None:
        q = d.sql
        self.get_session = q(f"SELECT {_SESSION_COLS} FROM portal_sessions WHERE key = ?")
        self.put_session = q(f"INSERT INTO portal_sessions ({_SESSION_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?) "
                             "ON CONFLICT (key) DO UPDATE SET \"user\" = excluded.\"user\", stage = excluded.stage, "
                             "created = excluded.created, expires = excluded.expires, data = excluded.data, "
                             "sealed = excluded.sealed")
        self.delete_session = q("DELETE FROM portal_sessions WHERE key = ?")
        self.purge_sessions = q("DELETE FROM portal_sessions WHERE expires < ?")
        self.get_invite = q('SELECT "user", code_hash, created, expires FROM invites WHERE "user" = ?')
        self.put_invite = q('INSERT INTO invites ("user", code_hash, created, expires) VALUES (?, ?, ?, ?) '
                            'ON CONFLICT ("user") DO UPDATE SET code_hash = excluded.code_hash, '
                            "created = excluded.created, expires = excluded.expires")
        self.delete_invite = q('DELETE FROM invites WHERE "user" = ?')
        self.purge_invites = q("DELETE FROM invites WHERE expires < ?")


class Portal(SqlStore):
    _portal_sql: ClassVar[PortalSql]

    # -- sessions -----------------------------------------------------------------------------------------------------

    def portal_session(self, key: bytes) -> PortalSessionRow | None:
        row = self._one(self._portal_sql.get_session, (key,))
        return PortalSessionRow(*row) if row else None

    def put_portal_session(self, row: PortalSessionRow) -> None:
        """Create or replace the session under `row.key`."""
        self._run(self._portal_sql.put_session,
                  (row.key, row.user, row.stage, row.created, row.expires, row.data, row.sealed))

    def delete_portal_session(self, key: bytes) -> None:
        self._run(self._portal_sql.delete_session, (key,))

    def purge_portal_sessions(self, now: float) -> None:
        self._run(self._portal_sql.purge_sessions, (now,))

    # -- invites ------------------------------------------------------------------------------------------------------

    def invite(self, user: str) -> InviteRow | None:
        row = self._one(self._portal_sql.get_invite, (user,))
        return InviteRow(*row) if row else None

    def put_invite(self, row: InviteRow) -> None:
        """The user's enrolment code (a new one replaces the one before)."""
        self._run(self._portal_sql.put_invite, (row.user, row.code_hash, row.created, row.expires))

    def delete_invite(self, user: str) -> bool:
        return self._run(self._portal_sql.delete_invite, (user,)) == 1

    def purge_invites(self, now: float) -> None:
        self._run(self._portal_sql.purge_invites, (now,))
