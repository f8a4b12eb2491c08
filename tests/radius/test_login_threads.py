"""The evaluating threads (`radius.login_threads`): a first factor that hangs for one user holds up that user's
request only; the others of the same worker are answered meanwhile. In-process with a stub verifier whose checks
block on a gate, and through a real otp-radiusd whose PAM stack (pam_exec) blocks on a FIFO for one user."""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from otpbase.radius import ACCESS_ACCEPT, ACCESS_REJECT
from otpcore.config import ClientConfig, Config, RadiusConfig
from otpcore.decision import Decision, Reason, Verdict
from otpcore.errors import StoreError
from radiusd.server import Worker, bind_sockets
from tests.kit.config import Client
from tests.kit.radius_client import SECRET, SILENCE_TIMEOUT, UdpClient, build_request
from tests.kit.radiusd import RadiusServer
from tests.kit.stubverifier import UnbatchedVerifier

HELD_TIMEOUT = 10.0


@dataclass
class GatedVerifier(UnbatchedVerifier):
    """A stub verifier: the logins of a user in `gates` wait until that gate is set. One per evaluating thread."""

    gates: dict[str, threading.Event]
    config: Config
    calls: list[str] = field(default_factory=list)

    def login(self, user: str, password: bytes, *, first_factor: str, door: str, client: str, now: float,
              source: str | None = None) -> Decision:
        self.calls.append(user)
        if user in self.gates:
            assert self.gates[user].wait(HELD_TIMEOUT)
        if user.startswith("busy"):  # computing, like argon2: 0.4 s of CPU
            end = time.thread_time() + 0.4
            while time.thread_time() < end:
                pass
        if password == b"pw123456":
            return Decision(Verdict.ACCEPT, Reason.OK, user)
        return Decision(Verdict.REJECT, Reason.WRONG_PASSWORD, user)

    def answer_challenge(self, state: bytes, user: str, code: bytes, *, door: str, client: str, now: float,
                         source: str | None = None) -> Decision:
        raise AssertionError("no challenges here")


def _config(login_threads: int, name: str = "local") -> Config:
    client = ClientConfig(name=name, network=ipaddress.ip_network("127.0.0.1"), secret=SECRET)
    return Config(radius=RadiusConfig(login_threads=login_threads, clients=(client,)))


@dataclass
class Running:
    worker: Worker
    address: tuple[str, int]
    gates: dict[str, threading.Event]
    opened: list[GatedVerifier]  # the receiving thread's first, then one per evaluating thread
    reload_to: list[Config]

    def verifier_of(self, user: str) -> GatedVerifier:
        (verifier,) = [v for v in self.opened if user in v.calls]
        return verifier


def _running(login_threads: int, opens: int | None = None) -> Iterator[Running]:
    """A worker on a free port; with `opens`, opening a verifier fails after that many."""
    sockets = bind_sockets([("127.0.0.1", 0)], 1)[0]
    gates = {name: threading.Event() for name in ("slow1", "slow2", "slow3", "slow4")}
    opened: list[GatedVerifier] = []
    reload_to: list[Config] = []

    def factory(config: Config) -> GatedVerifier:
        if opens is not None and len(opened) >= opens:
            raise StoreError("store on fire")
        opened.append(GatedVerifier(gates, config))
        return opened[-1]

    worker = Worker(_config(login_threads), sockets, verifier_factory=factory, config_loader=lambda: reload_to[-1])
    worker.start()
    thread = threading.Thread(target=worker.serve)
    thread.start()
    try:
        yield Running(worker, sockets[0].getsockname(), gates, opened, reload_to)
    finally:
        for gate in gates.values():
            gate.set()
        worker.stop()
        thread.join(20)
        for s in sockets:
            s.close()
    assert not thread.is_alive()
    assert all(v.closed for v in opened), "a verifier was left open"


@pytest.fixture
def four() -> Iterator[Running]:
    yield from _running(4)


@pytest.fixture
def two() -> Iterator[Running]:
    yield from _running(2)


@pytest.fixture
def no_more_opens() -> Iterator[Running]:
    yield from _running(4, opens=2)  # the receiving thread's verifier and the first evaluating thread's


