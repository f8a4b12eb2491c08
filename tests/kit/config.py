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
    secret: str = SECRET_TEXT
    first_factor: str = "store"
    require_message_authenticator: bool = True

    def toml(self) -> list[str]:
        return ["[[radius.clients]]", f"name = {toml_value(self.name)}", f"address = {toml_value(self.address)}",
                f"secret = {toml_value(self.secret)}", f"first_factor = {toml_value(self.first_factor)}",
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
                extra: str = "") -> str:
    """The store and key in `folder` (absolute paths), or beside the config file (relative ones) by default."""
    base = "" if folder is None else f"{folder}/"
    lines = ["[store]", f'path = "{base}otp.sqlite"', f'key_file = "{base}otp.key"', ""]
    radius = [f"listen = {toml_value(list(listen))}"] if listen else []
    if workers is not None:
        radius.append(f"workers = {workers}")
    if accounting_listen:
        radius.append(f"accounting_listen = {toml_value(list(accounting_listen))}")
    if radius:
        lines += ["[radius]", *radius, ""]
    for client in clients:
        lines += client.toml()
    lines.append("[policy]")
    lines += [f"{key} = {toml_value(value)}" for key, value in (policy or {}).items()]
    return "\n".join(lines) + "\n" + (f"\n{extra}\n" if extra else "")
