"""One exception hierarchy for faults.

Normal outcomes (accept, wrong code, replay, locked) are values, not exceptions."""

__all__ = ["ConfigError", "DeliveryError", "DirectoryError", "InputError", "NotFoundError", "OtpError", "SealError",
           "StoreError"]


class OtpError(Exception):
    """Base of every fault this product raises on purpose. The message is one line, safe to show and log."""


class ConfigError(OtpError):
    """The configuration file is missing, unreadable or has a bad key (the message names the key)."""


class InputError(OtpError):
    """An argument given by a person or a file is malformed (bad base32, digits 5, bad CSV row ...)."""


class NotFoundError(OtpError):
    """A named user, token or record does not exist."""


class StoreError(OtpError):
    """The store cannot be opened, read or written, or refuses an operation (duplicate user ...)."""


class SealError(OtpError):
    """The sealing key is missing, has unsafe permissions, or does not open a sealed secret."""


class DeliveryError(OtpError):
    """A code could not be sent (mail server or SMS gateway down, slow, or refusing). Never contains the code."""


class DirectoryError(OtpError):
    """No URL of the directory ([ldap]) answered within its timeout, or none would let the service account search."""
