"""privacyIDEA as the reference for otp-web's validate API: installed from PyPI into a virtual environment of its own
under a temporary folder, on SQLite, served by gunicorn with 2 workers, with the same TOTP tokens as otp-web
(created through its Python API, in its own process), its /validate/check measured with the same load tool.

The versions are pinned: a benchmark compares two known programs.
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["PIP_SPEC", "PrivacyIdea"]

PIP_SPEC = ["privacyidea==3.14", "gunicorn==27.0.1"]
_PROVISIONERS = 2

_PROVISION = r'''
import sys
from privacyidea.app import create_app
app = create_app("production", sys.argv[1], silent=True)
with app.app_context():
    # The provisioning's own connection skips the fsync of each commit (init_token commits every token): set-up
    # time only; the server measured later runs with SQLite's defaults.
    from sqlalchemy import event
    from privacyidea.models import db
    with db.engine.connect() as c:
        c.exec_driver_sql("PRAGMA journal_mode=WAL")
    @event.listens_for(db.engine, "connect")
    def _fast(dbapi_connection, record):
        dbapi_connection.execute("PRAGMA synchronous=OFF")
    db.engine.dispose()
    from privacyidea.lib.resolver import save_resolver
    from privacyidea.lib.realm import set_realm, set_default_realm
    from privacyidea.lib.token import init_token
    from privacyidea.lib.user import User
    if sys.argv[4] == "realm":
        from sqlalchemy import create_engine, text
        users = create_engine("sqlite:///" + sys.argv[2])
        with users.begin() as c:
            c.execute(text("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)"))
            c.execute(text("INSERT INTO users (name) VALUES (:name)"),
                      [{"name": line.split()[0]} for line in open(sys.argv[3])])
        save_resolver({"resolver": "bench", "type": "sqlresolver", "Driver": "sqlite", "Database": sys.argv[2],
                       "Table": "users", "Map": '{"userid": "id", "username": "name"}', "Editable": False})
        set_realm("bench", [{"name": "bench"}])
        set_default_realm("bench")
        sys.exit(0)
    for line in open(sys.argv[3]):
        name, secret_hex = line.split()
        init_token({"type": "totp", "otpkey": secret_hex, "genkey": 0, "otplen": 6, "timeStep": 30,
                    "hashlib": "sha1"}, user=User(name, "bench"))
'''


class PrivacyIdea:
    def __init__(self, folder: Path, port: int) -> None:
        self.folder = folder
        self.port = port
        self.venv = folder / "venv"
        self.config = folder / "pi.cfg"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def install(self) -> str:
        """pip install into the venv; returns the version installed. Raises CalledProcessError with pip's output."""
        subprocess.run([sys.executable, "-m", "venv", str(self.venv)], check=True)
        subprocess.run([str(self.python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *PIP_SPEC],
                       check=True, capture_output=True, text=True)
        out = subprocess.run([str(self.python), "-c", "import importlib.metadata as m; print(m.version('privacyidea'))"
                              ], check=True, capture_output=True, text=True)
        return out.stdout.strip()

    def setup(self, users: Sequence[tuple[str, bytes]]) -> float:
        """Config, keys, tables, an SQL resolver with the users, one TOTP token each. Returns the seconds the
        tokens took to create."""
        f = self.folder
        self.config.write_text(textwrap.dedent(f"""\
            SQLALCHEMY_DATABASE_URI = 'sqlite:///{f}/pi.sqlite'
            SECRET_KEY = '{os.urandom(16).hex()}'
            PI_PEPPER = '{os.urandom(16).hex()}'
            PI_ENCFILE = '{f}/enckey'
            PI_AUDIT_KEY_PRIVATE = '{f}/private.pem'
            PI_AUDIT_KEY_PUBLIC = '{f}/public.pem'
            PI_LOGFILE = '{f}/privacyidea.log'
            PI_LOGLEVEL = 30
            """))
        env = self._env()
        manage = str(self.venv / "bin" / "pi-manage")
        for step in ("create_enckey", "create_audit_keys", "create_tables"):
            subprocess.run([manage, "setup", step], env=env, check=True, capture_output=True)
        # The users: an SQL resolver on a table of their own, made with privacyIDEA's SQLAlchemy (an indexed look-up
        # per request; a passwd-file resolver reads the whole file at every request).
        names = f / "names.txt"
        names.write_text("".join(f"{name}\n" for name, _ in users))
        command = [str(self.python), "-c", _PROVISION, str(self.config), str(f / "users.sqlite")]
        subprocess.run([*command, str(names), "realm"], env=env, check=True, capture_output=True)
        started = time.monotonic()
        # init_token costs tens of milliseconds (a dozen commits through the ORM): two processes share the work
        children = []
        for part in range(_PROVISIONERS):
            secrets = f / f"secrets{part}.txt"
            secrets.write_text("".join(f"{name} {secret.hex()}\n" for name, secret in users[part::_PROVISIONERS]))
            children.append(subprocess.Popen([*command, str(secrets), "tokens"], env=env, stdout=subprocess.DEVNULL,
                                             stderr=subprocess.PIPE))
        for child in children:
            _, err = child.communicate()
            if child.returncode:
                raise RuntimeError(f"privacyIDEA token provisioning failed: {err.decode()[-2000:]}")
        return time.monotonic() - started

    def start(self) -> None:
        wsgi = self.folder / "pi_wsgi.py"
        wsgi.write_text(f"from privacyidea.app import create_app\n"
                        f"application = create_app('production', {str(self.config)!r}, silent=True)\n")
        log = open(self.folder / "gunicorn.log", "ab")  # noqa: SIM115 - the child keeps it
        self.proc = subprocess.Popen([str(self.venv / "bin" / "gunicorn"), "--workers", "2", "--bind",
                                      f"127.0.0.1:{self.port}", "--chdir", str(self.folder), "pi_wsgi:application"],
                                     env=self._env(), stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/")
                conn.getresponse().read()  # any answer (the UI's redirect) will do
                conn.close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    log = (self.folder / "gunicorn.log").read_text()[-2000:]
                    raise RuntimeError(f"gunicorn exited: {log}") from None
                time.sleep(0.5)
        raise RuntimeError("privacyIDEA did not answer within 120 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def pids(self) -> list[int]:
        return [self.proc.pid] if self.proc is not None else []

    def _env(self) -> dict[str, str]:
        return {**os.environ, "PRIVACYIDEA_CONFIGFILE": str(self.config)}
