"""Value types of GTLP/1 (GTLP.md §4.1, §5, §6) as Python enums and dataclasses.

Timestamps are timezone-aware UTC :class:`~datetime.datetime`; durations are
:class:`~datetime.timedelta`.  Both convert to the wire's integer milliseconds
exactly (no floating point on the way), so a decoded value re-encodes to the
same bytes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Dict, List, Optional, Tuple, Union

from .errors import GarbageTruckError, InvalidArgument, error_from_code

__all__ = [
    "Command",
    "Code",
    "ObjectType",
    "LeaseState",
    "EventKind",
    "ReclaimReason",
    "CleanupConfig",
    "Lease",
    "RenewResult",
    "Health",
    "Event",
    "ReplayResult",
    "BrokerInfo",
    "ShardMap",
    "TOPIC_SEPARATOR",
    "service_topic",
    "has_control_character",
    "TTL",
    "ms_to_datetime",
    "datetime_to_ms",
    "ms_to_timedelta",
    "timedelta_to_ms",
    "ttl_to_ms",
    "code_name",
]

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_MS = timedelta(milliseconds=1)

#: A TTL argument: seconds (int or float) or a timedelta.
TTL = Union[int, float, timedelta]


class Command(str, enum.Enum):
    """Request commands (GTLP.md §5)."""

    CREATE = "CREATE"
    RENEW = "RENEW"
    RENEW_BATCH = "RENEW_BATCH"
    RELEASE = "RELEASE"
    GET = "GET"
    LIST = "LIST"
    HEALTH = "HEALTH"
    STATS = "STATS"
    REPLAY = "REPLAY"
    RETRY = "RETRY"
    MAP = "MAP"  # cluster (GTLP.md §14.2)


class Code(str, enum.Enum):
    """Reply codes (GTLP.md §9)."""

    OK = "OK"
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    NOT_FOUND = "NOT_FOUND"
    LEASE_ENDED = "LEASE_ENDED"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    CONFLICT = "CONFLICT"
    QUOTA_EXCEEDED = "QUOTA_EXCEEDED"
    UNAVAILABLE = "UNAVAILABLE"
    UNSUPPORTED_VERSION = "UNSUPPORTED_VERSION"
    UNSUPPORTED_COMMAND = "UNSUPPORTED_COMMAND"
    TOO_OLD = "TOO_OLD"
    INTERNAL = "INTERNAL"
    MOVED = "MOVED"  # cluster (GTLP.md §14.3)
    TRY_AGAIN = "TRY_AGAIN"  # cluster (GTLP.md §14.3)


def code_name(code: "Union[Code, str]") -> str:
    """The wire name of a code (``str()`` of a str-Enum is "Code.X" on some Pythons)."""
    return code.value if isinstance(code, Code) else str(code)


class ObjectType(str, enum.Enum):
    """What kind of object a lease protects."""

    UNKNOWN = "UNKNOWN"
    DATABASE_ROW = "DATABASE_ROW"
    BLOB_STORAGE = "BLOB_STORAGE"
    TEMPORARY_FILE = "TEMPORARY_FILE"
    WEBSOCKET_SESSION = "WEBSOCKET_SESSION"
    CACHE_ENTRY = "CACHE_ENTRY"
    CUSTOM = "CUSTOM"


class LeaseState(str, enum.Enum):
    ACTIVE = "ACTIVE"
    RELEASED = "RELEASED"
    EXPIRED = "EXPIRED"


class CleanupStatus(str, enum.Enum):
    """State of a lease's cleanup callback (LEASE ``cleanup_status``): set
    once the object was reclaimed and the lease's cleanup URL called."""

    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    DEAD = "DEAD"


class EventKind(str, enum.Enum):
    """Event kinds (GTLP.md §6); ``verb`` is the first part of the topic."""

    LEASE_CREATED = "lease.created"
    LEASE_RENEWED = "lease.renewed"
    LEASE_RELEASED = "lease.released"
    LEASE_EXPIRED = "lease.expired"
    OBJECT_RECLAIMED = "object.reclaimed"

    @property
    def verb(self) -> str:
        return _VERBS[self]


_VERBS = {
    EventKind.LEASE_CREATED: "created",
    EventKind.LEASE_RENEWED: "renewed",
    EventKind.LEASE_RELEASED: "released",
    EventKind.LEASE_EXPIRED: "expired",
    EventKind.OBJECT_RECLAIMED: "reclaimed",
}
_KINDS_BY_VALUE = {kind.value: kind for kind in EventKind}


class ReclaimReason(str, enum.Enum):
    """Why an object was reclaimed (``object.reclaimed`` events only)."""

    EXPIRED = "expired"
    RELEASED = "released"


