"""Benchmark: the median login with first_factor = "ldap" against "store", and what a directory that is down costs.

    .venv/bin/python bench/ldap_login.py [--requests 200] [--json FILE]

Starts a private slapd (bench/slapd.py: ldaps on loopback) and otp-radiusd (workers = 1) with two clients, `store`
(the password checked against its argon2id hash in the store) and `ldap` (a search and a bind in the directory, on the
worker's pooled connections), and sends Access-Requests one at a time, the cases interleaved in a shuffled order (as
bench/timing.py does): password + a valid HOTP code (each an Accept) and a wrong password (a Reject), for a store user
and for a directory user; and, for scale, the code alone (first_factor = "none"). Prints each case's median from send
to reply.

Then the faults, each on an otp-radiusd of its own whose [ldap] urls start with a bad server (timeout = 2, the
default): a port that refuses (closed), a server that accepts and never answers (silent), and both URLs bad (a
silent one and one whose TCP handshake never completes): the time to the answer of the first login, and the median of
the next ones (the worker stays on the URL that answered; both bad: every login waits timeout x URLs).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import select
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout: `bench` by name

from bench import loadgen
from bench.freeradius import free_udp_port
from bench.slapd import Directory, running_slapd
from otpbase.radius import ACCESS_ACCEPT, ACCESS_REJECT

VENV_BIN = Path(sys.executable).parent
SECRET = b"ldap-bench-secret"
SOURCES = {"store": "127.0.0.2", "ldap": "127.0.0.1", "none": "127.0.0.3"}  # 127.0.0.1 answers the start-up probe
PASSWORDS = {"store": "carol-store-password", "ldap": "dave-directory-password", "none": ""}
USERS = {"store": "carol", "ldap": "dave", "none": "erin"}
HOTP_SECRET = bytes(range(20))


class Server:
    """otp-radiusd on a throw-away store with the users carol (store password) and dave (the directory's)."""

    def __init__(self, folder: Path, directory: Directory, urls: list[str] | None = None) -> None:
        self.folder = folder
        self.port = free_udp_port()
        (folder / "otp.toml").write_text(f"""\
[store]
path = "otp.sqlite"
key_file = "otp.key"

[radius]
listen = ["127.0.0.1:{self.port}"]
accounting_listen = ["127.0.0.1:{free_udp_port()}"]
""" + "".join(f"""
[[radius.clients]]
name = "{kind}"
address = "{source}"
secret = "{SECRET.decode()}"
first_factor = "{kind}"
""" for kind, source in SOURCES.items()) + """
[policy]
max_failures = 1000000000   # the cases repeat: nobody may get locked on the way
lockout_seconds = 0
client_max_failures = 1000000000

""" + directory.ldap_table(urls))
        self.counters = {kind: 0 for kind in USERS}
        self.proc: subprocess.Popen[bytes] | None = None

    def provision(self) -> None:
        from otpcore.admin import Admin, TokenSpec, UserSpec
        from otpcore.config import load_config

        with Admin(load_config(self.folder / "otp.toml")) as admin:
            admin.init()
            admin.add_user(UserSpec(USERS["store"], password=PASSWORDS["store"].encode()), now=time.time())
            admin.add_user(UserSpec(USERS["none"]), now=time.time())
            for user in USERS.values():  # dave is found in the directory: added as a directory user
                admin.add_token(user, TokenSpec(type="hotp", secret=HOTP_SECRET), now=time.time())

    def start(self) -> None:
        log = open(self.folder / "radiusd.log", "wb")  # noqa: SIM115 - the child holds it
        self.proc = subprocess.Popen([str(VENV_BIN / "otp-radiusd"), "--config", str(self.folder / "otp.toml"),
                                      "--log-level", "warning"], stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while not loadgen.status_server(("127.0.0.1", self.port), SECRET):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                sys.exit("otp-radiusd did not start:\n" + (self.folder / "radiusd.log").read_text())

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(15)

    def entry(self, kind: str, right: bool) -> tuple[str, bytes]:
        """(user, User-Password) of a login of this kind: password + the next HOTP code, or a wrong password."""
        from otpcore import oath

        if not right:
            return USERS[kind], b"wrong-password"
        code = oath.hotp(HOTP_SECRET, self.counters[kind])
        self.counters[kind] += 1
        return USERS[kind], PASSWORDS[kind].encode() + code.encode()


def ask(sock: socket.socket, port: int, user: str, password: bytes, ident: int) -> tuple[int, float]:
    request = loadgen.access_request(ident, user, password, SECRET)
    started = time.perf_counter()
    sock.sendto(request, ("127.0.0.1", port))
    while True:
        reply = sock.recv(4096)
        if reply[1] == ident:
            return reply[0], (time.perf_counter() - started) * 1000


@contextlib.contextmanager
def client_sockets() -> Iterator[dict[str, socket.socket]]:
    socks = {}
    for kind, source in SOURCES.items():
        socks[kind] = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        socks[kind].bind((source, 0))
        socks[kind].settimeout(30)
    try:
        yield socks
    finally:
        for s in socks.values():
            s.close()


def measure(server: Server, requests: int) -> dict[str, list[float]]:
    cases = [(kind, right) for kind in ("store", "ldap") for right in (True, False)] + [("none", True)]
    names = {case: f"{case[0]}: {'password + code' if case[1] else 'wrong password'}" for case in cases}
    names["none", True] = "none: the code alone"
    times: dict[str, list[float]] = {name: [] for name in names.values()}
    shuffle = random.Random(4513).shuffle
    with client_sockets() as socks:
        for i in range(requests + 5):  # the first rounds warm up (connections, caches) and are not counted
            shuffle(cases)
            for kind, right in cases:
                user, password = server.entry(kind, right)
                code, ms = ask(socks[kind], server.port, user, password, i % 256)
                if code != (ACCESS_ACCEPT if right else ACCESS_REJECT):
                    sys.exit(f"{names[kind, right]}: unexpected reply code {code}")
                if i >= 5:
                    times[names[kind, right]].append(ms)
    return times


def faults(folder: Path, directory: Directory, logins: int) -> dict[str, tuple[float, float]]:
    """fault -> (seconds to the first answer, median seconds of the next logins); each login must be answered with
    an Accept (failover) or, both URLs bad, a Reject."""
    out = {}
    with closed_port() as closed, silent_server() as silent, unanswered_port() as unanswered:
        scenarios = {"first URL closed": ([closed, directory.url], ACCESS_ACCEPT),
                     "first URL silent": ([silent, directory.url], ACCESS_ACCEPT),
                     "both URLs down (unanswered, silent)": ([unanswered, silent], ACCESS_REJECT)}
        for number, (name, (urls, expected)) in enumerate(scenarios.items()):
            sub = folder / f"fault{number}"
            sub.mkdir()
            server = Server(sub, directory, urls)
            server.provision() if expected == ACCESS_ACCEPT else _provision_without_directory(server)
            server.start()
            try:
                seconds = []
                with client_sockets() as socks:
                    for i in range(logins):
                        code, ms = ask(socks["ldap"], server.port, *server.entry("ldap", True), i)
                        if code != expected:
                            sys.exit(f"{name}: unexpected reply code {code}")
                        seconds.append(ms / 1000)
                out[name] = (seconds[0], statistics.median(seconds[1:]))
            finally:
                server.stop()
    return out


def _provision_without_directory(server: Server) -> None:
    """The store of a server whose directory is down: dave's row and token come from the working directory."""
    from otpcore.admin import Admin, TokenSpec
    from otpcore.config import load_config

    config = load_config(server.folder / "otp.toml")
    with Admin(config) as admin:
        admin.init()
        admin.store.add_user(USERS["ldap"], email=None, phone=None, password_hash=None, now=time.time(),
                             directory=True)
        admin.add_token(USERS["ldap"], TokenSpec(type="hotp", secret=HOTP_SECRET), now=time.time())


@contextlib.contextmanager
def closed_port() -> Iterator[str]:
    with socket.socket() as held:  # bound, never listening: connections are refused
        held.bind(("127.0.0.1", 0))
        yield f"ldaps://127.0.0.1:{held.getsockname()[1]}"


@contextlib.contextmanager
def silent_server() -> Iterator[str]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            if select.select([listener], [], [], 0.05)[0]:
                accepted.append(listener.accept()[0])  # held open, never answered

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"ldaps://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        for s in [listener, *accepted]:
            s.close()


@contextlib.contextmanager
def unanswered_port() -> Iterator[str]:
    """A backlog-0 listener filled by our own connection: further SYNs are dropped, connect() never completes."""
    with socket.socket() as listener, socket.socket() as filler:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        filler.connect(listener.getsockname())
        yield f"ldaps://127.0.0.1:{listener.getsockname()[1]}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="requests per case (default 200)")
    parser.add_argument("--fault-logins", type=int, default=4, help="logins per fault scenario (default 4)")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="otp-ldap-bench-") as tmp, running_slapd({"dave": PASSWORDS["ldap"]}) as d:
        folder = Path(tmp)
        (folder / "main").mkdir()
        server = Server(folder / "main", d)
        server.provision()
        server.start()
        try:
            times = measure(server, args.requests)
        finally:
            server.stop()
        fault_times = faults(folder, d, max(2, args.fault_logins))
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"otp-radiusd, workers = 1, {args.requests} requests per case, one at a time; nproc {os.cpu_count()}")
    for name, median in medians.items():
        print(f"  {name:30} median {median:8.3f} ms")
    print("directory faults (timeout = 2 s per URL, 2 URLs):")
    for name, (first, rest) in fault_times.items():
        print(f"  {name:36} first login {first:6.3f} s, next ones median {rest:6.3f} s")
    if args.json:
        args.json.write_text(json.dumps({"medians_ms": medians, "faults_s": fault_times}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
