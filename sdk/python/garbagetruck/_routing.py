"""Client routing over several brokers: the contract of docs/CLUSTER.md,
"Client routing: what the three SDKs and gtctl do (one contract)", on the
protocol of GTLP.md §14.3.

The logic is written once, without I/O, for :class:`~garbagetruck.Client`
and :class:`~garbagetruck.AsyncClient`: the steps of a call are a generator
that yields what to do next -- a list of :class:`Send` (sent at once, in
parallel) or a :class:`Sleep` -- and is sent back the outcomes (a
:class:`~garbagetruck.codec.Reply`, or the exception of an attempt that got
none: :class:`~garbagetruck.errors.Timeout`, :class:`NotSent`, ...).  Each
client drives it with its own sockets and clock.

With one endpoint and no redirect nothing changes from a client without
routing: no MAP, one attempt with the whole timeout, UNAVAILABLE is the
answer.  MOVED is followed (the client then knows two endpoints) and
TRY_AGAIN waited out, which only brokers in cluster mode send.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from typing import Callable, Dict, Generator, List, Optional, Sequence, Tuple, Union

from ._requests import check, new_idempotency_key, results_of, shard_map_of
from .codec import SHARD_COUNT, Reply, Request, is_lease_id, lease_id_shard, shard_of
from .errors import GarbageTruckError, InvalidArgument, Timeout
from .types import Code, Command, RenewResult, ShardMap, code_name

__all__ = [
    "ATTEMPT_TIMEOUT",
    "NotSent",
    "Router",
    "Send",
    "Sleep",
    "call_steps",
    "new_idempotency_key",
    "parse_endpoints",
    "refresh_steps",
    "renew_batch_steps",
    "request_shard",
    "safe_to_repeat",
]

#: How long one attempt waits for its reply when the client has several endpoints.
ATTEMPT_TIMEOUT = 1.0
#: How long a request may wait to go out to a broker that is not connected
#: (ZMQ_IMMEDIATE: it is never queued for one) before the attempt counts as
#: "a send that cannot go out".  Long enough for a TCP (and CURVE) handshake.
SEND_GRACE = 0.25
#: Waits between attempts: retry_ms if the broker gave one, else this,
#: doubling up to MAX_BACKOFF.
FIRST_BACKOFF = 0.1
MAX_BACKOFF = 1.0
#: MOVED followed at most this many times in one call.
MAX_REDIRECTS = 5
#: After a MAP fetch that no endpoint answered, calls do not fetch it again
#: before they start for this long (a failing attempt still does).
MAP_RETRY_INTERVAL = 1.0

Outcome = Union[Reply, BaseException]

#: Commands that may be sent again after an attempt without a reply (CREATE
#: only with an idempotency_key; RELEASE with the repeat rule).
_SAFE = {
    Command.GET,
    Command.LIST,
    Command.RENEW,
    Command.RENEW_BATCH,
    Command.REPLAY,
    Command.MAP,
    Command.HEALTH,
    Command.STATS,
    Command.RELEASE,
}
_BY_LEASE_ID = {Command.GET, Command.RENEW, Command.RELEASE, Command.RETRY}
_TRANSPORT = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://.+$")


class NotSent(GarbageTruckError):
    """An attempt whose request never went out (no connected broker at that
    endpoint): nothing was applied.  Internal to the routing; a call that
    ends this way raises :class:`~garbagetruck.errors.Timeout`."""

    code = "TIMEOUT"

    def __init__(self, endpoint: str, reason: str = "not connected") -> None:
        super().__init__(None, f"{endpoint}: {reason}")
        self.endpoint = endpoint


@dataclass
class Send:
    """One attempt: send ``request`` to ``endpoint`` and wait up to
    ``timeout`` s for the reply; give up sending after ``grace`` s if the
    endpoint has no connected broker (None: wait the whole timeout)."""

    endpoint: str
    request: Request
    timeout: float
    grace: Optional[float]


@dataclass
class Sleep:
    seconds: float


def parse_endpoints(value: Union[str, Sequence[str]], what: str = "endpoint") -> List[str]:
    """One endpoint, several as a list, or several in one string with commas
    (``"tcp://a:50051,tcp://b:50051"``); duplicates dropped, order kept."""
    if isinstance(value, str):
        parts = value.split(",")
    else:
        parts = []
        try:
            items = list(value)
        except TypeError:
            raise InvalidArgument(None, f"{what}: a string or a list of strings, not {value!r}") from None
        for item in items:
            if not isinstance(item, str):
                raise InvalidArgument(None, f"{what}: a string or a list of strings, not {value!r}")
            parts.extend(item.split(","))
    endpoints: List[str] = []
    for part in parts:
        part = part.strip()
        if part and part not in endpoints:
            endpoints.append(part)
    if not endpoints:
        raise InvalidArgument(None, f"{what}: none given")
    return endpoints


def check_endpoint(endpoint: str) -> None:
    """A quick check of an endpoint's form (ZeroMQ checks the rest when it connects)."""
    if not _TRANSPORT.match(endpoint):
        raise InvalidArgument(None, f"endpoint {endpoint!r}: not transport://address (e.g. tcp://host:50051)")


