"""`otp-web [--config PATH]`: the validate API and the self-service portal, in the foreground (uvicorn).

Logs to stderr (one line per decision, never a password, code or session), stops cleanly on SIGTERM/SIGINT.
Exit status: 0 after a clean stop, 1 when it cannot start (store, key, address in use), 2 on a configuration error.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import signal
import socket
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NoReturn

from otpbase.version import VersionAction
from otpcore.config import Config, load_config
from otpcore.errors import ConfigError, OtpError
from otpcore.web_config import parse_web

__all__ = ["main"]

log = logging.getLogger("otp.web")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level.upper()), stream=sys.stderr,
                        format="otp-web: %(message)s")
    try:
        config = _config(args)
        from .door import Door  # the web stack: only once the configuration is known to be good

        door = Door.open(config)
    except ConfigError as exc:
        print(f"otp-web: {exc}", file=sys.stderr)
        return 2
    except (OtpError, OSError) as exc:
        print(f"otp-web: {exc}", file=sys.stderr)
        return 1
    try:
        sock = _bind(config)
    except OSError as exc:
        print(f"otp-web: web.listen: {exc.strerror}", file=sys.stderr)
        return 1
    return _serve(config, door, sock)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = _Parser(prog="otp-web", description="Validate API and self-service portal of the OTP server.")
    parser.add_argument("--config", metavar="PATH", help="TOML configuration (default: $OTP_CONFIG, "
                        "else /etc/otp/otp.toml)")
    parser.add_argument("--listen", metavar="HOST:PORT", help="listen here instead of web.listen")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                        help="info logs one line per decision (default); warning logs only problems")
    parser.add_argument("--version", action=VersionAction)
    return parser.parse_args(argv)


def _config(args: argparse.Namespace) -> Config:
    config = load_config(args.config)
    if args.listen:  # checked as the file's key is (a non-loopback address needs TLS or a proxy)
        web = config.web
        table = {"listen": args.listen, "behind_proxy": web.behind_proxy}
        if web.tls_cert is not None and web.tls_key is not None:
            table.update(tls_cert=str(web.tls_cert), tls_key=str(web.tls_key))
        listen = parse_web(table, Path(".")).listen
        config = dataclasses.replace(config, web=dataclasses.replace(web, listen=listen))
    return config


def _bind(config: Config) -> socket.socket:
    host, port = config.web.listen
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(1024)
    except OSError:
        sock.close()
        raise
    return sock


def _serve(config: Config, door: object, sock: socket.socket) -> int:
    import uvicorn

    class _Server(uvicorn.Server):
        """SIGTERM and SIGINT stop the server, which then exits 0 (uvicorn would raise the signal again on its way
        out, and a clean stop would look like a death by signal to systemd)."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    from .app import create_app

    web = config.web
    host, port = sock.getsockname()[:2]
    count = len(web.apps)
    ready = (f"ready: listening on {'https' if web.tls else 'http'}://{f'[{host}]' if ':' in host else host}:{port} "
             f"with {count} API {'application' if count == 1 else 'applications'}")
    uv = uvicorn.Config(
        create_app(door, ready=ready),  # type: ignore[arg-type]
        loop="uvloop", http="httptools", lifespan="on", access_log=False, server_header=False, date_header=False,
        log_config=None, proxy_headers=web.behind_proxy, forwarded_allow_ips="127.0.0.1,::1",
        ssl_certfile=str(web.tls_cert) if web.tls_cert else None, ssl_keyfile=str(web.tls_key) if web.tls_key else None,
        timeout_keep_alive=30, limit_concurrency=2048)
    server = _Server(uv)
    server.run(sockets=[sock])
    log.info("stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
