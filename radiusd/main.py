"""`otp-radiusd [--config PATH] [--demo]`: the RADIUS server, in the foreground.

Logs to stderr (one line per decision), stops cleanly on SIGTERM/SIGINT, reloads clients and policy on SIGHUP, logs
its counters on SIGUSR1. With `workers = N` a supervisor process forks N workers sharing the port (SO_REUSEPORT).
Exit status: 0 after a clean stop, 1 when it cannot start (store, key, address in use), 2 on a configuration error.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from otpbase.version import VersionAction
from otpcore.config import Config, load_config, parse_address
from otpcore.errors import ConfigError, OtpError

from . import logsink
from .server import VerifierFactory, Worker, bind_sockets, format_address
from .supervisor import Supervisor

__all__ = ["main"]

log = logging.getLogger("otp.radiusd")



class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    _setup_logging(args.log_level)
    demo = None
    try:
        listen = tuple(parse_address(text, 1812, "--listen") for text in args.listen or ())
        if args.demo:
            from .demo import prepare  # only the demo needs otpcore.admin and segno

            demo = prepare(args.state_dir)
            path: Path | None = demo.config_path
        else:
            path = Path(args.config) if args.config else None
        loader = _loader(path, listen)
        config = loader()
        if config.radius.tls is not None:
            from .tlssetup import server_context

            server_context(config.radius.tls)  # a certificate that cannot be used is one line here
        if config.radius.workers > 1:
            # Open the store once here, so a missing store or key is one line, not one per worker.
            _verifier_factory()(config).close()
    except ConfigError as exc:
        print(f"otp-radiusd: {exc}", file=sys.stderr)
        return 2
    except (OtpError, OSError) as exc:
        print(f"otp-radiusd: {exc}", file=sys.stderr)
        return 1

    bound = _bind(config)
    if isinstance(bound, int):
        return bound
    sockets, acct_sockets, tls_sockets = bound
    if demo is not None:  # announced only now that the port is ours: a demo that cannot start says only why
        from .demo import banner

        print(banner(demo, config.radius.listen[0]), flush=True)
    if config.radius.workers == 1:
        return _run_worker(config, sockets[0], loader, "", acct_sockets[0], tls_sockets[0])
    return Supervisor([sockets, acct_sockets, tls_sockets], loader,
                      lambda socks, label, acct, tls: _run_worker(config, socks, loader, label, acct, tls)).run()


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = _Parser(prog="otp-radiusd", description="RADIUS server for one-time passwords (TOTP/HOTP).")
    parser.add_argument("--config", metavar="PATH", help="TOML configuration (default: $OTP_CONFIG, "
                        "else /etc/otp/otp.toml)")
    parser.add_argument("--demo", action="store_true", help="run the embedded demo: a store in --state-dir, user "
                        "demo/demo with a TOTP token, client 127.0.0.1 with secret testing123, on 127.0.0.1:1812")
    parser.add_argument("--state-dir", metavar="DIR", type=Path, default=Path("state"),
                        help="where --demo keeps its configuration, store and key (default: ./state)")
    parser.add_argument("--listen", metavar="HOST:PORT", action="append",
                        help="listen here instead of radius.listen (repeatable; [::1]:1812 for IPv6); "
                        "accounting then listens on the port above, unless radius.accounting_listen is set")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                        help="info logs one line per decision (default); warning logs only problems")
    parser.add_argument("--version", action=VersionAction)
    args = parser.parse_args(argv)
    if args.demo and args.config:
        parser.error("--demo and --config exclude each other")
    return args


_Sets = list[list[socket.socket]]  # a list of sockets per worker


def _bind(config: Config) -> tuple[_Sets, _Sets, _Sets] | int:
    """The sockets of every worker (RADIUS, accounting, RadSec), or the exit status after one line on stderr."""
    workers = config.radius.workers
    try:
        sockets = bind_sockets(config.radius.listen, workers)
    except OSError as exc:
        print(f"otp-radiusd: radius.listen: {exc.strerror}", file=sys.stderr)
        return 1
    try:
        acct_sockets = bind_sockets(config.radius.accounting_listen, workers)
    except OSError as exc:
        if not _default_accounting(config):
            _close(sockets)
            print(f"otp-radiusd: radius.accounting_listen: {exc.strerror}", file=sys.stderr)
            return 1
        # Not configured, and the default port is taken (another RADIUS server on this host?): run without it,
        # and say so once ready (_run_worker).
        acct_sockets = [[] for _ in range(workers)]
    tls_sockets: _Sets = [[] for _ in range(workers)]
    if config.radius.tls is not None:
        try:
            tls_sockets = bind_sockets(config.radius.tls.listen, workers, socket.SOCK_STREAM)
        except OSError as exc:
            _close(sockets + acct_sockets)
            print(f"otp-radiusd: radius.tls_listen: {exc.strerror}", file=sys.stderr)
            return 1
    return sockets, acct_sockets, tls_sockets


def _close(sets: _Sets) -> None:
    for sock in (s for socks in sets for s in socks):
        sock.close()


def _setup_logging(level: str) -> None:
    logsink.install(getattr(logging, level.upper()), journal=bool(os.environ.get("JOURNAL_STREAM")))


def _loader(path: Path | None, listen: tuple[tuple[str, int], ...]) -> Callable[[], Config]:
    def load() -> Config:
        config = load_config(path)
        if listen:
            radius = config.radius
            acct = radius.accounting_listen
            if acct == tuple((host, 1813) for host, _ in radius.listen):  # the default, not set in the file
                acct = tuple((host, _port_above(port)) for host, port in listen)
            config = dataclasses.replace(config, radius=dataclasses.replace(radius, listen=listen,
                                                                            accounting_listen=acct))
        return config
    return load


def _default_accounting(config: Config) -> bool:
    """accounting_listen is not in the file: the listen hosts on 1813 (or, with --listen, on the port above)."""
    listen = config.radius.listen
    return config.radius.accounting_listen in (tuple((host, 1813) for host, _ in listen),
                                               tuple((host, _port_above(port)) for host, port in listen))


def _port_above(port: int) -> int:
    return port + 1 if port < 65535 else port - 1


def _verifier_factory() -> VerifierFactory:
    from .storeguard import GuardedVerifier  # reopens the store after a store error or when it was deleted

    return GuardedVerifier


def _run_worker(config: Config, sockets: list[socket.socket], loader: Callable[[], Config], label: str,
                acct_sockets: Sequence[socket.socket] = (), tls_sockets: Sequence[socket.socket] = ()) -> int:
    worker = Worker(config, sockets, verifier_factory=_verifier_factory(), config_loader=loader, label=label,
                    accounting_sockets=acct_sockets, tls_sockets=tls_sockets)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    signal.signal(signal.SIGINT, lambda *_: worker.stop())
    signal.signal(signal.SIGHUP, lambda *_: worker.request_reload())
    signal.signal(signal.SIGUSR1, lambda *_: worker.request_stats())
    try:
        worker.start()
    except OtpError as exc:
        print(f"otp-radiusd: {exc}", file=sys.stderr)
        return 1
    where = ", ".join(format_address(s.getsockname()) for s in sockets)
    if acct_sockets:
        where += " (accounting " + ", ".join(format_address(s.getsockname()) for s in acct_sockets) + ")"
    else:
        log.warning("accounting is off: cannot listen on %s (set radius.accounting_listen)%s",
                    ", ".join(format_address(a) for a in config.radius.accounting_listen), label)
    if tls_sockets:
        where += " (RadSec " + ", ".join(format_address(s.getsockname()) for s in tls_sockets) + ")"
    count = len(config.radius.clients)
    log.info("ready: listening on %s with %d %s%s", where, count, "client" if count == 1 else "clients", label)
    if not config.radius.clients:
        log.warning("no [[radius.clients]] configured: every request is dropped%s", label)
    worker.serve()
    for sock in [*sockets, *acct_sockets, *tls_sockets]:
        sock.close()
    log.info("stopped%s", label)
    return 0
