"""The benchmark, in one run: FreeRADIUS (reference) and otp-radiusd side by side on loopback.

    .venv/bin/python bench/run.py            # the full run (a few minutes); --help for the knobs

Measures, with the same load generator and window:
- FreeRADIUS 3 (PAP against a users file of the same users): the reference, installed with apt-get if missing;
- otp-radiusd, OTP-only client (first_factor "none"), TOTP accept path: 20 000 distinct users, one valid code each
  (every request is a real accept: replay-protection write and audit row);
- otp-radiusd, wrong-code path: 20 000 distinct users, one wrong code each (full verification, failure counting);
- otp-radiusd, password + code (first_factor "store", argon2id);
- the accept path at a fixed rate of half its throughput (p50/p99);
- the same with workers = 1 (scaling), the RSS of each worker with 100 000 users in the store, and the time
  `otp-admin import --format csv` takes for 20 000 users;
- the accept path on a PostgreSQL store (a private server: bench/pgrun.py), closed loop and at half its rate, with
  the database's CPU per request, and its ratio to the SQLite accept path (--no-postgres leaves it out).
Each figure is the median of --reps runs, interleaved with the reference so that both see the same machine noise;
ratios are to FreeRADIUS's median in this run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout: `bench` by name

from bench import freeradius, loadgen
from bench.otpserver import (
    OTP_SOURCE,
    PW_SOURCE,
    BenchUser,
    OtpBench,
    Server,
    UserPool,
    totp_code,
    wrong_code,
)
from bench.pgrun import postgres_scenarios
from bench.series import CHECK_LINES, FAILED, Report, Series, check, measure
from otpcore.config import load_config
from otpcore.store import open_store

FR_PASSWORD = "fr-pass-{}"


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    scaling = [int(w) for w in args.scaling.split(",") if w.strip()]

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="otp-bench-"))
    out = Report()
    out.line(f"machine: {os.cpu_count()} cores (nproc {_nproc()}), {platform.python_implementation()} "
             f"{platform.python_version()}, {_freeradius_version()}; window {args.window}, "
             f"otp-radiusd --log-level {args.log_level}"
             + (f"; work dir {workdir}" if args.workdir else ""))
    figures: dict[str, object] = {"nproc": _nproc(), "window": args.window, "workers": args.workers,
                                  "log_level": args.log_level}

    # -- users and provisioning ------------------------------------------------------------------------------------
    users = [BenchUser(f"user{i:06d}", os.urandom(20)) for i in range(args.store_users)]
    pw_users = [BenchUser(f"pwuser{i:05d}", os.urandom(20), f"Pw-{i}-{os.urandom(4).hex()}".encode())
                for i in range(args.pw_users)]
    wrong_users = users[args.users:2 * args.users]  # these only ever get wrong codes
    pool = UserPool(users[:args.users] + users[2 * args.users:])  # accept runs draw from here, once per TOTP step

    bench = _provision(workdir, args, users, pw_users, out, figures)
    argon2 = _argon2_cost()
    out.line(f"argon2id: {argon2['parameters']}: {argon2['verify_ms']:.1f} ms per verification here (one core)")
    figures["argon2"] = argon2

    # -- the reference ---------------------------------------------------------------------------------------------
    fr_users = [(u.name, FR_PASSWORD.format(i)) for i, u in enumerate(users[:args.users])]
    fr = Series("FreeRADIUS")
    series: dict[str, Series] = {}
    with freeradius.FreeRadius(fr_users, secret=bench.secret, client=OTP_SOURCE) as fr_server:
        fr_requests = loadgen.build_requests(
            ((fr_users[i % len(fr_users)][0], fr_users[i % len(fr_users)][1].encode())
             for i in range(args.fr_requests)), bench.secret)

        def run_fr() -> None:
            measure(fr, lambda: loadgen.run(fr_requests, fr_server.address, window=args.window,
                                             source=OTP_SOURCE), fr_server.proc.pid, None)

        for workers in [args.workers, *scaling]:
            series.update(_otp_scenarios(bench, workers, args, pool, wrong_users, pw_users, run_fr,
                                         main_run=workers == args.workers))
    if args.postgres:
        # twice the users of a run, as the SQLite pool has more: fewer waits for the next TOTP step
        pg_users = users[:args.users] + users[2 * args.users:3 * args.users]
        series.update(postgres_scenarios(workdir, args, pg_users, out))
    # -- report ----------------------------------------------------------------------------------------------------
    _report(out, fr, series, args.workers, figures)
    for line in _RSS_LINES:
        out.line(line)
    figures["rss"] = _RSS
    for line in CHECK_LINES:
        out.line(line)
    figures["checks"] = CHECK_LINES
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if not FAILED else 1


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=20_000, help="distinct users per accept / wrong-code run")
    p.add_argument("--store-users", type=int, default=100_000, help="users in the store (for the RSS figure)")
    p.add_argument("--pw-users", type=int, default=384, help="users with a password (argon2id) for password+code")
    p.add_argument("--reps", type=int, default=3, help="runs of each scenario (medians are reported)")
    p.add_argument("--window", type=int, default=64, help="requests in flight (the same for every server)")
    p.add_argument("--fr-requests", type=int, default=100_000, help="requests per FreeRADIUS run")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--scaling", default="1", help="other worker counts to measure, comma-separated ('' for none)")
    p.add_argument("--log-level", default="info", help="otp-radiusd --log-level (info: a line per decision)")
    p.add_argument("--workdir", type=Path, help="keep the store and logs here (default: a temporary directory)")
    p.add_argument("--json", type=Path, help="also write the figures to this file")
    p.add_argument("--quick", action="store_true", help="a tiny configuration that checks the tooling works")
    p.add_argument("--no-postgres", dest="postgres", action="store_false",
                   help="leave out the PostgreSQL accept path (a private PostgreSQL server, bench/pgrun.py)")
    args = p.parse_args(argv)
    if args.quick:
        args.users, args.store_users, args.pw_users, args.reps, args.fr_requests = 200, 800, 4, 1, 2000
        args.scaling = ""
    if args.store_users < args.users * 2:
        p.error("--store-users must be at least twice --users (accept pool and wrong-code users)")
    return args


def _provision(workdir: Path, args: argparse.Namespace, users: list[BenchUser], pw_users: list[BenchUser],
               out: Report, figures: dict[str, object]) -> OtpBench:
    """The SQLite installation, its users imported with otp-admin (timed)."""
    bench = OtpBench(workdir, log_level=args.log_level)
    bench.init()
    t_import = bench.import_csv(users[:args.users], "first")
    out.line(f"import: otp-admin import --format csv, {args.users} users: {t_import:.2f} s")
    t_pw = bench.import_with_passwords(pw_users, "passwords")
    out.line(f"import: otp-admin import --format oath-usersfile, {args.pw_users} users with a password (argon2id "
             f"hash each): {t_pw:.2f} s")
    t_rest = bench.import_csv(users[args.users:], "rest") if args.store_users > args.users else 0.0
    out.line(f"import: otp-admin import --format csv, {args.store_users - args.users} more users: {t_rest:.2f} s "
             f"(store: {args.store_users} users, {args.store_users + args.pw_users} tokens)")
    figures["import_seconds"] = {"csv_first": round(t_import, 3), "csv_first_users": args.users,
                                 "passwords": round(t_pw, 3), "password_users": args.pw_users,
                                 "csv_rest": round(t_rest, 3)}
    return bench


def _report(out: Report, fr: Series, series: dict[str, Series], workers: int, figures: dict[str, object]) -> None:
    """The table of every scenario, and the ratios and latencies the targets are about."""
    out.line("")
    out.line(f"{'scenario':44} {'req/s':>8} {'ratio':>6} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} "
             f"{'server':>7} {'loadgen':>7} {'db':>5}  runs (req/s)")
    out.line(f"{'':44} {'median':>8} {'':6} {'':7} {'':7} {'':7} {'us/req':>7} {'us/req':>7} {'us/r':>5}")
    for s in [fr, *series.values()]:
        ratio = s.rate / fr.rate if fr.rate else 0.0
        cpu = f"{statistics.median(s.server_cpu) * 1e6:7.0f}" if s.server_cpu else f"{'':7}"
        gen = f"{statistics.median(s.gen_cpu) * 1e6:7.1f}" if s.gen_cpu else f"{'':7}"
        db = f"{statistics.median(s.db_cpu) * 1e6:5.0f}" if s.db_cpu else f"{'':5}"
        out.line(f"{s.name:44} {s.rate:8.0f} {ratio:6.3f} {s.median('p50') * 1e3:7.2f} {s.median('p99') * 1e3:7.2f} "
                 f"{max(r.max for r in s.results) * 1e3:7.2f} {cpu} {gen} {db}  "
                 + " ".join(f"{r.rate:.0f}" for r in s.results))
    out.line("(server, loadgen, db: CPU time per answered request, user + system, of the server's processes, of the "
             "load generator and of the PostgreSQL server's processes)")
    figures["freeradius"] = fr.to_json()
    figures["scenarios"] = {name: s.to_json() for name, s in series.items()}
    accept = series.get(f"accept (workers={workers})")
    if accept is not None and fr.rate:
        paired = [a.rate / f.rate for a, f in zip(accept.results, fr.results, strict=False)]
        figures["accept_ratio"] = round(accept.rate / fr.rate, 4)
        out.line(f"\naccept path / FreeRADIUS: {accept.rate / fr.rate:.3f} (ratio of medians); per run: "
                 + " ".join(f"{x:.3f}" for x in paired) + " (target >= 0.35)")
    pg_accept = series.get(f"accept, PostgreSQL (workers={workers})")
    if accept is not None and pg_accept is not None:
        figures["postgresql_ratio"] = round(pg_accept.rate / accept.rate, 4)
        out.line(f"PostgreSQL accept path / SQLite accept path: {pg_accept.rate / accept.rate:.3f} (ratio of medians; "
                 f"goal >= 0.5); p50 {pg_accept.median('p50') * 1e3:.2f} ms, p99 {pg_accept.median('p99') * 1e3:.2f} "
                 f"ms; database CPU {statistics.median(pg_accept.db_cpu) * 1e6:.0f} us per request")
    for half in _HALF:
        figures["half_rate_p99_ms"] = round(half.median("p99") * 1e3, 3)
        out.line(f"p99 at half rate: {half.median('p99') * 1e3:.2f} ms (median of runs); per run: "
                 + " ".join(f"{r.p99 * 1e3:.2f}" for r in half.results) + " ms (target <= 5 ms); late sends per run: "
                 + " ".join(str(r.late_sends) for r in half.results))


_RSS: dict[str, object] = {}
_HALF: list[Series] = []  # the half-rate series of the main run
_RSS_LINES: list[str] = []


def _otp_scenarios(bench: OtpBench, workers: int, args: argparse.Namespace, pool: UserPool,
                   wrong_users: list[BenchUser], pw_users: list[BenchUser], run_fr: Callable[[], None],
                   *, main_run: bool) -> dict[str, Series]:
    accept = Series(f"accept (workers={workers})")
    wrong = Series(f"wrong code (workers={workers})")
    pw = Series(f"password+code, argon2id (workers={workers})")
    out = {accept.name: accept, wrong.name: wrong}
    if main_run:
        out[pw.name] = pw
    pw_pool = UserPool(pw_users)
    accepted: list[tuple[str, str]] = []  # (user, code) of accepted requests, for the replay check
    with bench.server(workers=workers) as srv:
        print(f"otp-radiusd workers={workers} on {srv.address[0]}:{srv.address[1]} (pids {srv.worker_pids()})",
              flush=True)
        for rep in range(args.reps):
            if main_run:
                run_fr()
            users, step = pool.take(args.users)
            _run_accept(accept, bench, srv, args, users, step, rep)
            if rep == 0:
                accepted = [(u.name, totp_code(u, step)) for u in users[: min(1000, len(users))]]
            _run_wrong(wrong, bench, srv, args, wrong_users, rep * 7 + workers, rep)
            if main_run:
                _run_passwords(pw, bench, srv, args, pw_pool, max(1, len(pw_users) // args.reps), rep)
        if main_run:
            out.update(_half_rate(accept, bench, srv, args, pool, workers))
            _check_replays_and_rss(bench, srv, args, accepted)
    _check_audit(bench, out, len(accepted) if main_run else 0)
    return out


def _run_accept(s: Series, bench: OtpBench, srv: Server, args: argparse.Namespace, users: list[BenchUser],
                step: int, rep: int) -> None:
    reqs = loadgen.build_requests(((u.name, totp_code(u, step).encode()) for u in users), bench.secret)
    r = measure(s, lambda: loadgen.run(reqs, srv.address, window=args.window, source=OTP_SOURCE), None, srv)
    check(r.accepts == len(reqs), f"{s.name} run {rep + 1}: {r.accepts}/{len(reqs)} accepted")


def _run_wrong(s: Series, bench: OtpBench, srv: Server, args: argparse.Namespace, users: list[BenchUser],
               salt: int, rep: int) -> None:
    step_now = int(time.time() // 30)
    reqs = loadgen.build_requests(((u.name, wrong_code(u, step_now, salt).encode()) for u in users), bench.secret)
    r = measure(s, lambda: loadgen.run(reqs, srv.address, window=args.window, source=OTP_SOURCE), None, srv)
    check(r.rejects == len(reqs), f"{s.name} run {rep + 1}: {r.rejects}/{len(reqs)} rejected")


def _run_passwords(s: Series, bench: OtpBench, srv: Server, args: argparse.Namespace, pw_pool: UserPool, count: int,
                   rep: int) -> None:
    users, step = pw_pool.take(count)
    reqs = loadgen.build_requests(((u.name, (u.password or b"") + totp_code(u, step).encode()) for u in users),
                                  bench.secret)
    r = measure(s, lambda: loadgen.run(reqs, srv.address, window=args.window, timeout=10.0, source=PW_SOURCE),
                None, srv)
    check(r.accepts == len(reqs), f"{s.name} run {rep + 1}: {r.accepts}/{len(reqs)} accepted")


def _half_rate(accept: Series, bench: OtpBench, srv: Server, args: argparse.Namespace, pool: UserPool,
               workers: int) -> dict[str, Series]:
    """Latency at half the accept throughput, open loop; --reps runs like every other figure (one stall of the
    machine, which the generator's late sends show, would otherwise decide the p99)."""
    rate = accept.rate / 2
    half = Series(f"accept at {rate:.0f} req/s fixed (workers={workers})")
    for rep in range(args.reps):
        users, step = pool.take(min(args.users, max(1000, int(rate * 5))))
        reqs = loadgen.build_requests(((u.name, totp_code(u, step).encode()) for u in users), bench.secret)
        r = measure(half, lambda reqs=reqs: loadgen.run(reqs, srv.address, rate=rate, source=OTP_SOURCE), None, srv)
        check(r.accepts == len(reqs), f"{half.name} run {rep + 1}: {r.accepts}/{len(reqs)} accepted")
    _HALF.append(half)
    return {half.name: half}


def _check_replays_and_rss(bench: OtpBench, srv: Server, args: argparse.Namespace,
                           accepted: list[tuple[str, str]]) -> None:
    """Codes accepted in the first run, sent again in new requests, must all be refused; the workers' memory."""
    reqs = loadgen.build_requests(((name, code.encode()) for name, code in accepted), bench.secret)
    r = loadgen.run(reqs, srv.address, window=args.window, source=OTP_SOURCE)
    check(r.rejects == len(reqs), f"replays refused: {r.rejects}/{len(reqs)}")
    rss = srv.rss()
    workers_rss = {pid: v for pid, v in rss.items() if pid != srv.proc.pid} or rss
    _RSS.update({"workers_mb": [round(v / 2**20, 1) for v in workers_rss.values()],
                 "supervisor_mb": round(rss.get(srv.proc.pid, 0) / 2**20, 1)})
    _RSS_LINES.append(
        f"RSS with {args.store_users} users in the store (all of them served during this run): workers "
        + ", ".join(f"{v / 2**20:.1f} MB" for v in workers_rss.values())
        + (f"; supervisor {rss[srv.proc.pid] / 2**20:.1f} MB" if len(rss) > 1 else "")
        + " (target <= 150 MB per worker)")
    check(all(v <= 150 * 2**20 for v in workers_rss.values()), "RSS per worker <= 150 MB")


def _check_audit(bench: OtpBench, out: dict[str, Series], replays: int) -> None:
    """Every answered request left one audit row."""
    answered = sum(r.answered for s in out.values() for r in s.results)
    store = open_store(load_config(bench.config_path).store)
    try:
        rows = sum(1 for row in store.audit_rows() if row.door == "radius")
    finally:
        store.close()
    _AUDIT_SEEN.append(answered + replays)
    check(rows == sum(_AUDIT_SEEN), f"audit rows: {rows} for {sum(_AUDIT_SEEN)} answered requests")


_AUDIT_SEEN: list[int] = []


def _argon2_cost() -> dict[str, object]:
    from otpcore.passwords import ARGON2_PARAMETERS, hash_password, verify_password

    stored = hash_password(b"benchmark")
    times = []
    for _ in range(10):
        t = time.perf_counter()
        verify_password(stored, b"benchmark")
        times.append(time.perf_counter() - t)
    params = ARGON2_PARAMETERS
    text = (f"m={params['memory_cost']} KiB, t={params['time_cost']}, p={params['parallelism']}, "
            f"hash {params['hash_len']} B, salt {params['salt_len']} B")
    return {"parameters": text, "verify_ms": round(statistics.median(times) * 1e3, 2)}


def _nproc() -> int:
    return len(os.sched_getaffinity(0))


def _freeradius_version() -> str:
    try:
        proc = subprocess.run([freeradius.ensure_installed(), "-v"], capture_output=True, text=True)
        first = proc.stdout.splitlines()[0]
        return "FreeRADIUS " + first.split("Version ")[1].split(",")[0]
    except (IndexError, OSError, subprocess.SubprocessError):
        return "FreeRADIUS (version unknown)"


if __name__ == "__main__":
    sys.exit(main())
