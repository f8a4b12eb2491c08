"""Timing: does the time an answer takes tell which part of a login was wrong?

    .venv/bin/python bench/timing.py [--requests 200] [--json FILE]

Starts otp-radiusd (workers = 1) on a throw-away store and sends, one at a time, Access-Requests of each case below,
interleaved (one of each in turn, in a shuffled order, so that the machine's noise falls on all alike), and prints
each case's median time
from send to reply. Every refusal of a password login makes one first-factor check (argon2id), whatever was wrong, so
the medians of the first group should be within 15 % of their largest; the second group (first_factor "none": the
code alone) likewise among themselves. The reply codes are checked too: every case is refused, and the same way.

Cases (password + code, client `pw`, first_factor "store"): an unknown user; a user with a 6-digit token, wrong
password + a right code, right password + a wrong code, a wrong password alone; the same for a user with an 8-digit
token; a locked user with the right password and code. Code alone (client `otp`, first_factor "none"): an unknown user
and a known one, each with a wrong code.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout: `bench` by name

from bench import loadgen
from bench.freeradius import free_udp_port
from otpbase.radius import ACCESS_REJECT

VENV_BIN = Path(sys.executable).parent
SECRET = b"timing-secret"
TARGET = 0.15  # every median within 15 % of the largest of its group

Case = Callable[[float], tuple[str, bytes]]  # now -> (user, User-Password)


def _totp(secret: bytes, now: float, digits: int = 6) -> str:
    from otpcore import oath

    return oath.totp(secret, now, digits)


def _wrong(secret: bytes, now: float, digits: int = 6) -> str:
    right = int(_totp(secret, now, digits))
    return str((right + 1) % 10**digits).zfill(digits)


def provision(folder: Path, port: int) -> dict[str, bytes]:
    """A config with the two clients, users six (6 digits), eight (8 digits) and locked; returns their secrets."""
    from otpcore.admin import Admin, TokenSpec, UserSpec
    from otpcore.config import load_config
    from otpcore.policy import FailureState

    (folder / "otp.toml").write_text(f"""\
[store]
path = "otp.sqlite"
key_file = "otp.key"

[radius]
listen = ["127.0.0.1:{port}"]
accounting_listen = ["127.0.0.1:{free_udp_port()}"]

[[radius.clients]]
name = "pw"
address = "127.0.0.2"
secret = "{SECRET.decode()}"
first_factor = "store"

[[radius.clients]]
name = "otp"
address = "127.0.0.1"
secret = "{SECRET.decode()}"
first_factor = "none"