def wait_for(predicate: Callable[[], bool], timeout: float = HELD_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


def test_a_held_check_holds_up_only_its_own_request(four: Running) -> None:
    with UdpClient(four.address) as held, UdpClient(four.address) as other:
        held.send(build_request("slow1", b"pw123456").raw)
        wait_for(lambda: any("slow1" in v.calls for v in four.opened))  # an evaluating thread is in its check
        assert other.ask(build_request("ann", b"pw123456")).code == ACCESS_ACCEPT
        assert other.ask(build_request("ben", b"wrong")).code == ACCESS_REJECT
        assert held.receive(SILENCE_TIMEOUT) is None  # still held
        four.gates["slow1"].set()
        reply = held.receive()
        assert reply is not None and reply[0] == ACCESS_ACCEPT
    assert four.verifier_of("slow1") is not four.verifier_of("ann")  # answered by two threads, each its own
    counters = four.worker.counters()
    assert (counters["accept"], counters["reject"], counters["evaluate_errors"], counters["overload_stale"]) == \
        (2, 1, 0, 0)


def test_a_check_that_computes_starts_no_thread(four: Running) -> None:
    """More threads would not compute sooner on the same cores (and each would keep argon2's memory)."""
    with UdpClient(four.address) as busy, UdpClient(four.address) as other:
        busy.send(build_request("busy1", b"pw123456").raw)
        wait_for(lambda: any("busy1" in v.calls for v in four.opened))
        assert other.ask(build_request("ann", b"pw123456")).code == ACCESS_ACCEPT  # after busy1, by the same thread
        reply = busy.receive()
        assert reply is not None and reply[0] == ACCESS_ACCEPT
    assert four.verifier_of("ann") is four.verifier_of("busy1")
    assert len(four.opened) == 2  # the receiving thread's verifier and the first evaluating thread's


def test_login_threads_is_the_limit(two: Running) -> None:
    with UdpClient(two.address) as held1, UdpClient(two.address) as held2, UdpClient(two.address) as other:
        held1.send(build_request("slow1", b"pw123456").raw)
        wait_for(lambda: any("slow1" in v.calls for v in two.opened))
        held2.send(build_request("slow2", b"pw123456").raw)
        wait_for(lambda: any("slow2" in v.calls for v in two.opened))  # a second thread took it
        sent = build_request("ann", b"pw123456")
        assert other.exchange(sent, timeout=SILENCE_TIMEOUT) is None  # both threads held: ann waits in the queue
        assert len(two.opened) == 3  # the receiving thread's verifier, and no third evaluating thread
        two.gates["slow1"].set()
        assert other.receive() is not None  # the thread slow1 held answers ann
        two.gates["slow2"].set()
        for client in (held1, held2):
            reply = client.receive()
            assert reply is not None and reply[0] == ACCESS_ACCEPT
    assert two.verifier_of("ann") is two.verifier_of("slow1")
    counters = two.worker.counters()
    assert (counters["accept"], counters["evaluate_errors"], counters["overload_stale"]) == (3, 0, 0)


def test_a_reload_reaches_every_evaluating_thread(two: Running) -> None:
    with UdpClient(two.address) as held, UdpClient(two.address) as other:
        held.send(build_request("slow1", b"pw123456").raw)
        wait_for(lambda: any("slow1" in v.calls for v in two.opened))
        assert other.ask(build_request("ann", b"pw123456")).code == ACCESS_ACCEPT  # by a second thread
        reloaded = _config(2, name="reloaded")
        two.reload_to.append(reloaded)
        two.worker.request_reload()
        wait_for(lambda: any(v.config is reloaded for v in two.opened))  # the receiving thread's verifier
        two.gates["slow1"].set()
        assert held.receive() is not None
        # Both threads free, then both held again: each took its request with a verifier for the new configuration.
        held.send(build_request("slow3", b"pw123456").raw)
        wait_for(lambda: any("slow3" in v.calls for v in two.opened))
        other.send(build_request("slow4", b"pw123456").raw)
        wait_for(lambda: any("slow4" in v.calls for v in two.opened))
        assert two.verifier_of("slow3") is not two.verifier_of("slow4")
        assert two.verifier_of("slow3").config is reloaded and two.verifier_of("slow4").config is reloaded
        assert two.verifier_of("slow1").closed and two.verifier_of("ann").closed  # the replaced ones
        two.gates["slow3"].set()
        two.gates["slow4"].set()
        assert held.receive() is not None and other.receive() is not None


def test_a_thread_that_cannot_open_the_store_leaves_the_others_running(no_more_opens: Running,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="otp.radiusd")
    running = no_more_opens
    with UdpClient(running.address) as held, UdpClient(running.address) as other:
        held.send(build_request("slow1", b"pw123456").raw)
        wait_for(lambda: any("slow1" in v.calls for v in running.opened))
        sent = build_request("ann", b"pw123456")
        other.send(sent.raw)
        wait_for(lambda: "cannot open the store" in caplog.text)  # the thread started for ann
        assert other.receive(SILENCE_TIMEOUT) is None  # waits for the running thread
        running.gates["slow1"].set()
        assert held.receive() is not None
        reply = other.receive()
        assert reply is not None and reply[0] == ACCESS_ACCEPT
    failures = [r for r in caplog.records if "cannot open the store for another evaluating thread" in r.getMessage()]
    assert len(failures) == 1 and "store on fire" in failures[0].getMessage()  # tried again only after a while
    counters = running.worker.counters()
    assert (counters["accept"], counters["evaluate_errors"]) == (2, 0)


# -- through a real server and a real PAM stack -----------------------------------------------------------------------


PAM_CHECK = """#!/usr/bin/python3
# pam_exec expose_authtok: the password on stdin, followed by a NUL; the user in PAM_USER.
import os, sys
password = sys.stdin.buffer.read().rstrip(b"\\0")
user = os.environ.get("PAM_USER", "")
if user.startswith("slow"):
    open(os.path.join({folder!r}, user + ".held"), "w").close()
    with open(os.path.join({folder!r}, user + ".release"), "rb") as fifo:  # opened when the test releases it
        fifo.read()
sys.exit(0 if password == b"pam-secret" else 1)
"""


@dataclass
class HeldPam:
    service: str
    folder: Path

    def held(self, user: str) -> bool:
        return (self.folder / f"{user}.held").exists()

    def release(self, user: str, timeout: float = HELD_TIMEOUT) -> None:
        """Let the user's check go on (it waits until the FIFO is opened for writing)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                os.close(os.open(self.folder / f"{user}.release", os.O_WRONLY | os.O_NONBLOCK))
                return
            except OSError as exc:  # ENXIO: the check has not opened it yet
                if exc.errno != errno.ENXIO or time.monotonic() > deadline:
                    raise
            time.sleep(0.005)


@pytest.fixture
def held_pam(tmp_path: Path) -> Iterator[HeldPam]:
    folder = tmp_path / "pam"
    folder.mkdir()
    script = folder / "check.py"
    script.write_text(PAM_CHECK.format(folder=str(folder)))
    script.chmod(0o755)
    users = ("slow1",)
    for user in users:
        os.mkfifo(folder / f"{user}.release")
    service = f"otp-test-{os.urandom(4).hex()}"
    pam_file = Path("/etc/pam.d") / service
    pam_file.write_text(f"auth required pam_exec.so expose_authtok {script}\naccount required pam_permit.so\n")
    held = HeldPam(service, folder)
    try:
        yield held
    finally:
        for user in users:  # a check still held would keep the server from stopping
            with contextlib.suppress(OSError):
                os.close(os.open(folder / f"{user}.release", os.O_WRONLY | os.O_NONBLOCK))
        pam_file.unlink()


def test_a_pam_check_that_hangs_holds_up_only_its_own_user(make_server: type[RadiusServer],
                                                           held_pam: HeldPam) -> None:
    srv = make_server(clients=[Client("pam", "127.0.0.1", first_factor="pam")],
                      policy={"pam_service": held_pam.service})
    users = {name: srv.add_user(name, None) for name in ("slow1", "ann", "ben")}  # PAM checks the passwords
    srv.start()
    with UdpClient(srv.address) as held, UdpClient(srv.address) as other:
        held.send(build_request("slow1", f"pam-secret{users['slow1'].code()}".encode()).raw)
        wait_for(lambda: held_pam.held("slow1"))
        assert other.ask(build_request("ann", f"pam-secret{users['ann'].code()}".encode())).code == ACCESS_ACCEPT
        assert other.ask(build_request("ben", f"pam-secreX{users['ben'].code()}".encode())).code == ACCESS_REJECT
        assert held.receive(SILENCE_TIMEOUT) is None  # its check is still held
        held_pam.release("slow1")
        reply = held.receive()
        assert reply is not None and reply[0] == ACCESS_ACCEPT
    assert [d["result"] for d in srv.decisions("slow1")] == ["accept"]
    assert [d["reason"] for d in srv.decisions("ben")] == ["wrong_password"]
    counters = srv.counters()
    assert (counters["accept"], counters["reject"], counters["evaluate_errors"], counters["overload_stale"]) == \
        (2, 1, 0, 0), counters
    assert srv.stop() == 0
    assert "still being evaluated" not in srv.log()
