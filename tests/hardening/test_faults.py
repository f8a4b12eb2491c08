"""Faults: kill -9 in the middle of a load run, the store's file system read-only or full, the key file missing, unsafe
or wrong, the store deleted under a running server. Each fails closed (Reject, no answer, or PAM_AUTHINFO_UNAVAIL —
never an accept) with a clear log line, and the service recovers once the fault is removed.

Runs as root (mount, loop devices, ext4's trigger_fs_error): the suite's environment.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from otpbase.radius import ACCESS_ACCEPT, ACCESS_REJECT
from tests.kit.config import Client
from tests.kit.pamservices import local_pam_service
from tests.kit.pamtester import pamtester
from tests.kit.radius_client import Reply
from tests.kit.radiusd import RadiusServer

from .helpers import (
    NO_LIMITS,
    HotpUser,
    Store,
    add_hotp_users,
    blast,
    code_requests,
    ext4_image,
    mount_source,
    run,
    tmpfs,
)

pytestmark = pytest.mark.slow

OTP = Client("otp", "127.0.0.1", first_factor="none")


def ask(srv: RadiusServer, user: HotpUser, counter: int, *, times: int = 1, timeout: float = 3.0
        ) -> list[Reply | None]:
    """The user's code `counter`, `times` requests at once (each its own request, not a retransmission)."""
    return blast(srv.address, code_requests([(user.name, user.code(counter))] * times), timeout=timeout,
                 retransmit=1.0)


def codes(replies: list[Reply | None]) -> list[int | None]:
    return [r.code if r is not None else None for r in replies]


def no_accept(replies: list[Reply | None]) -> bool:
    return all(r is None or r.code == ACCESS_REJECT for r in replies)


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


# -- kill -9 ---------------------------------------------------------------------------------------------------------

KILL_USERS = 60
KILL_CYCLES = 4
ATTEMPTS = 3


class LoadRun:
    """Round after round, every user's next code ATTEMPTS times at once, until the server stops answering; and a
    reader taking snapshots of the counters meanwhile."""

    def __init__(self, srv: RadiusServer, users: list[HotpUser], next_code: dict[str, int]) -> None:
        self.srv = srv
        self.users = users
        self.counter = dict(next_code)
        self.accepted: Counter[tuple[str, int]] = Counter()
        self.snapshots: list[dict[str, int]] = []
        self.sent = 0
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._load), threading.Thread(target=self._watch)]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(30)
        assert not self.errors, self.errors

    def _load(self) -> None:
        try:
            while not self._stop.is_set():
                pairs = [(u, self.counter[u.name]) for u in self.users for _ in range(ATTEMPTS)]
                requests = code_requests([(u.name, u.code(k)) for u, k in pairs])
                replies = blast(self.srv.address, requests, timeout=1.5, retransmit=0.5)
                self.sent += len(requests)
                for (u, k), reply in zip(pairs, replies, strict=True):
                    if reply is not None and reply.code == ACCESS_ACCEPT:
                        self.accepted[(u.name, k)] += 1
                if any(r is None for r in replies):
                    return  # the server is gone
                for u in self.users:
                    self.counter[u.name] += 1
        except BaseException as exc:
            self.errors.append(exc)

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                with Store(self.srv.store_path) as store:
                    self.snapshots.append(store.counters())
            except sqlite3.Error:
                pass
            time.sleep(0.05)


