"""Keep-alive: held leases outlive their TTL, are released on exit, and loss
is reported (renewal refused, or the broker unreachable past the deadline)."""

import asyncio
import inspect
import random
import threading
import time

import pytest

import garbagetruck
from conftest import wait_until
from garbagetruck import AsyncClient, Client, LeaseState, ObjectType
from garbagetruck.keepalive import RenewSchedule

#: TTL of held leases: renewals come every ~TTL/3, so a lease survives a
#: stall of the keeper (ASan, a loaded machine) of up to ~1 s.
HOLD_TTL = 1.5


def held_past_ttl(get_lease, held, held_since, renewals=3):
    """Check of a wait_until: fails at once if the lease was lost or is not
    ACTIVE; true once the broker and the keeper both count ``renewals``
    renewals and the broker has called it ACTIVE more than two TTLs after its
    creation (``held_since`` is a time.monotonic() taken after the CREATE returned)."""
    asked_at = time.monotonic()
    record = get_lease(held.lease_id)
    assert not held.lost, held.lost_reason
    assert record.state is LeaseState.ACTIVE, record
    return min(record.renewals, held.renewals) >= renewals and asked_at - held_since > 2 * HOLD_TTL


def test_held_lease_outlives_its_ttl_and_is_released(client):
    # Control: without keep-alive a lease of the same TTL does expire on this broker.
    unheld = client.create_lease("unheld", ttl=HOLD_TTL)
    with client.hold("held", ObjectType.TEMPORARY_FILE, HOLD_TTL) as held:
        held_since = time.monotonic()
        wait_until(lambda: held_past_ttl(client.get_lease, held, held_since), timeout=30, what="renewals past the TTL")
        wait_until(lambda: client.get_lease(unheld.id).state is LeaseState.EXPIRED, what="the unheld lease's expiry")
        assert not held.lost
    assert client.get_lease(held.lease_id).state is LeaseState.RELEASED


def test_one_keeper_thread_renews_many_leases_in_batches(client):
    before = {t.name for t in threading.enumerate()}
    with client.hold("m1", ttl=HOLD_TTL) as a, client.hold("m2", ttl=HOLD_TTL) as b, client.hold("m3", ttl=2 * HOLD_TTL) as c:
        keepers = [t for t in threading.enumerate() if t.name == "garbagetruck-keeper"]
        assert len(keepers) == 1 and "garbagetruck-keeper" not in before
        wait_until(lambda: min(a.renewals, b.renewals, c.renewals) >= 2, timeout=30, what="renewals")
        stats = client.stats()
        assert all(client.get_lease(h.lease_id).active for h in (a, b, c))
        assert not any(h.lost for h in (a, b, c))
    assert stats["leases_renewed"] >= 6


def test_retain_on_exit(client):
    with client.hold("retained", ttl=HOLD_TTL, retain_on_exit=True) as held:
        pass
    assert client.get_lease(held.lease_id).state is LeaseState.RELEASED
    kinds = [e.kind.value for e in client.replay(0, 1000).events if e.lease.id == held.lease_id]
    assert "object.reclaimed" not in kinds and kinds[-1] == "lease.released"


def test_loss_when_the_broker_refuses_a_renewal(client, broker, service):
    lost = []
    with client.hold("stolen", ttl=HOLD_TTL, on_lost=lost.append) as held:
        with Client(broker.endpoint, service_id=service) as elsewhere:
            elsewhere.release_lease(held.lease_id)  # same service, other connection
        assert held.wait_lost(5), "loss not reported"
        assert held.lost and "LEASE_ENDED" in held.lost_reason
        assert lost == [held]
    # exiting a lost lease's block does not try to release it again (no error)


def test_loss_when_the_broker_is_unreachable(broker_factory, service):
    broker = broker_factory(min_lease=0.01)
    with Client(broker.endpoint, service_id=service, timeout=2.0) as c:
        with c.hold("cut-off", ttl=HOLD_TTL) as held:
            # stopped, its ports held by sockets that never answer: no other
            # broker can take them over and refuse the renewal instead
            with broker.outage():
                assert held.wait_lost(10), "loss not reported"
                assert "unreachable" in held.lost_reason


def test_async_keepalive(broker, service):
    async def main():
        async with AsyncClient(broker.endpoint, service_id=service) as c:
            lost = asyncio.Event()

            async def on_lost(held):
                lost.set()

            async with c.hold("async-held", ttl=HOLD_TTL, on_lost=on_lost) as held:
                held_since = time.monotonic()
                deadline = held_since + 30
                while True:  # poll the broker until it counts the renewals
                    asked_at = time.monotonic()
                    record = await c.get_lease(held.lease_id)
                    assert not held.lost, held.lost_reason
                    assert record.state is LeaseState.ACTIVE, record
                    if min(record.renewals, held.renewals) >= 3 and asked_at - held_since > 2 * HOLD_TTL:
                        break
                    assert time.monotonic() < deadline, f"renewals in 30 s: broker {record.renewals}, keeper {held.renewals}"
                    assert not await held.wait_lost_async(0.01)  # pacing between polls
            assert (await c.get_lease(held.lease_id)).state is LeaseState.RELEASED

            async with c.hold("async-stolen", ttl=HOLD_TTL, on_lost=on_lost) as held:
                await c.release_lease(held.lease_id)
                assert await held.wait_lost_async(5)
                await asyncio.wait_for(lost.wait(), 5)
                assert "LEASE_ENDED" in held.lost_reason

    asyncio.run(main())


def test_renewal_interval_is_a_third_of_the_ttl_give_or_take_ten_percent():
    assert garbagetruck.KEEPALIVE_TTL_FRACTION == 1 / 3 and garbagetruck.KEEPALIVE_JITTER == 0.10
    # The ends of the range, with a source pinned at them.
    assert RenewSchedule(rng=lambda: 0.0)._interval(3.0) == pytest.approx(0.9)
    assert RenewSchedule(rng=lambda: 0.5)._interval(3.0) == pytest.approx(1.0)
    assert RenewSchedule(rng=lambda: 1.0)._interval(3.0) == pytest.approx(1.1)
    # The default source: seeded by the OS (not the module's RNG, whose state a
    # forked child shares), spread over both sides of TTL/3.
    schedule = RenewSchedule()
    assert isinstance(getattr(schedule._rng, "__self__", None), random.SystemRandom)
    intervals = [schedule._interval(3.0) for _ in range(2000)]
    assert all(0.9 <= i <= 1.1 for i in intervals)
    assert min(intervals) < 0.95 and max(intervals) > 1.05


def test_hold_takes_the_arguments_of_create_lease_in_their_order():
    for cls in (Client, AsyncClient):
        create = list(inspect.signature(cls.create_lease).parameters.values())
        hold = list(inspect.signature(cls.hold).parameters.values())
        positional = [p.name for p in create if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
        assert [p.name for p in hold if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD] == positional
        assert positional[:4] == ["self", "object_id", "object_type", "ttl"]
        assert {"retain_on_exit", "on_lost", "timeout"} <= {
            p.name for p in hold if p.kind is inspect.Parameter.KEYWORD_ONLY
        }
        assert not hasattr(cls, "lease")  # renamed to hold (issue 15), no alias
