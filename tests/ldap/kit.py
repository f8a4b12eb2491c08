"""Helpers of the LDAP first-factor tests (fixtures are in conftest.py): an installation whose [ldap] table points at
a private slapd of tests.kit, and what slapd's log says a check cost."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from otpcore.admin import Admin, TokenSpec
from otpcore.config import Config, load_config
from otpcore.decision import Decision
from otpcore.service import Verifier
from tests.kit.slapd import Slapd

SEED = bytes(range(20))
TIMEOUT = 1  # seconds per URL in these tests' [ldap] tables
SLACK = 1.5  # scheduling allowance on a loaded 2-core machine; a missing bound would wait far longer


def ldap_table(directory: Slapd, folder: Path, *, urls: Sequence[str] | None = None, **overrides: Any) -> str:
    """[ldap] for `directory` (ldaps://, its CA, its service account), with `overrides` (None removes a key)."""
    password_file = folder / "ldap.password"
    password_file.write_text(directory.layout.service_password + "\n")
    values: dict[str, Any] = {
        "urls": list(urls) if urls is not None else [directory.ldaps_url],
        "ca_file": str(directory.ca_file),
        "bind_dn": directory.layout.service_dn,
        "bind_password_file": str(password_file),
        "base_dn": directory.layout.base_dn,
        "user_filter": directory.layout.user_filter,
        "timeout": TIMEOUT,
        **overrides,
    }
    return "[ldap]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items() if v is not None)


@dataclass
class Site:
    """otp.toml, store and key in a folder; `verifier()` as a door makes one (and keeps it open, as a worker does)."""

    folder: Path
    config: Config
    verifiers: list[Verifier] = field(default_factory=list)

    @classmethod
    def make(cls, folder: Path, ldap: str, extra: str = "", **policy: Any) -> Site:
        policy = {"max_failures": 3, "lockout_seconds": 0, **policy}
        path = folder / "otp.toml"
        path.write_text('[store]\npath = "otp.sqlite"\nkey_file = "otp.key"\n\n[policy]\n'
                        + "".join(f"{k} = {json.dumps(v)}\n" for k, v in policy.items()) + "\n" + ldap + "\n" + extra)
        site = cls(folder, load_config(path))
        with Admin(site.config) as admin:
            admin.init()
        return site

    @property
    def config_path(self) -> Path:
        assert self.config.path is not None
        return self.config.path

    def add_token(self, user: str, type: str = "totp", **spec: Any) -> int:
        if type == "totp":
            spec.setdefault("secret", SEED)
        with Admin(self.config) as admin:
            return admin.add_token(user, TokenSpec(type=type, **spec), now=time.time()).id

    def verifier(self) -> Verifier:
        if not self.verifiers:
            self.verifiers.append(Verifier.open(self.config))
        return self.verifiers[0]

    def login(self, user: str, password: str | bytes, *, now: float | None = None) -> Decision:
        entry = password.encode() if isinstance(password, str) else password
        return self.verifier().login(user, entry, first_factor="ldap", door="radius", client="vpn",
                                     now=time.time() if now is None else now)

    def close(self) -> None:
        for v in self.verifiers:
            v.close()
        self.verifiers.clear()


class SlapdLog:
    """slapd's stats log from a point on: the connections opened, binds and searches it answered since."""

    def __init__(self, directory: Slapd) -> None:
        self.path = directory.log_file
        self.start = self.path.stat().st_size

    def since(self) -> str:
        time.sleep(0.05)  # slapd writes its log lines just after it answers: let them land
        with self.path.open("rb") as fh:
            fh.seek(self.start)
            return fh.read().decode(errors="replace")

    def count(self) -> dict[str, int]:
        text = self.since()
        patterns = {"connections": r" ACCEPT from ", "binds": r" BIND dn=.* method=", "searches": r" SRCH base=",
                    "starttls": r" STARTTLS"}
        return {name: len(re.findall(pattern, text)) for name, pattern in patterns.items()}

    def binds_as(self, dn: str) -> int:
        return len(re.findall(r' BIND dn="' + re.escape(dn) + '" method=', self.since(), re.IGNORECASE))