def request_shard(request: Request) -> int:
    """The shard a request belongs to: CREATE that of its object, a lease
    id's its first two hex digits, REPLAY its ``shard``; anything else shard 0."""
    if request.cmd is Command.CREATE and isinstance(request.object_id, str):
        return shard_of(request.object_id)
    if request.cmd in _BY_LEASE_ID and is_lease_id(request.lease_id):
        return lease_id_shard(request.lease_id)  # type: ignore[arg-type]
    if request.cmd is Command.REPLAY and request.shard is not None and 0 <= request.shard < SHARD_COUNT:
        return request.shard
    return 0


def lease_shard(lease_id: str) -> int:
    return lease_id_shard(lease_id) if is_lease_id(lease_id) else 0


def safe_to_repeat(request: Request) -> bool:
    """May the request be sent again after an attempt without a reply?"""
    if request.cmd is Command.CREATE:
        return bool(request.idempotency_key)
    return request.cmd in _SAFE


class Router:
    """What a client knows about the brokers: its endpoints (those it was
    given, then those the map or a MOVED named), the shard map, the owners
    MOVED replies named since, and the endpoint that last answered.
    Thread-safe (a Client is shared between threads)."""

    def __init__(self, endpoints: Sequence[str]) -> None:
        self._lock = threading.Lock()
        self.configured: List[str] = list(endpoints)
        self.endpoints: List[str] = list(endpoints)
        self.shard_map: Optional[ShardMap] = None
        self._owners: List[Optional[str]] = [None] * SHARD_COUNT
        self._moved: Dict[int, Tuple[str, int]] = {}
        self.last_answered: Optional[str] = None
        self.map_stale = False
        self.map_at = float("-inf")  # monotonic time the map was last adopted
        self._map_failed_at = float("-inf")

    @property
    def multi(self) -> bool:
        """Several endpoints: attempts of 1 s, the map, UNAVAILABLE retried."""
        return len(self.endpoints) > 1

    def add(self, endpoint: str) -> None:
        with self._lock:
            if endpoint not in self.endpoints:
                self.endpoints.append(endpoint)

    def answered(self, endpoint: str) -> None:
        self.last_answered = endpoint

    def owner(self, shard: int) -> Optional[str]:
        with self._lock:
            moved = self._moved.get(shard)
            return moved[0] if moved is not None else self._owners[shard]

    def target(self, shard: int) -> str:
        """The owner of ``shard``; with none known, the endpoint that last
        answered, else the first."""
        return self.owner(shard) or self.last_answered or self.endpoints[0]

    def moved(self, shard: Optional[int], owner: str, map_version: Optional[int]) -> None:
        """A MOVED reply: ``owner`` serves ``shard`` now; the map is stale."""
        self.add(owner)
        with self._lock:
            if shard is not None and 0 <= shard < SHARD_COUNT:
                self._moved[shard] = (owner, map_version or 0)
            self.map_stale = True

    def adopt(self, shard_map: ShardMap, now: float) -> None:
        """Take a MAP reply (an older version than ours is not taken)."""
        for broker in shard_map.brokers:
            if broker.endpoint:
                self.add(broker.endpoint)
        with self._lock:
            self.map_at = now
            self.map_stale = False
            if self.shard_map is not None and shard_map.map_version < self.shard_map.map_version:
                return
            owners: List[Optional[str]] = [None] * SHARD_COUNT
            for broker in shard_map.brokers:
                for shard in broker.shards:
                    if 0 <= shard < SHARD_COUNT and broker.endpoint:
                        owners[shard] = broker.endpoint
            self._owners = owners
            self.shard_map = shard_map
            self._moved = {s: m for s, m in self._moved.items() if m[1] > shard_map.map_version}

    def map_failed(self, now: float) -> None:
        self._map_failed_at = now

    def needs_map(self, now: float) -> bool:
        """Fetch the map before this call?  (several endpoints, and none yet
        or a MOVED made it stale)"""
        if not self.multi:
            return False
        if self.map_stale:
            return True
        return self.shard_map is None and now - self._map_failed_at >= MAP_RETRY_INTERVAL

    def refresh_order(self, avoid: Optional[str]) -> List[str]:
        """Where to ask for the MAP, in turn: the endpoint that last
        answered, then the others in order; ``avoid`` (it just failed) last."""
        with self._lock:
            order = list(self.endpoints)
        if self.last_answered in order:
            order.remove(self.last_answered)  # type: ignore[arg-type]
            order.insert(0, self.last_answered)  # type: ignore[arg-type]
        if avoid in order and len(order) > 1:
            order.remove(avoid)  # type: ignore[arg-type]
            order.append(avoid)  # type: ignore[arg-type]
        return order


