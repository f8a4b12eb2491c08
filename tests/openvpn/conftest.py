"""One otp-radiusd and one OpenVPN server for the module; each test brings its own users and clients."""

from __future__ import annotations

import itertools
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.kit.tools import tool

from .helpers import OpenVpnClient, OpenVpnServer, OtpRadiusd, ensure_tun, need_plugin


@dataclass
class Vpn:
    dir: Path
    radiusd: OtpRadiusd
    server: OpenVpnServer
    clients: list[OpenVpnClient] = field(default_factory=list)
    _labels: itertools.count[int] = field(default_factory=itertools.count)

    def client(self, user: str, password: str, *, static_challenge: str | None = None) -> OpenVpnClient:
        client = OpenVpnClient(self.dir, self.server, user, password, label=f"client{next(self._labels)}",
                               static_challenge=static_challenge)
        self.clients.append(client)
        return client


@pytest.fixture(scope="module")
def vpn() -> Iterator[Vpn]:
    for name in ("openvpn", "oathtool", "otp-radiusd", "otp-admin"):
        tool(name)
    need_plugin()
    ensure_tun()
    # Short paths: the RADIUS plugin copies config values into 50-octet buffers.
    folder = Path(tempfile.mkdtemp(prefix="ovpn-", dir="/tmp"))
    radiusd = OtpRadiusd(folder).start()
    server = None
    vpn = None
    try:
        server = OpenVpnServer(folder, radiusd).start()
        vpn = Vpn(folder, radiusd, server)
        yield vpn
    finally:
        errors: list[Exception] = []
        for client in vpn.clients if vpn else []:
            _collect(errors, client.stop)
        if server is not None and server.process is not None:
            _collect(errors, server.stop)
        _collect(errors, radiusd.stop, expect=0)
        shutil.rmtree(folder, ignore_errors=True)
        if errors:
            raise errors[0]


def _collect(errors: list[Exception], stop: Callable[[], int], expect: int | None = None) -> None:
    """Stop everything even when one of them fails; report the first failure."""
    try:
        code = stop()
    except (AssertionError, subprocess.TimeoutExpired) as exc:
        errors.append(exc)
        return
    if expect is not None and code != expect:
        errors.append(AssertionError(f"exit status {code}, expected {expect}"))
