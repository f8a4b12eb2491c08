"""otp-radiusd: the RADIUS door (UDP loop, client table, duplicate cache) on the shared core; the packets are the
codec's (otpbase.radius).

Kept light: importing the package loads nothing; `radiusd.main` is the entry point.
"""

__all__: list[str] = []
