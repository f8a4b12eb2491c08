"""Starting on a PostgreSQL store: a bad URL, an unreachable database, a wrong or unreadable password, a missing
driver are each one clear line and exit 1 (no password in it), for otp-radiusd with several workers as with one, and
for otp-admin; `url` with `path` is a configuration error (exit 2); `otp-admin init` creates the schema once and is
idempotent; nothing of PostgreSQL is imported for a SQLite store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from otpcore.config import StoreConfig, load_config, redact_url
from otpcore.errors import ConfigError
from otpcore.seal import create_key_file
from tests.kit.ports import free_tcp_port, free_udp_port
from tests.kit.postgres import Database
from tests.kit.tools import tool

from .kit import otp_admin


def _config(folder: Path, url: str, password: str | None, *, workers: int = 1, extra: str = "") -> Path:
    lines = ["[store]", f'url = "{url}"', f'key_file = "{folder / "otp.key"}"']
    if password is not None:
        (folder / "db.password").write_text(password + "\n")
        lines.append(f'password_file = "{folder / "db.password"}"')
    lines += [extra, "", "[radius]", f'listen = ["127.0.0.1:{free_udp_port()}"]',
              f'accounting_listen = ["127.0.0.1:{free_udp_port()}"]', f"workers = {workers}"]
    path = folder / "otp.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _radiusd(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("otp-radiusd"), "--config", str(config)], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("workers", [1, 2])
def test_start_up_faults_are_one_line_and_exit_1(tmp_path: Path, pg_database: Database, workers: int) -> None:
    good = pg_database.url
    cases = [
        (f"{good}?nonsense=1", pg_database.password, "store.url is not a valid PostgreSQL URL: invalid URI query "
                                                     'parameter: "nonsense"'),
        (f"postgresql://otp@127.0.0.1:{free_tcp_port()}/otp", pg_database.password, "Connection refused"),
        (good, "not-the-password", 'password authentication failed for user "otp"'),
        (good.replace("/test_", "/nothere_"), pg_database.password, 'database "nothere_'),
    ]
    for url, password, message in cases:
        folder = tmp_path / f"case{len(list(tmp_path.iterdir()))}"
        folder.mkdir()
        create_key_file(folder / "otp.key")
        config = _config(folder, url, password, workers=workers)
        for run in (lambda c=config: _radiusd(c), lambda c=config: otp_admin(c, "user", "list")):
            out = run()
            assert out.returncode == 1, out.stderr
            lines = out.stderr.strip().splitlines()
            assert len(lines) == 1 and message in lines[0], out.stderr
            assert pg_database.password not in out.stderr and "not-the-password" not in out.stderr


def test_password_file_missing_and_url_with_path(tmp_path: Path, pg_database: Database) -> None:
    create_key_file(tmp_path / "otp.key")
    config = _config(tmp_path, pg_database.url, None, extra=f'password_file = "{tmp_path / "none"}"')
    out = _radiusd(config)
    assert out.returncode == 1 and out.stderr.strip() == (f"otp-radiusd: cannot read store.password_file "
                                                          f"{tmp_path / 'none'}: No such file or directory")
    both = _config(tmp_path, pg_database.url, pg_database.password, extra='path = "otp.sqlite"')
    out = _radiusd(both)
    assert out.returncode == 2 and "store.url: give either path (SQLite) or url (PostgreSQL), not both" in out.stderr
    with pytest.raises(ConfigError, match="must be a PostgreSQL URL"):
        load_config(_config(tmp_path, "mysql://otp@db/otp", None))
    no_url = tmp_path / "no-url.toml"
    no_url.write_text('[store]\npassword_file = "x"\n')
    with pytest.raises(ConfigError, match="only for a PostgreSQL store"):
        load_config(no_url)


def test_init_creates_the_schema_once(tmp_path: Path, pg_database: Database) -> None:
    config = _config(tmp_path, pg_database.url, pg_database.password)
    first = otp_admin(config, "init")
    assert first.returncode == 0 and first.stdout.splitlines() == [f"created key file {tmp_path / 'otp.key'}",
                                                                     f"created store {pg_database.url}"]
    again = otp_admin(config, "init")
    assert again.returncode == 0 and again.stdout.strip() == "store and key already present; schema up to date"
    (tmp_path / "otp.key").rename(tmp_path / "away.key")
    lost = otp_admin(config, "init")  # a new key would not open what the old one sealed
    assert lost.returncode == 1 and "restore its key" in lost.stderr and not (tmp_path / "otp.key").exists()


def test_the_password_never_shows(tmp_path: Path) -> None:
    assert redact_url("postgresql://otp:s3cret@db1,db2/otp?sslmode=require") == \
        "postgresql://otp:***@db1,db2/otp?sslmode=require"
    assert redact_url("postgresql://otp@db/otp?password=s3cret&x=1") == "postgresql://otp@db/otp?password=***&x=1"
    assert StoreConfig(url="postgresql://otp:s3cret@db/otp").where == "postgresql://otp:***@db/otp"


PROBE = """
import sys
sys.modules["psycopg"] = None  # as if the [postgres] extra were not installed
from radiusd.main import main
sys.exit(main(["--config", sys.argv[1]]))
"""


def test_without_the_driver_one_line_says_what_to_install(tmp_path: Path, pg_database: Database) -> None:
    create_key_file(tmp_path / "otp.key")
    config = _config(tmp_path, pg_database.url, pg_database.password)
    out = subprocess.run([sys.executable, "-c", PROBE, str(config)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert out.stderr.strip() == ("otp-radiusd: the PostgreSQL store needs psycopg, which is not installed: "
                                  "pip install otp-server[postgres]")


def test_a_sqlite_store_never_imports_the_driver(tmp_path: Path) -> None:
    (tmp_path / "otp.toml").write_text(f'[store]\npath = "{tmp_path / "otp.sqlite"}"\n'
                                       f'key_file = "{tmp_path / "otp.key"}"\n')
    assert otp_admin(tmp_path / "otp.toml", "init").returncode == 0
    probe = ("import sys, time; from otpcore.config import load_config; from otpcore.service import Verifier; "
             f"v = Verifier.open(load_config({str(tmp_path / 'otp.toml')!r})); "
             "v.verify_code('nobody', '123456', door='pam', client='x', now=time.time()); "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('psycopg', 'psycopg_pool') "
             "or m.startswith('otpcore.store.postgres')))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"
