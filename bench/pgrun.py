"""The PostgreSQL accept path, in the same run as the SQLite one: a private PostgreSQL server (bench/pgcluster.py,
PostgreSQL's default durability: every COMMIT waits for its WAL on disk), a store in it provisioned with the same
accept users through `otp-admin import`, otp-radiusd with the same workers (group commit kept), and the same load
(--users distinct users a run): closed loop, then open loop at half its own throughput. Also what the database's
processes spent per request, and the run's checks (every code accepted, replays refused, one audit row per answer).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from bench import loadgen
from bench.otpserver import OTP_SOURCE, BenchUser, OtpBench, UserPool, totp_code
from bench.pgcluster import PrivatePostgres
from bench.series import Report, Series, check, measure
from otpcore.config import load_config
from otpcore.store import open_store

__all__ = ["postgres_scenarios"]


def postgres_scenarios(workdir: Path, args: argparse.Namespace, users: Sequence[BenchUser], out: Report
                       ) -> dict[str, Series]:
    workers = args.workers
    accept = Series(f"accept, PostgreSQL (workers={workers})")
    with PrivatePostgres() as pg:
        bench = OtpBench(workdir / "postgresql", log_level=args.log_level, database=(pg.url, pg.password))
        bench.init()
        t_import = bench.import_csv(users, "pg")
        out.line(f"import: otp-admin import --format csv into PostgreSQL {pg.version}, {len(users)} users: "
                 f"{t_import:.2f} s")
        pool = UserPool(users)
        answered = replays = 0
        with bench.server(workers=workers) as srv:
            print(f"otp-radiusd workers={workers} on PostgreSQL {pg.url} (pids {srv.worker_pids()})", flush=True)
            for rep in range(args.reps):
                picked, step = pool.take(min(len(users), args.users))
                reqs = loadgen.build_requests(((u.name, totp_code(u, step).encode()) for u in picked), bench.secret)
                r = measure(accept, lambda reqs=reqs: loadgen.run(reqs, srv.address, window=args.window,
                                                                  source=OTP_SOURCE), None, srv, pg.cpu_seconds)
                check(r.accepts == len(reqs), f"{accept.name} run {rep + 1}: {r.accepts}/{len(reqs)} accepted")
                answered += r.answered
                if rep == 0:  # replays of the first run's codes, all refused
                    again = loadgen.build_requests(((u.name, totp_code(u, step).encode()) for u in picked[:1000]),
                                                   bench.secret)
                    r = loadgen.run(again, srv.address, window=args.window, source=OTP_SOURCE)
                    check(r.rejects == len(again), f"PostgreSQL replays refused: {r.rejects}/{len(again)}")
                    replays = r.answered
            rate = accept.rate / 2
            half = Series(f"accept at {rate:.0f} req/s, PostgreSQL (w={workers})")
            for rep in range(args.reps):
                picked, step = pool.take(min(args.users, max(1000, int(rate * 5))))
                reqs = loadgen.build_requests(((u.name, totp_code(u, step).encode()) for u in picked), bench.secret)
                r = measure(half, lambda reqs=reqs: loadgen.run(reqs, srv.address, rate=rate, source=OTP_SOURCE),
                            None, srv, pg.cpu_seconds)
                check(r.accepts == len(reqs), f"{half.name} run {rep + 1}: {r.accepts}/{len(reqs)} accepted")
                answered += r.answered
        store = open_store(load_config(bench.config_path).store)
        try:
            rows = sum(1 for row in store.audit_rows() if row.door == "radius")
        finally:
            store.close()
        check(rows == answered + replays, f"PostgreSQL audit rows: {rows} for {answered + replays} answered requests")
    return {accept.name: accept, half.name: half}