def test_kill9_mid_load_then_restart(make_server: Callable[..., RadiusServer]) -> None:
    srv = make_server(clients=[OTP], workers=2, policy=NO_LIMITS)
    users = add_hotp_users(srv.config_path, [f"k{i}" for i in range(KILL_USERS)])
    by_name = {u.name: u for u in users}
    rng = random.Random(99)
    accepted: Counter[tuple[str, int]] = Counter()  # Accept replies seen, over every cycle
    floor: dict[str, int] = dict.fromkeys(by_name, 0)  # counters the store must never go below
    sent_total = 0
    figures = []

    for cycle in range(KILL_CYCLES):
        srv.start()
        with Store(srv.store_path) as store:
            next_code = store.counters()
        # Codes accepted before the kill are refused after the restart (checked first: nothing else is in flight).
        replay = [(u, k) for (u, k) in accepted if k >= next_code[u] - 3]
        if replay:
            replies = blast(srv.address, code_requests([(u, by_name[u].code(k)) for u, k in replay]), timeout=10)
            assert [r.code if r else None for r in replies] == [ACCESS_REJECT] * len(replay), \
                "a code accepted before kill -9 was not refused after the restart"
        run_ = LoadRun(srv, users, next_code)
        run_.start()
        time.sleep(rng.uniform(0.8, 2.0))
        srv.kill9()  # mid-round: requests are in flight, transactions may be open
        run_.stop()
        sent_total += run_.sent
        for key, n in run_.accepted.items():
            accepted[key] += n
            floor[key[0]] = max(floor[key[0]], key[1] + 1)
        snapshots = run_.snapshots

        with Store(srv.store_path, readonly=False) as store:  # the writable connection recovers the WAL
            integrity = store.integrity()
            after = store.counters()
        assert integrity == "ok"
        seen_max = {name: max([s[name] for s in snapshots] or [0]) for name in by_name}
        went_back = {n: (after[n], floor[n], seen_max[n]) for n in by_name if after[n] < max(floor[n], seen_max[n])}
        assert went_back == {}, f"counters moved back after kill -9: {went_back}"
        figures.append(f"cycle {cycle}: {sum(accepted.values())} accepts so far, counters "
                       f"{min(after.values())}..{max(after.values())}")

    srv.start()
    # Every code sent before each kill: at most one accept in total, whatever happened to the in-flight ones.
    with Store(srv.store_path) as store:
        final = store.counters()
    pairs = [(u.name, k) for u in users for k in range(final[u.name])]
    replies = []
    chunk = 32 * 256  # blast() needs distinct (socket, ID) pairs: 32 sockets x 256 IDs at a time
    for i in range(0, len(pairs), chunk):
        replies += blast(srv.address, code_requests([(n, by_name[n].code(k)) for n, k in pairs[i:i + chunk]]),
                         timeout=30)
    assert [r.code if r else None for r in replies] == [ACCESS_REJECT] * len(pairs)
    doubles = {key: n for key, n in accepted.items() if n > 1}
    assert doubles == {}, doubles
    with Store(srv.store_path) as store:
        audit = store.audit_counts(door="radius")
    for u in users:  # each counter step is one committed accept (audit row and counter move in one transaction)
        rows = sum(n for (name, result, _), n in audit.items() if name == u.name and result == "accept")
        assert rows == final[u.name], (u.name, rows, final[u.name])
    print(f"kill -9: {KILL_CYCLES} kills of 2 workers mid-load, {sent_total} requests sent, "
          f"{sum(accepted.values())} accepts seen, {sum(final.values())} committed, 0 double accepts, "
          f"integrity ok; {'; '.join(figures)}")


# -- the file system -------------------------------------------------------------------------------------------------


def _server_on(folder: Path, tmp_path: Path) -> RadiusServer:
    folder.mkdir(parents=True, exist_ok=True)
    srv = RadiusServer(folder, clients=[OTP], policy=NO_LIMITS)
    srv.log_path = tmp_path / "radiusd.log"  # the log stays writable whatever happens to the store's file system
    return srv