# --------------------------------------------------------------------------
# Steps


def _attempt(router: Router, endpoint: str, request: Request, remaining: float) -> Send:
    if router.multi:
        timeout = min(ATTEMPT_TIMEOUT, remaining)
        return Send(endpoint, request, timeout, min(SEND_GRACE, timeout))
    return Send(endpoint, request, remaining, None)


def _no_reply(request: Request, endpoint: str, timeout: float, last: BaseException) -> GarbageTruckError:
    """The error of a call whose attempts got no answer within its timeout."""
    if isinstance(last, Timeout):
        return Timeout(
            None,
            f"no reply to {request.cmd.value} from {endpoint} (the last broker tried) within the call's "
            f"{timeout:g} s (is the broker running? the outcome of the request is unknown)",
        )
    return Timeout(
        None,
        f"no broker took {request.cmd.value} within {timeout:g} s ({last.message if isinstance(last, GarbageTruckError) else last}; "
        "nothing was applied)",
    )


def refresh_steps(
    router: Router,
    deadline: float,
    failed_at: Optional[float] = None,
    avoid: Optional[str] = None,
) -> "Generator[Union[List[Send], Sleep], Optional[List[Outcome]], Tuple[Optional[ShardMap], Optional[Outcome]]]":
    """Fetch the MAP from each endpoint in turn (at most 1 s each) until one
    answers; adopt it.  Skipped when another call adopted a map after
    ``failed_at``.  Returns (the map or None, the last outcome)."""
    if failed_at is not None and router.map_at >= failed_at:
        return router.shard_map, None
    last: Optional[Outcome] = None
    for endpoint in router.refresh_order(avoid):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        timeout = min(ATTEMPT_TIMEOUT, remaining)
        outcomes = yield [Send(endpoint, Request(Command.MAP), timeout, min(SEND_GRACE, timeout))]
        assert outcomes is not None
        last = outcomes[0]
        if isinstance(last, Reply):
            router.answered(endpoint)
            if last.ok and last.shard_map is not None:
                router.adopt(last.shard_map, time.monotonic())
                return last.shard_map, last
        elif not isinstance(last, (GarbageTruckError, OSError)):
            raise last
    router.map_failed(time.monotonic())
    return None, last


def refreshed_map(shard_map: Optional[ShardMap], last: Optional[Outcome], seconds: float) -> ShardMap:
    """The answer to MAP from what refresh_steps returned: the map, else the
    last reply's error, else Timeout."""
    if shard_map is not None:
        return shard_map
    if isinstance(last, Reply):
        return shard_map_of(last)  # raises its error
    detail = f" ({last.message})" if isinstance(last, GarbageTruckError) else ""
    raise Timeout(None, f"no broker answered MAP within {seconds:g} s{detail}")


