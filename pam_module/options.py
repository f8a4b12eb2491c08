"""The module arguments from the PAM line (`key=value` and flags; PAM itself strips the [brackets])."""

from __future__ import annotations

from collections.abc import Sequence

from otpbase.hostport import parse_hostport

__all__ = ["DEFAULT_CONFIG", "DEFAULT_PROMPT", "FORWARD_PROMPT", "OptionError", "Options", "parse_options",
           "parse_server"]

DEFAULT_CONFIG = "/etc/otp/otp.toml"  # never $OTP_CONFIG: sudo and su keep their caller's environment
DEFAULT_PROMPT = "One-time password: "
FORWARD_PROMPT = "Password and one-time password: "
FLAGS = ("use_first_pass", "try_first_pass", "forward_pass", "nullok", "debug")
KEYS = ("mode", "config", "server", "secret_file", "timeout", "retries", "nas_identifier", "prompt", "digits",
        "first_factor", "pythonpath")


class OptionError(ValueError):
    """A module argument with a bad value: the PAM line is wrong (PAM_SERVICE_ERR)."""


class Options:
    """Parsed module arguments. Unknown ones are kept in `unknown` (logged, then ignored, as PAM modules do)."""

    __slots__ = ("config", "debug", "digits", "first_factor", "forward_pass", "mode", "nas_identifier", "nullok",
                 "prompt", "pythonpath", "retries", "secret_file", "servers", "timeout", "try_first_pass",
                 "unknown", "use_first_pass")

    def __init__(self) -> None:
        self.mode = "local"
        self.config = DEFAULT_CONFIG  # local mode
        self.servers: list[tuple[str, int]] = []
        self.secret_file: str | None = None
        self.timeout = 3.0
        self.retries = 1
        self.nas_identifier: str | None = None  # None = the PAM service name, as pam_radius_auth does
        self.prompt: str | None = None  # None = DEFAULT_PROMPT, or FORWARD_PROMPT when password and code come together
        self.digits = 6  # forward_pass: how many trailing characters are the code
        self.first_factor = "none"  # local: "store" / "ldap" check password+code (the store's password / the directory)
        self.pythonpath: list[str] = []
        self.use_first_pass = False
        self.try_first_pass = False
        self.forward_pass = False
        self.nullok = False
        self.debug = False
        self.unknown: list[str] = []

    @property
    def combined(self) -> bool:
        """True when the user types password and code in one answer."""
        return self.forward_pass or self.first_factor != "none"

    def prompt_text(self) -> str:
        if self.prompt is not None:
            return self.prompt
        return FORWARD_PROMPT if self.combined else DEFAULT_PROMPT


def parse_server(text: str) -> tuple[str, int]:
    """A `server=` value: 'host', 'host:port', '[v6]', '[v6]:port' or a bare IPv6 address (default port 1812)."""
    try:
        return parse_hostport(text, 1812)
    except ValueError as exc:
        raise OptionError(f"server: {exc}") from None


def parse_options(args: Sequence[str]) -> Options:
    """Arguments after the module path. Raises OptionError on a bad value or an incomplete radius setup."""
    o = Options()
    for arg in args:
        key, sep, value = arg.partition("=")
        if not sep:
            if key in FLAGS:
                setattr(o, key, True)
            else:
                o.unknown.append(arg)
            continue
        if key not in KEYS:
            o.unknown.append(arg)
        elif key == "mode":
            if value not in ("local", "radius"):
                raise OptionError(f"mode: must be local or radius, got {value!r}")
            o.mode = value
        elif key == "server":
            o.servers.extend(parse_server(v) for v in value.split(",") if v.strip())
        elif key == "timeout":
            o.timeout = _float(key, value, 0.01, 300.0)
        elif key == "retries":
            o.retries = _int(key, value, 0, 10)
        elif key == "digits":
            o.digits = _int(key, value, 4, 10)
        elif key == "first_factor":
            if value not in ("none", "store", "ldap"):
                raise OptionError(f"first_factor: must be none, store or ldap, got {value!r}")
            o.first_factor = value
        elif key == "pythonpath":
            o.pythonpath.extend(p for p in value.split(":") if p)
        elif key == "prompt":
            o.prompt = value
        else:  # config, secret_file, nas_identifier
            if not value:
                raise OptionError(f"{key}: empty value")
            setattr(o, key, value)
    if o.mode == "radius":
        if not o.servers:
            raise OptionError("mode=radius needs at least one server=host[:port]")
        if not o.secret_file:
            raise OptionError("mode=radius needs secret_file=PATH")
        if o.first_factor != "none":
            raise OptionError(f"first_factor={o.first_factor} is for mode=local (in radius mode the server's client "
                              "decides)")
    return o


def _float(key: str, text: str, low: float, high: float) -> float:
    try:
        value = float(text)
    except ValueError:
        raise OptionError(f"{key}: not a number: {text!r}") from None
    if not low <= value <= high:  # also refuses nan
        raise OptionError(f"{key}: must be between {low:g} and {high:g}")
    return value


def _int(key: str, text: str, low: int, high: int) -> int:
    if not text.isdigit():
        raise OptionError(f"{key}: not a whole number: {text!r}")
    value = int(text)
    if not low <= value <= high:
        raise OptionError(f"{key}: must be between {low} and {high}")
    return value