def test_store_file_system_turns_read_only_under_a_running_server(tmp_path: Path) -> None:
    image, mnt = tmp_path / "disk.img", tmp_path / "disk"
    with ext4_image(image, mnt):
        srv = _server_on(mnt / "otp", tmp_path)
        (user,) = add_hotp_users(srv.config_path, ["alice"])
        srv.start()
        try:
            assert codes(ask(srv, user, 0)) == [ACCESS_ACCEPT]
            os.sync()
            device = Path(mount_source(mnt)).name
            Path(f"/sys/fs/ext4/{device}/trigger_fs_error").write_text("hardening test\n")  # errors=remount-ro
            assert wait_for(lambda: "ro" in _options(mnt) or "emergency_ro" in _options(mnt)), _options(mnt)

            replies = ask(srv, user, 1, times=3)
            assert no_accept(replies), codes(replies)
            srv.wait_log(r"result=error reason=StoreError \(.*(disk I/O error|readonly|read-only)")
            with local_pam_service(srv.config_path) as service:
                assert pamtester(service, "alice", [user.code(1)]).status == "PAM_AUTHINFO_UNAVAIL"

            # The admin repairs the disk: the file system is checked and mounted again where it was.
            run("umount", "-l", str(mnt))
            subprocess.run(["e2fsck", "-fy", str(image)], capture_output=True)
            run("mount", "-o", "loop,errors=remount-ro", str(image), str(mnt))
            assert codes(ask(srv, user, 1)) == [ACCESS_ACCEPT]  # reopened by itself
            assert codes(ask(srv, user, 0)) == [ACCESS_REJECT]  # the code accepted before the fault
            srv.wait_log(r"store .* works again")
        finally:
            assert srv.stop() == 0, srv.log()[-3000:]


def _options(mnt: Path) -> str:
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        if fields[1] == str(mnt):
            return fields[3]
    return ""


def test_store_on_a_read_only_file_system_at_start(tmp_path: Path) -> None:
    mnt = tmp_path / "ro"
    with tmpfs(mnt):
        srv = _server_on(mnt / "otp", tmp_path)
        (user,) = add_hotp_users(srv.config_path, ["alice"])
        run("mount", "-o", "remount,ro", str(mnt))
        srv.start(wait=False)
        rc = srv.wait_exit(20)
        assert rc == 1, srv.log()
        assert "otp-radiusd: cannot open store" in srv.log(), srv.log()
        with local_pam_service(srv.config_path) as service:
            assert pamtester(service, "alice", [user.code(0)]).status == "PAM_AUTHINFO_UNAVAIL"

        run("mount", "-o", "remount,rw", str(mnt))
        srv.start()
        try:
            assert codes(ask(srv, user, 0)) == [ACCESS_ACCEPT]
        finally:
            assert srv.stop() == 0


def test_full_file_system(tmp_path: Path) -> None:
    mnt = tmp_path / "small"
    with tmpfs(mnt, size="6m"):
        srv = _server_on(mnt / "otp", tmp_path)
        (user,) = add_hotp_users(srv.config_path, ["alice"])
        srv.start()
        try:
            assert codes(ask(srv, user, 0)) == [ACCESS_ACCEPT]
            # Empty the WAL (so a write needs new blocks), then fill the file system.
            with sqlite3.connect(srv.store_path) as conn:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            filler = mnt / "filler"
            with open(filler, "wb") as fh:
                try:
                    while True:
                        fh.write(b"\0" * 65536)
                        fh.flush()
                except OSError:
                    pass

            replies = ask(srv, user, 1, times=3)
            assert no_accept(replies), codes(replies)
            srv.wait_log(r"result=error reason=StoreError \(.*(full|disk I/O error)")
            with local_pam_service(srv.config_path) as service:
                assert pamtester(service, "alice", [user.code(1)]).status == "PAM_AUTHINFO_UNAVAIL"

            filler.unlink()
            assert codes(ask(srv, user, 1)) == [ACCESS_ACCEPT]  # the same code: nothing half-written
            assert codes(ask(srv, user, 1)) == [ACCESS_REJECT]
        finally:
            assert srv.stop() == 0, srv.log()[-3000:]


# -- the key file ----------------------------------------------------------------------------------------------------


def _start_fails(srv: RadiusServer, message: str) -> None:
    srv.start(wait=False)
    rc = srv.wait_exit(20)
    assert rc == 1, srv.log()
    assert message in srv.log(), srv.log()


