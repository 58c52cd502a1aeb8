"""Request building and reply checking shared by Client and AsyncClient,
and the object-id conventions of the convenience helpers (identical to the
C SDK's)."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Union

from .codec import Reply, Request
from .errors import InvalidArgument, ProtocolError, error_from_code
from .types import (
    TTL,
    CleanupConfig,
    CleanupStatus,
    Command,
    Health,
    Lease,
    LeaseState,
    ObjectType,
    RenewResult,
    ReplayResult,
    ShardMap,
    code_name,
    has_control_character,
    ttl_to_ms,
)

CleanupArg = Union[CleanupConfig, str, None]


def new_idempotency_key() -> str:
    """An idempotency key the SDK makes: 128 random bits, 32 lowercase hex characters."""
    return secrets.token_hex(16)


class RequestBuilder:
    """Builds the Request of each operation for one service id.

    ``auto_idempotency_key()`` true (a client with several endpoints,
    docs/CLUSTER.md "Client routing"): a CREATE without an idempotency key
    gets one, so that it is safe to send again to another broker."""

    def __init__(self, service_id: Optional[str], auto_idempotency_key: Optional[Callable[[], bool]] = None) -> None:
        self._auto_key = auto_idempotency_key
        if service_id is not None and not isinstance(service_id, str):
            raise InvalidArgument(None, "service_id must be a string")
        if service_id is not None and has_control_character(service_id):
            # the broker refuses it too: its events' topics end it with U+001F
            raise InvalidArgument(None, "service_id: contains a control character")
        self.service_id = service_id

    def _service(self) -> Optional[str]:
        # None (no key): with CURVE the broker acts for the service of the
        # client's key; without, it answers INVALID_ARGUMENT "service_id: required"
        return self.service_id or None

    def create(
        self,
        object_id: str,
        object_type: Union[ObjectType, str],
        ttl: Optional[TTL],
        metadata: Optional[Mapping[str, str]],
        cleanup: CleanupArg,
        idempotency_key: Optional[str],
    ) -> Request:
        if isinstance(cleanup, str):
            cleanup = CleanupConfig(url=cleanup)
        if idempotency_key is None and self._auto_key is not None and self._auto_key():
            idempotency_key = new_idempotency_key()
        return Request(
            Command.CREATE,
            object_id=object_id,
            object_type=ObjectType(object_type),
            service_id=self._service(),
            ttl_ms=None if ttl is None else ttl_to_ms(ttl),
            metadata=None if metadata is None else dict(metadata),
            cleanup=cleanup,
            idempotency_key=idempotency_key,
        )

    def renew(self, lease_id: str, ttl: Optional[TTL]) -> Request:
        return Request(
            Command.RENEW,
            lease_id=lease_id,
            service_id=self._service(),
            ttl_ms=None if ttl is None else ttl_to_ms(ttl),
        )

    def renew_batch(self, lease_ids: Sequence[str], ttl: Optional[TTL]) -> Request:
        return Request(
            Command.RENEW_BATCH,
            service_id=self._service(),
            lease_ids=list(lease_ids),
            ttl_ms=None if ttl is None else ttl_to_ms(ttl),
        )

    def release(self, lease_id: str, retain: bool) -> Request:
        return Request(
            Command.RELEASE,
            lease_id=lease_id,
            service_id=self._service(),
            retain=True if retain else None,
        )

    @staticmethod
    def get(lease_id: str) -> Request:
        return Request(Command.GET, lease_id=lease_id)

    @staticmethod
    def list(
        service_id: Optional[str],
        object_id: Optional[str],
        object_type: Union[ObjectType, str, None],
        state: Union[LeaseState, str, None],
        cursor: Optional[str],
        page_size: int,
        cleanup_status: Union[CleanupStatus, str, None] = None,
    ) -> Request:
        return Request(
            Command.LIST,
            service_id=service_id,
            object_id=object_id,
            object_type=None if object_type is None else ObjectType(object_type),
            state=None if state is None else LeaseState(state),
            cleanup_status=None if cleanup_status is None else CleanupStatus(cleanup_status),
            cursor=cursor,
            limit=page_size,
        )

    @staticmethod
    def retry(lease_id: str) -> Request:
        return Request(Command.RETRY, lease_id=lease_id)

    @staticmethod
    def health() -> Request:
        return Request(Command.HEALTH)

    @staticmethod
    def stats() -> Request:
        return Request(Command.STATS)

    @staticmethod
    def replay(after_seq: int, limit: Optional[int], shard: Optional[int] = None) -> Request:
        return Request(Command.REPLAY, after_seq=after_seq, limit=limit, shard=shard)

    @staticmethod
    def map() -> Request:
        return Request(Command.MAP)


# Reply interpretation: raise the protocol error, or return the typed payload.


def check(reply: Reply) -> Reply:
    if not reply.ok:
        raise error_from_code(
            code_name(reply.code),
            reply.message or "",
            reply.versions or (),
            shard=reply.shard,
            owner=reply.owner,
            map_version=reply.map_version,
            retry_ms=reply.retry_ms,
        )
    return reply


def _missing(what: str) -> ProtocolError:
    return ProtocolError(None, f"OK reply without {what}")


def lease_of(reply: Reply) -> Lease:
    if check(reply).lease is None:
        raise _missing("lease")
    return reply.lease  # type: ignore[return-value]


def results_of(reply: Reply, count: int) -> List[RenewResult]:
    results = check(reply).results
    if results is None or len(results) != count:
        raise _missing(f"{count} results")
    return results


def page_of(reply: Reply) -> "tuple[List[Lease], Optional[str]]":
    if check(reply).leases is None:
        raise _missing("leases")
    return reply.leases, reply.cursor  # type: ignore[return-value]


def health_of(reply: Reply) -> Health:
    if check(reply).health is None:
        raise _missing("health fields")
    return reply.health  # type: ignore[return-value]


def stats_of(reply: Reply) -> Dict[str, int]:
    if check(reply).stats is None:
        raise _missing("stats")
    return reply.stats  # type: ignore[return-value]


def replay_of(reply: Reply) -> ReplayResult:
    if check(reply).events is None or reply.last_seq is None:
        raise _missing("events and last_seq")
    return ReplayResult(
        events=reply.events, last_seq=reply.last_seq, scanned_seq=reply.scanned_seq  # type: ignore[arg-type]
    )


def shard_map_of(reply: Reply) -> ShardMap:
    if check(reply).shard_map is None:
        raise _missing("map_version, cluster and brokers")
    return reply.shard_map  # type: ignore[return-value]


# Object-id conventions of the helpers (the same as the C SDK's gt_client).


def temp_file_args(path: str, cleanup_url: Optional[str]) -> Dict[str, Any]:
    return dict(
        object_id=path,
        object_type=ObjectType.TEMPORARY_FILE,
        metadata={"path": path},
        cleanup=cleanup_url,
    )


def db_row_args(table: str, row_id: str, cleanup_url: Optional[str]) -> Dict[str, Any]:
    return dict(
        object_id=f"{table}:{row_id}",
        object_type=ObjectType.DATABASE_ROW,
        metadata={"table": table, "row_id": str(row_id)},
        cleanup=cleanup_url,
    )


def blob_args(bucket: str, key: str, cleanup_url: Optional[str]) -> Dict[str, Any]:
    return dict(
        object_id=f"{bucket}/{key}",
        object_type=ObjectType.BLOB_STORAGE,
        metadata={"bucket": bucket, "key": key},
        cleanup=cleanup_url,
    )


def session_args(session_id: str, user_id: str, cleanup_url: Optional[str]) -> Dict[str, Any]:
    return dict(
        object_id=session_id,
        object_type=ObjectType.WEBSOCKET_SESSION,
        metadata={"user_id": user_id},
        cleanup=cleanup_url,
    )


def cache_args(cache_key: str, cleanup_url: Optional[str]) -> Dict[str, Any]:
    return dict(
        object_id=cache_key,
        object_type=ObjectType.CACHE_ENTRY,
        metadata={"cache_key": cache_key},
        cleanup=cleanup_url,
    )


def seconds(timeout: Union[float, timedelta, None], default: float) -> float:
    if timeout is None:
        return default
    if isinstance(timeout, timedelta):
        return timeout.total_seconds()
    return float(timeout)
