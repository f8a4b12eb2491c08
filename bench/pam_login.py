"""Benchmark: median local-mode login time through a real PAM stack (pamtester -> pam_python.so -> pam_otp.py).

    sudo .venv/bin/python bench/pam_login.py [--logins 50] [--target-ms 100]

Builds a throw-away store (otp-admin init, one user with an HOTP token so every login has a fresh valid code), a
throw-away /etc/pam.d/otp-bench-<random> service with the line `otp-admin pam-config --mode local` prints, then
times `pamtester SERVICE USER authenticate` end to end (process start, pam_python's interpreter, imports, store,
verification). Every login must succeed. Bytecode is compiled first, as a package install does (pam_python never
writes .pyc files itself). Exit 1 when a login fails, or when the median is above --target-ms.
"""

from __future__ import annotations

import argparse
import base64
import compileall
import os
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def run(cmd, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=True, **kw)


def time_logins(service: str, user: str, codes: list[str], cpu: list[float] | None = None) -> list[float]:
    """Wall-clock ms per login; `cpu` gets the CPU ms (user + system) of each pamtester process."""
    pamtester = shutil.which("pamtester")
    if pamtester is None:
        sys.exit("pamtester is not installed (apt-get install pamtester)")
    times = []
    for code in codes:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        p = subprocess.run([pamtester, service, user, "authenticate"], input=code + "\n", capture_output=True,
                           text=True)
        times.append((time.perf_counter() - start) * 1000)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if cpu is not None:
            cpu.append((after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000)
        if p.returncode != 0:
            sys.exit(f"login failed: {p.stderr.strip()}")
    return times


def summary(name: str, times: list[float]) -> str:
    q = statistics.quantiles(times, n=10)
    return (f"{name}: median {statistics.median(times):.1f} ms  (min {min(times):.1f}, p90 {q[-1]:.1f}, "
            f"max {max(times):.1f}; {len(times)} logins)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logins", type=int, default=50)
    parser.add_argument("--target-ms", type=float, default=100.0)
    args = parser.parse_args()

    import otpcore
    import pam_module
    from pam_module.pamconfig import auth_line

    for package in (otpcore, pam_module):
        compileall.compile_dir(Path(package.__file__).parent, quiet=1)

    otp_admin = str(BIN / "otp-admin")
    oathtool = shutil.which("oathtool")
    if oathtool is None:
        sys.exit("oathtool is not installed (apt-get install oathtool)")
    service = f"otp-bench-{secrets.token_hex(4)}"
    pam_file = Path("/etc/pam.d") / service
    baseline_file = Path("/etc/pam.d") / f"{service}-permit"
    with tempfile.TemporaryDirectory(prefix="otp-bench-") as tmp:
        root = Path(tmp)
        config = root / "otp.toml"
        config.write_text(f'[store]\npath = "{root}/otp.sqlite"\nkey_file = "{root}/otp.key"\n')
        admin = [otp_admin, "--config", str(config)]
        run([*admin, "init"])
        run([*admin, "user", "add", "bench"])
        secret = base64.b32encode(secrets.token_bytes(20)).decode()
        run([*admin, "token", "add", "bench", "--type", "hotp", "--secret", secret, "--qr", "none"])
        codes = run([oathtool, "--hotp", "-b", "-c", "0", "-w", str(args.logins + 2), secret]).stdout.split()
        try:
            pam_file.write_text(auth_line("local", config=config) + "\n")
            baseline_file.write_text("auth required pam_permit.so\n")
            time_logins(service, "bench", codes[:3])  # warm the page cache; not counted
            cpu: list[float] = []
            times = time_logins(service, "bench", codes[3:3 + args.logins], cpu)
            baseline = time_logins(baseline_file.name, "bench", ["x"] * args.logins)
        finally:
            pam_file.unlink(missing_ok=True)
            baseline_file.unlink(missing_ok=True)
    print(summary("pam_otp local mode", times))
    print(f"pam_otp local mode CPU (user + system): median {statistics.median(cpu):.1f} ms per login")
    print(summary("baseline (pamtester + pam_permit)", baseline))
    print(f"load average during the run: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs "
          "(other work on the machine inflates the wall-clock figures; CPU time much less)")
    median = statistics.median(times)
    verdict = "met" if median <= args.target_ms else "MISSED"
    print(f"target {args.target_ms:.0f} ms: {verdict}")
    return 0 if median <= args.target_ms else 1


if __name__ == "__main__":
    sys.exit(main())
