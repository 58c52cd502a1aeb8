"""The blocking, thread-safe client.

One DEALER socket per broker endpoint (opened when first used, with
ZMQ_IMMEDIATE) is owned by one background I/O thread.  Callers (any
number of threads) encode their request, register a future under a fresh
request id, hand the body over a thread-safe queue and wake the I/O thread
through a socket pair; the I/O thread sends, receives, and completes the
future whose ``rid`` matches the reply.  Every call has a timeout: a call
whose reply does not come (the broker is down or restarting) raises
:class:`~garbagetruck.errors.Timeout`.  ZeroMQ reconnects by itself, so later
calls work once the broker is back.

With CURVE (``server_key=`` and ``client_cert=``, or ``$GT_SERVER_KEY`` and
``$GT_CLIENT_CERT``: :mod:`garbagetruck.curve`) the DEALER authenticates
with the client's key; a broker that does not trust it never answers, so its
calls time out.
"""

from __future__ import annotations

import collections
import itertools
import logging
import socket
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import timedelta
from typing import Any, Deque, Dict, Generator, Iterator, List, Mapping, Optional, Sequence, Set, Tuple, TypeVar, Union

import zmq

from . import _requests as rq
from ._defaults import DEFAULT_TIMEOUT
from ._routing import NotSent, Router, Sleep, call_steps, check_endpoint, parse_endpoints, refresh_steps, renew_batch_steps
from ._routing import list_targets, refreshed_map
from .codec import Reply, Request, decode_reply, encode_request
from .curve import CurveKeys, PathOrKey, resolve_curve
from .errors import ClientClosed, GarbageTruckError, InvalidArgument, LeaseEnded, NotFound, ProtocolError, Timeout
from .keepalive import HeldLease, ThreadKeeper
from .types import (
    TTL,
    CleanupStatus,
    Health,
    Lease,
    LeaseState,
    ObjectType,
    RenewResult,
    ReplayResult,
    ShardMap,
)

__all__ = ["Client", "DEFAULT_ENDPOINT", "HoldContext"]

log = logging.getLogger("garbagetruck.client")

DEFAULT_ENDPOINT = "tcp://127.0.0.1:50051"
Timeoutish = Union[float, timedelta, None]
#: One endpoint, several in a list, or several in one string with commas.
Endpoints = Union[str, Sequence[str]]
T = TypeVar("T")


def configure_dealer(sock: "zmq.Socket[Any]", curve: Optional[CurveKeys] = None) -> None:
    """Socket options shared by the sync and async clients (before connect)."""
    if curve is not None:
        curve.apply(sock)
    sock.setsockopt(zmq.LINGER, 0)
    # Reconnect quickly after a broker restart, backing off to 1 s.
    sock.setsockopt(zmq.RECONNECT_IVL, 100)
    sock.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
    # Requests are bounded by their callers' timeouts, not by the HWM.
    sock.setsockopt(zmq.SNDHWM, 0)
    sock.setsockopt(zmq.RCVHWM, 0)
    # Never queue a request for a broker that is not connected: a send then
    # fails at once (Again), and a client with several endpoints tries
    # another (docs/CLUSTER.md, "Client routing").
    sock.setsockopt(zmq.IMMEDIATE, 1)


