"""Event subscriber with gap detection and replay (GTLP.md §6, §5.9, §11).

The broker numbers its events 1, 2, 3, ... with no gaps at the source.  The
subscriber remembers the last sequence number it accounted for; a live event
with a larger jump means events were lost on the way (PUB drops for slow
subscribers), and the subscriber fetches the missing ones with REPLAY before
delivering the live one.  So the events it yields are complete and in order,
without duplicates, until the broker's history no longer has what is missing
(:class:`~garbagetruck.errors.TooOld`).  After TooOld the subscriber skips
what is lost and carries on with the next live event, so the caller can
re-synchronise (e.g. with LIST) and keep iterating.

To see every gap, the SUB socket receives the whole stream and ``topics``
(ZeroMQ-style prefixes of the topic ``service_id + "\\x1f" + verb.OBJECT_TYPE``,
see :func:`~garbagetruck.service_topic`) are applied by the subscriber, to
live and replayed events alike.  With ``gap_fill=False`` the socket
subscribes to ``topics`` only and nothing is replayed (best effort, like a
raw SUB socket).

With CURVE (``server_key=``, ``client_cert=``, as for
:class:`~garbagetruck.Client`) both the SUB socket and the REPLAY client
authenticate.  A broker with CURVE sends a ``service`` key only its own
service's events, whatever it subscribes to, and filters REPLAY alike; the
sequence numbers of the others' events then look like gaps, which REPLAY's
``scanned_seq`` (how far the broker read) closes without delivering anything.

Several brokers on one database (docs/CLUSTER.md, "Client routing" 6):
give the endpoints as lists (or strings with commas).  With several request
endpoints the subscriber reads the shard map and subscribes on the events
endpoint of every broker in it, and on new ones as the map changes (it
reads the map again every second while events stop, and after a gap).  In
single mode the sequence is one, and gaps are filled with REPLAY from its
owner (the routed client).  In cluster mode each event carries its
``shard`` and ``seq`` counts within it: the subscriber keeps the last
``seq`` of each shard (:attr:`Subscriber.shard_seqs`) and fills a jump with
REPLAY of that shard from its owner.  An event whose ``seq`` is not above
the last one of its stream is a duplicate and is dropped.
"""

from __future__ import annotations

import collections
import logging
import time
from typing import Any, Deque, Dict, Generator, Iterator, List, Optional, Sequence, Tuple, Union

import zmq
import zmq.asyncio

from ._defaults import DEFAULT_TIMEOUT
from ._routing import parse_endpoints
from .aio import AsyncClient
from .client import Client
from .codec import MAX_UINT64, SHARD_COUNT, decode_event
from .curve import PathOrKey, curve_settings, resolve_curve
from .errors import ClientClosed, GarbageTruckError, Moved, ProtocolError, Timeout, TooOld, TryAgain, Unavailable
from .types import Event, ReplayResult, ShardMap

__all__ = ["Subscriber"]

log = logging.getLogger("garbagetruck.events")

_REPLAY_PAGE = 1000
_SUB_HWM = 100_000
#: How often the map is read again while no event arrives.
_MAP_REFRESH = 1.0
#: Errors of a REPLAY or MAP made while idle: tried again later.
_TRANSIENT = (Timeout, Unavailable, TryAgain, Moved)


#: REPLAY after the largest seq has no events, only the broker's newest seq
#: (last_seq): how the subscriber learns where the stream stands.  Every role
#: may REPLAY, where STATS is not open to a CURVE service key.
_HEAD = MAX_UINT64


class _Call:
    """A step of the subscriber: call a method of its client."""

    def __init__(self, name: str, *args: Any, **kwargs: Any) -> None:
        self.name, self.args, self.kwargs = name, args, kwargs


