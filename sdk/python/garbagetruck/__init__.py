"""GarbageTruck Python SDK: lease the resources you create from a
GarbageTruck broker, keep the leases alive, release them, and follow the
broker's events.  The wire protocol is GTLP/1 (proto-spec/GTLP.md)."""

from ._defaults import DEFAULT_TIMEOUT, KEEPALIVE_JITTER, KEEPALIVE_TTL_FRACTION
from .aio import AsyncClient
from .client import DEFAULT_ENDPOINT, Client
from .codec import PROTOCOL_VERSION
from .curve import ENV_CLIENT_CERT, ENV_SERVER_KEY
from .errors import (
    ClientClosed,
    Conflict,
    GarbageTruckError,
    Internal,
    InvalidArgument,
    LeaseEnded,
    Moved,
    NotFound,
    PermissionDenied,
    ProtocolError,
    QuotaExceeded,
    Timeout,
    TooOld,
    TryAgain,
    Unavailable,
    UnsupportedCommand,
    UnsupportedVersion,
)
from .events import Subscriber
from .keepalive import AsyncHeldLease, HeldLease
from .types import (
    BrokerInfo,
    CleanupConfig,
    CleanupStatus,
    Code,
    Command,
    Event,
    EventKind,
    Health,
    Lease,
    LeaseState,
    ObjectType,
    ReclaimReason,
    RenewResult,
    ReplayResult,
    ShardMap,
    TOPIC_SEPARATOR,
    service_topic,
)
from .webhook import verify_signature

from ._version import __version__  # noqa: E402  (a copy of the top-level VERSION)

__all__ = [
    "AsyncClient",
    "AsyncHeldLease",
    "BrokerInfo",
    "CleanupConfig",
    "CleanupStatus",
    "Client",
    "ClientClosed",
    "Code",
    "Command",
    "Conflict",
    "DEFAULT_ENDPOINT",
    "DEFAULT_TIMEOUT",
    "ENV_CLIENT_CERT",
    "ENV_SERVER_KEY",
    "Event",
    "EventKind",
    "GarbageTruckError",
    "Health",
    "HeldLease",
    "Internal",
    "InvalidArgument",
    "KEEPALIVE_JITTER",
    "KEEPALIVE_TTL_FRACTION",
    "Lease",
    "LeaseEnded",
    "LeaseState",
    "Moved",
    "NotFound",
    "ObjectType",
    "PROTOCOL_VERSION",
    "PermissionDenied",
    "ProtocolError",
    "QuotaExceeded",
    "ReclaimReason",
    "RenewResult",
    "ReplayResult",
    "ShardMap",
    "Subscriber",
    "TOPIC_SEPARATOR",
    "Timeout",
    "TooOld",
    "TryAgain",
    "Unavailable",
    "UnsupportedCommand",
    "UnsupportedVersion",
    "service_topic",
    "verify_signature",
    "__version__",
]
