"""Subscriber: typed events, history replay from a sequence number, gap
detection and repair, topic filtering, TOO_OLD."""

import asyncio
import time

import pytest

from garbagetruck import Client, EventKind, ObjectType, ReplayResult, Subscriber, Timeout, TooOld, service_topic


def drain_until(sub, predicate, timeout=5.0):
    """Receive events until one satisfies predicate; return all received."""
    events = []
    while True:
        event = sub.receive(timeout=timeout)
        events.append(event)
        if predicate(event):
            return events


def assert_gap_free(events):
    seqs = [e.seq for e in events]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs


def test_live_events_are_typed(client, broker):
    with Subscriber(broker.events_endpoint, broker.endpoint, idle_check=0.2) as sub:
        with pytest.raises(Timeout):
            sub.receive(timeout=0.05)  # starts the subscriber; nothing yet
        lease = client.create_lease("ev", ObjectType.TEMPORARY_FILE, ttl=30)
        client.release_lease(lease.id)
        events = drain_until(sub, lambda e: e.kind is EventKind.OBJECT_RECLAIMED)
    assert [e.kind for e in events] == [EventKind.LEASE_CREATED, EventKind.LEASE_RELEASED, EventKind.OBJECT_RECLAIMED]
    assert_gap_free(events)
    assert events[0].lease.id == lease.id and events[0].topic == f"{client.service_id}\x1fcreated.TEMPORARY_FILE"
    assert events[2].reason.value == "released" and events[2].at.tzinfo is not None


def test_from_seq_replays_history_then_continues_live(client, broker):
    first = [client.create_lease(f"h{i}", ttl=30) for i in range(5)]
    with Subscriber(broker.events_endpoint, broker.endpoint, from_seq=0) as sub:
        history = [sub.receive(timeout=5) for _ in range(5)]
        assert [e.seq for e in history] == [1, 2, 3, 4, 5]
        assert [e.lease.id for e in history] == [lease.id for lease in first]
        later = client.create_lease("live", ttl=30)
        live = drain_until(sub, lambda e: e.lease.id == later.id)
    assert [e.seq for e in live] == [6]  # no gap, no duplicate
    with Subscriber(broker.events_endpoint, broker.endpoint, from_seq=4) as sub:
        assert [sub.receive(timeout=5).seq for _ in range(3)] == [4, 5, 6]


def test_gap_in_the_live_stream_is_filled_by_replay(client, broker):
    with Subscriber(broker.events_endpoint, broker.endpoint, idle_check=60) as sub:
        with pytest.raises(Timeout):
            sub.receive(timeout=0.05)
        # Wait until the subscription is live (a probe seen; probes published
        # before it propagated are repaired by the same gap logic), then lose
        # the next three events at the socket, as a slow subscriber would.
        deadline = time.monotonic() + 15
        while True:
            probe = client.create_lease("probe", ttl=30)
            try:
                drain_until(sub, lambda e: e.lease.id == probe.id, timeout=0.5)
                break
            except Timeout:
                assert time.monotonic() < deadline, "no probe seen in 15 s: the subscription never went live"
        start = sub.last_seq
        leases = [client.create_lease(f"gap{i}", ttl=30) for i in range(5)]
        for _ in range(3):
            assert sub._sub.poll(5000), "event not published"
            sub._sub.recv_multipart()  # dropped on the floor
        events = drain_until(sub, lambda e: e.lease.id == leases[-1].id)
    assert [e.lease.id for e in events] == [lease.id for lease in leases]
    assert [e.seq for e in events] == list(range(start + 1, start + 6))


def test_topic_filter_applies_to_live_and_replayed_events(client, broker):
    mine = client.service_id
    a = client.create_lease("f1", ObjectType.CACHE_ENTRY, ttl=30)
    client.release_lease(a.id)
    topics = (service_topic(mine, "released"), service_topic(mine, EventKind.OBJECT_RECLAIMED) + "CACHE")
    with Subscriber(broker.events_endpoint, broker.endpoint, topics=topics, from_seq=1) as sub:
        replayed = [sub.receive(timeout=5) for _ in range(2)]
        b = client.create_lease("f2", ObjectType.BLOB_STORAGE, ttl=30)
        client.release_lease(b.id)
        live = drain_until(sub, lambda e: e.lease.id == b.id)
    assert [e.kind for e in replayed] == [EventKind.LEASE_RELEASED, EventKind.OBJECT_RECLAIMED]
    assert [(e.kind, e.lease.id) for e in live] == [(EventKind.LEASE_RELEASED, b.id)]  # its reclaim is BLOB


