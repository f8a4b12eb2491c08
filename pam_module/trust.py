"""Whether a file may steer a login: the config, the store and the key a PAM login in local mode reads.

The module runs inside setuid programs (sudo, su) on behalf of whoever started them, so a file that a local user
could have written, or swapped through a directory they can write, would let them choose the store and key their
own code is checked against. A trusted file is a regular file owned by root or the service user (`otp`, which owns
the Debian package's store and key) and writable by nobody else, in directories up to `/` that are likewise owned and
not writable by others (as OpenSSH's StrictModes): a world-writable directory with the sticky bit (/tmp) passes, since
nobody can rename or delete another's file in it. Symbolic links are resolved first and the real path is what is
checked and then opened.

Standard library only, and light: it runs in every login.
"""

from __future__ import annotations

import os
import pwd
import stat

__all__ = ["SERVICE_USER", "Untrusted", "trusted_owners", "trusted_path"]

SERVICE_USER = "otp"
_OTHERS_WRITE = stat.S_IWGRP | stat.S_IWOTH


class Untrusted(Exception):
    """A file or directory that must not be used; the message names it and says why, on one line."""


def trusted_owners() -> dict[int, str]:
    """uid -> name of the accounts allowed to own what a login reads: root, and the service user where it exists."""
    try:
        service = pwd.getpwnam(SERVICE_USER).pw_uid
    except KeyError:
        return {0: "root"}
    return {0: "root", service: SERVICE_USER}


def trusted_path(path: str | os.PathLike[str], what: str, owners: dict[int, str]) -> str:
    """The real path of `path` (`what`: "config file", ...) once it and its directories are found trustworthy;
    raises Untrusted otherwise (also when it cannot be examined)."""
    real = os.path.realpath(path)
    st = _stat(real, what)
    if not stat.S_ISREG(st.st_mode):
        raise Untrusted(f"{what} {real}: not a regular file")
    _check(st, f"{what} {real}", owners, sticky_ok=False)
    folder = real
    while folder != "/":
        folder = os.path.dirname(folder)
        _check(_stat(folder, f"directory of {what}"), f"directory {folder} (of {what} {real})", owners, sticky_ok=True)
    return real


def _stat(path: str, what: str) -> os.stat_result:
    try:
        return os.stat(path)
    except OSError as exc:
        raise Untrusted(f"{what} {path}: {exc.strerror}") from None


def _check(st: os.stat_result, name: str, owners: dict[int, str], *, sticky_ok: bool) -> None:
    if st.st_uid not in owners:
        allowed = " or ".join(owners.values())
        raise Untrusted(f"{name}: owned by uid {st.st_uid}, not by {allowed}")
    if st.st_mode & _OTHERS_WRITE and not (sticky_ok and st.st_mode & stat.S_ISVTX):
        who = "group and others" if st.st_mode & _OTHERS_WRITE == _OTHERS_WRITE else (
            "group" if st.st_mode & stat.S_IWGRP else "others")
        raise Untrusted(f"{name}: writable by {who} (mode {stat.S_IMODE(st.st_mode):o})")
