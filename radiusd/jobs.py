"""What the threads of one worker hand each other and share: a request to answer (a job), the duplicate cache, the
States issued, the writer of decision lines, and the counters each thread keeps for itself.

Threading: the receiving thread begins requests in the cache and checks States; every thread that decides finishes
or abandons them and adds States. Each of those is a single dict or set operation, atomic under the GIL (dedup.py,
admission.py). Counters are not shared: a thread writes only its own dict, and the worker adds them up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from otpbase.radius.access import Request
from otpbase.radius.accounting import AccountingRequest
from otpcore.config import ClientConfig
from otpcore.errors import OtpError

from .admission import IssuedStates
from .dedup import Key, ReplyCache
from .udp import Address, Sender

__all__ = ["AccessJob", "AccountingJob", "Counters", "Shared", "error_detail"]

Counters = dict[str, int]


class AccessJob(NamedTuple):
    """An authenticated Access-Request, in flight in the cache under `key` until it is answered or abandoned."""

    sock: Sender  # a UDP socket, or the RadSec connection the request came on
    addr: Address
    key: Key
    client: ClientConfig
    request: Request


class AccountingJob(NamedTuple):
    sock: Sender  # a UDP socket, or the RadSec connection the request came on
    addr: Address
    key: Key
    client: ClientConfig
    request: AccountingRequest


@dataclass
class Shared:
    cache: ReplyCache
    states: IssuedStates  # valid States go first under overload
    info: Callable[[str], None] | None  # one line per decision, written without a LogRecord each (None: INFO is off)
    label: str  # " worker=N" when there are several


def error_detail(exc: Exception) -> str:
    """What a log line may say of a fault: OtpError messages are safe to log, other exceptions may quote input."""
    return f" ({exc})" if isinstance(exc, OtpError) else ""
