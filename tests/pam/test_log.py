"""The PAM door's log lines: to a syslog socket, else to stderr (not a terminal), with peer-supplied text escaped."""

from __future__ import annotations

import os
import select
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from pam_module.door import authenticate
from pam_module.log import DEBUG, NOTICE, Log

from .pamkit import FakePamh, OtpEnv

MODULE = "/x/pam_module/pam_otp.py"


@pytest.fixture
def syslog(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    """A syslog socket of our own: (its path, the receiving end)."""
    path = str(tmp_path / "log")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(5)
        yield path, sock


def test_a_line_to_the_syslog_socket(syslog, capfd):
    path, sock = syslog
    Log("sshd", path=path)(NOTICE, "user=alice: authentication failure (wrong_code)")
    datagram = sock.recv(9000).decode()
    assert datagram.startswith("<85>")  # authpriv.notice
    assert datagram.endswith(f" pam_otp[{os.getpid()}]: pam_otp(sshd:auth): user=alice: authentication failure "
                             f"(wrong_code)")
    assert capfd.readouterr().err == ""


def test_without_a_syslog_socket_the_line_goes_to_stderr(tmp_path: Path, capfd):
    log = Log("sshd", path=str(tmp_path / "no-syslog-here"))
    log(NOTICE, "user=alice: authentication failure (wrong_code)")
    log(DEBUG, "not without the debug option")
    err = capfd.readouterr().err
    assert err == f"pam_otp[{os.getpid()}]: pam_otp(sshd:auth): user=alice: authentication failure (wrong_code)\n"


def test_but_not_to_a_terminal(tmp_path: Path):
    """On a terminal stderr is the screen of whoever runs sudo or su: the reason is not theirs to read."""
    master, slave = os.openpty()
    saved = os.dup(2)
    try:
        os.dup2(slave, 2)
        Log("sudo", path=str(tmp_path / "no-syslog-here"))(NOTICE, "user=alice: authentication failure")
        os.dup2(saved, 2)
        os.write(slave, b"end\n")  # what the terminal shows from now on
        shown = b""
        while not shown.endswith(b"end\r\n") and select.select([master], [], [], 5)[0]:
            shown += os.read(master, 1000)
    finally:
        os.dup2(saved, 2)
        for fd in (saved, slave, master):
            os.close(fd)
    assert shown == b"end\r\n"


def test_user_name_and_rhost_from_the_peer_are_escaped(otp: OtpEnv, syslog):
    path, sock = syslog
    pamh = FakePamh("eve\x1b[2J user=root\x07", ["123456"], rhost="10.0.0.9\x1b]0;x\x07 mode=radius\\")
    log = Log(pamh.service, path=path)
    assert authenticate(pamh, [MODULE, f"config={otp.config}"], log=log) == FakePamh.PAM_AUTH_ERR
    [(_, text)] = log.lines
    assert text.startswith("user=eve\\x1b[2J\\x20user=root\\x07 rhost=10.0.0.9\\x1b]0;x\\x07\\x20mode=radius\\\\ "
                           "mode=local: ")
    datagram = sock.recv(9000)
    assert datagram.isascii() and not any(b < 0x20 or b == 0x7F for b in datagram)
