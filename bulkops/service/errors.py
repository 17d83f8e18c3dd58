"""What the service refuses, for the edges (API, console, CLI) to turn into answers."""

from __future__ import annotations

import psycopg
import psycopg_pool
import sqlalchemy.exc
from temporalio.service import RPCError, RPCStatusCode

# A paging cursor this service did not hand out (400); raised by the store's keyset helper.
from bulkops.store.pagination import BadCursor


class Conflict(Exception):
    """A request that contradicts the state (409)."""


class NotFound(Exception):
    """No such thing for this tenant: unknown and foreign ids look the same (404)."""

    def __init__(self, what: str = "bulk operation") -> None:
        super().__init__(f"no such {what}")


class Gone(Exception):
    """It existed, and retention has deleted it (410)."""


class Forbidden(Exception):
    """The key's role would allow it, but not on this operation (403)."""


class Invalid(Exception):
    """A request field the service refuses, with what is wrong (422 naming the field)."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.detail = detail


class Unavailable(Exception):
    """Temporal did not take the operation's start, or cannot be reached; the request may be
    repeated (503)."""


# What PostgreSQL or the Temporal server being away (restarting, unreachable, overloaded) raises
# through the service: the request did nothing and may be repeated, so the API answers 503 with
# Retry-After rather than 500 (`is_outage` tells a Temporal outage from its other refusals).
OUTAGES: tuple[type[Exception], ...] = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,
    psycopg.OperationalError,
    psycopg_pool.PoolTimeout,
    RPCError,
)
_UNREACHABLE = frozenset(
    {RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.RESOURCE_EXHAUSTED}
)


def is_outage(exc: BaseException) -> bool:
    """Whether `exc` says a backing service is away, not that the request is wrong."""
    if isinstance(exc, RPCError):
        return exc.status in _UNREACHABLE
    return isinstance(exc, OUTAGES)


__all__ = [
    "BadCursor",
    "Conflict",
    "Forbidden",
    "Gone",
    "Invalid",
    "NotFound",
    "Unavailable",
]