def test_service_prefix_reaches_that_service_only(broker, service):
    """"svc\x1f" does not match the events of "svc-longer" (the old topic
    form's prefix weakness): the separator ends the service id."""
    longer = service + "-longer"
    with Client(broker.endpoint, service_id=service) as short_client, \
            Client(broker.endpoint, service_id=longer) as long_client:
        with Subscriber(broker.events_endpoint, broker.endpoint, topics=service_topic(service), from_seq=1) as sub:
            theirs = long_client.create_lease("p-long", ObjectType.TEMPORARY_FILE, ttl=30)
            ours = short_client.create_lease("p-short", ObjectType.TEMPORARY_FILE, ttl=30)
            seen = drain_until(sub, lambda e: e.lease.id == ours.id)
    assert theirs.service_id.startswith(service)
    assert [e.lease.id for e in seen] == [ours.id]
    assert seen[0].topic == service_topic(service, EventKind.LEASE_CREATED, ObjectType.TEMPORARY_FILE)


def test_too_old_when_history_is_gone(broker_factory, service):
    b = broker_factory(min_lease=0.01, event_history=3)
    with Client(b.endpoint, service_id=service) as c:
        for i in range(3):
            c.release_lease(c.create_lease(f"o{i}", ttl=30).id)
        with Subscriber(b.events_endpoint, b.endpoint, from_seq=1) as sub:
            with pytest.raises(TooOld):
                sub.receive(timeout=5)
            # the subscriber carries on with the live stream
            later = c.create_lease("after", ttl=30)
            assert drain_until(sub, lambda e: e.lease.id == later.id)[-1].kind is EventKind.LEASE_CREATED


def test_async_subscriber(client, broker):
    leases = [client.create_lease(f"as{i}", ttl=30) for i in range(3)]

    async def main():
        async with Subscriber(broker.events_endpoint, broker.endpoint, from_seq=0) as sub:
            seen = []
            async for event in sub:
                seen.append(event)
                if len(seen) == 3:
                    break
            later = client.create_lease("as-live", ttl=30)
            seen.append(await sub.areceive(timeout=5))
            return seen, later

    seen, later = asyncio.run(main())
    assert [e.lease.id for e in seen] == [lease.id for lease in leases] + [later.id]
    assert [e.seq for e in seen] == [1, 2, 3, 4]



def _event(seq, service="svc-a"):
    """An event of ``service``, made from the shared vector's lease."""
    from conftest import VECTORS_DIR
    import json
    from garbagetruck.codec import decode_event

    vector = json.loads((VECTORS_DIR / "event_lease_created.json").read_text(encoding="utf-8"))
    event = decode_event(bytes.fromhex(vector["msgpack"]))
    event.seq, event.lease.service_id = seq, service
    return event


def test_gap_filling_moves_past_scanned_seq():
    """A filtered REPLAY page (CURVE, a service's key) says how far the broker
    read: the subscriber moves there, as far as the held live event allows."""
    sub = Subscriber("tcp://127.0.0.1:9", "tcp://127.0.0.1:9")
    sub.last_seq = 10
    # the live event 20 revealed a gap; a page of one event, read to 14
    assert not sub._absorb(ReplayResult([_event(12)], last_seq=30, scanned_seq=14), upto=19)
    assert sub.last_seq == 14 and [e.seq for e in sub._ready] == [12]
    # no events, read past the live event: stop before it (it is delivered next)
    assert sub._absorb(ReplayResult([], last_seq=30, scanned_seq=25), upto=19)
    assert sub.last_seq == 19
    # an older broker (no scanned_seq) and an empty page: no progress, stop
    sub.last_seq = 10
    assert sub._absorb(ReplayResult([], last_seq=30), upto=19) and sub.last_seq == 10
    # catching up without a live event: to scanned_seq, page after page
    assert not sub._absorb(ReplayResult([_event(11)], last_seq=30, scanned_seq=20), upto=None)
    assert sub._absorb(ReplayResult([], last_seq=30, scanned_seq=30), upto=None)
    assert sub.last_seq == 30 and [e.seq for e in sub._ready] == [12, 11]
