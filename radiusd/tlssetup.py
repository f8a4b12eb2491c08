"""RadSec's set-up: the TLS context of the server side (RFC 6614 with RFC 9765's ALPN) and the listening sockets."""

from __future__ import annotations

import ssl

from otpbase.escape import escape
from otpcore.config import TlsConfig
from otpcore.errors import ConfigError

from .tlsconn import ALPN_RADIUS10, ALPN_RADIUS11

__all__ = ["describe_error", "server_context"]


def server_context(config: TlsConfig) -> ssl.SSLContext:
    """TLS 1.2 or later, a client certificate required and verified against tls_ca, ALPN radius/1.1 offered.
    ConfigError naming the key whose file cannot be used."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    context.options |= ssl.OP_NO_RENEGOTIATION | ssl.OP_NO_TICKET
    # No session resumption: a resumed TLS 1.3 session must keep the protocol it had (RFC 9765 §3.5), and RadSec
    # connections live long enough not to need it.
    context.num_tickets = 0
    try:
        context.load_cert_chain(config.cert, config.key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"radius.tls_cert, radius.tls_key: cannot load {config.cert} with {config.key}: "
                          f"{describe_error(exc)}") from None
    try:
        if config.ca.is_dir():
            context.load_verify_locations(capath=str(config.ca))
        else:
            context.load_verify_locations(cafile=str(config.ca))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"radius.tls_ca: cannot load {config.ca}: {describe_error(exc)}") from None
    context.set_alpn_protocols([ALPN_RADIUS11, ALPN_RADIUS10])  # RFC 9765 §3.3: allow RADIUS/1.1, and historic
    return context


def describe_error(exc: OSError | ssl.SSLError) -> str:
    """An OSError's or an SSLError's text for a log line (OpenSSL's reason), escaped all the same."""
    return escape(exc.strerror if exc.strerror else str(exc))
