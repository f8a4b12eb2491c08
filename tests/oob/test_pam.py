"""The PAM door in local mode with an email token, through a real PAM stack: pamtester loads pam_python.so and the
module; the first (empty) answer asks for a code, the code arrives in aiosmtpd, the second answer carries it."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence

from pam_module.pamconfig import auth_line
from tests.kit.tools import tool

from .conftest import Mailbox, Site, smtp_table


def test_pamtester_login_with_the_code_from_the_mail(site: Callable[..., Site], smtp_server: Callable[..., Mailbox],
                                                     pam_service: Callable[[Sequence[str]], str]) -> None:
    pamtester = tool("pamtester")
    mail = smtp_server()
    s = site(smtp_table(mail.port))
    s.add_user(email="alice@example.org")
    s.add_token(type="email")
    service = pam_service([auth_line("local", config=s.config_path)])
    proc = subprocess.Popen([pamtester, service, "alice", "authenticate"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdin is not None
        proc.stdin.write("\n")  # an empty code: send me one
        proc.stdin.flush()
        assert mail.arrived.wait(30), "no mail arrived"
        output = proc.communicate(mail.last_code(6) + "\n", timeout=30)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output
    # the prompt does not say how the code was sent: an empty code gets the same answer for every user
    assert "Enter your one-time password: " in output and "successfully authenticated" in output
    assert s.audit() == [("challenge", "challenge"), ("accept", "ok")]
