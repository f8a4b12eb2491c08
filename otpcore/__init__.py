"""The shared core: TOTP/HOTP maths, verification policy and the sealed SQLite store.

Kept import-light on purpose: a PAM login imports submodules directly and must not pay for anything else.
"""

__all__: list[str] = []
