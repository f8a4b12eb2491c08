"""`pamtester SERVICE USER authenticate`: a real PAM stack (pam_python.so and the module) driven as a login would,
answers fed to the conversation one a line, the outcome read back as a PAM_* name."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .tools import tool

__all__ = ["PamResult", "finish_pamtester", "log_lines", "pamtester", "start_pamtester"]

DEV_LOG = Path("/dev/log")
# pam_strerror texts pamtester prints after "pamtester: "
PAM_TEXT = {
    "successfully authenticated": "PAM_SUCCESS",
    "Authentication failure": "PAM_AUTH_ERR",
    "Have exhausted maximum number of retries for service": "PAM_MAXTRIES",
    "Authentication service cannot retrieve authentication info": "PAM_AUTHINFO_UNAVAIL",
    "User not known to the underlying authentication module": "PAM_USER_UNKNOWN",
    "Permission denied": "PAM_PERM_DENIED",
    "Conversation error": "PAM_CONV_ERR",
    "Module is unknown": "PAM_MODULE_UNKNOWN",
    "System error": "PAM_SYSTEM_ERR",
    "Error in service module": "PAM_SERVICE_ERR",
}


@dataclass
class PamResult:
    rc: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def status(self) -> str:
        """PAM_SUCCESS, PAM_AUTH_ERR, ... from pamtester's last message ("?text" for one it does not know)."""
        if self.rc == 0 and "successfully authenticated" in self.output:
            return "PAM_SUCCESS"
        found = re.findall(r"pamtester: (.+)", self.stderr)
        text = found[-1].strip() if found else self.stderr.strip()
        return PAM_TEXT.get(text, f"?{text}")

    @property
    def output(self) -> str:
        """Prompts (misc_conv writes them to stderr) and pamtester's messages."""
        return self.stdout + self.stderr


def _command(service: str, user: str, dev_log: Path | None) -> list[str]:
    """pamtester's command line; with `dev_log`, run where that file is mounted over /dev/log (in a private mount
    namespace), unless the machine has no /dev/log or it is /dev/log itself."""
    command = [tool("pamtester"), service, user, "authenticate"]
    if dev_log is None or dev_log == DEV_LOG or not DEV_LOG.exists():
        return command
    mount = f"mount --bind {shlex.quote(str(dev_log))} {DEV_LOG} && exec \"$@\""
    return [tool("unshare"), "--mount", "--propagation", "private", "sh", "-c", mount, "sh", *command]


def pamtester(service: str, user: str, answers: Sequence[str] = (), *, timeout: float = 60,
              env: dict[str, str] | None = None, log_to_stderr: bool = False,
              dev_log: Path | None = None) -> PamResult:
    """`env`: pamtester's environment (default: ours). `log_to_stderr`: the module's log lines in the output, as on a
    host without a syslog socket. `dev_log`: the socket the module's syslog lines go to instead of /dev/log."""
    command = _command(service, user, Path(os.devnull) if log_to_stderr else dev_log)
    start = time.monotonic()
    p = subprocess.run(command, input="".join(a + "\n" for a in answers), capture_output=True, text=True,
                       timeout=timeout, env=env)
    return PamResult(p.returncode, p.stdout, p.stderr, time.monotonic() - start)


def start_pamtester(service: str, user: str, answers: Sequence[str] = ()) -> subprocess.Popen[str]:
    """pamtester in the background, its answers already waiting on its stdin: finish_pamtester() collects it."""
    read_end, write_end = os.pipe()
    os.write(write_end, "".join(a + "\n" for a in answers).encode())
    os.close(write_end)
    try:
        return subprocess.Popen(_command(service, user, None), stdin=read_end, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    finally:
        os.close(read_end)


def finish_pamtester(proc: subprocess.Popen[str], timeout: float = 120) -> PamResult:
    """The outcome of a start_pamtester() run (`seconds`: how long it was waited for here)."""
    started = time.monotonic()
    stdout, stderr = proc.communicate(timeout=timeout)
    return PamResult(proc.returncode, stdout, stderr, time.monotonic() - started)


def log_lines(result: PamResult) -> list[str]:
    """The module's log lines in a `log_to_stderr` run."""
    return [line for line in result.stderr.splitlines() if " pam_otp(" in line]