[policy]
max_failures = 1000000000   # the cases repeat: nobody may get locked on the way
lockout_seconds = 0
client_max_failures = 1000000000  # nor throttled (but counted, as by default)
""")
    config = load_config(folder / "otp.toml")
    secrets = {name: os.urandom(20) for name in ("six", "eight", "locked")}
    with Admin(config) as admin:
        admin.init()
        for name, secret in secrets.items():
            admin.add_user(UserSpec(name, password=f"{name}-password".encode()), now=time.time())
            admin.add_token(name, TokenSpec(type="totp", secret=secret, digits=8 if name == "eight" else 6),
                            now=time.time())
        locked = admin.store.require_user("locked")
        admin.store.set_failure_state(locked.id, FailureState(1, None, time.time(), 1))
    return secrets


def cases(secrets: dict[str, bytes]) -> dict[str, tuple[str, Case]]:
    """name -> (source address of the client, request maker)."""
    six, eight, locked = secrets["six"], secrets["eight"], secrets["locked"]
    return {
        "unknown user": ("127.0.0.2", lambda t: ("nobody", b"some-password" + _wrong(six, t).encode())),
        "6 digits, wrong password + code": ("127.0.0.2", lambda t: ("six", b"wrong" + _totp(six, t).encode())),
        "6 digits, password + wrong code": ("127.0.0.2", lambda t: ("six", b"six-password" + _wrong(six, t).encode())),
        "6 digits, wrong password alone": ("127.0.0.2", lambda t: ("six", b"wrong-password")),
        "8 digits, wrong password + code": ("127.0.0.2", lambda t: ("eight", b"wrong" + _totp(eight, t, 8).encode())),
        "8 digits, password + wrong code": ("127.0.0.2",
                                            lambda t: ("eight", b"eight-password" + _wrong(eight, t, 8).encode())),
        "locked user, password + code": ("127.0.0.2",
                                         lambda t: ("locked", b"locked-password" + _totp(locked, t).encode())),
        "none: unknown user, a code": ("127.0.0.1", lambda t: ("nobody", _wrong(six, t).encode())),
        "none: known user, wrong code": ("127.0.0.1", lambda t: ("six", _wrong(six, t).encode())),
    }


def ask(sock: socket.socket, server: tuple[str, int], user: str, password: bytes, ident: int) -> tuple[int, float]:
    request = loadgen.access_request(ident, user, password, SECRET)
    started = time.perf_counter()
    sock.sendto(request, server)
    while True:
        reply = sock.recv(4096)
        if reply[1] == ident:
            return reply[0], (time.perf_counter() - started) * 1000


def measure(server: tuple[str, int], plan: dict[str, tuple[str, Case]], requests: int) -> dict[str, list[float]]:
    socks = {}
    for source in {source for source, _ in plan.values()}:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((source, 0))
        sock.settimeout(10)
        socks[source] = sock
    times: dict[str, list[float]] = {name: [] for name in plan}
    codes: dict[str, set[int]] = {name: set() for name in plan}
    order = list(plan)
    shuffle = random.Random(4226).shuffle
    for i in range(requests + 5):  # the first rounds warm the caches up and are not counted
        shuffle(order)  # no case always follows the same one (a slow argon2 check, say)
        for name in order:
            source, make = plan[name]
            user, password = make(time.time())
            code, ms = ask(socks[source], server, user, password, i % 256)
            codes[name].add(code)
            if i >= 5:
                times[name].append(ms)
    for sock in socks.values():
        sock.close()
    bad = {name: sorted(c) for name, c in codes.items() if c != {ACCESS_REJECT}}
    if bad:
        sys.exit(f"a case was not refused as expected: {bad}")
    return times


def report(times: dict[str, list[float]]) -> tuple[list[str], bool]:
    medians = {name: statistics.median(values) for name, values in times.items()}
    lines, ok = [], True
    for group in ([n for n in medians if not n.startswith("none:")], [n for n in medians if n.startswith("none:")]):
        largest = max(medians[n] for n in group)
        for name in group:
            off = (largest - medians[name]) / largest
            ok = ok and off <= TARGET
            lines.append(f"  {name:36} median {medians[name]:8.3f} ms  {-off * 100:+6.1f} % of the largest"
                         f"{'' if off <= TARGET else '  > 15 %'}")
        lines.append("")
    return lines, ok


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="requests per case (default 200)")
    parser.add_argument("--json", type=Path, help="also write the medians as JSON here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="otp-timing-") as tmp:
        folder = Path(tmp)
        port = free_udp_port()
        secrets = provision(folder, port)
        with open(folder / "radiusd.log", "wb") as log:
            proc = subprocess.Popen([str(VENV_BIN / "otp-radiusd"), "--config", str(folder / "otp.toml"),
                                     "--log-level", "warning"], stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 30
            while not loadgen.status_server(("127.0.0.1", port), SECRET):
                if proc.poll() is not None or time.monotonic() > deadline:
                    sys.exit("otp-radiusd did not start:\n" + (folder / "radiusd.log").read_text())
            times = measure(("127.0.0.1", port), cases(secrets), args.requests)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(15)
    lines, ok = report(times)
    print(f"otp-radiusd, workers = 1, {args.requests} requests per case, one at a time; nproc {os.cpu_count()}")
    print("\n".join(lines))
    print("timing: every median within 15 % of its group's largest" if ok else "timing: FAIL")
    if args.json:
        args.json.write_text(json.dumps({name: statistics.median(v) for name, v in times.items()}, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