# --------------------------------------------------------------------------
# Exact conversions between wire milliseconds and datetime / timedelta


def ms_to_datetime(ms: int) -> datetime:
    """Wire timestamp (ms since the Unix epoch) to an aware UTC datetime."""
    return EPOCH + timedelta(milliseconds=ms)


def datetime_to_ms(when: datetime) -> int:
    """Aware datetime to wire ms (naive datetimes are taken as UTC); sub-ms
    parts are truncated."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return (when - EPOCH) // _ONE_MS


def ms_to_timedelta(ms: int) -> timedelta:
    return timedelta(milliseconds=ms)


def timedelta_to_ms(delta: timedelta) -> int:
    """timedelta to whole milliseconds, rounded half up, computed on integers."""
    micros = (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds
    return (micros + 500) // 1000


def ttl_to_ms(ttl: TTL) -> int:
    """A TTL given as seconds or timedelta, in whole milliseconds (>= 0)."""
    if isinstance(ttl, bool):
        raise InvalidArgument(None, "ttl: expected seconds or a timedelta, got a bool")
    if isinstance(ttl, timedelta):
        ms = timedelta_to_ms(ttl)
    elif isinstance(ttl, (int, float)):
        if ttl != ttl or ttl in (float("inf"), float("-inf")):
            raise InvalidArgument(None, f"ttl: {ttl!r} is not a finite number")
        ms = round(ttl * 1000)
    else:
        raise InvalidArgument(
            None, f"ttl: expected seconds or a timedelta, got {type(ttl).__name__}"
        )
    if ms < 0:
        raise InvalidArgument(None, f"ttl: must not be negative, got {ttl!r}")
    return ms


# --------------------------------------------------------------------------
# Records


@dataclass
class CleanupConfig:
    """How the broker cleans the object up: an HTTP POST to ``url``.

    ``max_retries`` and ``retry_delay`` are optional in CREATE (the broker
    fills in its defaults) and always present in a lease read back.
    """

    url: str
    payload: Optional[str] = None
    max_retries: Optional[int] = None
    retry_delay: Optional[timedelta] = None


@dataclass
class Lease:
    """The full record of a lease (the LEASE map, GTLP.md §4.1)."""

    id: str
    object_id: str
    object_type: ObjectType
    service_id: str
    state: LeaseState
    fence: int
    ttl: timedelta
    created_at: datetime
    renewed_at: datetime
    expires_at: datetime
    renewals: int
    metadata: Dict[str, str] = field(default_factory=dict)
    cleanup: Optional[CleanupConfig] = None
    #: The cleanup callback, once the object was reclaimed and this lease's
    #: URL called: PENDING, DELIVERED or DEAD (a dead letter: retry_cleanup).
    cleanup_status: Optional[CleanupStatus] = None
    #: HTTP attempts made (with cleanup_status).
    cleanup_attempts: Optional[int] = None
    #: The last attempt's error (e.g. "HTTP 503"), None if none.
    cleanup_error: Optional[str] = None

    @property
    def lease_id(self) -> str:
        """Alias of ``id``."""
        return self.id

    @property
    def active(self) -> bool:
        return self.state is LeaseState.ACTIVE


@dataclass
class RenewResult:
    """One entry of a RENEW_BATCH reply."""

    lease_id: str
    code: str
    expires_at: Optional[datetime] = None
    message: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.code == Code.OK

    @property
    def error(self) -> Optional[GarbageTruckError]:
        """The exception RENEW would have raised for this lease, or None.

        A per-lease MOVED or TRY_AGAIN (cluster, GTLP.md §14.3) carries no
        owner, map version or retry hint; its ``shard`` is the one the lease
        id names."""
        if self.ok:
            return None
        shard: Optional[int] = None
        if self.code in (Code.MOVED, Code.TRY_AGAIN) and len(self.lease_id) >= 2:
            try:
                shard = int(self.lease_id[:2], 16)
            except ValueError:
                shard = None
        return error_from_code(code_name(self.code), self.message or "", shard=shard)


@dataclass
class Health:
    """The HEALTH reply (GTLP.md §5.7)."""

    status: str
    version: str
    store: str
    store_status: str
    uptime: timedelta
    now: datetime
    active_leases: int

    @property
    def serving(self) -> bool:
        return self.status == "SERVING"


@dataclass
class Event:
    """One event from the PUB socket or from REPLAY (GTLP.md §6).

    ``shard`` is the shard of the event's lease in cluster mode (GTLP.md
    §14.4), where ``seq`` counts within that shard; None in single mode."""

    seq: int
    kind: EventKind
    at: datetime
    lease: Lease
    reason: Optional[ReclaimReason] = None
    v: int = 1
    shard: Optional[int] = None

    @property
    def topic(self) -> str:
        """The PUB topic of this event: ``service_id + "\\x1f" + verb.OBJECT_TYPE``,
        e.g. ``"upload-service\\x1fexpired.TEMPORARY_FILE"``."""
        return service_topic(self.lease.service_id, self.kind, self.lease.object_type)


@dataclass
class ReplayResult:
    """A REPLAY reply: events after ``after_seq`` and the newest published seq.

    ``scanned_seq`` says how far the broker read: every event the caller may
    see with ``after_seq < seq <= scanned_seq`` is in ``events``.  A broker
    that filters REPLAY (with CURVE, a service's key sees only its own
    events) may return fewer events than the limit while more remain: ask
    again with ``after_seq=scanned_seq`` until it reaches ``last_seq``.
    ``None`` from a broker that does not report it (older versions, which
    never filter).
    """

    events: List[Event]
    last_seq: int
    scanned_seq: Optional[int] = None


@dataclass
class BrokerInfo:
    """One live broker of a :class:`ShardMap` (the BROKER map, GTLP.md §14.2)."""

    broker_id: str
    #: Where it takes requests.
    endpoint: str
    #: Where it publishes events.
    events_endpoint: str
    #: The shards it owns, ascending; may be empty.
    shards: Tuple[int, ...] = ()
    #: The epoch at which it holds each of ``shards`` (same length, same
    #: order); None when the broker does not send them (brokers before
    #: ``epochs`` was added to MAP).  For operators; routing uses ``shards``.
    epochs: Optional[Tuple[int, ...]] = None


@dataclass
class ShardMap:
    """The MAP reply (GTLP.md §14.2): which broker owns which shard, as the
    answering broker sees it.  ``map_version`` grows whenever a shard
    changes owner; ``cluster`` is False in single mode (one broker serves
    every shard); ``brokers`` are the live brokers in ``broker_id`` order."""

    map_version: int
    cluster: bool
    brokers: List[BrokerInfo] = field(default_factory=list)

    def owner_of(self, shard: int) -> Optional[BrokerInfo]:
        """The broker that owns ``shard``, or None when none does right now
        (being handed over, or its owner died)."""
        for broker in self.brokers:
            if shard in broker.shards:
                return broker
        return None


# --------------------------------------------------------------------------
# Event topics (GTLP.md §6)

#: Ends the service id at the start of every event topic: U+001F (unit
#: separator), a control character no service id may contain, so that the
#: prefix of one service never matches another's ("upload\x1f" does not
#: match the events of "upload-service").
TOPIC_SEPARATOR = "\x1f"


def has_control_character(text: str) -> bool:
    """True if text has a character U+0000..U+001F or U+007F (refused in a
    service_id: its topics would be ambiguous)."""
    return any(ord(c) < 0x20 or c == "\x7f" for c in text)


def service_topic(
    service_id: str,
    kind: "Union[EventKind, str, None]" = None,
    object_type: "Union[ObjectType, str, None]" = None,
) -> str:
    """The topic prefix of one service's events, narrowed by ``kind`` (an
    :class:`EventKind` or its verb, e.g. ``"expired"``) and then by
    ``object_type``: ``service_topic("upload")`` is ``"upload\\x1f"``,
    ``service_topic("upload", EventKind.OBJECT_RECLAIMED, ObjectType.TEMPORARY_FILE)``
    is ``"upload\\x1freclaimed.TEMPORARY_FILE"`` (a whole topic).

    Topics start with the service, so there is no prefix for one kind of
    event across every service: subscribe to everything (or to each
    service) and look at :attr:`Event.kind`."""
    if not isinstance(service_id, str) or not service_id:
        raise InvalidArgument(None, "service_topic: service_id must be a non-empty string")
    if has_control_character(service_id):
        raise InvalidArgument(None, "service_topic: service_id contains a control character")
    topic = service_id + TOPIC_SEPARATOR
    if kind is None:
        if object_type is not None:
            raise InvalidArgument(None, "service_topic: object_type needs kind (topics are verb.OBJECT_TYPE)")
        return topic
    if not isinstance(kind, EventKind) and kind in _KINDS_BY_VALUE:
        kind = _KINDS_BY_VALUE[kind]  # "lease.expired" as well as "expired"
    verb = kind.verb if isinstance(kind, EventKind) else str(kind)
    if verb not in _VERBS.values():
        raise InvalidArgument(None, f"service_topic: unknown event kind {kind!r}")
    topic += verb + "."
    if object_type is not None:
        topic += ObjectType(object_type).value
    return topic
