"""otp-radiusd: the RADIUS door (UDP loop, client table, packet checks, duplicate cache) on the shared core.

Kept light: importing the package loads nothing; `radiusd.main` is the entry point.
"""

__all__: list[str] = []
