"""Provisioning of reply attributes (otpcore.replies): groups and their lists, users' groups and own lists.

Every list is checked before it is stored by the `Checker` the caller gives (otp-admin gives radiusd.replyattrs'
check_pairs, which knows the RADIUS dictionary; the core does not), and so is what each affected user's Accept would
carry, the group's and the user's together. Each operation runs in one transaction and writes an audit row; a refused
one writes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from .errors import InputError, NotFoundError, StoreError
from .replies import Checker, ReplyPair, combine, dump_pairs, granted, load_pairs
from .specs import validate_group_name
from .store import ReplyGroupRow, Store, UserRow

__all__ = ["GroupView", "ReplyAdmin"]


class GroupView(NamedTuple):
    row: ReplyGroupRow
    attributes: tuple[ReplyPair, ...]
    members: list[str]


class ReplyAdmin:
    def __init__(self, store: Store, check: Checker) -> None:
        self.store = store
        self.check = check

    # -- groups -------------------------------------------------------------------------------------------------------

    def set_group(self, name: str, pairs: Sequence[ReplyPair], *, now: float) -> GroupView:
        """Make the group, or replace its whole list with `pairs`."""
        validate_group_name(name)
        checked = self.check(pairs)
        store = self.store
        with store.transaction():
            members = store.reply_group_members(name)
            for member in members:
                self._check_together(checked, load_pairs(store.require_user(member).reply), member)
            store.set_reply_group(name, dump_pairs(checked), now)
            self._audit(None, f"group_set:{name}", now)
            row = store.reply_group(name)
        assert row is not None
        return GroupView(row, checked, members)

    def delete_group(self, name: str, *, now: float) -> None:
        store = self.store
        with store.transaction():
            self.group(name)
            members = store.reply_group_members(name)
            if members:
                shown = ", ".join(members[:3]) + (", ..." if len(members) > 3 else "")
                raise StoreError(f"group {name} has {len(members)} member(s) ({shown}): take them out first "
                                 "(otp-admin user set NAME --clear-group)")
            store.delete_reply_group(name)
            self._audit(None, f"group_deleted:{name}", now)

    def group(self, name: str) -> GroupView:
        row = self.store.reply_group(name)
        if row is None:
            raise NotFoundError(f"no such group: {name}")
        return GroupView(row, load_pairs(row.attributes), self.store.reply_group_members(name))

    def groups(self) -> list[GroupView]:
        members: dict[str, list[str]] = {}
        for user in self.store.users():
            if user.reply_group is not None:
                members.setdefault(user.reply_group, []).append(user.name)
        return [GroupView(row, load_pairs(row.attributes), members.get(row.name, []))
                for row in self.store.reply_groups()]

    # -- users --------------------------------------------------------------------------------------------------------

    def set_user(self, name: str, *, group: str | None = None, clear_group: bool = False,
                 pairs: Sequence[ReplyPair] | None = None, clear_reply: bool = False, now: float) -> UserRow:
        """Put the user in `group` (or in none), and/or replace its own list with `pairs` (or clear it); what is not
        given is kept. Returns the user as it is now."""
        if group is not None:
            validate_group_name(group)
        own = self.check(pairs) if pairs is not None else None
        store = self.store
        with store.transaction():
            row = store.require_user(name)
            new_group = None if clear_group else group if group is not None else row.reply_group
            new_own = () if clear_reply else own if own is not None else load_pairs(row.reply)
            group_pairs: tuple[ReplyPair, ...] = ()
            if new_group is not None:
                group_row = store.reply_group(new_group)
                if group_row is None:
                    raise NotFoundError(f"no such group: {new_group} (otp-admin group set {new_group} makes it)")
                group_pairs = load_pairs(group_row.attributes)
            self._check_together(group_pairs, new_own, None)
            reply = dump_pairs(new_own) if new_own else None
            store.set_user_reply(row.id, group=new_group, attributes=reply)
            for reason in _user_changes(row, group, clear_group, own, clear_reply):
                self._audit(name, reason, now)
        return row._replace(reply_group=new_group, reply=reply)

    def granted(self, row: UserRow) -> tuple[ReplyPair, ...]:
        """What an Accept of the user carries: its group's attributes and its own, combined."""
        return granted(self.store, row)

    # -- helpers ------------------------------------------------------------------------------------------------------

    def _check_together(self, group: Sequence[ReplyPair], own: Sequence[ReplyPair], member: str | None) -> None:
        """The group's list and a user's own must fit in one Accept together."""
        if not own:
            return  # the group's list alone was checked
        try:
            self.check(combine(group, own))
        except InputError as exc:
            raise InputError(f"with the reply attributes of user {member}: {exc}" if member else str(exc)) from None

    def _audit(self, user: str | None, reason: str, now: float) -> None:
        self.store.audit(now=now, user=user, door="admin", client="otp-admin", result="ok", reason=reason)


def _user_changes(row: UserRow, group: str | None, clear_group: bool, own: Sequence[ReplyPair] | None,
                  clear_reply: bool) -> list[str]:
    """The audit reasons of a change to a user's reply attributes."""
    reasons = []
    if group is not None:
        reasons.append(f"group_joined:{group}")
    elif clear_group and row.reply_group is not None:
        reasons.append(f"group_left:{row.reply_group}")
    if own is not None:
        reasons.append("reply_set")
    elif clear_reply and row.reply is not None:
        reasons.append("reply_cleared")
    return reasons