class _Connect:
    """A step of the subscriber: connect the SUB socket to an events endpoint."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint


_Steps = Generator[Union[_Call, _Connect], Any, Any]


class Subscriber:
    """Typed, gap-free event stream.

    * ``events_endpoint``, ``request_endpoint``: where the broker publishes
      and where it takes requests (REPLAY).  Either may be a list of
      endpoints (or one string with commas) for several brokers on one
      database; see the module's documentation.
    * ``topics``: topic prefixes to deliver (default: everything).  Topics
      start with the service: ``service_topic("upload-service")`` (that is
      ``"upload-service\\x1f"``) selects its events, and
      ``service_topic("upload-service", "reclaimed", "TEMPORARY_FILE")`` its
      reclaimed temporary files.  To follow one kind of event across every
      service, subscribe to everything and look at ``event.kind``.
    * ``from_seq``: ``None`` to start with the events published from now on;
      a number N to first replay the history from N (``seq >= N``; 0 or 1 =
      the whole history) and then continue live, without gap or duplicate.
      To resume, pass the ``seq`` of the last event you processed plus one
      (as the C SDK's gt_subscriber_set_from_seq and ``gtctl watch --from``).
      In cluster mode ``seq`` counts per shard and N applies to each.
    * ``idle_check``: after this many seconds without a live event the
      subscriber asks REPLAY whether it missed the tail of the stream.
    * ``server_key``, ``client_cert``: CURVE, as for :class:`~garbagetruck.Client`
      (default ``$GT_SERVER_KEY``, ``$GT_CLIENT_CERT``); used by the SUB
      socket and by the client that replays.

    Iterate with ``for event in sub`` (blocking) or ``async for event in sub``;
    :meth:`receive` / :meth:`areceive` take a timeout.  A subscriber is used
    either synchronously or asynchronously, not both.

    Errors: ``TooOld`` (history gone; iteration can continue), and the
    errors of the REPLAY that fills a gap (e.g. ``Timeout`` while the broker
    is down: nothing is lost, the next receive fills the gap again).
    """

    def __init__(
        self,
        events_endpoint: Union[str, Sequence[str]],
        request_endpoint: Union[str, Sequence[str]],
        topics: Sequence[str] = ("",),
        from_seq: Optional[int] = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        idle_check: float = 1.0,
        gap_fill: bool = True,
        server_key: PathOrKey = None,
        client_cert: PathOrKey = None,
    ) -> None:
        if isinstance(topics, str):
            topics = (topics,)
        # Checked now (a half-given pair fails here, not at the first
        # receive), and frozen: the replaying client gets the same keys as
        # the SUB socket, whatever the environment says by then.
        self._curve = resolve_curve(server_key, client_cert)
        server_key, client_cert = curve_settings(server_key, client_cert)
        self._curve_args = dict(server_key=server_key, client_cert=client_cert)
        self.events_endpoints = parse_endpoints(events_endpoint, "events_endpoint")
        self.request_endpoints = parse_endpoints(request_endpoint, "request_endpoint")
        self.events_endpoint = ",".join(self.events_endpoints)
        self.request_endpoint = ",".join(self.request_endpoints)
        self.topics = tuple(topics) or ("",)
        self.from_seq = from_seq
        self.timeout = timeout
        self.idle_check = idle_check
        self.gap_fill = gap_fill
        #: Sequence number of the last event accounted for (delivered or
        #: filtered out); single mode, where the sequence is one.
        self.last_seq: Optional[int] = None
        #: Cluster mode: the last ``seq`` accounted for in each shard (None:
        #: not known; the next event of that shard is taken as it comes).
        self.shard_seqs: Dict[int, Optional[int]] = {}
        #: True once the map (or an event with a shard) showed cluster mode.
        self.cluster = False
        #: The events endpoints the SUB socket is connected to.
        self.connected: List[str] = []
        self._owners: Optional[List[Optional[str]]] = None  # shard -> owner, from the last map
        self._map_read_at = float("-inf")
        self._ready: Deque[Event] = collections.deque()
        self._started = False
        self._closed = False
        self._sub: Optional[zmq.Socket] = None  # type: ignore[type-arg]
        self._client: Optional[Client] = None
        self._asub: Optional[zmq.asyncio.Socket] = None
        self._aclient: Optional[AsyncClient] = None

    @property
    def _routed(self) -> bool:
        """Several request endpoints: read the map, follow its brokers."""
        return len(self.request_endpoints) > 1

    # -- stream bookkeeping shared by the sync and async paths -------------

    def matches(self, topic: str) -> bool:
        return any(topic.startswith(prefix) for prefix in self.topics)

    def _socket_topics(self) -> List[bytes]:
        if self.gap_fill:
            return [b""]
        return [prefix.encode("utf-8") for prefix in self.topics]

    def _configure(self, sub: "zmq.Socket[Any]") -> None:
        """Options and subscriptions of the SUB socket, before it connects."""
        if self._curve is not None:
            self._curve.apply(sub)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.RCVHWM, _SUB_HWM)
        for prefix in self._socket_topics():
            sub.setsockopt(zmq.SUBSCRIBE, prefix)

    def _last(self, shard: Optional[int]) -> Optional[int]:
        """The last seq of a stream: the one sequence (shard None) or a shard's."""
        if shard is None:
            return self.last_seq
        return self.shard_seqs.get(shard)

    def _set_last(self, shard: Optional[int], seq: Optional[int]) -> None:
        if shard is None:
            self.last_seq = seq
        else:
            self.shard_seqs[shard] = seq

    def _absorb(self, page: ReplayResult, upto: Optional[int], shard: Optional[int] = None) -> bool:
        """Take a REPLAY page (of ``shard`` in cluster mode); return True once
        caught up (to ``upto``, or to the broker's ``last_seq``), or when the
        page made no progress (the history cannot fill the gap: the live
        event then skips it)."""
        last = self._last(shard)
        assert last is not None
        progress = False
        for event in page.events:
            if event.seq <= last:
                continue
            if upto is not None and event.seq > upto:
                break  # the live event takes it from here
            self._account(event, event.topic, shard)
            last = event.seq
            progress = True
        # A broker that filters REPLAY (CURVE, a service's key) says how far
        # it read: none of the events we may see lies before scanned_seq, so
        # moving past it is progress too (as the C SDK's s_replay_page).
        if page.scanned_seq is not None:
            read_to = page.scanned_seq if upto is None else min(page.scanned_seq, upto)
            if read_to > last:
                last = read_to
                self._set_last(shard, last)
                progress = True
        target = page.last_seq if upto is None else min(upto, page.last_seq)
        return not progress or last >= target

    def _account(self, event: Event, topic: str, shard: Optional[int] = None) -> None:
        self._set_last(shard, event.seq)
        if self.matches(topic):
            self._ready.append(event)

    def _start_of(self) -> Optional[int]:
        """Where a stream starts: the seq before from_seq, or None (from now)."""
        return None if self.from_seq is None else max(self.from_seq, 1) - 1

    def _live(self, frames: List[bytes]) -> Optional[Tuple[Event, str]]:
        """Handle one live message.  Returns the event (and topic) if a gap
        before it must be filled first; the caller then calls _after_gap."""
        if len(frames) != 2:
            log.warning("ignoring an event of %d frames", len(frames))
            return None
        try:
            topic = frames[0].decode("utf-8")
            event = decode_event(frames[1])
        except (UnicodeDecodeError, ProtocolError) as exc:
            # A later event's seq shows the hole; the replay then repairs it.
            log.warning("ignoring an undecodable event: %s", exc)
            return None
        shard = event.shard
        if shard is not None and shard not in self.shard_seqs:
            # a cluster's event of a shard not followed yet (the map did not
            # say cluster): from from_seq, or from this event
            self.cluster = True
            self.shard_seqs[shard] = self._start_of()
        last = self._last(shard)
        if last is None:  # not known yet, or re-synchronising after TooOld
            self._account(event, topic, shard)
            return None
        if event.seq <= last:
            return None  # a duplicate: already accounted for (replayed, or seen from another broker)
        if self.gap_fill and event.seq > last + 1:
            return event, topic
        self._account(event, topic, shard)
        return None

    def _idle_wait(self) -> float:
        """How long to wait for a live event before the idle steps: idle_check,
        and at most a second when the map must be read every second."""
        return min(self.idle_check, _MAP_REFRESH) if self._routed else self.idle_check

    def _idle_timeout(self, deadline: Optional[float]) -> float:
        """An idle check must not hold a receive() past its own deadline."""
        if deadline is None:
            return self.timeout
        return max(0.05, min(self.timeout, deadline - time.monotonic()))

    def _after_gap(self, live: Tuple[Event, str], lost: Optional[TooOld]) -> None:
        """Deliver the live event that revealed a gap, once the gap is filled
        (or found lost: then skip past it and re-raise TooOld)."""
        event, topic = live
        shard = event.shard
        if lost is not None:
            self._set_last(shard, event.seq - 1)
        last = self._last(shard)
        if last is not None and event.seq > last:
            self._account(event, topic, shard)
        if lost is not None:
            raise lost

    # -- the steps, shared by the sync and async paths ----------------------

    def _connect_steps(self, endpoints: Sequence[str]) -> _Steps:
        for endpoint in endpoints:
            if endpoint and endpoint not in self.connected:
                yield _Connect(endpoint)

    def _map_steps(self) -> _Steps:
        """Read the map (routed client): subscribe on new brokers' events
        endpoints; return the shards whose owner changed since the last map
        (all of them the first time), or None if no broker answered."""
        self._map_read_at = time.monotonic()
        try:
            shard_map: ShardMap = yield _Call("shard_map")
        except GarbageTruckError as exc:
            log.debug("no shard map: %s", exc)
            return None
        self._map_read_at = time.monotonic()
        yield from self._connect_steps([broker.events_endpoint for broker in shard_map.brokers])
        owners: List[Optional[str]] = [None] * SHARD_COUNT
        for broker in shard_map.brokers:
            for shard in broker.shards:
                if 0 <= shard < SHARD_COUNT:
                    owners[shard] = broker.endpoint
        before, self._owners = self._owners, owners
        if shard_map.cluster:
            self.cluster = True
        if before is None:
            return list(range(SHARD_COUNT))
        return [shard for shard in range(SHARD_COUNT) if owners[shard] != before[shard]]

    def _fill_steps(self, upto: Optional[int], timeout: Optional[float] = None, shard: Optional[int] = None) -> _Steps:
        while True:
            last = self._last(shard)
            assert last is not None
            page = yield _Call("replay", last, _REPLAY_PAGE, shard, timeout=timeout)
            if self._absorb(page, upto, shard):
                return

    def _fill_or_resync_steps(
        self, upto: Optional[int], timeout: Optional[float] = None, shard: Optional[int] = None
    ) -> _Steps:
        """Fill; if the history is gone, skip to the broker's newest event
        (or, failing that, to the next live one) and re-raise TooOld."""
        try:
            yield from self._fill_steps(upto, timeout, shard)
        except TooOld as exc:
            lost = exc
        else:
            return
        try:
            self._set_last(shard, (yield _Call("replay", _HEAD, 1, shard)).last_seq)
        except GarbageTruckError:
            self._set_last(shard, None)
        raise lost

    def _start_steps(self) -> _Steps:
        # Subscribe first, then learn where the stream stands: what is
        # published in between is either seen live or repaired by a replay.
        yield from self._connect_steps(self.events_endpoints)
        self._started = True
        if self._routed:
            yield from self._map_steps()
        if not self.cluster:
            if self.from_seq is None:
                self.last_seq = (yield _Call("replay", _HEAD, 1)).last_seq
            else:
                self.last_seq = self._start_of()
                if self.gap_fill:
                    yield from self._fill_or_resync_steps(None)
            return
        # Cluster mode: one stream per shard, each from its owner.
        lost: Optional[TooOld] = None
        for shard in range(SHARD_COUNT):
            if self.from_seq is not None:
                self.shard_seqs[shard] = self._start_of()
                if self.gap_fill:
                    try:
                        yield from self._fill_or_resync_steps(None, None, shard)
                    except TooOld as exc:
                        lost = lost or exc
                continue
            if self._owners is not None and self._owners[shard] is None:
                self.shard_seqs[shard] = None  # no owner now: from its next event
                continue
            try:
                self.shard_seqs[shard] = (yield _Call("replay", _HEAD, 1, shard)).last_seq
            except _TRANSIENT as exc:
                log.debug("shard %d: no head now (%s): from its next event", shard, exc)
                self.shard_seqs[shard] = None
        if lost is not None:
            raise lost

    def _live_steps(self, frames: List[bytes]) -> _Steps:
        live = self._live(frames)
        if live is None:
            return
        if self._routed:
            yield from self._map_steps()  # after a gap: a new owner may publish elsewhere
        lost: Optional[TooOld] = None
        try:
            yield from self._fill_steps(live[0].seq - 1, None, live[0].shard)
        except TooOld as exc:
            lost = exc
        self._after_gap(live, lost)

    def _idle_steps(self, deadline: Optional[float]) -> _Steps:
        """No event for idle_check: read the map again (at most every
        second), and ask REPLAY whether we missed the tail of a stream --
        the one sequence, or in cluster mode the shards that changed owner.
        A broker that is briefly unreachable is not an error here: we ask
        again later."""
        changed: List[int] = []
        if self._routed and time.monotonic() - self._map_read_at >= _MAP_REFRESH:
            changed = (yield from self._map_steps()) or []
        if not self.gap_fill:
            return
        if not self.cluster:
            if self.last_seq is not None:
                try:
                    yield from self._fill_or_resync_steps(None, self._idle_timeout(deadline))
                except _TRANSIENT as exc:
                    log.debug("idle replay failed: %s", exc)
            return
        for shard in changed:
            if self.shard_seqs.get(shard) is None or (self._owners is not None and self._owners[shard] is None):
                continue
            try:
                yield from self._fill_or_resync_steps(None, self._idle_timeout(deadline), shard)
            except _TRANSIENT as exc:
                log.debug("idle replay of shard %d failed: %s", shard, exc)

    def _next_call(self, steps: _Steps, value: Any, error: Optional[BaseException], sub: Any) -> _Call:
        """Resume steps with the last call's value or error, making the SUB
        connections they ask for on ``sub``; the next client call.  Raises
        StopIteration when the steps are done."""
        while True:
            step = steps.throw(error) if error is not None else steps.send(value)
            if not isinstance(step, _Connect):
                return step
            assert sub is not None
            sub.connect(step.endpoint)
            self.connected.append(step.endpoint)
            value, error = None, None

    def _run(self, steps: _Steps) -> Any:
        """Drive steps with the blocking client and SUB socket."""
        value: Any = None
        error: Optional[BaseException] = None
        while True:
            try:
                step = self._next_call(steps, value, error, self._sub)
            except StopIteration as stop:
                return stop.value
            value, error = None, None
            assert self._client is not None
            try:
                value = getattr(self._client, step.name)(*step.args, **step.kwargs)
            except GarbageTruckError as exc:
                error = exc

    async def _arun(self, steps: _Steps) -> Any:
        """Drive steps with the asyncio client and SUB socket (as _run, but
        awaiting each call)."""
        value: Any = None
        error: Optional[BaseException] = None
        while True:
            try:
                step = self._next_call(steps, value, error, self._asub)
            except StopIteration as stop:
                return stop.value
            value, error = None, None
            assert self._aclient is not None
            try:
                value = await getattr(self._aclient, step.name)(*step.args, **step.kwargs)
            except GarbageTruckError as exc:
                error = exc

    # -- blocking use -----------------------------------------------------

    def __enter__(self) -> "Subscriber":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        return self.receive()

    def close(self) -> None:
        self._closed = True
        if self._sub is not None:
            self._sub.close(linger=0)
            self._sub = None
        if self._client is not None:
            self._client.close()
            self._client = None

    def _start(self) -> None:
        self._client = Client(self.request_endpoints, timeout=self.timeout, **self._curve_args)
        sub: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.SUB)
        self._configure(sub)
        self._sub = sub
        self._run(self._start_steps())

    def receive(self, timeout: Optional[float] = None) -> Event:
        """The next event; raises Timeout after ``timeout`` seconds (None:
        wait forever) and TooOld when a gap can no longer be filled."""
        if self._closed:
            raise ClientClosed(None, "the subscriber is closed")
        if not self._started:
            self._start()
        assert self._sub is not None
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._ready:
            wait = self._idle_wait()
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise Timeout(None, f"no event within {timeout:g} s")
                wait = min(wait, remaining)
            if self._sub.poll(max(1, int(wait * 1000)), zmq.POLLIN):
                self._run(self._live_steps(self._sub.recv_multipart()))
            else:
                self._run(self._idle_steps(deadline))
        return self._ready.popleft()

    # -- asyncio use ------------------------------------------------------

    async def __aenter__(self) -> "Subscriber":
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.aclose()

    def __aiter__(self) -> "Subscriber":
        return self

    async def __anext__(self) -> Event:
        return await self.areceive()

    async def aclose(self) -> None:
        self._closed = True
        if self._asub is not None:
            self._asub.close(linger=0)
            self._asub = None
        if self._aclient is not None:
            await self._aclient.close()
            self._aclient = None
        self.close()

    async def _astart(self) -> None:
        self._aclient = AsyncClient(self.request_endpoints, timeout=self.timeout, **self._curve_args)
        context = zmq.asyncio.Context.shadow(zmq.Context.instance().underlying)
        sub = context.socket(zmq.SUB)
        self._configure(sub)
        self._asub = sub
        await self._arun(self._start_steps())

    async def areceive(self, timeout: Optional[float] = None) -> Event:
        """Async :meth:`receive`."""
        if self._closed:
            raise ClientClosed(None, "the subscriber is closed")
        if not self._started:
            await self._astart()
        assert self._asub is not None
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._ready:
            wait = self._idle_wait()
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise Timeout(None, f"no event within {timeout:g} s")
                wait = min(wait, remaining)
            if await self._asub.poll(max(1, int(wait * 1000))):  # POLLIN
                await self._arun(self._live_steps(await self._asub.recv_multipart()))
            else:
                await self._arun(self._idle_steps(deadline))
        return self._ready.popleft()
