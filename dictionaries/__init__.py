"""RADIUS dictionary files (FreeRADIUS format) shipped with otp-radiusd; read with importlib.resources."""
