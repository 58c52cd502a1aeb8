"""The asyncio client: the same surface as :class:`~garbagetruck.Client`,
with coroutines.

One DEALER socket per broker endpoint (opened when first used, with
ZMQ_IMMEDIATE) carries any number of requests at once; a reader task per
socket receives every reply and completes the future of its ``rid``.
Several endpoints are routed as :class:`~garbagetruck.Client` does
(docs/CLUSTER.md, "Client routing").
A client belongs to the event loop it is first used in.  CURVE settings
(``server_key=``, ``client_cert=``) are those of :class:`~garbagetruck.Client`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from datetime import timedelta
from typing import Any, AsyncIterator, Dict, Generator, List, Mapping, Optional, Sequence, TypeVar, Union

import zmq
import zmq.asyncio

from . import _requests as rq
from ._defaults import DEFAULT_TIMEOUT
from ._routing import NotSent, Router, Send, Sleep, call_steps, check_endpoint, parse_endpoints, refresh_steps, renew_batch_steps
from ._routing import list_targets, refreshed_map
from .client import DEFAULT_ENDPOINT, Endpoints, configure_dealer
from .codec import Reply, Request, decode_reply, encode_request
from .curve import CurveKeys, PathOrKey, resolve_curve
from .errors import ClientClosed, GarbageTruckError, InvalidArgument, LeaseEnded, NotFound, ProtocolError, Timeout
from .keepalive import AsyncHeldLease, TaskKeeper
from .types import TTL, CleanupStatus, Health, Lease, LeaseState, ObjectType, RenewResult, ReplayResult, ShardMap

__all__ = ["AsyncClient", "AsyncHoldContext"]

log = logging.getLogger("garbagetruck.aio")
Timeoutish = Union[float, timedelta, None]
T = TypeVar("T")


class AsyncClient:
    """An asyncio GarbageTruck client.  ``async with AsyncClient(...) as c:``
    or ``await c.close()`` when done.  The arguments are those of
    :class:`~garbagetruck.Client`, CURVE's ``server_key`` and
    ``client_cert`` included (checked here, applied at the first call)."""

    def __init__(
        self,
        endpoint: Endpoints = DEFAULT_ENDPOINT,
        service_id: Optional[str] = None,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        context: Optional[zmq.asyncio.Context] = None,
        server_key: PathOrKey = None,
        client_cert: PathOrKey = None,
    ) -> None:
        #: The endpoints this client was given (more are learnt from the map).
        self.endpoints: List[str] = parse_endpoints(endpoint)
        for each in self.endpoints:
            check_endpoint(each)
        #: The endpoint, or the endpoints joined with commas.
        self.endpoint = ",".join(self.endpoints)
        self.service_id = service_id
        self.timeout = float(timeout)
        self._router = Router(self.endpoints)
        self._build = rq.RequestBuilder(service_id, lambda: self._router.multi)
        #: The CURVE keys in use, or None (plaintext).
        self.curve: Optional[CurveKeys] = resolve_curve(server_key, client_cert)
        self._context = context
        self._sockets: Dict[str, zmq.asyncio.Socket] = {}
        self._readers: "List[asyncio.Task[None]]" = []
        self._pending: Dict[int, "asyncio.Future[Reply]"] = {}
        self._rids = itertools.count(1)
        self._closed = False
        self._keeper: Optional[TaskKeeper] = None

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop the keeper and the readers; pending calls fail with ClientClosed."""
        if self._closed:
            return
        self._closed = True
        if self._keeper is not None:
            await self._keeper.stop()
        readers, self._readers = self._readers, []
        for reader in readers:
            reader.cancel()
        for reader in readers:
            try:
                await reader
            except (asyncio.CancelledError, Exception):
                pass
        sockets, self._sockets = self._sockets, {}
        for sock in sockets.values():
            sock.close(linger=0)
        self._fail_pending(ClientClosed(None, "the client was closed"))

    @property
    def known_endpoints(self) -> List[str]:
        """See :attr:`Client.known_endpoints`."""
        return list(self._router.endpoints)

    def _fail_pending(self, error: GarbageTruckError) -> None:
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(error)

    def _socket_for(self, endpoint: str) -> zmq.asyncio.Socket:
        """The DEALER of ``endpoint``, opened (with its reader) when first used."""
        if self._closed:
            raise ClientClosed(None, "the client is closed")
        sock = self._sockets.get(endpoint)
        if sock is None:
            context = self._context or zmq.asyncio.Context.shadow(zmq.Context.instance().underlying)
            sock = context.socket(zmq.DEALER)
            try:
                configure_dealer(sock, self.curve)
                sock.connect(endpoint)
            except zmq.ZMQError as exc:
                sock.close(linger=0)
                raise InvalidArgument(None, f"endpoint {endpoint!r}: {exc}") from None
            self._sockets[endpoint] = sock
            self._readers.append(asyncio.get_running_loop().create_task(self._read(sock)))
        return sock

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

    async def _attempt(self, send: Send) -> Reply:
        """One attempt: send (waiting for a connected broker, at most
        ``send.grace`` s if given) and wait for the reply."""
        sock = self._socket_for(send.endpoint)
        loop = asyncio.get_running_loop()
        rid = next(self._rids)
        send.request.rid = rid
        body = encode_request(send.request)
        future: "asyncio.Future[Reply]" = loop.create_future()
        self._pending[rid] = future
        give_up = None if send.grace is None else loop.time() + send.grace

        async def exchange() -> Reply:
            pause = 0.001
            while True:
                try:
                    # ZMQ_IMMEDIATE: Again means no broker is connected there (yet)
                    await sock.send(body, zmq.NOBLOCK, copy=False)
                    break
                except zmq.Again:
                    if give_up is not None and loop.time() >= give_up:
                        raise NotSent(send.endpoint) from None
                    await asyncio.sleep(pause)
                    pause = min(0.01, pause * 2)
            return await future

        try:
            return await asyncio.wait_for(exchange(), max(0.0, send.timeout))
        except asyncio.TimeoutError:
            raise Timeout(
                None,
                f"no reply to {send.request.cmd.value} from {send.endpoint} within {send.timeout:g} s "
                "(is the broker running? the outcome of the request is unknown)",
            ) from None
        finally:
            self._pending.pop(rid, None)

    async def _outcome(self, send: Send) -> Any:
        try:
            return await self._attempt(send)
        except ClientClosed:
            raise
        except GarbageTruckError as exc:  # Timeout, NotSent, ProtocolError, a bad endpoint
            return exc

    async def _drive(self, steps: "Generator[Any, Any, T]") -> T:
        """Run the steps of a routed call (garbagetruck._routing); the sends
        of one step go out at once."""
        outcomes: Optional[List[Any]] = None
        while True:
            try:
                step = steps.send(outcomes)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            if isinstance(step, Sleep):
                await asyncio.sleep(max(0.0, step.seconds))
                outcomes = None
            else:
                outcomes = list(await asyncio.gather(*(self._outcome(send) for send in step)))

    async def call(self, request: Request, timeout: Timeoutish = None) -> Reply:
        """Send any request and return its reply as is (errors not raised),
        routed and retried as :meth:`Client.call`."""
        if self._closed:
            raise ClientClosed(None, "the client is closed")
        return await self._drive(call_steps(self._router, request, rq.seconds(timeout, self.timeout)))

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
        if not ids:
            return rq.results_of(await self.call(self._build.renew_batch(ids, ttl), timeout), 0)
        make = lambda some: self._build.renew_batch(some, ttl)  # noqa: E731
        return await self._drive(renew_batch_steps(self._router, ids, make, rq.seconds(timeout, self.timeout)))

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
        """``async for lease in client.list_leases(...)`` over every page
        (of every broker in cluster mode, as :meth:`Client.list_leases`)."""
        seconds = rq.seconds(timeout, self.timeout)
        if self._router.needs_map(time.monotonic()):
            await self._drive(refresh_steps(self._router, time.monotonic() + self.timeout))
        for broker in list_targets(self._router):
            cursor: Optional[str] = None
            while True:
                request = self._build.list(service_id, object_id, object_type, state, cursor, page_size,
                                           cleanup_status)
                reply = await self._drive(call_steps(self._router, request, seconds, broker))
                leases, cursor = rq.page_of(reply)
                for lease in leases:
                    yield lease
                if cursor is None:
                    break

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
        seconds = rq.seconds(timeout, self.timeout)
        if not self._router.multi:
            return rq.shard_map_of(await self.call(self._build.map(), seconds))
        shard_map, last = await self._drive(refresh_steps(self._router, time.monotonic() + seconds))
        return refreshed_map(shard_map, last, seconds)

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

    def hold(
        self,
        object_id: str,
        object_type: Union[ObjectType, str] = ObjectType.UNKNOWN,
        ttl: Optional[TTL] = None,
        metadata: Optional[Mapping[str, str]] = None,
        cleanup: rq.CleanupArg = None,
        idempotency_key: Optional[str] = None,
        *,
        retain_on_exit: bool = False,
        on_lost: Optional[Any] = None,
        timeout: Timeoutish = None,
    ) -> "AsyncHoldContext":
        """``async with client.hold(...) as held:`` -- see :meth:`Client.hold`.
        ``on_lost`` may be a plain function or a coroutine function."""
        return AsyncHoldContext(
            self,
            dict(
                object_id=object_id,
                object_type=object_type,
                ttl=ttl,
                metadata=metadata,
                cleanup=cleanup,
                idempotency_key=idempotency_key,
                timeout=timeout,
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


class AsyncHoldContext:
    """The async context manager returned by :meth:`AsyncClient.hold`."""

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
