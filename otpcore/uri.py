"""otpauth:// key URIs, as Google Authenticator and every phone authenticator read them."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from .oath import encode_base32

__all__ = ["otpauth_uri"]


def otpauth_uri(
    *,
    kind: str,
    account: str,
    secret: bytes,
    issuer: str | None = None,
    algorithm: str = "SHA1",
    digits: int = 6,
    period: int = 30,
    counter: int = 0,
) -> str:
    label = quote(f"{issuer}:{account}" if issuer else account, safe="@:")
    params: dict[str, str | int] = {"secret": encode_base32(secret)}
    if issuer:
        params["issuer"] = issuer
    params["algorithm"] = algorithm
    params["digits"] = digits
    if kind == "totp":
        params["period"] = period
    else:
        params["counter"] = counter
    return f"otpauth://{kind}/{label}?{urlencode(params, quote_via=quote)}"
