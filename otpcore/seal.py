"""Sealing of token secrets at rest: AES-256-GCM with the row's identity as associated data.

A sealed value is `nonce (12 bytes) || ciphertext+tag`. Binding it to the token's id, its owner and its parameters
means a sealed secret copied to another row, or a row given to another user, does not open. The key lives in its own
file (0600), so a copied database alone reveals nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import SealError

__all__ = ["Sealer", "create_key_file", "legacy_token_identity", "load_key_file", "password_identity",
           "token_identity"]

_KEY_BYTES = 32
_NONCE_BYTES = 12


def token_identity(token_id: int, user_id: int, kind: str, algorithm: str, digits: int, period: int) -> bytes:
    """Associated data binding a sealed secret to its token row: the row, its owner and what the codes depend on."""
    return b"otp-token-v2:%d:%d:%s:%s:%d:%d" % (token_id, user_id, kind.encode(), algorithm.encode(), digits, period)


def password_identity(user_id: int, name: str) -> bytes:
    """Associated data binding a sealed reversible password to its user (otpcore.store.reversible)."""
    return b"otp-password-v1:%d:%s" % (user_id, name.encode("utf-8", "surrogatepass"))


def legacy_token_identity(token_id: int) -> bytes:
    """How secrets were bound before schema 4 (the row id only): read once, to re-seal them."""
    return b"otp-token:%d" % token_id


class Sealer:
    def __init__(self, key: bytes) -> None:
        if len(key) != _KEY_BYTES:
            raise SealError("sealing key has the wrong length")
        self._aead = AESGCM(key)
        # A separate key for fingerprints (e.g. of the last wrong code), so they are useless without the key file.
        self._mac_key = hashlib.sha256(b"otp-server fingerprint\0" + key).digest()

    def seal(self, plaintext: bytes, identity: bytes) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, identity)

    def open(self, sealed: bytes, identity: bytes) -> bytes:
        try:
            return self._aead.decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], identity)
        except (InvalidTag, ValueError):
            raise SealError("a sealed secret does not open with this key (wrong key file?)") from None

    def fingerprint(self, *parts: bytes) -> bytes:
        """A keyed 128-bit fingerprint, for remembering a value without storing it."""
        return hmac.new(self._mac_key, b"\0".join(parts), hashlib.sha256).digest()[:16]


def create_key_file(path: Path) -> bool:
    """Create a new random key file with mode 0600. Returns False (and changes nothing) if it already exists."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    except OSError as exc:
        raise SealError(f"cannot create key file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(base64.b64encode(os.urandom(_KEY_BYTES)) + b"\n")
        fh.flush()
        os.fsync(fh.fileno())
    return True


def load_key_file(path: Path) -> Sealer:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise SealError(f"key file not found: {path} (run `otp-admin init`)") from None
    except OSError as exc:
        raise SealError(f"cannot read key file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as fh:
        mode = os.fstat(fh.fileno()).st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise SealError(f"key file {path} is accessible by group or others (mode {mode & 0o777:o}); chmod 600 it")
        data = fh.read()
    try:
        key = base64.b64decode(data.strip(), validate=True)
    except binascii.Error:
        raise SealError(f"key file {path} is not a valid key") from None
    if len(key) != _KEY_BYTES:
        raise SealError(f"key file {path} is not a valid key")
    return Sealer(key)
