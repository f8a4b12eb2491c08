"""The TOML config of a test installation: its store and key, where otp-radiusd listens, its RADIUS clients, its
policy, and any further tables (delivery, ...) as text."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Client", "config_text", "toml_value"]

SECRET_TEXT = "testing123"


@dataclass
class Client:
    """One [[radius.clients]] entry."""

    name: str
    address: str
    secret: str | None = SECRET_TEXT  # None: a RadSec-only client (secret "radsec")
    first_factor: str = "store"
    require_message_authenticator: bool = True
    tls_subject: str | None = None

    def toml(self) -> list[str]:
        lines = ["[[radius.clients]]", f"name = {toml_value(self.name)}", f"address = {toml_value(self.address)}"]
        if self.secret is not None:
            lines.append(f"secret = {toml_value(self.secret)}")
        if self.tls_subject is not None:
            lines.append(f"tls_subject = {toml_value(self.tls_subject)}")
        return [*lines, f"first_factor = {toml_value(self.first_factor)}",
                f"require_message_authenticator = {toml_value(self.require_message_authenticator)}", ""]


def toml_value(value: object) -> str:
    """A string, boolean, number or list of strings, as TOML writes it (strings: no quote or backslash in them)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return f'"{value}"'


def config_text(*, folder: Path | None = None, listen: Sequence[str] = (), accounting_listen: Sequence[str] = (),
                workers: int | None = None, clients: Sequence[Client] = (), policy: Mapping[str, object] | None = None,
                extra: str = "", radius: Mapping[str, object] | None = None) -> str:
    """The store and key in `folder` (absolute paths), or beside the config file (relative ones) by default;
    `radius`: further keys of [radius] (tls_listen, ...)."""
    base = "" if folder is None else f"{folder}/"
    lines = ["[store]", f'path = "{base}otp.sqlite"', f'key_file = "{base}otp.key"', ""]
    table = [f"listen = {toml_value(list(listen))}"] if listen else []
    if workers is not None:
        table.append(f"workers = {workers}")
    if accounting_listen:
        table.append(f"accounting_listen = {toml_value(list(accounting_listen))}")
    table += [f"{key} = {toml_value(value)}" for key, value in (radius or {}).items()]
    if table:
        lines += ["[radius]", *table, ""]
    for client in clients:
        lines += client.toml()
    lines.append("[policy]")
    lines += [f"{key} = {toml_value(value)}" for key, value in (policy or {}).items()]
    return "\n".join(lines) + "\n" + (f"\n{extra}\n" if extra else "")