class _Connection:
    """The DEALER sockets (one per endpoint, opened when first used), their
    I/O thread, and the table of pending calls."""

    def __init__(
        self,
        endpoint: str,
        context: Optional[zmq.Context],  # type: ignore[type-arg]
        curve: Optional[CurveKeys] = None,
    ) -> None:
        self.endpoint = endpoint
        self._curve = curve
        self._context = context or zmq.Context.instance()
        self._lock = threading.Lock()
        self._pending: Dict[int, "Future[Reply]"] = {}
        # (rid, endpoint, body, give up sending at: monotonic seconds or None)
        self._outbox: Deque[Tuple[int, str, bytes, Optional[float]]] = collections.deque()
        self._rids = itertools.count(1)
        self._closed = False
        self._stalled = False  # a socket refused a send; retry on a timer
        self._dealers: Dict[str, "zmq.Socket[Any]"] = {}  # the I/O thread's
        self._poller = zmq.Poller()
        self._wake_recv, self._wake_send = socket.socketpair()
        self._wake_recv.setblocking(False)
        self._wake_send.setblocking(False)
        self._started = threading.Event()
        self._start_error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._run, name="garbagetruck-io", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._start_error is not None:
            self._thread.join()
            self._close_wakeup()
            raise self._start_error

    # -- caller side ------------------------------------------------------

    def submit(
        self, endpoint: str, request: Request, give_up_after: Optional[float] = None
    ) -> "Tuple[int, Future[Reply]]":
        """Queue ``request`` for ``endpoint``; its future gets the reply, or
        NotSent if it could not go out within ``give_up_after`` s (None: it
        waits for a connection as long as its caller waits)."""
        future: "Future[Reply]" = Future()
        give_up = None if give_up_after is None else time.monotonic() + give_up_after
        with self._lock:
            if self._closed:
                raise ClientClosed(None, "the client is closed")
            rid = next(self._rids)
            request.rid = rid
            body = encode_request(request)
            self._pending[rid] = future
            self._outbox.append((rid, endpoint, body, give_up))
        self._wake()
        return rid, future

    def wait(self, rid: int, future: "Future[Reply]", timeout: float, request: Request, endpoint: str) -> Reply:
        try:
            return future.result(max(0.0, timeout))
        except FutureTimeout:
            with self._lock:
                self._pending.pop(rid, None)
            if future.done():  # the reply raced the timeout
                return future.result()
            raise Timeout(
                None,
                f"no reply to {request.cmd.value} from {endpoint} within {timeout:g} s "
                "(is the broker running? the outcome of the request is unknown)",
            ) from None

    def call(self, request: Request, timeout: float, endpoint: Optional[str] = None) -> Reply:
        endpoint = endpoint or self.endpoint
        rid, future = self.submit(endpoint, request)
        return self.wait(rid, future, timeout, request, endpoint)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._wake()
        if self._thread is not threading.current_thread():
            self._thread.join(5.0)
        self._close_wakeup()

    def _wake(self) -> None:
        try:
            self._wake_send.send(b"\0")
        except (BlockingIOError, OSError):
            pass  # the pipe is full (a wakeup is pending anyway) or closed

    def _close_wakeup(self) -> None:
        self._wake_recv.close()
        self._wake_send.close()

    # -- I/O thread -------------------------------------------------------

    def _open(self, endpoint: str) -> "zmq.Socket[Any]":
        """The DEALER of ``endpoint``, opened now if it is new."""
        dealer = self._dealers.get(endpoint)
        if dealer is not None:
            return dealer
        dealer = self._context.socket(zmq.DEALER)
        try:
            configure_dealer(dealer, self._curve)
            dealer.connect(endpoint)
        except zmq.ZMQError as exc:
            dealer.close(linger=0)
            raise InvalidArgument(None, f"endpoint {endpoint!r}: {exc}") from None
        except BaseException:
            dealer.close(linger=0)
            raise
        self._dealers[endpoint] = dealer
        self._poller.register(dealer, zmq.POLLIN)
        return dealer

    def _run(self) -> None:
        try:
            self._open(self.endpoint)
        except Exception as exc:
            self._start_error = exc
            self._started.set()
            return
        self._started.set()
        poller = self._poller
        poller.register(self._wake_recv, zmq.POLLIN)
        stall_wait = 1
        try:
            while True:
                # a refused send is tried again soon: 1 ms, doubling to 10 ms
                # (a broker just connecting is served at once, one that is
                # down costs little)
                stall_wait = min(10, stall_wait * 2) if self._stalled else 1
                ready = dict(poller.poll(stall_wait if self._stalled else None))
                self._stalled = False
                if self._wake_recv in ready or self._wake_recv.fileno() in ready:
                    self._drain_wakeups()
                if self._closed:
                    break
                self._send_outbox()
                for dealer in list(self._dealers.values()):
                    if dealer in ready:
                        self._receive(dealer)
        except Exception:  # pragma: no cover - a bug; fail the callers, do not hang them
            log.exception("garbagetruck I/O thread failed")
        finally:
            for dealer in self._dealers.values():
                dealer.close(linger=0)
            self._dealers.clear()
            with self._lock:
                self._closed = True
                pending, self._pending = self._pending, {}
            for future in pending.values():
                if not future.done():
                    future.set_exception(ClientClosed(None, "the client was closed"))

    def _drain_wakeups(self) -> None:
        try:
            while self._wake_recv.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def _fail(self, rid: int, error: BaseException) -> None:
        future = self._take(rid)
        if future is not None:
            future.set_exception(error)

    def _send_outbox(self) -> None:
        with self._lock:
            items = list(self._outbox)
            self._outbox.clear()
        if not items:
            return
        kept: List[Tuple[int, str, bytes, Optional[float]]] = []
        stalled: Set[str] = set()
        now = time.monotonic()
        for item in items:
            rid, endpoint, body, give_up = item
            with self._lock:
                wanted = rid in self._pending
            if not wanted:
                continue  # its caller timed out already: do not send stale work
            if endpoint not in stalled:
                try:
                    dealer = self._open(endpoint)
                except InvalidArgument as exc:
                    self._fail(rid, exc)
                    continue
                # ZMQ_IMMEDIATE: a DEALER queues nothing for a broker it is
                # not connected to, so Again means "no broker there (yet)".
                try:
                    dealer.send(body, zmq.NOBLOCK, copy=False)
                    continue
                except zmq.Again:
                    stalled.add(endpoint)
            if give_up is not None and now >= give_up:
                self._fail(rid, NotSent(endpoint))
            else:
                kept.append(item)  # retried on a timer, in order
        if kept:
            with self._lock:
                self._outbox.extendleft(reversed(kept))
            self._stalled = True

    def _receive(self, dealer: "zmq.Socket[Any]") -> None:
        while True:
            try:
                frames = dealer.recv_multipart(zmq.NOBLOCK, copy=True)
            except zmq.Again:
                return
            if not frames:
                continue
            body = frames[-1]
            try:
                reply = decode_reply(body)
            except ProtocolError as exc:
                rid = getattr(exc, "rid", 0)
                future = self._take(rid)
                if future is None:
                    log.warning("dropping an undecodable reply: %s", exc)
                else:
                    future.set_exception(exc)
                continue
            future = self._take(reply.rid)
            if future is None:
                log.debug("reply to rid %d arrived after its caller gave up", reply.rid)
            else:
                future.set_result(reply)

    def _take(self, rid: int) -> "Optional[Future[Reply]]":
        with self._lock:
            future = self._pending.pop(rid, None)
        if future is not None and future.done():
            return None
        return future