def test_key_file_missing_unsafe_or_wrong(make_server: Callable[..., RadiusServer]) -> None:
    srv = make_server(clients=[OTP], policy=NO_LIMITS)
    (user,) = add_hotp_users(srv.config_path, ["alice"])
    key = srv.key_path
    saved = key.read_bytes()
    with local_pam_service(srv.config_path) as service:
        # Missing.
        key.rename(key.with_suffix(".away"))
        _start_fails(srv, f"key file not found: {key}")
        assert pamtester(service, "alice", [user.code(0)]).status == "PAM_AUTHINFO_UNAVAIL"
        key.with_suffix(".away").rename(key)

        # Readable by others.
        key.chmod(0o644)
        _start_fails(srv, "is accessible by group or others")
        assert pamtester(service, "alice", [user.code(0)]).status == "PAM_AUTHINFO_UNAVAIL"
        key.chmod(0o600)

        # Another key (a valid one, 0600): the server starts, but no sealed secret opens.
        other = srv.dir / "other.key"
        from otpcore.seal import create_key_file

        create_key_file(other)
        key.write_bytes(other.read_bytes())
        srv.start()
        replies = ask(srv, user, 0, times=2)
        assert codes(replies) == [None, None], codes(replies)
        srv.wait_log(r"result=error reason=SealError \(token \d+ does not open: the key file is not this store's")
        assert pamtester(service, "alice", [user.code(0)]).status == "PAM_AUTHINFO_UNAVAIL"
        assert srv.stop() == 0

        # The right key back: everything works; a SIGHUP with the key gone keeps the running verifier.
        key.write_bytes(saved)
        srv.start()
        assert codes(ask(srv, user, 0)) == [ACCESS_ACCEPT]
        key.rename(key.with_suffix(".away"))
        assert srv.proc is not None
        srv.proc.send_signal(signal.SIGHUP)
        srv.wait_log(r"reload: cannot open the store, keeping the running one: key file not found")
        assert codes(ask(srv, user, 1)) == [ACCESS_ACCEPT]
        assert codes(ask(srv, user, 1)) == [ACCESS_REJECT]
        key.with_suffix(".away").rename(key)
        assert pamtester(service, "alice", [user.code(2)]).status == "PAM_SUCCESS"


# -- the store deleted -----------------------------------------------------------------------------------------------


def test_store_deleted_under_a_running_server(make_server: Callable[..., RadiusServer], tmp_path: Path) -> None:
    srv = make_server(clients=[OTP], policy=NO_LIMITS)
    (user,) = add_hotp_users(srv.config_path, ["alice"])
    srv.start()
    assert codes(ask(srv, user, 0)) == [ACCESS_ACCEPT]
    backup = tmp_path / "backup.sqlite"
    with sqlite3.connect(srv.store_path) as src, sqlite3.connect(backup) as dst:
        src.backup(dst)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{srv.store_path}{suffix}").unlink(missing_ok=True)

    replies = ask(srv, user, 1, times=3)
    assert codes(replies) == [None, None, None], codes(replies)  # no answer: the client fails over
    srv.wait_log(r"store .*otp\.sqlite was deleted or replaced under the running server")
    srv.wait_log(r"result=error reason=StoreError \(store not found: ")
    with local_pam_service(srv.config_path) as service:
        assert pamtester(service, "alice", [user.code(1)]).status == "PAM_AUTHINFO_UNAVAIL"

    shutil.copy(backup, srv.store_path)  # restored from the backup
    os.chmod(srv.store_path, 0o600)
    assert codes(ask(srv, user, 1)) == [ACCESS_ACCEPT]
    assert codes(ask(srv, user, 0)) == [ACCESS_REJECT]
    with local_pam_service(srv.config_path) as service:
        assert pamtester(service, "alice", [user.code(2)]).status == "PAM_SUCCESS"
    assert codes(ask(srv, user, 2)) == [ACCESS_REJECT]  # PAM and the server see the same (restored) store
