"""Parsers for the files users bring from other systems. Pure: text in, records out; errors name the line.

- CSV: header row with `user,type,secret` (base32) required, `algorithm,digits,period,counter,email,phone` optional.
- google-authenticator (`~/.google_authenticator`): secret line, `" OPTION` lines, scratch codes.
- oath-toolkit usersfile (pam_oath's `/etc/users.oath`): `HOTP/T30/6 user pin hexsecret [counter ...]`.
"""

from __future__ import annotations

import binascii
import csv
import io
import re

from .errors import InputError
from .oath import decode_base32
from .specs import TokenSpec, UserSpec, validate_user_name

__all__ = ["FORMATS", "parse_csv", "parse_google_authenticator", "parse_oath_usersfile", "parse_records"]

Record = tuple[UserSpec, TokenSpec]
FORMATS = ("csv", "google-authenticator", "oath-usersfile")

_CSV_REQUIRED = ("user", "type", "secret")
_CSV_OPTIONAL = ("algorithm", "digits", "period", "counter", "email", "phone")


def parse_records(fmt: str, text: str, *, user: str | None = None, issuer: str | None = None) -> list[Record]:
    if fmt == "csv":
        records = parse_csv(text)
    elif fmt == "google-authenticator":
        if not user:
            raise InputError("--user is required for a google-authenticator file (it holds no user name)")
        records = [parse_google_authenticator(text, user)]
    elif fmt == "oath-usersfile":
        records = parse_oath_usersfile(text)
    else:
        raise InputError(f"unknown import format {fmt!r}: use {', '.join(FORMATS)}")
    if user and fmt != "google-authenticator":
        records = [r for r in records if r[0].name == user]
    if not records:
        raise InputError("nothing to import")
    if issuer:
        records = [(u, TokenSpec(**{**t.__dict__, "issuer": issuer})) for u, t in records]
    return records


def parse_csv(text: str) -> list[Record]:
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff")))  # spreadsheets write a byte order mark
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in _CSV_REQUIRED if c not in header]
    if missing:
        raise InputError(f"CSV header lacks required column(s): {', '.join(missing)}")
    unknown = [c for c in header if c not in _CSV_REQUIRED + _CSV_OPTIONAL]
    if unknown:
        raise InputError(f"CSV header has unknown column(s): {', '.join(unknown)}")
    reader.fieldnames = header
    records = []
    for row in reader:
        line = reader.line_num
        values = {k: (v or "").strip() for k, v in row.items() if k is not None}
        if None in row:
            raise InputError(f"CSV line {line}: more fields than the header")
        if not any(values.values()):
            continue
        try:
            name = validate_user_name(values["user"])
            token = TokenSpec(
                type=values["type"].lower(),
                secret=decode_base32(values["secret"]),
                algorithm=values.get("algorithm") or "SHA1",
                digits=_int(values, "digits", 6),
                period=_int(values, "period", 30),
                counter=_int(values, "counter", 0),
                source=f"CSV line {line}",
            ).validated()
        except InputError as exc:
            raise InputError(f"CSV line {line}: {exc}") from None
        records.append((UserSpec(name, email=values.get("email") or None, phone=values.get("phone") or None), token))
    return records


def parse_google_authenticator(text: str, user: str) -> Record:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise InputError("google-authenticator file is empty")
    secret = decode_base32(lines[0])
    options: dict[str, list[str]] = {}
    for line in lines[1:]:
        if line.startswith('"'):
            words = line[1:].split()
            if words:
                options[words[0]] = words[1:]
        elif not re.fullmatch(r"\d{8}", line):
            raise InputError(f"google-authenticator file: unexpected line {line[:20]!r}")
    hotp = "HOTP_COUNTER" in options
    try:
        counter = int(options["HOTP_COUNTER"][0]) if hotp else 0
        step = int(options["STEP_SIZE"][0]) if "STEP_SIZE" in options else 30
        window_size = int(options["WINDOW_SIZE"][0]) if "WINDOW_SIZE" in options else None
    except (IndexError, ValueError):
        raise InputError("google-authenticator file: an option has a bad number") from None
    window = None
    if window_size is not None:
        # Its WINDOW_SIZE counts all codes accepted: TOTP centred on now, HOTP from the counter on.
        window = window_size - 1 if hotp else max(0, (window_size - 1) // 2)
    token = TokenSpec(type="hotp" if hotp else "totp", secret=secret, period=step, counter=max(counter, 0),
                      window=window, source="google-authenticator file").validated()
    return UserSpec(validate_user_name(user)), token


_OATH_TYPE = re.compile(r"HOTP(?:/(?:E|T(?P<period>\d+)))?(?:/(?P<digits>\d+))?", re.IGNORECASE)


def parse_oath_usersfile(text: str) -> list[Record]:
    records = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        try:
            if len(fields) < 4:
                raise InputError("expected at least: type user pin hexsecret")
            match = _OATH_TYPE.fullmatch(fields[0])
            if not match:
                raise InputError(f"unknown token type {fields[0]!r}")
            try:
                secret = binascii.unhexlify(fields[3])
            except (binascii.Error, ValueError):
                raise InputError("secret is not valid hex") from None
            moving_factor = fields[4] if len(fields) > 4 else "0"
            if not re.fullmatch(r"[0-9]+", moving_factor):
                raise InputError(f"counter (moving factor) must be a number, not {moving_factor!r}")
            period = match["period"]
            pin = fields[2]
            # HOTP: pam_oath rewrites the line with the counter it matched and that OTP after each login, so with a
            # last OTP present that counter is used and the next one is expected. TOTP: the field is no time step.
            counter = int(moving_factor) + (1 if len(fields) > 5 else 0)
            token = TokenSpec(
                type="totp" if period else "hotp",
                secret=secret,
                digits=int(match["digits"] or 6),
                period=int(period or 30),
                counter=0 if period else counter,
                source=f"usersfile line {number}",
            ).validated()
            user = UserSpec(validate_user_name(fields[1]),
                            password=None if pin in ("-", "+") else pin.encode())
        except InputError as exc:
            raise InputError(f"usersfile line {number}: {exc}") from None
        records.append((user, token))
    return records


def _int(values: dict[str, str], key: str, default: int) -> int:
    text = values.get(key) or ""
    if not text:
        return default
    if not re.fullmatch(r"-?\d+", text):
        raise InputError(f"{key} must be a number, not {text!r}")
    return int(text)
