"""The PAM door in local mode with an email token, through a real PAM stack: pamtester loads pam_python.so and the
module; the first (empty) answer asks for a code, the code arrives in aiosmtpd, the second answer carries it."""

from __future__ import annotations

import secrets
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pam_module.pamconfig import auth_line

from .conftest import Mailbox, Site, smtp_table

PAM_D = Path("/etc/pam.d")


@pytest.fixture
def pam_service() -> Iterator[Callable[[str], str]]:
    """make(line) -> the name of a /etc/pam.d/otp-test-<random> service, removed after the test."""
    created: list[Path] = []

    def make(line: str) -> str:
        name = f"otp-test-{secrets.token_hex(6)}"
        path = PAM_D / name
        path.write_text(line + "\n")
        created.append(path)
        return name

    yield make
    for path in created:
        path.unlink(missing_ok=True)


def test_pamtester_login_with_the_code_from_the_mail(site: Callable[..., Site], smtp_server: Callable[..., Mailbox],
                                                     pam_service: Callable[[str], str]) -> None:
    pamtester = shutil.which("pamtester")
    assert pamtester, "pamtester is required (Debian: pamtester; ./dev test installs it)"
    mail = smtp_server()
    s = site(smtp_table(mail.port))
    s.add_user(email="alice@example.org")
    s.add_token(type="email")
    service = pam_service(auth_line("local", config=s.config_path))
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