def list_targets(router: Router) -> List[Optional[str]]:
    """Where LIST goes: in cluster mode each broker of the map, else the
    owner (None: routed as any request)."""
    shard_map = router.shard_map
    if router.multi and shard_map is not None and shard_map.cluster and shard_map.brokers:
        return [broker.endpoint for broker in shard_map.brokers]
    return [None]


def call_steps(
    router: Router,
    request: Request,
    timeout: float,
    fixed: Optional[str] = None,
) -> "Generator[Union[List[Send], Sleep], Optional[List[Outcome]], Reply]":
    """One request, routed and retried (docs/CLUSTER.md, client routing 2-3).
    Returns the reply that is the call's answer; raises Timeout when no
    attempt got one.  ``fixed``: always this endpoint (LIST of one broker)."""
    start = time.monotonic()
    deadline = start + timeout
    if router.multi and request.cmd is Command.CREATE and request.idempotency_key is None:
        request.idempotency_key = new_idempotency_key()  # safe to repeat (a raw call())
    if fixed is None and router.needs_map(start):
        yield from refresh_steps(router, deadline)
    shard = request_shard(request)
    redirects = 0
    backoff = FIRST_BACKOFF
    maybe_applied = False  # an earlier attempt got no reply: it may have been applied
    forced: Optional[str] = None
    last: Optional[Outcome] = None
    endpoint = fixed or router.target(shard)
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        endpoint = forced or fixed or router.target(shard)
        forced = None
        multi = router.multi
        outcomes = yield [_attempt(router, endpoint, request, remaining)]
        assert outcomes is not None
        last = outcomes[0]
        failed_at = time.monotonic()
        wait: Optional[float] = None
        if isinstance(last, Reply):
            router.answered(endpoint)
            code = code_name(last.code)
            if (
                request.cmd is Command.RELEASE
                and maybe_applied
                and code in (Code.NOT_FOUND.value, Code.LEASE_ENDED.value)
            ):
                # A repeat of a RELEASE that may have been applied: the first
                # attempt released it.  Done; answer with the lease as it is.
                get = Request(Command.GET, lease_id=request.lease_id)
                budget = max(deadline - time.monotonic(), min(timeout, ATTEMPT_TIMEOUT))
                return (yield from call_steps(router, get, budget))
            if code == Code.MOVED.value and last.owner and redirects < MAX_REDIRECTS:
                redirects += 1
                router.moved(last.shard if last.shard is not None else shard, last.owner, last.map_version)
                forced = last.owner
                continue
            if code == Code.TRY_AGAIN.value or (code == Code.UNAVAILABLE.value and multi):
                wait = last.retry_ms / 1000.0 if last.retry_ms else backoff
            else:
                return last
        elif isinstance(last, Timeout) and not isinstance(last, NotSent):
            if not safe_to_repeat(request):
                raise last  # the outcome is unknown: the caller decides
            maybe_applied = True
            wait = backoff
        elif isinstance(last, NotSent) or (isinstance(last, InvalidArgument) and multi and fixed is None):
            wait = backoff  # not sent (or an endpoint that cannot be opened): nothing applied
        else:
            raise last
        if wait is None or time.monotonic() + wait >= deadline:
            break
        backoff = min(MAX_BACKOFF, backoff * 2)
        yield Sleep(wait)
        if router.multi and fixed is None:
            # ask the broker that failed to answer last; one that answered
            # (TRY_AGAIN, UNAVAILABLE) is as good as any
            avoid = None if isinstance(last, Reply) else endpoint
            yield from refresh_steps(router, deadline, failed_at, avoid)
    if isinstance(last, Reply):
        return last
    if last is None:
        raise Timeout(None, f"no time left to send {request.cmd.value} (timeout {timeout:g} s)")
    if isinstance(last, InvalidArgument):
        raise last
    if isinstance(last, Timeout) and not isinstance(last, NotSent) and not router.multi:
        raise last  # one endpoint: as without routing
    raise _no_reply(request, endpoint, timeout, last)


