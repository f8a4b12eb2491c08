"""The file pam_python.so loads: `auth required pam_python.so /path/to/pam_module/pam_otp.py [options]`.

pam_python runs the system's /usr/bin/python3 isolated (no environment, no user site, only Debian's dist-packages),
so this file finds the installed package itself before importing it. Site directories, in this order, go ahead of
the system's dist-packages (as in a virtualenv, so its pinned versions win over Debian's python3-* packages):
  - each DIR of `pythonpath=DIR[:DIR...]`, with its .pth files (an editable install works): the site-packages of
    the virtualenv holding the dependencies when this file is not installed in it (a source checkout);
  - the folder holding the pam_module package: for an installed package (the Debian package's
    /usr/lib/otp-server, a virtualenv) that is the site-packages itself, and nothing more is needed.
`otp-admin pam-config` prints the line with the module path and, when needed, `pythonpath=` filled in.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing itself costs a login several milliseconds: imported for type checkers only
if TYPE_CHECKING:
    from typing import Any

_door: Any = None


def _load(argv: list[str]) -> Any:
    global _door
    if _door is None:
        folders = [f for a in argv[1:] if a.startswith("pythonpath=") for f in a[len("pythonpath="):].split(":") if f]
        folders.append(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
        _add_site_dirs(folders)
        from pam_module import door

        _door = door
    return _door


def _add_site_dirs(folders: list[str]) -> None:
    """Site directories (with their .pth files) ahead of the system's dist-packages, as in the virtualenv itself:
    the versions pinned there win over Debian's python3-* packages."""
    import site

    before = list(sys.path)
    for folder in folders:
        if folder not in sys.path:
            site.addsitedir(folder)
    added = [p for p in sys.path if p not in before]
    rest = [p for p in sys.path if p in before]
    first_site = next((i for i, p in enumerate(rest) if p.endswith(("site-packages", "dist-packages"))), len(rest))
    sys.path[:] = rest[:first_site] + added + rest[first_site:]


def pam_sm_authenticate(pamh: Any, flags: int, argv: list[str]) -> int:
    try:
        return int(_load(argv).authenticate(pamh, argv))
    except Exception as exc:  # a bug or a broken install: never success, and say why in the log
        _report(pamh, exc)
        return int(pamh.PAM_SERVICE_ERR)


def pam_sm_setcred(pamh: Any, flags: int, argv: list[str]) -> int:
    return int(pamh.PAM_SUCCESS)  # no credentials to establish; success keeps `auth` stacks' setcred happy


def pam_sm_acct_mgmt(pamh: Any, flags: int, argv: list[str]) -> int:
    return int(pamh.PAM_IGNORE)


def pam_sm_open_session(pamh: Any, flags: int, argv: list[str]) -> int:
    return int(pamh.PAM_IGNORE)


def pam_sm_close_session(pamh: Any, flags: int, argv: list[str]) -> int:
    return int(pamh.PAM_IGNORE)


def pam_sm_chauthtok(pamh: Any, flags: int, argv: list[str]) -> int:
    return int(pamh.PAM_IGNORE)


def _report(pamh: Any, exc: BaseException) -> None:
    try:
        from pam_module.log import ERR, Log

        try:
            from otpbase.escape import escape

            detail = escape(str(exc))
        except ImportError:  # the broken install may be this very package
            detail = ascii(str(exc))
        Log(getattr(pamh, "service", None))(ERR, f"internal error: {type(exc).__name__}: {detail}")
    except Exception:
        pass
