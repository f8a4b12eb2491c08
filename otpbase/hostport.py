"""The one `host:port` parser: listen addresses of the config, `otp-radiusd --listen`, the PAM module's `server=`.

Standard library only, and not even `typing`: the PAM login in radius mode imports it.
"""

from __future__ import annotations

__all__ = ["parse_hostport"]


def parse_hostport(text: str, default_port: int) -> tuple[str, int]:
    """'10.0.0.1:1812', 'host', '[::1]:1812', '[::1]' or a bare IPv6 address '::1' -> (host, port).

    Raises ValueError with a one-line reason that quotes the text (callers prefix the key or option it came from)."""
    text = text.strip()
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"expected [ipv6]:port, got {text!r}")
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:  # a name, an IPv4 address or a bare IPv6 address: no port
        host, port_text = text, ""
    if not host:
        raise ValueError(f"missing host in {text!r}")
    if not port_text:
        return host, default_port
    if not port_text.isascii() or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"bad port in {text!r}")
    return host, int(port_text)
