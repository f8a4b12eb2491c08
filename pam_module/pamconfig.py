"""The /etc/pam.d `auth` line that loads this installation's PAM module (used by `otp-admin pam-config`).

The line names pam_python.so, the absolute path of pam_otp.py, and `pythonpath=` with the site directory that holds
the package's dependencies when that is not a directory the system's python3 already searches (a virtualenv, an
editable install). Arguments with spaces are written in [brackets], as PAM wants them.
"""

from __future__ import annotations

import os
import re
import sys
import sysconfig
from collections.abc import Sequence
from pathlib import Path

from .options import OptionError, parse_server

__all__ = ["PAM_PYTHON_PATHS", "auth_line", "compatibility_warnings", "module_path", "pam_quote", "python_path"]

PAM_PYTHON_PATHS = ("/lib/security/pam_python.so", "/lib/x86_64-linux-gnu/security/pam_python.so",
                    "/usr/lib/x86_64-linux-gnu/security/pam_python.so", "/usr/lib/security/pam_python.so")


def module_path() -> Path:
    """pam_otp.py of this installation, symlinks resolved."""
    return Path(__file__).resolve().with_name("pam_otp.py")


def _system_dirs() -> set[str]:
    """Directories /usr/bin/python3 searches on its own (Debian): no pythonpath= needed for them."""
    version = f"python3.{sys.version_info.minor}"
    return {"/usr/lib/python3/dist-packages", f"/usr/local/lib/{version}/dist-packages", f"/usr/lib/{version}",
            f"/usr/lib/{version}/lib-dynload"}


def python_path() -> list[str]:
    """Site directories pam_python must be told about: where this package's dependencies are installed, unless that
    is a directory the system's python3 searches, or the one holding pam_module (pam_otp.py adds that one itself)."""
    home = str(module_path().parent.parent)
    wanted: list[str] = []
    for key in ("purelib", "platlib"):
        folder = os.path.realpath(sysconfig.get_path(key))
        if folder not in wanted and folder not in _system_dirs() and folder != home and os.path.isdir(folder):
            wanted.append(folder)
    return wanted


def pam_quote(arg: str) -> str:
    """A PAM module argument: [bracketed] when it holds white space or starts with '[' (']' escaped inside)."""
    if arg and not arg.startswith("[") and not re.search(r"\s", arg):
        return arg
    return "[" + arg.replace("]", "\\]") + "]"


def auth_line(mode: str, servers: Sequence[str] = (), secret_file: str | os.PathLike[str] | None = None, *,
              config: str | os.PathLike[str] | None = None, control: str = "required",
              options: Sequence[str] = ()) -> str:
    """`auth required pam_python.so /…/pam_module/pam_otp.py pythonpath=… mode=…` for this installation.

    mode "local": `config=` (absolute) when given; mode "radius": servers ("host[:port]", default port 1812) and the
    secret file are required. `options` are appended as they are (e.g. "nullok", "prompt=Code: ").
    Raises ValueError on a bad mode, a missing server or secret file, or a malformed server.
    """
    if mode not in ("local", "radius"):
        raise ValueError(f"mode must be local or radius, not {mode!r}")
    args = [str(module_path())]
    pythonpath = python_path()
    if pythonpath:
        args.append("pythonpath=" + ":".join(pythonpath))
    args.append(f"mode={mode}")
    if mode == "local":
        if servers or secret_file:
            raise ValueError("--server and --secret-file are for --mode radius")
        if config is not None:
            args.append(f"config={os.path.abspath(config)}")
    else:
        if not servers:
            raise ValueError("radius mode needs at least one server HOST:PORT")
        if secret_file is None:
            raise ValueError("radius mode needs a secret file (the client's shared secret, readable by root only)")
        for server in servers:
            try:
                host, port = parse_server(server)
            except OptionError as exc:
                raise ValueError(str(exc)) from None
            args.append(f"server=[{host}]:{port}" if ":" in host else f"server={host}:{port}")
        args.append(f"secret_file={os.path.abspath(secret_file)}")
    args.extend(options)
    return " ".join(["auth", control, "pam_python.so", *(pam_quote(a) for a in args)])


def compatibility_warnings() -> list[str]:
    """Reasons the printed line may not work on this host (pam_python missing, or built for another python)."""
    found = [p for p in PAM_PYTHON_PATHS if os.path.exists(p)]
    if not found:
        return ["pam_python.so not found: install Debian's libpam-python"]
    try:
        data = Path(found[0]).read_bytes()
    except OSError as exc:
        return [f"{found[0]}: {exc.strerror}"]
    match = re.search(rb"libpython(3\.\d+)", data)
    mine = f"{sys.version_info.major}.{sys.version_info.minor}"
    if match and match.group(1).decode() != mine:
        return [f"{found[0]} embeds python {match.group(1).decode()}, but this installation runs python {mine}: "
                f"install the package for the system's /usr/bin/python3"]
    return []