class Client:
    """A blocking GarbageTruck client; safe to share between threads.

    ``service_id`` is the owner claimed by this client's leases (create,
    renew, release): a broker without CURVE requires it; with CURVE it may be
    left out, and the broker acts for the service of the client's key.
    ``timeout`` (seconds; default ``DEFAULT_TIMEOUT``, 5 s, as in every
    GarbageTruck SDK) bounds every call unless a call passes its own
    ``timeout=``.  Use it as a context manager, or call :meth:`close`.

    ``server_key`` (the broker's Z85 public key, or the path of its
    certificate file) and ``client_cert`` (the path of this client's secret
    certificate file) turn CURVE on; each defaults to ``$GT_SERVER_KEY`` /
    ``$GT_CLIENT_CERT``, and ``""`` means none whatever the environment says.
    Only one of the two raises InvalidArgument (a ValueError).  See
    :mod:`garbagetruck.curve`.

    ``endpoint`` may name several brokers sharing one database (a list, or
    one string with commas: ``"tcp://a:50051,tcp://b:50051"``).  The client
    then follows docs/CLUSTER.md, "Client routing": it fetches the shard
    map, sends each request to the owner of its shard, waits at most 1 s
    per attempt, follows MOVED, waits out TRY_AGAIN and UNAVAILABLE, and
    sends again what is safe to repeat (a CREATE gets an idempotency key
    for that) until the call's timeout.  With one endpoint nothing of this
    happens unless a broker answers MOVED.
    """

    def __init__(
        self,
        endpoint: Endpoints = DEFAULT_ENDPOINT,
        service_id: Optional[str] = None,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        context: Optional[zmq.Context] = None,  # type: ignore[type-arg]
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
        self._conn = _Connection(self.endpoints[0], context, self.curve)
        self._keeper_lock = threading.Lock()
        self._keeper: Optional[ThreadKeeper] = None

    # -- plumbing ---------------------------------------------------------

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def close(self) -> None:
        """Stop the keeper and the I/O thread; pending calls fail with ClientClosed."""
        with self._keeper_lock:
            keeper, self._keeper = self._keeper, None
        if keeper is not None:
            keeper.stop()
        self._conn.close()

    def call(self, request: Request, timeout: Timeoutish = None) -> Reply:
        """Send any request and return its reply as is (errors not raised),
        routed to the owner of its shard and retried as docs/CLUSTER.md
        ("Client routing") says.  Raises Timeout when no attempt got a reply."""
        return self._drive(call_steps(self._router, request, rq.seconds(timeout, self.timeout)))

    @property
    def known_endpoints(self) -> List[str]:
        """Every endpoint this client knows: those it was given, then those
        the shard map or a MOVED reply named."""
        return list(self._router.endpoints)

    def _drive(self, steps: "Generator[Any, Any, T]") -> T:
        """Run the steps of a routed call (garbagetruck._routing) on the
        DEALER sockets: the sends of one step go out at once."""
        outcomes: Optional[List[Any]] = None
        while True:
            try:
                step = steps.send(outcomes)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            if isinstance(step, Sleep):
                time.sleep(max(0.0, step.seconds))
                outcomes = None
                continue
            started = time.monotonic()
            submitted = [self._conn.submit(send.endpoint, send.request, send.grace) for send in step]
            outcomes = []
            for send, (rid, future) in zip(step, submitted):
                try:
                    left = started + send.timeout - time.monotonic()
                    outcomes.append(self._conn.wait(rid, future, left, send.request, send.endpoint))
                except ClientClosed:
                    raise
                except GarbageTruckError as exc:  # Timeout, NotSent, ProtocolError, a bad endpoint
                    outcomes.append(exc)

    # -- operations -------------------------------------------------------

    def create_lease(
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
        """Lease ``object_id``.  ``ttl`` in seconds or a timedelta (default:
        the broker's GC_DEFAULT_LEASE_DURATION); ``cleanup`` a CleanupConfig
        or just its URL."""
        request = self._build.create(object_id, object_type, ttl, metadata, cleanup, idempotency_key)
        return rq.lease_of(self.call(request, timeout))

    def renew_lease(self, lease_id: str, ttl: Optional[TTL] = None, *, timeout: Timeoutish = None) -> Lease:
        """Extend a lease by ``ttl`` (default: its own TTL) from now."""
        return rq.lease_of(self.call(self._build.renew(lease_id, ttl), timeout))

    def renew_leases(
        self, lease_ids: Sequence[str], ttl: Optional[TTL] = None, *, timeout: Timeoutish = None
    ) -> List[RenewResult]:
        """Renew many leases in one RENEW_BATCH; one result per id, in order."""
        ids = list(lease_ids)
        if not ids:
            return rq.results_of(self.call(self._build.renew_batch(ids, ttl), timeout), 0)
        make = lambda some: self._build.renew_batch(some, ttl)  # noqa: E731
        return self._drive(renew_batch_steps(self._router, ids, make, rq.seconds(timeout, self.timeout)))

    def release_lease(self, lease_id: str, retain: bool = False, *, timeout: Timeoutish = None) -> Lease:
        """Drop a lease.  ``retain=True`` keeps the object (no cleanup runs)
        if this was its last lease."""
        return rq.lease_of(self.call(self._build.release(lease_id, retain), timeout))

    def get_lease(self, lease_id: str, *, timeout: Timeoutish = None) -> Lease:
        return rq.lease_of(self.call(self._build.get(lease_id), timeout))

    def list_leases(
        self,
        service_id: Optional[str] = None,
        object_id: Optional[str] = None,
        object_type: Union[ObjectType, str, None] = None,
        state: Union[LeaseState, str, None] = None,
        page_size: int = 100,
        *,
        cleanup_status: Union[CleanupStatus, str, None] = None,
        timeout: Timeoutish = None,
    ) -> Iterator[Lease]:
        """Iterate over every lease matching the filters (AND), oldest first,
        fetching pages of ``page_size`` as needed.  ``cleanup_status``
        (PENDING, DELIVERED, DEAD) selects leases by their cleanup callback:
        ``list_leases(cleanup_status="DEAD")`` lists the dead letters.
        In cluster mode every broker of the map is asked in turn (each
        answers for its shards) and their pages follow one another."""
        seconds = rq.seconds(timeout, self.timeout)
        for broker in self._list_brokers():
            cursor: Optional[str] = None
            while True:
                request = self._build.list(service_id, object_id, object_type, state, cursor, page_size,
                                           cleanup_status)
                leases, cursor = rq.page_of(self._drive(call_steps(self._router, request, seconds, broker)))
                yield from leases
                if cursor is None:
                    break

    def _list_brokers(self) -> List[Optional[str]]:
        """Where LIST goes: in cluster mode each broker of the map, else the
        owner (None: routed as any request)."""
        if self._router.needs_map(time.monotonic()):
            self._drive(refresh_steps(self._router, time.monotonic() + self.timeout))
        return list_targets(self._router)

    def retry_cleanup(self, lease_id: str, *, timeout: Timeoutish = None) -> Lease:
        """RETRY: deliver the dead-lettered cleanup callback of a lease again
        (attempts counted from 1, same Idempotency-Key).  Raises
        InvalidArgument if the lease has no dead callback, NotFound if the
        lease is unknown."""
        return rq.lease_of(self.call(self._build.retry(lease_id), timeout))

    def health(self, *, timeout: Timeoutish = None) -> Health:
        return rq.health_of(self.call(self._build.health(), timeout))

    def stats(self, *, timeout: Timeoutish = None) -> Dict[str, int]:
        return rq.stats_of(self.call(self._build.stats(), timeout))

    def replay(
        self,
        after_seq: int,
        limit: Optional[int] = None,
        shard: Optional[int] = None,
        *,
        timeout: Timeoutish = None,
    ) -> ReplayResult:
        """Events with ``seq > after_seq`` (at most ``limit``; broker default 100).
        ``shard`` (cluster mode, GTLP.md §14.4) replays that shard's events,
        whose ``seq`` counts within the shard; a broker in single mode
        ignores it."""
        return rq.replay_of(self.call(self._build.replay(after_seq, limit, shard), timeout))

    def shard_map(self, *, timeout: Timeoutish = None) -> ShardMap:
        """MAP (GTLP.md §14.2): which broker owns which shard, as the broker
        asked sees it.  A broker without cluster support raises
        UnsupportedCommand.  With several endpoints each is asked in turn
        (at most 1 s each) until one answers, and the client routes by
        the answer."""
        seconds = rq.seconds(timeout, self.timeout)
        if not self._router.multi:
            return rq.shard_map_of(self.call(self._build.map(), seconds))
        shard_map, last = self._drive(refresh_steps(self._router, time.monotonic() + seconds))
        return refreshed_map(shard_map, last, seconds)

    # -- convenience ------------------------------------------------------

    def create_temp_file_lease(self, path: str, ttl: TTL, cleanup_url: Optional[str] = None) -> Lease:
        """Lease a temporary file: object_id = path, metadata {"path"}."""
        return self.create_lease(ttl=ttl, **rq.temp_file_args(path, cleanup_url))

    def create_db_row_lease(
        self, table: str, row_id: str, ttl: TTL, cleanup_url: Optional[str] = None
    ) -> Lease:
        """Lease a database row: object_id = "table:row_id", metadata {"table", "row_id"}."""
        return self.create_lease(ttl=ttl, **rq.db_row_args(table, row_id, cleanup_url))

    def create_blob_lease(self, bucket: str, key: str, ttl: TTL, cleanup_url: Optional[str] = None) -> Lease:
        """Lease a blob: object_id = "bucket/key", metadata {"bucket", "key"}."""
        return self.create_lease(ttl=ttl, **rq.blob_args(bucket, key, cleanup_url))

    def create_session_lease(
        self, session_id: str, user_id: str, ttl: TTL, cleanup_url: Optional[str] = None
    ) -> Lease:
        """Lease a WebSocket session: object_id = session_id, metadata {"user_id"}."""
        return self.create_lease(ttl=ttl, **rq.session_args(session_id, user_id, cleanup_url))

    def create_cache_lease(self, cache_key: str, ttl: TTL, cleanup_url: Optional[str] = None) -> Lease:
        """Lease a cache entry: object_id = cache_key, metadata {"cache_key"}."""
        return self.create_lease(ttl=ttl, **rq.cache_args(cache_key, cleanup_url))

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
    ) -> "HoldContext":
        """``with client.hold(...) as held:`` creates a lease, keeps it alive
        in the background, and releases it on exit (``retain_on_exit`` keeps
        the object).  The arguments up to ``idempotency_key`` are those of
        :meth:`create_lease`, in its order; ``timeout`` bounds the CREATE.
        See :class:`~garbagetruck.keepalive.HeldLease`."""
        return HoldContext(
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

    def _keeper_for_leases(self) -> ThreadKeeper:
        with self._keeper_lock:
            if self._keeper is None:
                self._keeper = ThreadKeeper(self._renew_for_keeper, self.timeout)
            return self._keeper

    def _renew_for_keeper(self, lease_ids: List[str], timeout: float) -> List[RenewResult]:
        return self.renew_leases(lease_ids, timeout=timeout)


class HoldContext:
    """The context manager returned by :meth:`Client.hold`."""

    def __init__(self, client: Client, create_args: Dict[str, Any], retain_on_exit: bool, on_lost: Any) -> None:
        self._client = client
        self._create_args = create_args
        self._retain = retain_on_exit
        self._on_lost = on_lost
        self._held: Optional[HeldLease] = None

    def __enter__(self) -> HeldLease:
        sent_at = time.monotonic()
        lease = self._client.create_lease(**self._create_args)
        self._held = HeldLease(lease, self._on_lost, self._retain)
        self._client._keeper_for_leases().add(self._held, sent_at)
        return self._held

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        held = self._held
        assert held is not None
        self._client._keeper_for_leases().remove(held)
        if held.lost:
            return
        try:
            self._client.release_lease(held.lease_id, retain=held.retain_on_exit)
        except (LeaseEnded, NotFound):
            pass  # it ended on its own meanwhile: nothing left to release
        except GarbageTruckError:
            if exc_type is None:
                raise
            log.warning("could not release lease %s while unwinding", held.lease_id, exc_info=True)
