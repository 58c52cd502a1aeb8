"""GTLP/1 codec: canonical encoding and strict, forward-compatible decoding.

Encoders emit the canonical form of GTLP.md §3: map keys in the order of the
layout tables, optional keys omitted (never ``nil``), ``metadata`` and
``stats`` keys sorted bytewise, shortest integer and string forms (which is
what ``msgpack.packb(use_bin_type=True)`` produces for non-negative ints and
``str``).

Decoders accept keys in any order and ignore keys they do not know, but
reject -- with :class:`~garbagetruck.errors.ProtocolError` -- a body that is
not one map, trailing bytes, invalid UTF-8, a known key with the wrong type,
values past the limits of GTLP.md §8, missing required keys, and a request
``service_id`` with a control character (its events' topics end the service
id with U+001F).

Unknown reply *codes* (from a newer broker) are kept as plain strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

import msgpack  # type: ignore[import-untyped]

from .errors import ProtocolError
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
    ShardMap,
    datetime_to_ms,
    has_control_character,
    ms_to_datetime,
    ms_to_timedelta,
    timedelta_to_ms,
)

__all__ = [
    "PROTOCOL_VERSION",
    "Request",
    "Reply",
    "encode_request",
    "encode_reply",
    "encode_event",
    "decode_request",
    "decode_reply",
    "decode_event",
    "decode_raw",
    "event_topic",
    "lease_to_wire",
    "lease_from_wire",
    "is_lease_id",
    "shard_map_to_wire",
]

PROTOCOL_VERSION = 1

# Limits (GTLP.md §8)
MAX_BODY_SIZE = 1024 * 1024
MAX_OBJECT_ID = 512
MAX_SERVICE_ID = 128
MAX_IDEMPOTENCY_KEY = 128
MAX_META_ENTRIES = 64
MAX_META_KEY = 128
MAX_META_VALUE = 1024
MAX_META_TOTAL = 16384
MAX_URL = 2048
MAX_PAYLOAD = 16384
MAX_RETRIES = 100
MAX_RETRY_DELAY_MS = 3_600_000
MAX_BATCH = 10_000
MAX_PAGE = 1000
MAX_DEPTH = 8
MAX_UINT64 = 2**64 - 1

_LEASE_ID = re.compile(r"[0-9a-f]{32}\Z")

Wire = Dict[str, Any]


def is_lease_id(value: object) -> bool:
    """True if value is exactly 32 lowercase hexadecimal characters."""
    return isinstance(value, str) and _LEASE_ID.match(value) is not None


# Shards (docs/CLUSTER.md): FNV-1a (64 bits) of the object id's UTF-8 bytes,
# mod 256; a lease id's first two hex digits are its shard.  Vectors:
# proto-spec/vectors/shards/shards.json.
SHARD_COUNT = 256


def fnv1a_64(data: bytes) -> int:
    """The 64-bit FNV-1a hash of data."""
    value = 14695981039346656037
    for byte in data:
        value = ((value ^ byte) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return value


def shard_of(object_id: str) -> int:
    """The shard of an object id (every lease of the object lives in it)."""
    return fnv1a_64(object_id.encode("utf-8")) % SHARD_COUNT


def lease_id_shard(lease_id: str) -> int:
    """The shard a lease id names (its first byte)."""
    if not is_lease_id(lease_id):
        raise ValueError(f"not a lease id: {lease_id!r}")
    return int(lease_id[:2], 16)


# --------------------------------------------------------------------------
# Typed messages


@dataclass
class Request:
    """A request body.  Attribute names are the wire keys; ``None`` = absent.

    Only the keys of ``cmd``'s layout table (GTLP.md §5) are encoded.
    """

    cmd: Command
    rid: int = 0
    v: int = PROTOCOL_VERSION
    object_id: Optional[str] = None
    object_type: Optional[ObjectType] = None
    service_id: Optional[str] = None
    lease_id: Optional[str] = None
    lease_ids: Optional[List[str]] = None
    ttl_ms: Optional[int] = None
    metadata: Optional[Dict[str, str]] = None
    cleanup: Optional[CleanupConfig] = None
    idempotency_key: Optional[str] = None
    retain: Optional[bool] = None
    state: Optional[LeaseState] = None
    cleanup_status: Optional[CleanupStatus] = None
    cursor: Optional[str] = None
    limit: Optional[int] = None
    after_seq: Optional[int] = None
    #: REPLAY of one shard (cluster mode, GTLP.md §14.4)
    shard: Optional[int] = None


@dataclass
class Reply:
    """A reply body.  ``code`` is a :class:`Code` (or a plain str for a code
    this SDK does not know); the other attributes are ``None`` when absent."""

    rid: int
    code: Union[Code, str] = Code.OK
    v: int = PROTOCOL_VERSION
    message: Optional[str] = None
    versions: Optional[List[int]] = None
    lease: Optional[Lease] = None
    leases: Optional[List[Lease]] = None
    cursor: Optional[str] = None
    results: Optional[List[RenewResult]] = None
    stats: Optional[Dict[str, int]] = None
    events: Optional[List[Event]] = None
    last_seq: Optional[int] = None
    scanned_seq: Optional[int] = None
    health: Optional[Health] = None
    #: MOVED and TRY_AGAIN (GTLP.md §14.3): the request's shard
    shard: Optional[int] = None
    #: MOVED: the endpoint of the shard's owner
    owner: Optional[str] = None
    #: MOVED: the answering broker's map version (a MAP reply's is in shard_map)
    map_version: Optional[int] = None
    #: TRY_AGAIN: when to retry, in milliseconds (a hint)
    retry_ms: Optional[int] = None
    #: MAP (GTLP.md §14.2): map_version, cluster, brokers
    shard_map: Optional[ShardMap] = None

    @property
    def ok(self) -> bool:
        return self.code == Code.OK


# Request layout tables: (key, required) in canonical order, per command.
# service_id is optional in the codec even where it names the owner: with
# CURVE the broker takes the caller's service from its key; without, the
# broker itself answers INVALID_ARGUMENT "service_id: required".
_REQUEST_LAYOUT: Dict[Command, Tuple[Tuple[str, bool], ...]] = {
    Command.CREATE: (
        ("object_id", True),
        ("object_type", False),
        ("service_id", False),
        ("ttl_ms", False),
        ("metadata", False),
        ("cleanup", False),
        ("idempotency_key", False),
    ),
    Command.RENEW: (("lease_id", True), ("service_id", False), ("ttl_ms", False)),
    Command.RENEW_BATCH: (
        ("service_id", False),
        ("lease_ids", True),
        ("ttl_ms", False),
    ),
    Command.RELEASE: (("lease_id", True), ("service_id", False), ("retain", False)),
    Command.GET: (("lease_id", True),),
    Command.LIST: (
        ("service_id", False),
        ("object_id", False),
        ("object_type", False),
        ("state", False),
        ("cleanup_status", False),
        ("cursor", False),
        ("limit", False),
    ),
    Command.HEALTH: (),
    Command.STATS: (),
    Command.REPLAY: (("after_seq", True), ("limit", False), ("shard", False)),
    Command.RETRY: (("lease_id", True),),
    Command.MAP: (),
}

_HEALTH_KEYS = (
    "status",
    "version",
    "store",
    "store_status",
    "uptime_ms",
    "now",
    "active_leases",
)


# --------------------------------------------------------------------------
# Encoding


def _sorted_map(mapping: Mapping[str, Any]) -> Dict[str, Any]:
    """A dict with keys in bytewise ascending order (GTLP.md §3)."""
    return {k: mapping[k] for k in sorted(mapping, key=lambda k: k.encode("utf-8"))}


def _enum_value(value: Any) -> Any:
    return value.value if hasattr(value, "value") else value


def cleanup_to_wire(cleanup: CleanupConfig) -> Wire:
    out: Wire = {"url": cleanup.url}
    if cleanup.payload is not None:
        out["payload"] = cleanup.payload
    if cleanup.max_retries is not None:
        out["max_retries"] = cleanup.max_retries
    if cleanup.retry_delay is not None:
        out["retry_delay_ms"] = timedelta_to_ms(cleanup.retry_delay)
    return out


def lease_to_wire(lease: Lease) -> Wire:
    """The LEASE map of a lease, keys in canonical order."""
    out: Wire = {
        "id": lease.id,
        "object_id": lease.object_id,
        "object_type": _enum_value(lease.object_type),
        "service_id": lease.service_id,
        "state": _enum_value(lease.state),
        "fence": lease.fence,
        "ttl_ms": timedelta_to_ms(lease.ttl),
        "created_at": datetime_to_ms(lease.created_at),
        "renewed_at": datetime_to_ms(lease.renewed_at),
        "expires_at": datetime_to_ms(lease.expires_at),
        "renewals": lease.renewals,
        "metadata": _sorted_map(lease.metadata),
    }
    if lease.cleanup is not None:
        out["cleanup"] = cleanup_to_wire(lease.cleanup)
    if lease.cleanup_status is not None:
        out["cleanup_status"] = _enum_value(lease.cleanup_status)
        out["cleanup_attempts"] = lease.cleanup_attempts or 0
        if lease.cleanup_error:
            out["cleanup_error"] = lease.cleanup_error
    return out


def _event_to_wire(event: Event) -> Wire:
    out: Wire = {"v": event.v, "seq": event.seq}
    if event.shard is not None:  # cluster mode (GTLP.md §14.4)
        out["shard"] = event.shard
    out.update(
        kind=_enum_value(event.kind),
        at=datetime_to_ms(event.at),
        lease=lease_to_wire(event.lease),
    )
    if event.reason is not None:
        out["reason"] = _enum_value(event.reason)
    return out


def shard_map_to_wire(shard_map: ShardMap) -> Wire:
    """The fields of a MAP reply (GTLP.md §14.2), keys in canonical order."""
    return {
        "map_version": shard_map.map_version,
        "cluster": shard_map.cluster,
        "brokers": [_broker_to_wire(broker) for broker in shard_map.brokers],
    }


def _broker_to_wire(broker: BrokerInfo) -> Wire:
    out: Wire = {
        "broker_id": broker.broker_id,
        "endpoint": broker.endpoint,
        "events_endpoint": broker.events_endpoint,
        "shards": list(broker.shards),
    }
    if broker.epochs is not None:  # absent: a broker before epochs (GTLP.md §14.2)
        out["epochs"] = list(broker.epochs)
    return out


def _pack(body: Wire) -> bytes:
    packed: bytes = msgpack.packb(body, use_bin_type=True)
    return packed


def request_to_wire(request: Request) -> Wire:
    cmd = Command(request.cmd)
    out: Wire = {"v": request.v, "rid": request.rid, "cmd": cmd.value}
    for key, required in _REQUEST_LAYOUT[cmd]:
        value = getattr(request, key)
        if value is None:
            if required:
                raise ValueError(f"{cmd.value} request needs {key}")
            continue
        if key == "metadata":
            value = _sorted_map(value)
        elif key == "cleanup":
            value = cleanup_to_wire(value)
        elif key == "lease_ids":
            value = list(value)
        else:
            value = _enum_value(value)
        out[key] = value
    return out


def encode_request(request: Request) -> bytes:
    """Canonical bytes of a request body."""
    return _pack(request_to_wire(request))


def encode_reply(reply: Reply) -> bytes:
    """Canonical bytes of a reply body (used by tests and tools)."""
    out: Wire = {"v": reply.v, "rid": reply.rid, "code": _enum_value(reply.code)}
    if reply.message is not None:
        out["message"] = reply.message
    if reply.versions is not None:
        out["versions"] = list(reply.versions)
    # MOVED: shard, owner, map_version; TRY_AGAIN: shard, retry_ms (§14.3)
    if reply.shard is not None:
        out["shard"] = reply.shard
    if reply.owner is not None:
        out["owner"] = reply.owner
    if reply.shard_map is not None:
        out.update(shard_map_to_wire(reply.shard_map))
    elif reply.map_version is not None:
        out["map_version"] = reply.map_version
    if reply.retry_ms is not None:
        out["retry_ms"] = reply.retry_ms
    if reply.lease is not None:
        out["lease"] = lease_to_wire(reply.lease)
    if reply.leases is not None:
        out["leases"] = [lease_to_wire(lease) for lease in reply.leases]
    if reply.cursor is not None:
        out["cursor"] = reply.cursor
    if reply.results is not None:
        results = []
        for result in reply.results:
            entry: Wire = {"lease_id": result.lease_id, "code": _enum_value(result.code)}
            if result.expires_at is not None:
                entry["expires_at"] = datetime_to_ms(result.expires_at)
            if result.message is not None:
                entry["message"] = result.message
            results.append(entry)
        out["results"] = results
    if reply.stats is not None:
        out["stats"] = _sorted_map(reply.stats)
    if reply.events is not None:
        out["events"] = [_event_to_wire(event) for event in reply.events]
    if reply.last_seq is not None:
        out["last_seq"] = reply.last_seq
    if reply.scanned_seq is not None:
        out["scanned_seq"] = reply.scanned_seq
    if reply.health is not None:
        health = reply.health
        out.update(
            status=health.status,
            version=health.version,
            store=health.store,
            store_status=health.store_status,
            uptime_ms=timedelta_to_ms(health.uptime),
            now=datetime_to_ms(health.now),
            active_leases=health.active_leases,
        )
    return _pack(out)


def encode_event(event: Event) -> bytes:
    """Canonical bytes of an event body (without its topic frame)."""
    return _pack(_event_to_wire(event))


def event_topic(event: Event) -> str:
    """The PUB topic of an event: ``service_id + "\\x1f" + verb.OBJECT_TYPE``."""
    return event.topic


# --------------------------------------------------------------------------
# Decoding


def _depth(value: Any, level: int = 1) -> int:
    if isinstance(value, dict):
        return max([level] + [_depth(v, level + 1) for v in value.values()])
    if isinstance(value, list):
        return max([level] + [_depth(v, level + 1) for v in value])
    return level


def decode_raw(data: bytes) -> Wire:
    """Decode a body to plain Python (dict in wire key order) with the
    structural checks of GTLP.md §3: exactly one map, string keys, valid
    UTF-8, no trailing bytes, nesting depth at most 8."""
    if len(data) > MAX_BODY_SIZE:
        raise ProtocolError(None, f"body of {len(data)} bytes exceeds 1 MiB")
    try:
        value = msgpack.unpackb(
            data, raw=False, strict_map_key=True, use_list=True
        )
    except msgpack.ExtraData:
        raise ProtocolError(None, "trailing bytes after the body map") from None
    except UnicodeDecodeError:
        raise ProtocolError(None, "string is not valid UTF-8") from None
    except Exception as exc:  # msgpack raises several unrelated types
        raise ProtocolError(None, f"not a MessagePack body: {exc}") from None
    if not isinstance(value, dict):
        raise ProtocolError(None, "body is not a map")
    _check_keys(value, "body")
    if _depth(value) > MAX_DEPTH:
        raise ProtocolError(None, f"body nested deeper than {MAX_DEPTH}")
    return value


def _check_keys(value: Any, where: str) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ProtocolError(None, f"{where}: map key is not a string")
            _check_keys(item, f"{where}.{key}")
    elif isinstance(value, list):
        for item in value:
            _check_keys(item, where)


class _Reader:
    """Typed access to one wire map; error messages name the offending key."""

    def __init__(self, mapping: Any, where: str) -> None:
        if not isinstance(mapping, dict):
            raise ProtocolError(None, f"{where}: expected a map")
        self.mapping = mapping
        self.where = where

    def _fail(self, key: str, what: str) -> ProtocolError:
        return ProtocolError(None, f"{self._path(key)}: {what}")

    def _path(self, key: str) -> str:
        return key if self.where == "body" else f"{self.where}.{key}"

    def has(self, key: str) -> bool:
        return key in self.mapping

    def _get(self, key: str, required: bool) -> Any:
        if key not in self.mapping:
            if required:
                raise self._fail(key, "missing")
            return None
        return self.mapping[key]

    def uint(self, key: str, required: bool = True, maximum: int = MAX_UINT64) -> Any:
        value = self._get(key, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._fail(key, f"expected an unsigned integer, got {_kind(value)}")
        if value < 0:
            raise self._fail(key, "must not be negative")
        if value > maximum:
            raise self._fail(key, f"{value} exceeds {maximum}")
        return value

    def text(
        self, key: str, required: bool = True, min_len: int = 0, max_len: int = 0
    ) -> Any:
        value = self._get(key, required)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self._fail(key, f"expected a string, got {_kind(value)}")
        size = len(value.encode("utf-8"))
        if size < min_len:
            raise self._fail(key, "must not be empty")
        if max_len and size > max_len:
            raise self._fail(key, f"{size} bytes exceeds {max_len}")
        return value

    def boolean(self, key: str, required: bool = True) -> Any:
        value = self._get(key, required)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise self._fail(key, f"expected a boolean, got {_kind(value)}")
        return value

    def lease_id(self, key: str, required: bool = True) -> Any:
        value = self.text(key, required)
        if value is not None and not is_lease_id(value):
            raise self._fail(key, "not a lease id (32 lowercase hex characters)")
        return value

    def enum(self, key: str, enum_type: Any, required: bool = True) -> Any:
        value = self.text(key, required)
        if value is None:
            return None
        try:
            return enum_type(value)
        except ValueError:
            raise self._fail(key, f"unknown value {value!r}") from None

    def array(self, key: str, required: bool = True) -> Any:
        value = self._get(key, required)
        if value is None:
            return None
        if not isinstance(value, list):
            raise self._fail(key, f"expected an array, got {_kind(value)}")
        return value

    def map(self, key: str, required: bool = True) -> Any:
        value = self._get(key, required)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self._fail(key, f"expected a map, got {_kind(value)}")
        return value

    def sub(self, key: str, required: bool = True) -> Optional["_Reader"]:
        value = self.map(key, required)
        return None if value is None else _Reader(value, self._path(key))

    def metadata(self, key: str, required: bool = True) -> Optional[Dict[str, str]]:
        value = self.map(key, required)
        if value is None:
            return None
        if len(value) > MAX_META_ENTRIES:
            raise self._fail(key, f"more than {MAX_META_ENTRIES} entries")
        total = 0
        out: Dict[str, str] = {}
        for meta_key, meta_value in value.items():
            if not isinstance(meta_value, str):
                raise self._fail(key, f"value of {meta_key!r} is not a string")
            key_size = len(meta_key.encode("utf-8"))
            value_size = len(meta_value.encode("utf-8"))
            if not 1 <= key_size <= MAX_META_KEY:
                raise self._fail(key, f"key {meta_key!r} must be 1..{MAX_META_KEY} bytes")
            if value_size > MAX_META_VALUE:
                raise self._fail(key, f"value of {meta_key!r} exceeds {MAX_META_VALUE} bytes")
            total += key_size + value_size
            out[meta_key] = meta_value
        if total > MAX_META_TOTAL:
            raise self._fail(key, f"keys + values exceed {MAX_META_TOTAL} bytes")
        return out


def _kind(value: Any) -> str:
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bytes):
        return "bin"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a map"
    return type(value).__name__


def _code(value: str) -> Union[Code, str]:
    try:
        return Code(value)
    except ValueError:
        return value


def _cleanup_from(reader: _Reader) -> CleanupConfig:
    url = reader.text("url", min_len=1, max_len=MAX_URL)
    delay = reader.uint("retry_delay_ms", False, MAX_RETRY_DELAY_MS)
    return CleanupConfig(
        url=url,
        payload=reader.text("payload", False, max_len=MAX_PAYLOAD),
        max_retries=reader.uint("max_retries", False, MAX_RETRIES),
        retry_delay=None if delay is None else ms_to_timedelta(delay),
    )


def _timestamp(reader: _Reader, key: str, required: bool = True) -> Any:
    value = reader.uint(key, required)
    if value is None:
        return None
    try:
        return ms_to_datetime(value)
    except OverflowError:
        raise ProtocolError(None, f"{reader._path(key)}: timestamp out of range") from None


def _duration(reader: _Reader, key: str, required: bool = True) -> Any:
    value = reader.uint(key, required)
    if value is None:
        return None
    try:
        return ms_to_timedelta(value)
    except OverflowError:
        raise ProtocolError(None, f"{reader._path(key)}: duration out of range") from None


def lease_from_wire(mapping: Any, where: str = "lease") -> Lease:
    """A :class:`Lease` from a decoded LEASE map."""
    reader = _Reader(mapping, where)
    cleanup = reader.sub("cleanup", False)
    cleanup_status = reader.enum("cleanup_status", CleanupStatus, False)
    return Lease(
        id=reader.lease_id("id"),
        object_id=reader.text("object_id", min_len=1, max_len=MAX_OBJECT_ID),
        object_type=reader.enum("object_type", ObjectType),
        service_id=reader.text("service_id", min_len=1, max_len=MAX_SERVICE_ID),
        state=reader.enum("state", LeaseState),
        fence=reader.uint("fence"),
        ttl=_duration(reader, "ttl_ms"),
        created_at=_timestamp(reader, "created_at"),
        renewed_at=_timestamp(reader, "renewed_at"),
        expires_at=_timestamp(reader, "expires_at"),
        renewals=reader.uint("renewals"),
        metadata=reader.metadata("metadata") or {},
        cleanup=None if cleanup is None else _cleanup_from(cleanup),
        cleanup_status=cleanup_status,
        cleanup_attempts=reader.uint("cleanup_attempts", False),
        cleanup_error=reader.text("cleanup_error", False),
    )


def _event_from_wire(mapping: Any, where: str) -> Event:
    reader = _Reader(mapping, where)
    return Event(
        v=reader.uint("v"),
        seq=reader.uint("seq"),
        shard=reader.uint("shard", False, SHARD_COUNT - 1),
        kind=reader.enum("kind", EventKind),
        at=_timestamp(reader, "at"),
        lease=lease_from_wire(reader.map("lease"), reader._path("lease")),
        reason=reader.enum("reason", ReclaimReason, False),
    )


def decode_event(data: bytes) -> Event:
    """Decode an event body (the second frame of a PUB message)."""
    return _event_from_wire(decode_raw(data), "body")


def _check_version(reader: _Reader) -> int:
    return int(reader.uint("v"))


def decode_request(data: bytes) -> Request:
    """Decode a request body, checking required keys and the limits of §8."""
    reader = _Reader(decode_raw(data), "body")
    version = _check_version(reader)
    rid = reader.uint("rid")
    cmd = reader.enum("cmd", Command)
    request = Request(cmd=cmd, rid=rid, v=version)
    for key, required in _REQUEST_LAYOUT[cmd]:
        if key == "object_id":
            value: Any = reader.text(key, required, 1, MAX_OBJECT_ID)
        elif key == "service_id":
            value = reader.text(key, required, 1, MAX_SERVICE_ID)
            if value is not None and has_control_character(value):
                raise ProtocolError(None, "service_id: contains a control character")
        elif key == "idempotency_key":
            value = reader.text(key, required, 1, MAX_IDEMPOTENCY_KEY)
        elif key == "cursor":
            value = reader.text(key, required)
        elif key == "object_type":
            value = reader.enum(key, ObjectType, required)
        elif key == "state":
            value = reader.enum(key, LeaseState, required)
        elif key == "cleanup_status":
            value = reader.enum(key, CleanupStatus, required)
        elif key == "lease_id":
            value = reader.lease_id(key, required)
        elif key in ("ttl_ms", "after_seq"):
            value = reader.uint(key, required)
        elif key == "shard":
            value = reader.uint(key, required, SHARD_COUNT - 1)
        elif key == "limit":
            value = reader.uint(key, required, MAX_PAGE)
            if value == 0:
                raise ProtocolError(None, "limit: must be 1..1000")
        elif key == "retain":
            value = reader.boolean(key, required)
        elif key == "metadata":
            value = reader.metadata(key, required)
        elif key == "cleanup":
            sub = reader.sub(key, required)
            value = None if sub is None else _cleanup_from(sub)
        elif key == "lease_ids":
            ids = reader.array(key, required)
            if ids is not None and not 1 <= len(ids) <= MAX_BATCH:
                raise ProtocolError(None, f"lease_ids: must have 1..{MAX_BATCH} entries")
            for item in ids or ():
                if not is_lease_id(item):
                    raise ProtocolError(None, "lease_ids: entry is not a lease id")
            value = ids
        else:  # pragma: no cover - the layout table and this switch agree
            raise AssertionError(key)
        setattr(request, key, value)
    return request


def _results_from(items: List[Any]) -> List[RenewResult]:
    results = []
    for index, item in enumerate(items):
        reader = _Reader(item, f"results[{index}]")
        results.append(
            RenewResult(
                lease_id=reader.lease_id("lease_id"),
                code=_code(reader.text("code", min_len=1)),
                expires_at=_timestamp(reader, "expires_at", False),
                message=reader.text("message", False),
            )
        )
    return results


def _uints(items: List[Any], where: str, maximum: int = MAX_UINT64) -> List[int]:
    reader = _Reader({str(i): v for i, v in enumerate(items)}, where)
    return [reader.uint(str(i), maximum=maximum) for i in range(len(items))]


def _shard_map_from(reader: _Reader) -> ShardMap:
    brokers = []
    for index, item in enumerate(reader.array("brokers")):
        entry = _Reader(item, f"brokers[{index}]")
        broker_id = entry.text("broker_id")
        endpoint = entry.text("endpoint")
        events_endpoint = entry.text("events_endpoint")
        shards = tuple(_uints(entry.array("shards"), entry._path("shards"), SHARD_COUNT - 1))
        epochs: Optional[Tuple[int, ...]] = None
        raw_epochs = entry.array("epochs", False)  # absent from brokers before it
        if raw_epochs is not None:
            epochs = tuple(_uints(raw_epochs, entry._path("epochs")))
            if len(epochs) != len(shards):
                raise entry._fail(
                    "epochs", f"{len(epochs)} entries, expected {len(shards)} (one per shard)"
                )
        brokers.append(
            BrokerInfo(
                broker_id=broker_id,
                endpoint=endpoint,
                events_endpoint=events_endpoint,
                shards=shards,
                epochs=epochs,
            )
        )
    return ShardMap(
        map_version=reader.uint("map_version"),
        cluster=reader.boolean("cluster"),
        brokers=brokers,
    )


def _stats_from(mapping: Dict[str, Any]) -> Dict[str, int]:
    reader = _Reader(mapping, "stats")
    return {key: reader.uint(key) for key in mapping}


def _rid_of(data: bytes) -> int:
    """Best-effort request id of a body that failed to decode (0 if none)."""
    try:
        value = msgpack.unpackb(data, raw=False, strict_map_key=False)
        rid = value.get("rid") if isinstance(value, dict) else None
        if isinstance(rid, int) and not isinstance(rid, bool) and rid > 0:
            return int(rid)
    except Exception:
        pass
    return 0


def decode_reply(data: bytes) -> Reply:
    """Decode a reply body.  On failure the :class:`ProtocolError` carries
    ``rid`` (the request id if it could be read, else 0)."""
    try:
        return _decode_reply(data)
    except ProtocolError as exc:
        exc.rid = _rid_of(data)  # type: ignore[attr-defined]
        raise


def _decode_reply(data: bytes) -> Reply:
    reader = _Reader(decode_raw(data), "body")
    reply = Reply(
        v=_check_version(reader),
        rid=reader.uint("rid"),
        code=_code(reader.text("code", min_len=1)),
    )
    reply.message = reader.text("message", False)
    versions = reader.array("versions", False)
    if versions is not None:
        reply.versions = _uints(versions, "versions")
    # MOVED / TRY_AGAIN details (§14.3), and a MAP reply (§14.2)
    if reader.has("brokers"):
        reply.shard_map = _shard_map_from(reader)
    else:
        reply.map_version = reader.uint("map_version", False)
    reply.shard = reader.uint("shard", False, SHARD_COUNT - 1)
    reply.owner = reader.text("owner", False)
    reply.retry_ms = reader.uint("retry_ms", False)
    if reader.has("lease"):
        reply.lease = lease_from_wire(reader.map("lease"), "lease")
    leases = reader.array("leases", False)
    if leases is not None:
        reply.leases = [lease_from_wire(item, f"leases[{i}]") for i, item in enumerate(leases)]
    reply.cursor = reader.text("cursor", False)
    results = reader.array("results", False)
    if results is not None:
        reply.results = _results_from(results)
    stats = reader.map("stats", False)
    if stats is not None:
        reply.stats = _stats_from(stats)
    events = reader.array("events", False)
    if events is not None:
        reply.events = [_event_from_wire(item, f"events[{i}]") for i, item in enumerate(events)]
    reply.last_seq = reader.uint("last_seq", False)
    # optional: brokers before CURVE (which never filter REPLAY) omit it
    reply.scanned_seq = reader.uint("scanned_seq", False)
    if reader.has("status"):
        reply.health = Health(
            status=reader.text("status"),
            version=reader.text("version"),
            store=reader.text("store"),
            store_status=reader.text("store_status"),
            uptime=_duration(reader, "uptime_ms"),
            now=_timestamp(reader, "now"),
            active_leases=reader.uint("active_leases"),
        )
    return reply


_DECODERS: Dict[str, Callable[[bytes], Any]] = {
    "request": decode_request,
    "reply": decode_reply,
    "event": decode_event,
}
_ENCODERS: Dict[str, Callable[[Any], bytes]] = {
    "request": encode_request,
    "reply": encode_reply,
    "event": encode_event,
}


def decoder_for(kind: str) -> Callable[[bytes], Any]:
    """The decoder of a vector kind: "request", "reply" or "event"."""
    return _DECODERS[kind]


def encoder_for(kind: str) -> Callable[[Any], bytes]:
    """The encoder of a vector kind: "request", "reply" or "event"."""
    return _ENCODERS[kind]
