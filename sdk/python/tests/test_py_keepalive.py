"""Keep-alive: held leases outlive their TTL, are released on exit, and loss
is reported (renewal refused, or the broker unreachable past the deadline)."""

import asyncio
import threading
import time

from conftest import wait_until
from garbagetruck import AsyncClient, Client, LeaseState, ObjectType
from garbagetruck.testing import free_port


def test_held_lease_outlives_its_ttl_and_is_released(client):
    # Control: without keep-alive a 0.3 s lease does expire on this broker.
    unheld = client.create_lease("unheld", ttl=0.3)
    start = time.monotonic()
    with client.lease("held", ttl=0.3, object_type=ObjectType.TEMPORARY_FILE) as held:
        while time.monotonic() - start < 1.2:  # four TTLs
            assert client.get_lease(held.lease_id).state is LeaseState.ACTIVE
            assert not held.wait_lost(0.05)
        assert held.renewals >= 3
        assert client.get_lease(unheld.id).state is LeaseState.EXPIRED
        assert not held.lost
    assert client.get_lease(held.lease_id).state is LeaseState.RELEASED


def test_one_keeper_thread_renews_many_leases_in_batches(client):
    before = {t.name for t in threading.enumerate()}
    with client.lease("m1", ttl=0.3) as a, client.lease("m2", ttl=0.3) as b, client.lease("m3", ttl=0.6) as c:
        keepers = [t for t in threading.enumerate() if t.name == "garbagetruck-keeper"]
        assert len(keepers) == 1 and "garbagetruck-keeper" not in before
        wait_until(lambda: min(a.renewals, b.renewals, c.renewals) >= 2, timeout=5, what="renewals")
        stats = client.stats()
        assert all(client.get_lease(h.lease_id).active for h in (a, b, c))
    assert stats["leases_renewed"] >= 6


def test_retain_on_exit(client):
    with client.lease("retained", ttl=0.3, retain_on_exit=True) as held:
        pass
    assert client.get_lease(held.lease_id).state is LeaseState.RELEASED
    kinds = [e.kind.value for e in client.replay(0, 1000).events if e.lease.id == held.lease_id]
    assert "object.reclaimed" not in kinds and kinds[-1] == "lease.released"


def test_loss_when_the_broker_refuses_a_renewal(client, broker, service):
    lost = []
    with client.lease("stolen", ttl=0.3, on_lost=lost.append) as held:
        with Client(broker.endpoint, service_id=service) as elsewhere:
            elsewhere.release_lease(held.lease_id)  # same service, other connection
        assert held.wait_lost(5), "loss not reported"
        assert held.lost and "LEASE_ENDED" in held.lost_reason
        assert lost == [held]
    # exiting a lost lease's block does not try to release it again (no error)


def test_loss_when_the_broker_is_unreachable(broker_factory, service):
    # random ports: a broker started elsewhere must not take over the freed one
    broker = broker_factory(min_lease=0.01, port=free_port(), events_port=free_port())
    with Client(broker.endpoint, service_id=service, timeout=2.0) as c:
        with c.lease("cut-off", ttl=0.3) as held:
            broker.stop()
            assert held.wait_lost(5), "loss not reported"
            assert "unreachable" in held.lost_reason


def test_async_keepalive(broker, service):
    async def main():
        async with AsyncClient(broker.endpoint, service_id=service) as c:
            lost = asyncio.Event()

            async def on_lost(held):
                lost.set()

            start = time.monotonic()
            async with c.lease("async-held", ttl=0.3, on_lost=on_lost) as held:
                while time.monotonic() - start < 1.0:
                    assert (await c.get_lease(held.lease_id)).state is LeaseState.ACTIVE
                    assert not await held.wait_lost_async(0.05)
                assert held.renewals >= 2
            assert (await c.get_lease(held.lease_id)).state is LeaseState.RELEASED

            async with c.lease("async-stolen", ttl=0.3, on_lost=on_lost) as held:
                await c.release_lease(held.lease_id)
                assert await held.wait_lost_async(5)
                await asyncio.wait_for(lost.wait(), 5)
                assert "LEASE_ENDED" in held.lost_reason

    asyncio.run(main())
