"""The asyncio client: the same surface as :class:`~garbagetruck.Client`,
with coroutines.

One DEALER socket per client carries any number of requests at once; a
reader task receives every reply and completes the future of its ``rid``.
A client belongs to the event loop it is first used in.  CURVE settings
(``server_key=``, ``client_cert=``) are those of :class:`~garbagetruck.Client`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from datetime import timedelta
from typing import Any, AsyncIterator, Dict, List, Mapping, Optional, Sequence, Union

import zmq
import zmq.asyncio

from . import _requests as rq
from .client import DEFAULT_ENDPOINT, configure_dealer
from .codec import Reply, Request, decode_reply, encode_request
from .curve import CurveKeys, PathOrKey, resolve_curve
from .errors import ClientClosed, GarbageTruckError, InvalidArgument, LeaseEnded, NotFound, ProtocolError, Timeout
from .keepalive import AsyncHeldLease, TaskKeeper
from .types import TTL, CleanupStatus, Health, Lease, LeaseState, ObjectType, RenewResult, ReplayResult, ShardMap

__all__ = ["AsyncClient", "AsyncLeaseContext"]

log = logging.getLogger("garbagetruck.aio")
Timeoutish = Union[float, timedelta, None]


class AsyncClient:
    """An asyncio GarbageTruck client.  ``async with AsyncClient(...) as c:``
    or ``await c.close()`` when done.  The arguments are those of
    :class:`~garbagetruck.Client`, CURVE's ``server_key`` and
    ``client_cert`` included (checked here, applied at the first call)."""

    def __init__(
        self,
        endpoint: str = DEFAULT_ENDPOINT,
        service_id: Optional[str] = None,
        timeout: float = 5.0,
        *,
        context: Optional[zmq.asyncio.Context] = None,
        server_key: PathOrKey = None,
        client_cert: PathOrKey = None,
    ) -> None:
        self.endpoint = endpoint
        self.service_id = service_id
        self.timeout = float(timeout)
        self._build = rq.RequestBuilder(service_id)
        #: The CURVE keys in use, or None (plaintext).
        self.curve: Optional[CurveKeys] = resolve_curve(server_key, client_cert)
        self._context = context
        self._socket: Optional[zmq.asyncio.Socket] = None
        self._reader: "Optional[asyncio.Task[None]]" = None
        self._pending: Dict[int, "asyncio.Future[Reply]"] = {}
        self._rids = itertools.count(1)
        self._closed = False
        self._keeper: Optional[TaskKeeper] = None

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop the keeper and the reader; pending calls fail with ClientClosed."""
        if self._closed:
            return
        self._closed = True
        if self._keeper is not None:
            await self._keeper.stop()
        if self._reader is not None:
            self._reader.cancel()
            try:
                await self._reader
            except (asyncio.CancelledError, Exception):
                pass
        if self._socket is not None:
            self._socket.close(linger=0)
        self._fail_pending(ClientClosed(None, "the client was closed"))

    def _fail_pending(self, error: GarbageTruckError) -> None:
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(error)

    def _ensure_connected(self) -> zmq.asyncio.Socket:
        if self._closed:
            raise ClientClosed(None, "the client is closed")
        if self._socket is None:
            context = self._context or zmq.asyncio.Context.shadow(zmq.Context.instance().underlying)
            sock = context.socket(zmq.DEALER)
            configure_dealer(sock, self.curve)
            try:
                sock.connect(self.endpoint)
            except zmq.ZMQError as exc:
                sock.close(linger=0)
                raise InvalidArgument(None, f"endpoint {self.endpoint!r}: {exc}") from None
            self._socket = sock
            self._reader = asyncio.get_running_loop().create_task(self._read(sock))
        return self._socket

    async def _read(self, sock: zmq.asyncio.Socket) -> None:
        try:
            while True:
                frames = await sock.recv_multipart()
                if not frames:
                    continue
                try:
                    reply = decode_reply(frames[-1])
                except ProtocolError as exc:
                    future = self._pending.pop(getattr(exc, "rid", 0), None)
                    if future is None or future.done():
                        log.warning("dropping an undecodable reply: %s", exc)
                    else:
                        future.set_exception(exc)
                    continue
                future = self._pending.pop(reply.rid, None)
                if future is not None and not future.done():
                    future.set_result(reply)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the socket failed: fail the callers, do not hang them
            log.exception("garbagetruck reader failed")
            self._fail_pending(ClientClosed(None, f"the connection failed: {exc}"))

    async def call(self, request: Request, timeout: Timeoutish = None) -> Reply:
        """Send any request and return its reply as is (errors not raised)."""
        sock = self._ensure_connected()
        seconds = rq.seconds(timeout, self.timeout)
        rid = next(self._rids)
        request.rid = rid
        body = encode_request(request)
        future: "asyncio.Future[Reply]" = asyncio.get_running_loop().create_future()
        self._pending[rid] = future

        async def exchange() -> Reply:
            await sock.send(body, copy=False)
            return await future

        try:
            return await asyncio.wait_for(exchange(), seconds)
        except asyncio.TimeoutError:
            raise Timeout(
                None,
                f"no reply to {request.cmd.value} from {self.endpoint} within {seconds:g} s "
                "(is the broker running? the outcome of the request is unknown)",
            ) from None
        finally:
            self._pending.pop(rid, None)

    # -- operations -------------------------------------------------------

    async def create_lease(
        self,
        object_id: str,
        object_type: Union[ObjectType, str] = ObjectType.UNKNOWN,
        ttl: Optional[TTL] = None,
        metadata: Optional[Mapping[str, str]] = None,
        cleanup: rq.CleanupArg = None,
        idempotency_key: Optional[str] = None,
        *,
        timeout: Timeoutish = None,
    ) -> Lease:
        request = self._build.create(object_id, object_type, ttl, metadata, cleanup, idempotency_key)
        return rq.lease_of(await self.call(request, timeout))

    async def renew_lease(self, lease_id: str, ttl: Optional[TTL] = None, *, timeout: Timeoutish = None) -> Lease:
        return rq.lease_of(await self.call(self._build.renew(lease_id, ttl), timeout))

    async def renew_leases(
        self, lease_ids: Sequence[str], ttl: Optional[TTL] = None, *, timeout: Timeoutish = None
    ) -> List[RenewResult]:
        ids = list(lease_ids)
        return rq.results_of(await self.call(self._build.renew_batch(ids, ttl), timeout), len(ids))

    async def release_lease(self, lease_id: str, retain: bool = False, *, timeout: Timeoutish = None) -> Lease:
        return rq.lease_of(await self.call(self._build.release(lease_id, retain), timeout))

    async def get_lease(self, lease_id: str, *, timeout: Timeoutish = None) -> Lease:
        return rq.lease_of(await self.call(self._build.get(lease_id), timeout))

    async def list_leases(
        self,
        service_id: Optional[str] = None,
        object_id: Optional[str] = None,
        object_type: Union[ObjectType, str, None] = None,
        state: Union[LeaseState, str, None] = None,
        page_size: int = 100,
        *,
        cleanup_status: Union[CleanupStatus, str, None] = None,
        timeout: Timeoutish = None,
    ) -> AsyncIterator[Lease]:
        """``async for lease in client.list_leases(...)`` over every page."""
        cursor: Optional[str] = None
        while True:
            request = self._build.list(service_id, object_id, object_type, state, cursor, page_size,
                                       cleanup_status)
            leases, cursor = rq.page_of(await self.call(request, timeout))
            for lease in leases:
                yield lease
            if cursor is None:
                return

    async def retry_cleanup(self, lease_id: str, *, timeout: Timeoutish = None) -> Lease:
        """RETRY a lease's dead-lettered cleanup callback (see Client.retry_cleanup)."""
        return rq.lease_of(await self.call(self._build.retry(lease_id), timeout))

    async def health(self, *, timeout: Timeoutish = None) -> Health:
        return rq.health_of(await self.call(self._build.health(), timeout))

    async def stats(self, *, timeout: Timeoutish = None) -> Dict[str, int]:
        return rq.stats_of(await self.call(self._build.stats(), timeout))

    async def replay(
        self,
        after_seq: int,
        limit: Optional[int] = None,
        shard: Optional[int] = None,
        *,
        timeout: Timeoutish = None,
    ) -> ReplayResult:
        """See :meth:`Client.replay`."""
        return rq.replay_of(await self.call(self._build.replay(after_seq, limit, shard), timeout))

    async def shard_map(self, *, timeout: Timeoutish = None) -> ShardMap:
        """MAP: which broker owns which shard (see :meth:`Client.shard_map`)."""
        return rq.shard_map_of(await self.call(self._build.map(), timeout))

    # -- convenience (same conventions as Client) -------------------------

    async def create_temp_file_lease(self, path: str, ttl: TTL, cleanup_url: Optional[str] = None) -> Lease:
        return await self.create_lease(ttl=ttl, **rq.temp_file_args(path, cleanup_url))

    async def create_db_row_lease(
        self, table: str, row_id: str, ttl: TTL, cleanup_url: Optional[str] = None
    ) -> Lease:
        return await self.create_lease(ttl=ttl, **rq.db_row_args(table, row_id, cleanup_url))

    async def create_blob_lease(
        self, bucket: str, key: str, ttl: TTL, cleanup_url: Optional[str] = None
    ) -> Lease:
        return await self.create_lease(ttl=ttl, **rq.blob_args(bucket, key, cleanup_url))

    async def create_session_lease(
        self, session_id: str, user_id: str, ttl: TTL, cleanup_url: Optional[str] = None
    ) -> Lease:
        return await self.create_lease(ttl=ttl, **rq.session_args(session_id, user_id, cleanup_url))

    async def create_cache_lease(self, cache_key: str, ttl: TTL, cleanup_url: Optional[str] = None) -> Lease:
        return await self.create_lease(ttl=ttl, **rq.cache_args(cache_key, cleanup_url))

    # -- keep-alive -------------------------------------------------------

    def lease(
        self,
        object_id: str,
        ttl: Optional[TTL] = None,
        object_type: Union[ObjectType, str] = ObjectType.UNKNOWN,
        retain_on_exit: bool = False,
        on_lost: Optional[Any] = None,
        *,
        metadata: Optional[Mapping[str, str]] = None,
        cleanup: rq.CleanupArg = None,
        idempotency_key: Optional[str] = None,
    ) -> "AsyncLeaseContext":
        """``async with client.lease(...) as held:`` -- see :meth:`Client.lease`.
        ``on_lost`` may be a plain function or a coroutine function."""
        return AsyncLeaseContext(
            self,
            dict(
                object_id=object_id,
                object_type=object_type,
                ttl=ttl,
                metadata=metadata,
                cleanup=cleanup,
                idempotency_key=idempotency_key,
            ),
            retain_on_exit,
            on_lost,
        )

    def _keeper_for_leases(self) -> TaskKeeper:
        if self._keeper is None:
            self._keeper = TaskKeeper(self._renew_for_keeper, self.timeout)
        return self._keeper

    async def _renew_for_keeper(self, lease_ids: List[str], timeout: float) -> List[RenewResult]:
        return await self.renew_leases(lease_ids, timeout=timeout)


class AsyncLeaseContext:
    """The async context manager returned by :meth:`AsyncClient.lease`."""

    def __init__(
        self, client: AsyncClient, create_args: Dict[str, Any], retain_on_exit: bool, on_lost: Any
    ) -> None:
        self._client = client
        self._create_args = create_args
        self._retain = retain_on_exit
        self._on_lost = on_lost
        self._held: Optional[AsyncHeldLease] = None

    async def __aenter__(self) -> AsyncHeldLease:
        sent_at = time.monotonic()
        lease = await self._client.create_lease(**self._create_args)
        self._held = AsyncHeldLease(lease, self._on_lost, self._retain)
        self._client._keeper_for_leases().add(self._held, sent_at)
        return self._held

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        held = self._held
        assert held is not None
        self._client._keeper_for_leases().remove(held)
        if held.lost:
            return
        try:
            await self._client.release_lease(held.lease_id, retain=held.retain_on_exit)
        except (LeaseEnded, NotFound):
            pass
        except GarbageTruckError:
            if exc_type is None:
                raise
            log.warning("could not release lease %s while unwinding", held.lease_id, exc_info=True)
