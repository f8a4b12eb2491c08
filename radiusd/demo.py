"""`otp-radiusd --demo`: a complete first try in one folder (./state unless --state-dir says otherwise).

The first start writes `otp.toml` there (store and key beside it), creates the user `demo` with the password `demo`
and a TOTP token; every start prints the token's QR code and a ready-to-paste radtest / radclient line, once the
server holds its port (a demo that cannot start prints only the reason).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from otpcore.admin import Admin, TokenSpec, UserSpec
from otpcore.config import load_config
from otpcore.errors import NotFoundError
from otpcore.qr import render_terminal

__all__ = ["DEMO_CONFIG", "Demo", "banner", "prepare"]

DEMO_USER = "demo"
DEMO_PASSWORD = "demo"
DEMO_SECRET = "testing123"
DEMO_ISSUER = "otp-server demo"

DEMO_CONFIG = """\
# Written by `otp-radiusd --demo` at its first start. Edit freely; delete this folder to start over.
[store]
path = "otp.sqlite"        # relative paths are relative to this file
key_file = "otp.key"

[radius]
listen = ["127.0.0.1:1812"]

[[radius.clients]]
name = "localhost"
address = "127.0.0.1"
secret = "testing123"
first_factor = "store"     # the password part is checked against the store (argon2id)

[policy]
challenge = true           # the password alone gets an Access-Challenge asking for the code
"""


@dataclass(frozen=True)
class Demo:
    """The demo's state, ready to be announced once the server has its ports."""

    state_dir: Path
    config_path: Path
    uri: str  # the otpauth:// URI of the demo user's TOTP token
    digits: int


def prepare(state_dir: Path) -> Demo:
    """Create (or reuse) the demo state: config, store, key, user and token. Prints nothing (see `banner`)."""
    state_dir = state_dir.absolute()
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = state_dir / "otp.toml"
    if not path.exists():
        path.write_text(DEMO_CONFIG)
    config = load_config(path)
    now = time.time()
    with Admin(config) as admin:
        admin.init()
        try:
            admin.user(DEMO_USER)
        except NotFoundError:
            admin.add_user(UserSpec(DEMO_USER, password=DEMO_PASSWORD.encode()), now=now)
        tokens = [t for t, _ in admin.tokens(DEMO_USER) if t.active and t.type == "totp" and t.secret]
        if not tokens:
            admin.add_token(DEMO_USER, TokenSpec(type="totp", issuer=DEMO_ISSUER), now=now)
            tokens = [t for t, _ in admin.tokens(DEMO_USER) if t.active and t.type == "totp" and t.secret]
        token = tokens[0]
        uri = admin.token_uri(token.id)
    return Demo(state_dir, path, uri, token.digits)


def banner(demo: Demo, listen: tuple[str, int]) -> str:
    """The token's QR code and the radtest / radclient lines to try the server listening on `listen`."""
    host, port = listen
    server = host if port == 1812 else f"{host}:{port}"
    if ":" in host:
        server = f"[{host}]:{port}"
    code = "123456"[: demo.digits].ljust(demo.digits, "0")
    b32 = demo.uri.split("secret=", 1)[1].split("&", 1)[0]
    return f"""\
otp-radiusd demo: state in {demo.state_dir} (delete it to start over)

User {DEMO_USER!r}, password {DEMO_PASSWORD!r}, and this TOTP token; scan it with an authenticator app:
{render_terminal(demo.uri)}
  {demo.uri}
  (no phone at hand? `oathtool --totp -b {b32}` prints the current code)

Try it from another terminal: the password followed by the {demo.digits}-digit code, e.g. demo{code}:
  radtest {DEMO_USER} {DEMO_PASSWORD}{code} {server} 0 {DEMO_SECRET}
  echo 'User-Name = "{DEMO_USER}", User-Password = "{DEMO_PASSWORD}{code}", Message-Authenticator = 0x00' \\
    | radclient -x {server} auth {DEMO_SECRET}
The password alone ({DEMO_PASSWORD}) gets an Access-Challenge asking for the code.
"""
