"""Keep-alive: hold leases by renewing them in the background.

One keeper per client (a thread for :class:`~garbagetruck.Client`, a task for
:class:`~garbagetruck.AsyncClient`) multiplexes every held lease: it wakes
when the earliest renewal is due, renews every lease that is due (or nearly
due) in one RENEW_BATCH, and reschedules each at TTL/3 (KEEPALIVE_TTL_FRACTION)
give or take 10 % (KEEPALIVE_JITTER), drawn from a source the operating
system seeds (random.SystemRandom: processes forked from one parent, or
started in the same second, do not renew in step).

A lease is *lost* when the broker refuses its renewal (NOT_FOUND,
LEASE_ENDED, PERMISSION_DENIED) or when no renewal succeeded before its
deadline (the broker was unreachable for longer than the TTL).  Then
``lost`` and ``lost_reason`` are set and ``on_lost(held_lease)`` is called
from the keeper.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import threading
import time
from datetime import datetime
from typing import Any, Awaitable, Callable, Dict, List, Optional, Sequence

from ._defaults import KEEPALIVE_JITTER, KEEPALIVE_TTL_FRACTION
from .errors import GarbageTruckError
from .types import Code, Lease, RenewResult, code_name

__all__ = ["HeldLease", "AsyncHeldLease"]

log = logging.getLogger("garbagetruck.keepalive")

#: Per-lease codes that mean the broker will never renew this lease again.
_REFUSALS = {Code.NOT_FOUND, Code.LEASE_ENDED, Code.PERMISSION_DENIED}
_MAX_BATCH = 10_000


class HeldLease:
    """A lease kept alive by the client's keeper while the ``with`` block runs.

    ``lease`` is the record as created; ``expires_at`` and ``renewals``
    follow the background renewals.  ``lost`` becomes True (and
    ``lost_reason`` says why) when the lease could not be kept.
    """

    def __init__(
        self,
        lease: Lease,
        on_lost: Optional[Callable[["HeldLease"], Any]],
        retain_on_exit: bool,
    ) -> None:
        self.lease = lease
        self.lease_id = lease.id
        self.object_id = lease.object_id
        self.expires_at: datetime = lease.expires_at
        self.renewals = 0
        self.retain_on_exit = retain_on_exit
        self.lost = False
        self.lost_reason: Optional[str] = None
        self._on_lost = on_lost
        self._ttl = lease.ttl.total_seconds()
        self._next_renew = 0.0  # monotonic time of the next renewal
        self._deadline = 0.0  # monotonic time by which a renewal must succeed
        self._lost_event = threading.Event()

    def wait_lost(self, timeout: Optional[float] = None) -> bool:
        """Block until the lease is lost (and ``on_lost`` has returned) or the
        timeout passes; return whether it was lost."""
        return self._lost_event.wait(timeout)

    def _mark_lost(self, reason: str) -> None:
        self.lost = True
        self.lost_reason = reason

    def _signal_lost(self) -> None:
        """Wake the waiters; called after on_lost."""
        self._lost_event.set()

    def __repr__(self) -> str:
        state = f"lost: {self.lost_reason}" if self.lost else "held"
        return f"<HeldLease {self.lease_id} {self.object_id!r} {state}>"


class AsyncHeldLease(HeldLease):
    """:class:`HeldLease` of an AsyncClient; adds an awaitable ``wait_lost``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._async_lost: Optional[asyncio.Event] = None

    async def wait_lost_async(self, timeout: Optional[float] = None) -> bool:
        """Wait until the lease is lost (and a plain ``on_lost`` has returned)
        or the timeout passes; return whether it was lost."""
        if self._async_lost is None:
            self._async_lost = asyncio.Event()
            if self._lost_event.is_set():
                self._async_lost.set()
        try:
            await asyncio.wait_for(self._async_lost.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    def _signal_lost(self) -> None:
        super()._signal_lost()
        if self._async_lost is not None:
            self._async_lost.set()


class RenewSchedule:
    """When each held lease is due; pure bookkeeping on monotonic seconds,
    shared by the thread keeper and the asyncio keeper."""

    def __init__(self, rng: Optional[Callable[[], float]] = None) -> None:
        self._held: Dict[str, HeldLease] = {}
        # rng() is uniform in [0, 1).  SystemRandom reads os.urandom: no state
        # to share with a forked child, nothing seeded from the clock.
        self._rng = rng if rng is not None else random.SystemRandom().random

    def __len__(self) -> int:
        return len(self._held)

    def _interval(self, ttl: float) -> float:
        # TTL/3 give or take 10 %, so that clients do not renew in step.
        return ttl * KEEPALIVE_TTL_FRACTION * (1.0 + KEEPALIVE_JITTER * (2.0 * self._rng() - 1.0))

    def add(self, held: HeldLease, created_at: float) -> None:
        """Start holding a lease whose CREATE was sent at ``created_at``."""
        held._deadline = created_at + held._ttl
        held._next_renew = created_at + self._interval(held._ttl)
        self._held[held.lease_id] = held

    def remove(self, held: HeldLease) -> None:
        self._held.pop(held.lease_id, None)

    def holds(self, held: HeldLease) -> bool:
        return self._held.get(held.lease_id) is held

    def next_wakeup(self) -> Optional[float]:
        if not self._held:
            return None
        return min(min(h._next_renew, h._deadline) for h in self._held.values())

    def expire(self, now: float) -> List[HeldLease]:
        """Leases whose deadline passed without a successful renewal: lost."""
        lost = [h for h in self._held.values() if h._deadline <= now]
        for held in lost:
            self.remove(held)
            held._mark_lost(
                "broker unreachable: no successful renewal before the lease's deadline"
            )
        return lost

    def take_due(self, now: float) -> List[HeldLease]:
        """Leases to renew now: due, or due within a twelfth of their TTL
        (renewing those a little early lets one batch carry them)."""
        return [h for h in self._held.values() if h._next_renew <= now + h._ttl / 12.0]

    def call_timeout(self, batch: Sequence[HeldLease], now: float, limit: float) -> float:
        """How long to wait for a RENEW_BATCH reply: until the earliest local
        deadline, and at least one (short) TTL more, because a late OK still
        proves the broker renewed the lease (it answers LEASE_ENDED if the
        lease expired first).  Never longer than the client's timeout."""
        earliest = min(h._deadline for h in batch)
        shortest_ttl = min(h._ttl for h in batch)
        return max(0.01, min(limit, max(earliest - now, shortest_ttl)))

    def succeeded(
        self, batch: Sequence[HeldLease], results: Sequence[RenewResult], sent_at: float, now: float
    ) -> List[HeldLease]:
        """Apply a RENEW_BATCH reply; return the leases it lost."""
        lost = []
        for held, result in zip(batch, results):
            if not self.holds(held):
                continue  # released while the batch was in flight
            if result.ok:
                held._deadline = sent_at + held._ttl
                held._next_renew = sent_at + self._interval(held._ttl)
                held.renewals += 1
                if result.expires_at is not None:
                    held.expires_at = result.expires_at
            elif result.code in _REFUSALS:
                self.remove(held)
                held._mark_lost(f"{code_name(result.code)}: {result.message or 'renewal refused'}")
                lost.append(held)
            else:
                self._retry_soon(held, now)
        return lost

    def failed(self, batch: Sequence[HeldLease], error: BaseException, now: float) -> List[HeldLease]:
        """The whole batch failed (timeout, broker error): retry before each
        deadline; leases whose deadline has passed are lost."""
        lost = []
        for held in batch:
            if not self.holds(held):
                continue
            if held._deadline <= now:
                self.remove(held)
                held._mark_lost(f"broker unreachable: no successful renewal before the deadline ({error})")
                lost.append(held)
            else:
                self._retry_soon(held, now)
        return lost

    @staticmethod
    def _retry_soon(held: HeldLease, now: float) -> None:
        remaining = held._deadline - now
        held._next_renew = now + max(0.005, min(held._ttl / 10.0, remaining / 4.0))


def _chunks(batch: List[HeldLease]) -> List[List[HeldLease]]:
    return [batch[i : i + _MAX_BATCH] for i in range(0, len(batch), _MAX_BATCH)]


def _notify(lost: Sequence[HeldLease], in_loop: bool = False) -> None:
    for held in lost:
        log.warning("lease %s (%s) lost: %s", held.lease_id, held.object_id, held.lost_reason)
        try:
            outcome = None if held._on_lost is None else held._on_lost(held)
            if inspect.isawaitable(outcome):
                if in_loop:  # an async on_lost of an AsyncClient lease
                    asyncio.ensure_future(outcome)
                else:
                    log.error("on_lost of lease %s is a coroutine; use AsyncClient", held.lease_id)
        except Exception:  # a callback must not kill the keeper
            log.exception("on_lost callback for lease %s raised", held.lease_id)
        finally:
            held._signal_lost()


RenewFn = Callable[[List[str], float], List[RenewResult]]


class ThreadKeeper:
    """The keeper thread of one Client."""

    def __init__(self, renew: RenewFn, call_timeout: float) -> None:
        self._renew = renew
        self._call_timeout = call_timeout
        self._cond = threading.Condition()
        self._schedule = RenewSchedule()
        self._thread: Optional[threading.Thread] = None
        self._stopping = False

    def add(self, held: HeldLease, created_at: float) -> None:
        with self._cond:
            self._schedule.add(held, created_at)
            if self._thread is None and not self._stopping:
                self._thread = threading.Thread(
                    target=self._run, name="garbagetruck-keeper", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def remove(self, held: HeldLease) -> None:
        with self._cond:
            self._schedule.remove(held)
            self._cond.notify()

    def stop(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._stopping:
                        return
                    now = time.monotonic()
                    lost = self._schedule.expire(now)
                    due = self._schedule.take_due(now)
                    if lost or due:
                        break
                    wake = self._schedule.next_wakeup()
                    self._cond.wait(None if wake is None else max(0.0, wake - now))
            _notify(lost)
            for batch in _chunks(due):
                self._renew_batch(batch)

    def _renew_batch(self, batch: List[HeldLease]) -> None:
        sent_at = time.monotonic()
        with self._cond:
            timeout = self._schedule.call_timeout(batch, sent_at, self._call_timeout)
        try:
            results = self._renew([h.lease_id for h in batch], timeout)
        except GarbageTruckError as exc:
            with self._cond:
                lost = self._schedule.failed(batch, exc, time.monotonic())
        else:
            with self._cond:
                lost = self._schedule.succeeded(batch, results, sent_at, time.monotonic())
        _notify(lost)


AsyncRenewFn = Callable[[List[str], float], Awaitable[List[RenewResult]]]


class TaskKeeper:
    """The keeper task of one AsyncClient (created in the running loop)."""

    def __init__(self, renew: AsyncRenewFn, call_timeout: float) -> None:
        self._renew = renew
        self._call_timeout = call_timeout
        self._schedule = RenewSchedule()
        self._task: "Optional[asyncio.Task[None]]" = None
        self._wake: Optional[asyncio.Event] = None

    def add(self, held: HeldLease, created_at: float) -> None:
        self._schedule.add(held, created_at)
        if self._wake is None:
            self._wake = asyncio.Event()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        self._wake.set()

    def remove(self, held: HeldLease) -> None:
        self._schedule.remove(held)
        if self._wake is not None:
            self._wake.set()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            self._wake.clear()
            now = time.monotonic()
            lost = self._schedule.expire(now)
            due = self._schedule.take_due(now)
            _notify(lost, in_loop=True)
            if not due:
                wake = self._schedule.next_wakeup()
                timeout = None if wake is None else max(0.0, wake - now)
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout)
                except asyncio.TimeoutError:
                    pass
                continue
            for batch in _chunks(due):
                sent_at = time.monotonic()
                timeout = self._schedule.call_timeout(batch, sent_at, self._call_timeout)
                try:
                    results = await self._renew([h.lease_id for h in batch], timeout)
                except GarbageTruckError as exc:
                    lost = self._schedule.failed(batch, exc, time.monotonic())
                else:
                    lost = self._schedule.succeeded(batch, results, sent_at, time.monotonic())
                _notify(lost, in_loop=True)
