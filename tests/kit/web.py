"""A real otp-web for the tests: an installation of its own in a folder (config with [web] and [[web.apps]], store and
key initialised, users and tokens provisioned through the Admin library), the process on a free loopback port, and
calls to its API with a real HTTP client (http.client)."""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Self

from otpcore.admin import Admin, NewToken, TokenSpec, UserSpec
from otpcore.config import Config, load_config

from .config import config_text, toml_value
from .ports import free_tcp_port
from .radiusd import TEST_POLICY
from .tools import tool

__all__ = ["API_KEY", "App", "WebServer", "web_table"]

API_KEY = "test-api-key-0123456789"
READY = "ready: listening"


@dataclass(frozen=True)
class App:
    """One [[web.apps]] entry."""

    name: str = "intranet"
    key: str = API_KEY
    first_factor: str = "store"

    def toml(self) -> str:
        return (f"[[web.apps]]\nname = {toml_value(self.name)}\nkey = {toml_value(self.key)}\n"
                f"first_factor = {toml_value(self.first_factor)}\n")


def web_table(port: int, apps: Sequence[App] = (App(),), web: Mapping[str, object] | None = None) -> str:
    """[web] listening on 127.0.0.1:`port` (its public_url there) with these [[web.apps]]."""
    table = {"listen": f"127.0.0.1:{port}", "public_url": f"http://127.0.0.1:{port}", **(web or {})}
    return "[web]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in table.items()) + "".join(a.toml() for a in apps)


class WebServer:
    """otp-web on a config of its own in `folder` (or on `config_path`, written by somebody else, with its [web]
    listening on `port`)."""

    def __init__(self, folder: Path, *, apps: Sequence[App] = (App(),), web: Mapping[str, object] | None = None,
                 policy: Mapping[str, object] | None = None, extra: str = "", config_path: Path | None = None,
                 port: int | None = None) -> None:
        self.folder = folder
        self.port = port or free_tcp_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = folder / "otp-web.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        if config_path is not None:
            self.config_path = config_path
            return
        self.config_path = folder / "otp.toml"
        self.config_path.write_text(config_text(policy={**TEST_POLICY, **(policy or {})},
                                                extra=web_table(self.port, apps, web) + extra))
        with Admin(self.config) as admin:
            admin.init()

    @property
    def config(self) -> Config:
        return load_config(self.config_path)

    # -- the process --------------------------------------------------------------------------------------------------

    def start(self, *args: str) -> Self:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed by stop()
        self.proc = subprocess.Popen([tool("otp-web"), "--config", str(self.config_path), *args],
                                     stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log)
        deadline = time.monotonic() + 20
        while READY not in self.log():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                raise AssertionError(f"otp-web did not start:\n{self.log()[-3000:]}")
            time.sleep(0.05)
        return self

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(15)
        finally:
            self.proc = None
            if self._log is not None:
                self._log.close()
                self._log = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # -- provisioning -------------------------------------------------------------------------------------------------

    def add_user(self, name: str = "alice", password: bytes | None = b"s3cret-pass", **contact: str) -> None:
        with Admin(self.config) as admin:
            admin.add_user(UserSpec(name, password=password, **contact), now=time.time())

    def add_token(self, user: str = "alice", **spec: Any) -> NewToken:
        with Admin(self.config) as admin:
            return admin.add_token(user, TokenSpec(**spec), now=time.time())

    def audit(self, user: str | None = None) -> list[tuple[str, str, str]]:
        """(door, result, reason) of the user's audit rows, oldest first."""
        with Admin(self.config) as admin:
            return [(r.door, r.result, r.reason) for r in admin.store.audit_rows(user=user)]

    def tokens(self, user: str = "alice") -> list[Any]:
        with Admin(self.config) as admin:
            return [t for t, _ in admin.tokens(user)]

    def user(self, name: str = "alice") -> Any:
        with Admin(self.config) as admin:
            return admin.user(name)

    # -- the API ------------------------------------------------------------------------------------------------------

    def request(self, method: str, path: str, body: bytes | None = None, headers: Mapping[str, str] | None = None
                ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=dict(headers or {}))
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            conn.close()

    def api(self, path: str, payload: object, *, key: str | None = API_KEY) -> tuple[int, dict[str, Any]]:
        """POST /api/v1/validate/PATH with a JSON body: (status, the JSON answer)."""
        headers = {"Content-Type": "application/json"}
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        status, _, data = self.request("POST", f"/api/v1/validate/{path}", body, headers)
        return status, json.loads(data)
