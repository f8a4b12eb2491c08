"""The worker loop in-process with a stub verifier: the duplicate rules of RFC 5080, errors, reload, Status-Server."""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from otpbase.radius import (
    ACCESS_ACCEPT,
    ACCESS_CHALLENGE,
    ACCESS_REJECT,
    BAD_AUTHENTICATOR,
    MALFORMED,
    MISSING_MESSAGE_AUTHENTICATOR,
    STATUS_SERVER,
    UNSUPPORTED_CODE,
)
from otpcore.config import ClientConfig, Config, RadiusConfig
from otpcore.decision import Decision, Reason, Verdict
from radiusd.server import Worker, bind_sockets
from tests.kit.radius_client import SECRET, UdpClient, build_request
from tests.kit.stubverifier import UnbatchedVerifier


@dataclass
class StubVerifier(UnbatchedVerifier):
    calls: list[tuple[str, str, bytes]] = field(default_factory=list)
    gate: threading.Event = field(default_factory=threading.Event)

    def login(self, user: str, password: bytes, *, first_factor: str, door: str, client: str, now: float,
              source: str | None = None) -> Decision:
        self.calls.append(("login", user, password))
        if user == "slow":
            assert self.gate.wait(10)
        if user == "boom":
            raise RuntimeError("store on fire")
        if password == b"pw123456":
            return Decision(Verdict.ACCEPT, Reason.OK, user, message="Welcome")
        if password == b"pw":
            return Decision(Verdict.CHALLENGE, Reason.CHALLENGE_SENT, user, state=b"S" * 16, message="Code?")
        return Decision(Verdict.REJECT, Reason.WRONG_CODE, user, message="Authentication failed")

    def answer_challenge(self, state: bytes, user: str, code: bytes, *, door: str, client: str, now: float,
                         source: str | None = None) -> Decision:
        self.calls.append(("answer", user, code))
        ok = state == b"S" * 16 and code == b"123456"
        return Decision(Verdict.ACCEPT if ok else Verdict.REJECT, Reason.OK if ok else Reason.BAD_STATE, user)


def _config(*clients: tuple[str, str, bytes]) -> Config:
    return Config(radius=RadiusConfig(clients=tuple(
        ClientConfig(name=n, network=ipaddress.ip_network(a), secret=s) for n, a, s in clients)))


@dataclass
class Running:
    worker: Worker
    verifier: StubVerifier
    address: tuple[str, int]
    reload_to: list[Config]


@pytest.fixture
def running() -> Iterator[Running]:
    sockets = bind_sockets([("127.0.0.1", 0)], 1)[0]
    verifier = StubVerifier()
    reload_to: list[Config] = []
    config = _config(("local", "127.0.0.1", SECRET))

    def loader() -> Config:
        return reload_to[-1]

    worker = Worker(config, sockets, verifier_factory=lambda _c: verifier, config_loader=loader)
    worker.start()
    thread = threading.Thread(target=worker.serve)
    thread.start()
    try:
        yield Running(worker, verifier, sockets[0].getsockname(), reload_to)
    finally:
        verifier.gate.set()
        worker.stop()
        thread.join(10)
        for s in sockets:
            s.close()
    assert verifier.closed


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


def test_retransmission_during_evaluation_is_dropped_then_answered_from_cache(running: Running) -> None:
    with UdpClient(running.address) as client:
        sent = build_request("slow", b"pw123456")
        client.send(sent.raw)
        wait_for(lambda: len(running.verifier.calls) == 1)
        client.send(sent.raw)  # while the first is still in evaluation
        wait_for(lambda: running.worker.counters()["duplicate_in_flight"] == 1)
        running.verifier.gate.set()
        first = client.receive()
        assert first is not None and first[0] == ACCESS_ACCEPT
        assert client.receive(0.2) is None  # the dropped retransmission got no second answer
        client.send(sent.raw)  # after the answer: the same bytes from the cache
        assert client.receive() == first
    assert len(running.verifier.calls) == 1
    assert running.worker.counters()["duplicate_answered"] == 1


def test_same_id_and_authenticator_from_another_port_is_another_request(running: Running) -> None:
    sent = build_request("alice", b"wrong")
    with UdpClient(running.address) as a, UdpClient(running.address) as b:
        assert a.exchange(sent) is not None
        assert b.exchange(sent) is not None
    assert len(running.verifier.calls) == 2


def test_evaluation_error_gives_no_answer_and_a_retransmission_is_evaluated_again(running: Running) -> None:
    with UdpClient(running.address) as client:
        sent = build_request("boom", b"pw123456")
        assert client.exchange(sent, timeout=0.3) is None
        assert client.exchange(sent, timeout=0.3) is None
    assert len(running.verifier.calls) == 2
    assert running.worker.counters()["evaluate_errors"] == 2


def test_challenge_state_goes_to_answer_challenge(running: Running) -> None:
    with UdpClient(running.address) as client:
        challenge = client.ask(build_request("carol", b"pw"))
        assert challenge.code == ACCESS_CHALLENGE and challenge.state == b"S" * 16
        assert challenge.message == "Code?"
        accept = client.ask(build_request("carol", b"123456", state=challenge.state))
        assert accept.code == ACCESS_ACCEPT
    assert [c[0] for c in running.verifier.calls] == ["login", "answer"]


def test_eap_is_rejected_without_asking_the_core(running: Running) -> None:
    with UdpClient(running.address) as client:
        reply = client.ask(build_request("dave", None, extra=[(79, b"\x02\x01\x00\x0a\x01dave")]))
    assert reply.code == ACCESS_REJECT
    assert running.verifier.calls == []


def test_status_server_is_answered_in_the_receiving_thread(running: Running) -> None:
    with UdpClient(running.address) as client:
        client.send(build_request("slow", b"pw123456").raw)
        wait_for(lambda: len(running.verifier.calls) == 1)
        # The evaluating thread is blocked; Status-Server is still answered.
        assert client.ask(build_request(None, None, code=STATUS_SERVER)).code == ACCESS_ACCEPT
        running.verifier.gate.set()


def test_drops_are_counted(running: Running) -> None:
    with UdpClient(running.address) as client:
        client.send(b"\x01\x02short")
        client.send(build_request("x", b"pw", ma=False).raw)
        client.send(build_request("x", b"pw", secret=b"wrong").raw)
        client.send(build_request("x", b"pw", code=4).raw)
    with UdpClient(running.address, source="127.0.0.2") as stranger:
        stranger.send(build_request("x", b"pw").raw)
    wait_for(lambda: running.worker.counters()["received"] == 5)
    counters = running.worker.counters()
    assert counters[MALFORMED] == 1
    assert counters[MISSING_MESSAGE_AUTHENTICATOR] == 1
    assert counters[BAD_AUTHENTICATOR] == 1
    assert counters[UNSUPPORTED_CODE] == 1
    assert counters["unknown_client"] == 1
    assert running.verifier.calls == []


def test_reload_swaps_clients_and_reopens_the_verifier(running: Running) -> None:
    running.reload_to.append(_config(("other", "127.0.0.2", b"other-secret")))
    running.worker.request_reload()
    with UdpClient(running.address, source="127.0.0.2") as client:
        deadline = time.monotonic() + 5
        while client.exchange(build_request("erin", b"x", secret=b"other-secret"), timeout=0.1) is None:
            assert time.monotonic() < deadline
    with UdpClient(running.address) as old:
        assert old.exchange(build_request("erin", b"x"), timeout=0.3) is None  # 127.0.0.1 is no client any more
