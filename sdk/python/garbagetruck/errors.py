"""Errors raised by the GarbageTruck SDK.

Every error is a :class:`GarbageTruckError` carrying the GTLP/1 ``code``
(GTLP.md §9) and a human ``message``.  Broker error replies map to one
subclass per code; a few codes are local to the SDK (``TIMEOUT``,
``PROTOCOL_ERROR``, ``CLOSED``).
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence, Type

__all__ = [
    "GarbageTruckError",
    "InvalidArgument",
    "NotFound",
    "LeaseEnded",
    "PermissionDenied",
    "Conflict",
    "QuotaExceeded",
    "Unavailable",
    "UnsupportedVersion",
    "UnsupportedCommand",
    "TooOld",
    "Internal",
    "Moved",
    "TryAgain",
    "Timeout",
    "ProtocolError",
    "ClientClosed",
    "error_from_code",
]


class GarbageTruckError(Exception):
    """Base class: ``code`` is the GTLP/1 code, ``message`` the broker's text."""

    code: str = "UNKNOWN"

    def __init__(self, code: Optional[str] = None, message: str = "") -> None:
        if code is not None:
            self.code = code
        self.message = message
        super().__init__(f"{self.code}: {message}" if message else self.code)


class InvalidArgument(GarbageTruckError, ValueError):
    """Malformed request, wrong type, missing field, or value out of bounds."""

    code = "INVALID_ARGUMENT"


class NotFound(GarbageTruckError, LookupError):
    """No such lease (never existed, or no longer retained)."""

    code = "NOT_FOUND"


class LeaseEnded(GarbageTruckError):
    """The lease exists but was released or has expired."""

    code = "LEASE_ENDED"


class PermissionDenied(GarbageTruckError):
    """The lease belongs to another service."""

    code = "PERMISSION_DENIED"


class Conflict(GarbageTruckError):
    """An idempotency key was reused for a different object."""

    code = "CONFLICT"


class QuotaExceeded(GarbageTruckError):
    """The service holds GC_MAX_LEASES_PER_SERVICE active leases, or the broker
    GC_MAX_LEASES leases; retry later."""

    code = "QUOTA_EXCEEDED"


class Unavailable(GarbageTruckError):
    """The broker's store cannot make the change durable now; nothing changed."""

    code = "UNAVAILABLE"


class UnsupportedVersion(GarbageTruckError):
    """The broker does not speak our protocol version; see ``versions``."""

    code = "UNSUPPORTED_VERSION"

    def __init__(
        self,
        code: Optional[str] = None,
        message: str = "",
        versions: Sequence[int] = (),
    ) -> None:
        super().__init__(code, message)
        self.versions = list(versions)


class UnsupportedCommand(GarbageTruckError):
    """The broker does not know the command."""

    code = "UNSUPPORTED_COMMAND"


class TooOld(GarbageTruckError):
    """REPLAY: the requested event history is gone; re-synchronise with LIST."""

    code = "TOO_OLD"


class Internal(GarbageTruckError):
    """A broker bug; the change was not made."""

    code = "INTERNAL"


class Moved(GarbageTruckError):
    """Cluster (GTLP.md §14.3): another broker owns the request's shard;
    nothing was changed.  ``owner`` is that broker's endpoint, ``map_version``
    the answering broker's map version (both None in a RENEW_BATCH result,
    where ``shard`` is the one the lease id names)."""

    code = "MOVED"

    def __init__(
        self,
        code: Optional[str] = None,
        message: str = "",
        shard: Optional[int] = None,
        owner: Optional[str] = None,
        map_version: Optional[int] = None,
    ) -> None:
        super().__init__(code, message)
        self.shard = shard
        self.owner = owner
        self.map_version = map_version


class TryAgain(GarbageTruckError):
    """Cluster (GTLP.md §14.3): the request's shard has no owner right now
    (being handed over or loaded); nothing was changed.  Retry after
    ``retry_ms`` (a hint; None in a RENEW_BATCH result, where ``shard`` is the
    one the lease id names)."""

    code = "TRY_AGAIN"

    def __init__(
        self,
        code: Optional[str] = None,
        message: str = "",
        shard: Optional[int] = None,
        retry_ms: Optional[int] = None,
    ) -> None:
        super().__init__(code, message)
        self.shard = shard
        self.retry_ms = retry_ms


class Timeout(GarbageTruckError, TimeoutError):
    """No reply within the timeout: the outcome of the request is unknown."""

    code = "TIMEOUT"


class ProtocolError(GarbageTruckError):
    """A body that is not valid GTLP/1 (raised by the codec's decoders)."""

    code = "PROTOCOL_ERROR"


class ClientClosed(GarbageTruckError):
    """The client was closed while the call was pending (or before it)."""

    code = "CLOSED"


_BY_CODE: Dict[str, Type[GarbageTruckError]] = {
    cls.code: cls
    for cls in (
        InvalidArgument,
        NotFound,
        LeaseEnded,
        PermissionDenied,
        Conflict,
        QuotaExceeded,
        Unavailable,
        UnsupportedVersion,
        UnsupportedCommand,
        TooOld,
        Internal,
        Moved,
        TryAgain,
    )
}


def error_from_code(
    code: str,
    message: str = "",
    versions: Sequence[int] = (),
    *,
    shard: Optional[int] = None,
    owner: Optional[str] = None,
    map_version: Optional[int] = None,
    retry_ms: Optional[int] = None,
) -> GarbageTruckError:
    """The exception for a protocol error code; unknown codes (from a newer
    broker) give a plain :class:`GarbageTruckError` with that code.  The
    keyword arguments are the details of MOVED (``shard``, ``owner``,
    ``map_version``) and TRY_AGAIN (``shard``, ``retry_ms``)."""
    cls = _BY_CODE.get(code)
    if cls is None:
        return GarbageTruckError(code, message)
    if cls is UnsupportedVersion:
        return UnsupportedVersion(None, message, versions)
    if cls is Moved:
        return Moved(None, message, shard, owner, map_version)
    if cls is TryAgain:
        return TryAgain(None, message, shard, retry_ms)
    return cls(None, message)
