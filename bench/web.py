"""Benchmark: otp-web's validate API against privacyIDEA's /validate/check, with wrk, in the same run.

    .venv/bin/python bench/web.py [--users 20000] [--runs 3] [--duration 10] [--connections 64] [--json FILE]

Both servers hold the same users with the same TOTP secrets (SHA1, 6 digits, 30 s): otp-web a throw-away store
provisioned with `otp-admin import --format csv`, an application with first_factor = "none" (the code alone);
privacyIDEA (bench/privacyidea.py) installed from PyPI into a venv of its own, SQLite, gunicorn with 2 workers, one
TOTP token per user of an SQL resolver (its users in an SQLite table), created through its Python API. wrk (Debian's)
posts JSON bodies {"user", "pass"} read from a file by a Lua script (bench/wrk_bodies.lua): each user's codes of the
current step and the next one, in that order, so that every request of a run that starts as a step begins is a fresh
valid code (a user's code is accepted once: past the list, requests are replays; the step before is left out, as a
token whose drift moved to +1 in the run before would refuse it). Each run
measures otp-web, then privacyIDEA, inside one 30 s step; runs are 3 steps apart, so no run replays a code of the one
before. Each figure is the median of the runs; the script counts the accepts in the answers and checks that every
request was answered.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.privacyidea import PIP_SPEC, PrivacyIdea

VENV_BIN = Path(sys.executable).parent
LUA = Path(__file__).with_name("wrk_bodies.lua")
API_KEY = "bench-api-key-0123456789"
STEP = 30


@dataclass
class Run:
    requests: int
    seconds: float
    accepted: int
    other: int  # answered, not an accept (replays once the list wrapped, rejects)
    errors: int  # wrk's socket errors and timeouts, and non-2xx answers
    p50_ms: float
    p99_ms: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


@dataclass
class Series:
    name: str
    runs: list[Run] = field(default_factory=list)

    def median(self, attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in self.runs)


def totp(secret: bytes, step: int) -> str:
    digest = hmac.new(secret, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 15
    return f"{(struct.unpack('>I', digest[offset:offset + 4])[0] & 0x7FFFFFFF) % 1_000_000:06d}"


def write_bodies(path: Path, users: Sequence[tuple[str, bytes]], step: int) -> None:
    with path.open("w") as fh:
        for s in (step, step + 1):
            for name, secret in users:
                fh.write(json.dumps({"user": name, "pass": totp(secret, s)}) + "\n")


def wrk(url: str, bodies: Path, marker: str, args: argparse.Namespace, headers: Sequence[str]) -> Run:
    command = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s", "--timeout", "30s",
               "-s", str(LUA), url, "--", str(bodies), str(args.threads), marker, *headers]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    values = dict(line.split(" ", 1) for line in out.splitlines() if line.startswith("BENCH_"))
    return Run(requests=int(values["BENCH_REQUESTS"]), seconds=float(values["BENCH_SECONDS"]),
               accepted=int(values["BENCH_ACCEPTED"]), other=int(values["BENCH_OTHER"]),
               errors=int(values["BENCH_ERRORS"]), p50_ms=float(values["BENCH_P50_US"]) / 1000,
               p99_ms=float(values["BENCH_P99_US"]) / 1000)


def wait_for_step_start(margin: float = 0.5) -> int:
    """Sleep until a TOTP step has just begun; returns that step."""
    now = time.time()
    wait = STEP - now % STEP + margin
    time.sleep(wait)
    return int(time.time() // STEP)


class OtpWeb:
    def __init__(self, folder: Path, port: int) -> None:
        self.folder = folder
        self.port = port
        self.config = folder / "otp.toml"
        self.proc: subprocess.Popen[bytes] | None = None

    def provision(self, users: Sequence[tuple[str, bytes]]) -> float:
        import base64

        self.config.write_text(f'[store]\npath = "{self.folder}/otp.sqlite"\nkey_file = "{self.folder}/otp.key"\n\n'
                               f'[web]\nlisten = "127.0.0.1:{self.port}"\n\n[[web.apps]]\nname = "bench"\n'
                               f'key = "{API_KEY}"\nfirst_factor = "none"\n\n'
                               # a run whose list of codes wraps sends replays: rejects, not a reason to throttle
                               "[policy]\nclient_max_failures = 0\n")
        csv = self.folder / "users.csv"
        csv.write_text("user,type,secret\n" + "".join(f"{n},totp,{base64.b32encode(s).decode()}\n" for n, s in users))
        admin = [str(VENV_BIN / "otp-admin"), "--config", str(self.config)]
        subprocess.run([*admin, "init"], check=True, capture_output=True)
        started = time.monotonic()
        subprocess.run([*admin, "import", "--format", "csv", str(csv)], check=True, capture_output=True)
        return time.monotonic() - started

    def start(self) -> None:
        log = open(self.folder / "otp-web.log", "ab")  # noqa: SIM115 - the child keeps it
        self.proc = subprocess.Popen([str(VENV_BIN / "otp-web"), "--config", str(self.config)], stdout=log,
                                     stderr=log, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while b"ready: listening" not in (self.folder / "otp-web.log").read_bytes():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("otp-web did not start: " + (self.folder / "otp-web.log").read_text()[-2000:])
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(30)
            self.proc = None


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=20_000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--duration", type=int, default=8, help="seconds of load per server and run (at most 12)")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", type=Path, help="write the figures here too")
    p.add_argument("--no-privacyidea", action="store_true", help="measure otp-web alone")
    args = p.parse_args(argv)
    if not 1 <= args.duration <= 12:
        p.error("--duration: 1 to 12 seconds (both servers are measured inside one 30 s step)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    folder = Path(tempfile.mkdtemp(prefix="otp-bench-web-"))
    users = [(f"user{i:05d}", os.urandom(20)) for i in range(args.users)]
    web = OtpWeb(folder / "otp-web", _free_port())
    web.folder.mkdir()
    print(f"nproc {len(os.sched_getaffinity(0))}; {args.users} users; wrk -t{args.threads} -c{args.connections} "
          f"-d{args.duration}s; work folder {folder}", flush=True)
    print(f"otp-web: otp-admin import of {args.users} TOTP users: {web.provision(users):.1f} s", flush=True)
    pi: PrivacyIdea | None = None
    if not args.no_privacyidea:
        pi = PrivacyIdea(folder / "privacyidea", _free_port())
        pi.folder.mkdir()
        try:
            version = pi.install()
        except subprocess.CalledProcessError as exc:
            print(f"privacyIDEA: pip install {' '.join(PIP_SPEC)} failed:\n{exc.stderr}", flush=True)
            pi = None
        else:
            print(f"privacyIDEA {version}: {args.users} tokens through its Python API: {pi.setup(users):.1f} s",
                  flush=True)
    return _measure(args, folder, users, web, pi)


def _measure(args: argparse.Namespace, folder: Path, users: Sequence[tuple[str, bytes]], web: OtpWeb,
             pi: PrivacyIdea | None) -> int:
    ours, theirs = Series("otp-web /api/v1/validate/check"), Series("privacyIDEA /validate/check")
    web.start()
    if pi is not None:
        pi.start()
    try:
        last = -10
        for number in range(args.runs):
            step = wait_for_step_start()
            while step < last + 3:  # a run never replays the codes of the one before
                step = wait_for_step_start()
            last = step
            bodies = folder / f"bodies-{number}.txt"
            write_bodies(bodies, users, step)
            ours.runs.append(wrk(f"http://127.0.0.1:{web.port}/api/v1/validate/check", bodies, '"result":"accept"',
                                 args, ["Content-Type: application/json", f"Authorization: Bearer {API_KEY}"]))
            if pi is not None:
                theirs.runs.append(wrk(f"http://127.0.0.1:{pi.port}/validate/check", bodies, '"value": true', args,
                                       ["Content-Type: application/json"]))
            print(f"run {number + 1}: " + "; ".join(f"{s.name} {s.runs[-1].rate:.0f} req/s" for s in (ours, theirs)
                                                   if s.runs), flush=True)
    finally:
        web.stop()
        if pi is not None:
            pi.stop()
    return _report(args, ours, theirs)


def _report(args: argparse.Namespace, ours: Series, theirs: Series) -> int:
    print(f"\n{'server':34} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'accepted':>9} {'other':>7} {'errors':>7}  runs")
    for s in (ours, theirs):
        if s.runs:
            print(f"{s.name:34} {s.median('rate'):8.0f} {s.median('p50_ms'):8.2f} {s.median('p99_ms'):8.2f} "
                  f"{sum(r.accepted for r in s.runs):9d} {sum(r.other for r in s.runs):7d} "
                  f"{sum(r.errors for r in s.runs):7d}  " + " ".join(f"{r.rate:.0f}" for r in s.runs))
    ratio = ours.median("rate") / theirs.median("rate") if theirs.runs else None
    if ratio is not None:
        print(f"\notp-web / privacyIDEA: {ratio:.0f}x (goal >= 100x)")
    if args.json:
        args.json.write_text(json.dumps({"nproc": len(os.sched_getaffinity(0)), "users": args.users, "ratio": ratio,
                                         "series": {s.name: [asdict(r) for r in s.runs] for s in (ours, theirs)}},
                                        indent=2))
    failed = [s.name for s in (ours, theirs) for r in s.runs if r.errors or not r.accepted]
    if failed:
        print(f"checks failed (errors, or no accept at all): {', '.join(sorted(set(failed)))}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
