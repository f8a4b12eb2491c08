"""Syslog lines for the PAM door, written straight to /dev/log (facility authpriv), else to stderr.

Not the `syslog` module: its implicit openlog() would change the ident, facility and options of the host process
(sshd, sudo) for the rest of its life. Lines never contain a code or a password: callers pass only names and reasons,
and escape (otpbase.escape) what a peer supplied, such as the user name.

Without a syslog socket (a container, a minimal host) the line goes to the host process's stderr, which systemd sends
to the journal for sshd: an admin can still see why a login failed. Not when stderr is a terminal, though: there it
is the screen of whoever runs sudo or su, and the reason ("wrong_password") must not be told to them.
"""

from __future__ import annotations

import os
import time

__all__ = ["DEBUG", "ERR", "INFO", "NOTICE", "WARNING", "Log"]

LOG_AUTHPRIV = 10 << 3
ERR, WARNING, NOTICE, INFO, DEBUG = 3, 4, 5, 6, 7
DEV_LOG = "/dev/log"


class Log:
    """`pam_otp(sshd:auth): text` lines; debug lines only with the `debug` option. `lines` keeps what was logged."""

    def __init__(self, service: str | None, debug: bool = False, path: str = DEV_LOG) -> None:
        self.prefix = f"pam_otp({service or '?'}:auth): "
        self.debug_enabled = debug
        self.path = path
        self.lines: list[tuple[int, str]] = []

    def __call__(self, severity: int, text: str) -> None:
        if severity == DEBUG and not self.debug_enabled:
            return
        self.lines.append((severity, text))
        stamp = time.strftime("%b %e %H:%M:%S")
        line = f"<{LOG_AUTHPRIV | severity}>{stamp} pam_otp[{os.getpid()}]: {self.prefix}{text}"
        import socket  # here: a successful login without `debug` logs nothing and never needs it

        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.connect(self.path)
                sock.send(line.encode("utf-8", "replace")[:8192])
        except OSError:
            self._to_stderr(f"pam_otp[{os.getpid()}]: {self.prefix}{text}\n")

    @staticmethod
    def _to_stderr(line: str) -> None:
        try:
            if not os.isatty(2):
                os.write(2, line.encode("utf-8", "replace")[:8192])
        except OSError:
            pass  # no stderr either: a login must not fail for want of a log

    def debug(self, text: str) -> None:
        self(DEBUG, text)
