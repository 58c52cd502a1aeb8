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
"""

from __future__ import annotations

import collections
import logging
import time
from typing import Any, Deque, Iterator, List, Optional, Sequence, Tuple

import zmq
import zmq.asyncio

from .aio import AsyncClient
from .client import Client
from .codec import MAX_UINT64, decode_event
from .curve import PathOrKey, curve_settings, resolve_curve
from .errors import ClientClosed, GarbageTruckError, ProtocolError, Timeout, TooOld, Unavailable
from .types import Event, ReplayResult

__all__ = ["Subscriber"]

log = logging.getLogger("garbagetruck.events")

_REPLAY_PAGE = 1000
_SUB_HWM = 100_000


#: REPLAY after the largest seq has no events, only the broker's newest seq
#: (last_seq): how the subscriber learns where the stream stands.  Every role
#: may REPLAY, where STATS is not open to a CURVE service key.
_HEAD = MAX_UINT64


class Subscriber:
    """Typed, gap-free event stream.

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
        events_endpoint: str,
        request_endpoint: str,
        topics: Sequence[str] = ("",),
        from_seq: Optional[int] = None,
        *,
        timeout: float = 5.0,
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
        self.events_endpoint = events_endpoint
        self.request_endpoint = request_endpoint
        self.topics = tuple(topics) or ("",)
        self.from_seq = from_seq
        self.timeout = timeout
        self.idle_check = idle_check
        self.gap_fill = gap_fill
        #: Sequence number of the last event accounted for (delivered or filtered out).
        self.last_seq: Optional[int] = None
        self._ready: Deque[Event] = collections.deque()
        self._started = False
        self._closed = False
        self._sub: Optional[zmq.Socket] = None  # type: ignore[type-arg]
        self._client: Optional[Client] = None
        self._asub: Optional[zmq.asyncio.Socket] = None
        self._aclient: Optional[AsyncClient] = None

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

    def _absorb(self, page: ReplayResult, upto: Optional[int]) -> bool:
        """Take a REPLAY page; return True once caught up (to ``upto``, or to
        the broker's ``last_seq``), or when the page made no progress (the
        history cannot fill the gap: the live event then skips it)."""
        assert self.last_seq is not None
        progress = False
        for event in page.events:
            if event.seq <= self.last_seq:
                continue
            if upto is not None and event.seq > upto:
                break  # the live event takes it from here
            self._account(event, event.topic)
            progress = True
        # A broker that filters REPLAY (CURVE, a service's key) says how far
        # it read: none of the events we may see lies before scanned_seq, so
        # moving past it is progress too (as the C SDK's s_replay_page).
        if page.scanned_seq is not None:
            read_to = page.scanned_seq if upto is None else min(page.scanned_seq, upto)
            if read_to > self.last_seq:
                self.last_seq = read_to
                progress = True
        target = page.last_seq if upto is None else min(upto, page.last_seq)
        return not progress or self.last_seq >= target

    def _account(self, event: Event, topic: str) -> None:
        self.last_seq = event.seq
        if self.matches(topic):
            self._ready.append(event)

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
        if self.last_seq is None:  # re-synchronising after TooOld
            self._account(event, topic)
            return None
        if event.seq <= self.last_seq:
            return None  # already accounted for (replayed, or before our start)
        if self.gap_fill and event.seq > self.last_seq + 1:
            return event, topic
        self._account(event, topic)
        return None

    def _idle_timeout(self, deadline: Optional[float]) -> float:
        """An idle check must not hold a receive() past its own deadline."""
        if deadline is None:
            return self.timeout
        return max(0.05, min(self.timeout, deadline - time.monotonic()))

    def _after_gap(self, live: Tuple[Event, str], lost: Optional[TooOld]) -> None:
        """Deliver the live event that revealed a gap, once the gap is filled
        (or found lost: then skip past it and re-raise TooOld)."""
        event, topic = live
        if lost is not None:
            self.last_seq = event.seq - 1
        if self.last_seq is not None and event.seq > self.last_seq:
            self._account(event, topic)
        if lost is not None:
            raise lost

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

    def _fill(self, upto: Optional[int], timeout: Optional[float] = None) -> None:
        assert self._client is not None and self.last_seq is not None
        while not self._absorb(self._client.replay(self.last_seq, _REPLAY_PAGE, timeout=timeout), upto):
            pass

    def _fill_or_resync(self, upto: Optional[int], timeout: Optional[float] = None) -> None:
        """Fill; if the history is gone, skip to the broker's newest event
        (or, failing that, to the next live one) and re-raise TooOld."""
        assert self._client is not None
        try:
            self._fill(upto, timeout)
        except TooOld:
            try:
                self.last_seq = self._client.replay(_HEAD, 1).last_seq
            except GarbageTruckError:
                self.last_seq = None
            raise

    def _start(self) -> None:
        self._client = Client(self.request_endpoint, timeout=self.timeout, **self._curve_args)
        sub: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.SUB)
        self._configure(sub)
        sub.connect(self.events_endpoint)
        self._sub = sub
        # Subscribe first, then learn where the stream stands: what is
        # published in between is either seen live or repaired by a replay.
        self._started = True
        if self.from_seq is None:
            self.last_seq = self._client.replay(_HEAD, 1).last_seq
        else:
            self.last_seq = max(self.from_seq, 1) - 1
            if self.gap_fill:
                self._fill_or_resync(None)

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
            wait = self.idle_check
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise Timeout(None, f"no event within {timeout:g} s")
                wait = min(wait, remaining)
            if self._sub.poll(max(1, int(wait * 1000)), zmq.POLLIN):
                live = self._live(self._sub.recv_multipart())
                if live is not None:
                    lost: Optional[TooOld] = None
                    try:
                        self._fill(live[0].seq - 1)
                    except TooOld as exc:
                        lost = exc
                    self._after_gap(live, lost)
            elif self.gap_fill and self.last_seq is not None:
                # Idle: did we miss the tail of the stream?  A broker that is
                # briefly unreachable is not an error here; we ask again later.
                try:
                    self._fill_or_resync(None, self._idle_timeout(deadline))
                except (Timeout, Unavailable) as exc:
                    log.debug("idle replay failed: %s", exc)
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

    async def _afill(self, upto: Optional[int], timeout: Optional[float] = None) -> None:
        assert self._aclient is not None and self.last_seq is not None
        while not self._absorb(
            await self._aclient.replay(self.last_seq, _REPLAY_PAGE, timeout=timeout), upto
        ):
            pass

    async def _afill_or_resync(self, upto: Optional[int], timeout: Optional[float] = None) -> None:
        assert self._aclient is not None
        try:
            await self._afill(upto, timeout)
        except TooOld:
            try:
                self.last_seq = (await self._aclient.replay(_HEAD, 1)).last_seq
            except GarbageTruckError:
                self.last_seq = None
            raise

    async def _astart(self) -> None:
        self._aclient = AsyncClient(self.request_endpoint, timeout=self.timeout, **self._curve_args)
        context = zmq.asyncio.Context.shadow(zmq.Context.instance().underlying)
        sub = context.socket(zmq.SUB)
        self._configure(sub)
        sub.connect(self.events_endpoint)
        self._asub = sub
        self._started = True
        if self.from_seq is None:
            self.last_seq = (await self._aclient.replay(_HEAD, 1)).last_seq
        else:
            self.last_seq = max(self.from_seq, 1) - 1
            if self.gap_fill:
                await self._afill_or_resync(None)

    async def areceive(self, timeout: Optional[float] = None) -> Event:
        """Async :meth:`receive`."""
        if self._closed:
            raise ClientClosed(None, "the subscriber is closed")
        if not self._started:
            await self._astart()
        assert self._asub is not None
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._ready:
            wait = self.idle_check
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise Timeout(None, f"no event within {timeout:g} s")
                wait = min(wait, remaining)
            if await self._asub.poll(max(1, int(wait * 1000))):  # POLLIN
                live = self._live(await self._asub.recv_multipart())
                if live is not None:
                    lost: Optional[TooOld] = None
                    try:
                        await self._afill(live[0].seq - 1)
                    except TooOld as exc:
                        lost = exc
                    self._after_gap(live, lost)
            elif self.gap_fill and self.last_seq is not None:
                try:
                    await self._afill_or_resync(None, self._idle_timeout(deadline))
                except (Timeout, Unavailable) as exc:
                    log.debug("idle replay failed: %s", exc)
        return self._ready.popleft()

