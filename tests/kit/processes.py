"""Processes of servers that are not our children (pg_ctl daemonises the postmaster), seen through /proc."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

__all__ = ["alive", "children", "kill9"]


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state first, then the parent's pid), None when gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat.rsplit(")", 1)[1].split()


def alive(pid: int) -> bool:
    """True while the process runs; a zombie nobody reaped yet counts as dead (its parent may be init)."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def children(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None and int(fields[1]) == pid:
                kids.append(int(entry.name))
    return kids


def kill9(pid: int, *, timeout: float = 30) -> None:
    """SIGKILL to a process and all its children at once, returning once they are all reaped.

    The parent is frozen first (SIGSTOP) so it can neither fork a new child nor react to the others' deaths while its
    children are listed. Reaped, not only dead: a server restarted on the same data refuses to start while its old
    pid exists, even as a zombie (pg_ctl daemonises the postmaster, so init reaps it, a moment later)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGSTOP)
    doomed = [pid, *children(pid)]
    for victim in doomed:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while any(_stat_fields(victim) is not None for victim in doomed):
        if time.monotonic() > deadline:
            raise TimeoutError(f"processes still there {timeout} s after SIGKILL (alive, or zombies nobody reaps): "
                               f"{doomed}")
        time.sleep(0.01)