def renew_batch_steps(
    router: Router,
    lease_ids: Sequence[str],
    make: Callable[[List[str]], Request],
    timeout: float,
) -> "Generator[Union[List[Send], Sleep], Optional[List[Outcome]], List[RenewResult]]":
    """RENEW_BATCH as one batch per owner (split by the map), in parallel;
    leases answered MOVED or TRY_AGAIN in a RESULT, and the batches that got
    no answer (TRY_AGAIN, UNAVAILABLE, no reply), are sent again within the
    call's timeout (docs/CLUSTER.md, client routing 4).  Other error replies
    raise.  A lease still without a result at the end gets the SDK's own
    ``TIMEOUT`` result when others have one, else the call raises."""
    start = time.monotonic()
    deadline = start + timeout
    if router.needs_map(start):
        yield from refresh_steps(router, deadline)
    results: List[Optional[RenewResult]] = [None] * len(lease_ids)
    pending = list(range(len(lease_ids)))
    backoff = FIRST_BACKOFF
    last_failure: Optional[BaseException] = None
    last_endpoint = router.target(0)
    while pending:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        groups: Dict[str, List[int]] = {}
        for index in pending:
            groups.setdefault(router.target(lease_shard(lease_ids[index])), []).append(index)
        sends = [
            _attempt(router, endpoint, make([lease_ids[i] for i in indexes]), remaining)
            for endpoint, indexes in groups.items()
        ]
        outcomes = yield sends
        assert outcomes is not None
        failed_at = time.monotonic()
        retry: List[int] = []
        wait = 0.0
        need_map = False
        for (endpoint, indexes), outcome in zip(groups.items(), outcomes):
            if isinstance(outcome, Reply):
                router.answered(endpoint)
                code = code_name(outcome.code)
                if outcome.ok:
                    for index, result in zip(indexes, results_of(outcome, len(indexes))):
                        results[index] = result
                        result_code = code_name(result.code)
                        if result_code == Code.MOVED.value:
                            retry.append(index)
                            need_map = True
                        elif result_code == Code.TRY_AGAIN.value:
                            retry.append(index)
                            wait = max(wait, backoff)
                elif code == Code.MOVED.value and outcome.owner:
                    router.moved(outcome.shard, outcome.owner, outcome.map_version)
                    retry.extend(indexes)
                elif code == Code.TRY_AGAIN.value or (code == Code.UNAVAILABLE.value and router.multi):
                    retry.extend(indexes)
                    wait = max(wait, outcome.retry_ms / 1000.0 if outcome.retry_ms else backoff)
                    last_failure = _error_of(outcome)
                else:
                    check(outcome)  # raises: the call's answer
            elif isinstance(outcome, (Timeout, NotSent)) or (isinstance(outcome, InvalidArgument) and router.multi):
                retry.extend(indexes)
                wait = max(wait, backoff)
                last_failure, last_endpoint = outcome, endpoint
            else:
                raise outcome
        pending = sorted(retry)
        if not pending:
            break
        if time.monotonic() + wait >= deadline:
            break
        if wait > 0:
            backoff = min(MAX_BACKOFF, backoff * 2)
            yield Sleep(wait)
        if router.multi or need_map:
            if need_map:
                router.map_stale = True
            yield from refresh_steps(router, deadline, None if need_map else failed_at, avoid=last_endpoint)
    missing = [i for i, result in enumerate(results) if result is None]
    if missing:
        if isinstance(last_failure, Timeout) and not isinstance(last_failure, NotSent) and not router.multi:
            raise last_failure  # one endpoint: as without routing
        if len(missing) == len(results) or last_failure is None:
            if isinstance(last_failure, GarbageTruckError) and not isinstance(last_failure, (Timeout, NotSent)):
                raise last_failure
            request = make(list(lease_ids))
            raise _no_reply(request, last_endpoint, timeout, last_failure or Timeout(None, "no reply"))
        message = f"no answer within {timeout:g} s ({last_failure}); the outcome is unknown"
        for index in missing:
            results[index] = RenewResult(lease_ids[index], Timeout.code, None, message)
    return results  # type: ignore[return-value]


def _error_of(reply: Reply) -> Optional[BaseException]:
    """The exception an error reply stands for."""
    try:
        check(reply)
    except GarbageTruckError as exc:
        return exc
    return None
