"""AsyncClient: the same operations, many requests in flight on one socket."""

import asyncio
from datetime import timedelta

import pytest

from garbagetruck import AsyncClient, LeaseEnded, LeaseState, NotFound, ObjectType, Timeout


def run(coro):
    return asyncio.run(coro)


def test_async_operations(broker, service):
    async def main():
        async with AsyncClient(broker.endpoint, service_id=service) as c:
            lease = await c.create_lease("a1", ObjectType.BLOB_STORAGE, ttl=timedelta(seconds=30), metadata={"k": "v"})
            assert lease.metadata == {"k": "v"} and lease.object_type is ObjectType.BLOB_STORAGE
            assert (await c.get_lease(lease.id)) == lease
            assert (await c.renew_lease(lease.id, ttl=40)).ttl == timedelta(seconds=40)
            results = await c.renew_leases([lease.id, "f" * 32])
            assert results[0].ok and results[1].code == "NOT_FOUND"
            listed = [x async for x in c.list_leases(service_id=service, page_size=1)]
            assert [x.id for x in listed] == [lease.id]
            assert (await c.release_lease(lease.id)).state is LeaseState.RELEASED
            with pytest.raises(LeaseEnded):
                await c.renew_lease(lease.id)
            with pytest.raises(NotFound):
                await c.get_lease("f" * 32)
            assert (await c.health()).serving
            assert (await c.stats())["leases_created"] >= 1
            page = await c.replay(0)
            assert page.events[0].seq == 1 and page.last_seq >= 4
            blob = await c.create_blob_lease("bkt", "k", 30)
            assert blob.object_id == "bkt/k"

    run(main())


def test_thousand_concurrent_requests(broker, service):
    async def main():
        async with AsyncClient(broker.endpoint, service_id=service, timeout=20) as c:
            leases = await asyncio.gather(*(c.create_lease(f"c{i}", ttl=30) for i in range(1000)))
            assert [lease.object_id for lease in leases] == [f"c{i}" for i in range(1000)]
            assert len({lease.id for lease in leases}) == 1000
            got = await asyncio.gather(*(c.get_lease(lease.id) for lease in leases))
            assert [g.id for g in got] == [lease.id for lease in leases]
            assert (await c.health()).active_leases >= 1000

    run(main())


def test_async_timeout_then_recovery(broker_factory, service):
    broker = broker_factory(min_lease=0.01)

    async def main():
        async with AsyncClient(broker.endpoint, service_id=service) as c:
            assert (await c.health()).serving
            before = await c.create_lease("before-restart", ttl=30)
            with broker.outage():  # stopped; its ports held by sockets that never answer
                with pytest.raises(Timeout):
                    await c.health(timeout=0.3)
            # restarted on the same ports, fresh state (memory store)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 15
            while True:
                try:
                    assert (await c.health(timeout=0.5)).serving
                    break
                except Timeout:
                    assert loop.time() < deadline, "the restarted broker never answered"
            with pytest.raises(NotFound):  # the restarted broker answers, not a survivor
                await c.get_lease(before.id)

    run(main())


def test_async_shard_map(broker, service):
    """MAP through AsyncClient (see test_py_client's single-mode test)."""
    from garbagetruck import UnsupportedCommand

    async def main():
        async with AsyncClient(broker.endpoint, service_id=service) as c:
            try:
                shard_map = await c.shard_map()
            except UnsupportedCommand:
                pytest.skip("this broker does not answer MAP yet")
            assert shard_map.cluster is False and len(shard_map.brokers) == 1
            assert len(shard_map.brokers[0].shards) == 256
            assert (await c.replay(0, 10, 7)).last_seq >= 0

    run(main())
