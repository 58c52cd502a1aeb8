"""Cluster mode (GC_CLUSTER=1, GTLP.md §14, docs/CLUSTER.md): several
active brokers on one PostgreSQL, each serving a share of the 256 shards.

Real daemons on one real database, driven by a client of the tests' own
(cluster_nodes.Router: MAP, MOVED, TRY_AGAIN, written from the spec and
independent of the SDKs).  The invariants are checked from the clients'
records and from the database, not from the brokers' word:

* Sharing: a broker that joins gets half of the shards by handover; a
  request sent to the wrong broker is answered MOVED with the owner; events
  are numbered per shard.
* kill -9 of one of two brokers while a client creates and renews through
  both: every acknowledged lease is served again, by the survivor, with
  (at least) its acknowledged deadline, within 5 s; none is lost; none
  expires before its acknowledged deadline; one object.reclaimed per object.
* A third broker joins: the shards spread to about a third each, with
  nothing lost or duplicated.
* The zombie: one of two brokers is paused (SIGSTOP) past its ownership
  lease, the other takes its shards and expires what fell due; resumed, the
  paused one commits nothing, publishes nothing and steps down (exit 3);
  one object.reclaimed per object.
* SIGTERM of one of two while a client creates and renews through both:
  its shards are served by the other within 0.5 s, and the client sees no
  error it does not retry by itself.
* PostgreSQL restarted (immediate mode) under renewals: both brokers fence
  themselves (HEALTH DEGRADED), come back by themselves with the same
  shards at the same epochs (nobody fails over), the renewals go on
  without an error the client does not retry, and every invariant holds.

Ownership settings are shortened (lease 1.2 s, renew 0.3 s) so the tests
stay quick; the 5 s failover bound of the issue holds with the defaults
too (tests/cluster/test_cluster.py measures it with them).  Polls with
deadlines, no sleeps as synchronisation.
"""
import os
import signal
import sys
import time

import msgpack
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "postgres"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pg_daemon import DATABASE_URL, DEADLINE, local_cluster, psql  # noqa: E402
from pg_daemon import database_fixture, no_daemon_left  # noqa: F401,E402  (fixtures)
from cluster_nodes import (Node, RenewLoad, Router, lease_shard, nodes_fixture,  # noqa: F401,E402
                           postgres_outage_out_of_step, shard_of, shards, wait_balanced, wait_map)

pytestmark = pytest.mark.skipif(not DATABASE_URL, reason="DATABASE_URL is not set (PostgreSQL tests)")

LONG_TTL_MS = 600000


def start(database, tmp_path, nodes, name):
    node = Node(database, tmp_path, name, cluster=True)
    nodes.append(node)
    node.wait_ready()
    return node


def two_balanced(database, tmp_path, nodes):
    """node-a, then node-b joins: 128 shards each."""
    first = start(database, tmp_path, nodes, "node-a")
    second = start(database, tmp_path, nodes, "node-b")
    wait_balanced(database, ["node-a", "node-b"])
    return first, second


def create_routed(router, prefix, count, ttl_ms_of):
    """CREATEs of objects prefix-0 .. through the router, each with an
    idempotency key (safe to repeat); {lease id: acknowledged lease}."""
    acknowledged = {}
    for index in range(count):
        object_id = f"{prefix}-{index}"
        reply = router.call("CREATE", shard_of(object_id), object_id=object_id, service_id=prefix,
                            ttl_ms=ttl_ms_of(index), idempotency_key=f"create-{object_id}")
        assert reply["code"] == "OK", reply
        acknowledged[reply["lease"]["id"]] = reply["lease"]
    return acknowledged


def shard_events(url, kind):
    """[(shard, seq, event)] of gt_shard_events rows of kind."""
    rows = psql(url, f"SELECT shard, seq, encode (body, 'hex') FROM gt_shard_events WHERE kind = '{kind}'"
                     " ORDER BY shard, seq")
    result = []
    for line in rows.splitlines():
        shard, seq, body = line.split("|")
        result.append((int(shard), int(seq), msgpack.unpackb(bytes.fromhex(body), raw=False)))
    return result


def test_a_joining_broker_takes_half_and_requests_are_routed(database, tmp_path, nodes):
    first = start(database, tmp_path, nodes, "node-a")
    assert shards(database) == {"node-a": (256, {1})}
    second = start(database, tmp_path, nodes, "node-b")
    owned = wait_balanced(database, ["node-a", "node-b"])
    print("shares after the join:", owned)
    # The MAP of either broker names both, with disjoint shares
    reply = wait_map(first, lambda reply: sum(len(broker["shards"]) for broker in reply["brokers"]) == 256
                     and len(reply["brokers"]) == 2)
    assert reply["cluster"] is True
    mine = {broker["broker_id"]: set(broker["shards"]) for broker in reply["brokers"]}
    assert not mine["node-a"] & mine["node-b"]

    # A CREATE sent to the broker that does not own the object's shard is
    # answered MOVED (unapplied) with the owner's endpoint; there it works
    object_id = next(f"obj-{index}" for index in range(1000) if shard_of(f"obj-{index}") in mine["node-b"])
    moved = first.call("CREATE", object_id=object_id, service_id="svc", ttl_ms=LONG_TTL_MS)
    assert moved["code"] == "MOVED", moved
    assert moved["shard"] == shard_of(object_id) and moved["owner"] == second.endpoint
    assert moved["map_version"] == reply["map_version"]
    created = second.call("CREATE", object_id=object_id, service_id="svc", ttl_ms=LONG_TTL_MS)
    assert created["code"] == "OK", created
    assert lease_shard(created["lease"]["id"]) == shard_of(object_id)
    # GET by lease id is routed the same way
    assert first.call("GET", lease_id=created["lease"]["id"])["code"] == "MOVED"
    assert second.call("GET", lease_id=created["lease"]["id"])["code"] == "OK"
    # Events are numbered per shard and carry it; REPLAY needs the shard
    replayed = second.call("REPLAY", after_seq=0, shard=shard_of(object_id))
    assert replayed["code"] == "OK", replayed
    assert [event["shard"] for event in replayed["events"]] == [shard_of(object_id)]
    assert replayed["events"][0]["seq"] == 1
    assert second.call("REPLAY", after_seq=0)["code"] == "INVALID_ARGUMENT"
    for node in (first, second):
        node.signal(signal.SIGTERM)
        assert node.wait_exit() == 0


def test_kill9_of_one_of_two_brokers_under_load_loses_nothing(database, tmp_path, nodes):
    first, second = two_balanced(database, tmp_path, nodes)
    router = Router([first.endpoint, second.endpoint])
    load = None
    try:
        # Leases through both brokers: long ones, and short ones that fall
        # due around the failover (never to expire before their deadline)
        acknowledged = create_routed(router, "k", 400,
                                     lambda index: LONG_TTL_MS if index % 4 else 2000 + (index % 7) * 250)
        owner_of = {broker_id: count for broker_id, (count, _) in shards(database).items()}
        assert owner_of == {"node-a": 128, "node-b": 128}

        # Renewals and creations through both while node-b dies: each
        # acknowledged renewal moves the deadline the lease must keep, each
        # acknowledged creation adds a lease that must be there
        long_ids = [lease_id for lease_id, lease in acknowledged.items() if lease["ttl_ms"] == LONG_TTL_MS]
        load = RenewLoad([first.endpoint, second.endpoint], long_ids, "k", LONG_TTL_MS, create_prefix="kc")
        load.wait_renewals(50)
        killed = time.monotonic()
        second.signal(signal.SIGKILL)
        second.wait_exit()
        # Every lease of the dead broker's shards is served again by the
        # survivor; the time it took is the failover
        dead_leases = [lease_id for lease_id in acknowledged if lease_shard(lease_id) >= 128]
        probe = dead_leases[0]
        while first.call("GET", lease_id=probe)["code"] != "OK":
            assert time.monotonic() - killed < 10, first.log()
            time.sleep(0.02)
        failover = time.monotonic() - killed
        print(f"failover after kill -9 (lease 1.2 s): {failover * 1000:.0f} ms")
        assert failover < 5.0
        load.wait_renewals(len(load.renewed) + 50)
        load.stop()
        renewed = load.renewed
        assert not load.errors, load.errors[:5]
        assert shards(database) == {"node-a": (256, {1, 3})}
        # Created during the failover: each acknowledged one there, as acknowledged
        assert len(load.created) >= 100
        assert any(lease_shard(lease_id) >= 128 for lease_id in load.created)
        for lease_id, lease in load.created.items():
            reply = first.call("GET", lease_id=lease_id)
            assert reply["code"] == "OK", (lease_id, reply)
            assert reply["lease"]["expires_at"] >= renewed.get(lease_id, lease["expires_at"])

        # Nothing lost: every acknowledged lease, with at least its last
        # acknowledged deadline (a renewal whose answer was lost may have
        # moved it further, never back)
        for lease_id, lease in acknowledged.items():
            reply = first.call("GET", lease_id=lease_id)
            assert reply["code"] == "OK", (lease_id, reply)
            served = reply["lease"]
            expected = renewed.get(lease_id, lease["expires_at"])
            if lease["ttl_ms"] == LONG_TTL_MS:
                assert served["state"] == "ACTIVE", served
                assert served["expires_at"] >= expected, (served, expected)
            else:
                assert served["expires_at"] >= lease["expires_at"], ("expired early", served, lease)
        # The short ones expire, none before its deadline (the events' own
        # times), and each object is reclaimed once
        short = {lease_id for lease_id, lease in acknowledged.items() if lease["ttl_ms"] != LONG_TTL_MS}
        deadline = time.monotonic() + DEADLINE
        while True:
            expired = {event["lease"]["id"]: event for _, _, event in shard_events(database, "lease.expired")}
            if short <= set(expired):
                break
            assert time.monotonic() < deadline, len(short - set(expired))
            time.sleep(0.1)
        for lease_id in short:
            assert expired[lease_id]["at"] >= acknowledged[lease_id]["expires_at"], ("early", lease_id)
        reclaimed = {}
        for _, _, event in shard_events(database, "object.reclaimed"):
            reclaimed[event["lease"]["object_id"]] = reclaimed.get(event["lease"]["object_id"], 0) + 1
        assert {acknowledged[lease_id]["object_id"] for lease_id in short} <= set(reclaimed)
        assert all(count == 1 for count in reclaimed.values()), reclaimed
        # Per shard, the events are numbered 1, 2, 3 ... across the failover
        by_shard = {}
        for kind in ("lease.created", "lease.renewed", "lease.expired", "object.reclaimed"):
            for shard, seq, event in shard_events(database, kind):
                assert event["seq"] == seq and event["shard"] == shard
                by_shard.setdefault(shard, []).append(seq)
        for shard, seqs in by_shard.items():
            assert sorted(seqs) == list(range(1, len(seqs) + 1)), (shard, sorted(seqs)[:10])
    finally:
        if load:
            load.stop()
        router.close()
    first.signal(signal.SIGTERM)
    assert first.wait_exit() == 0


def test_a_third_broker_takes_a_third_and_nothing_is_lost(database, tmp_path, nodes):
    first, second = two_balanced(database, tmp_path, nodes)
    router = Router([first.endpoint, second.endpoint])
    try:
        acknowledged = create_routed(router, "j", 300, lambda index: LONG_TTL_MS)
        third = start(database, tmp_path, nodes, "node-c")
        owned = wait_balanced(database, ["node-a", "node-b", "node-c"])
        print("shares after the third joined:", owned)
        router.dealer(third.endpoint)
        # Every lease once, in exactly one broker's memory, as acknowledged
        for lease_id, lease in acknowledged.items():
            reply = router.call("GET", lease_shard(lease_id), lease_id=lease_id)
            assert reply["code"] == "OK", reply
            assert reply["lease"]["expires_at"] == lease["expires_at"]
            answers = [node.call("GET", lease_id=lease_id)["code"] for node in (first, second, third)]
            assert sorted(answers) in (["MOVED", "MOVED", "OK"], ["MOVED", "OK", "TRY_AGAIN"],
                                       ["OK", "TRY_AGAIN", "TRY_AGAIN"]), answers
            assert answers.count("OK") == 1
        assert psql(database, "SELECT count (*) FROM gt_leases WHERE object_id LIKE 'j-%'") == "300"
    finally:
        router.close()
    for node in (first, second, third):
        node.signal(signal.SIGTERM)
        assert node.wait_exit() == 0


def test_zombie_resumed_after_a_takeover_commits_and_publishes_nothing_and_steps_down(database, tmp_path, nodes):
    first, second = two_balanced(database, tmp_path, nodes)
    router = Router([first.endpoint, second.endpoint])
    try:
        # Short leases in both halves: those of node-b's shards fall due
        # while it is paused
        acknowledged = create_routed(router, "z", 200, lambda index: 1000 + index * 5)
    finally:
        router.close()
    second_shards = {shard for shard in range(256) if psql(
        database, f"SELECT owner FROM gt_shards WHERE shard = {shard}") == "node-b"}
    assert len(second_shards) == 128
    sub = second.subscriber()
    while sub.poll(300):
        sub.recv_multipart()

    second.signal(signal.SIGSTOP)
    stopped = time.monotonic()
    while sub.poll(200):            # what it published just before the pause
        sub.recv_multipart()
    # Requests queued to the paused broker for its (former) shards
    for index, object_id in enumerate(f"zombie-{n}" for n in range(2000)):
        if shard_of(object_id) in second_shards:
            second.dealer.send(msgpack.packb({"v": 1, "rid": 5000 + index, "cmd": "CREATE",
                                              "object_id": object_id, "service_id": "z", "ttl_ms": 60000}))
    # node-a takes node-b's shards once their lease ran out, and expires
    # what fell due: every short lease, each once
    deadline = time.monotonic() + DEADLINE
    while shards(database) != {"node-a": (256, {1, 3})}:
        assert time.monotonic() < deadline, shards(database)
        time.sleep(0.05)
    assert time.monotonic() - stopped >= 1.2 - 0.2 - 0.05, "taken over before the lease could run out"
    while len({event["lease"]["id"] for _, _, event in shard_events(database, "lease.expired")}) < 200:
        assert time.monotonic() < deadline, first.log()
        time.sleep(0.1)
    events_before = int(psql(database, "SELECT count (*) FROM gt_shard_events"))

    second.signal(signal.SIGCONT)
    assert second.wait_exit() == 3, second.log()
    assert "stepping down" in second.log()
    heard = []
    while sub.poll(300):
        heard.append(sub.recv_multipart())
    assert heard == [], heard
    # It committed nothing: none of its paused requests is anywhere, no
    # event was added, each object was reclaimed once, by node-a
    assert psql(database, "SELECT count (*) FROM gt_leases WHERE object_id LIKE 'zombie-%'") == "0"
    assert int(psql(database, "SELECT count (*) FROM gt_shard_events")) == events_before
    reclaimed = {}
    for _, _, event in shard_events(database, "object.reclaimed"):
        reclaimed[event["lease"]["object_id"]] = reclaimed.get(event["lease"]["object_id"], 0) + 1
    assert set(reclaimed) == {lease["object_id"] for lease in acknowledged.values()}
    assert all(count == 1 for count in reclaimed.values()), reclaimed
    for lease_id, event in {event["lease"]["id"]: event
                            for _, _, event in shard_events(database, "lease.expired")}.items():
        assert event["at"] >= acknowledged[lease_id]["expires_at"], ("expired early", lease_id)
    while second.dealer.poll(100):
        reply = msgpack.unpackb(second.dealer.recv(), raw=False)
        assert reply["code"] != "OK", reply
    first.signal(signal.SIGTERM)
    assert first.wait_exit() == 0


def test_sigterm_of_one_of_two_under_load_hands_its_shards_over_at_once(database, tmp_path, nodes):
    first, second = two_balanced(database, tmp_path, nodes)
    router = Router([first.endpoint, second.endpoint])
    load = None
    try:
        acknowledged = create_routed(router, "g", 200, lambda index: LONG_TTL_MS)
        probe = next(lease_id for lease_id in acknowledged if lease_shard(lease_id) >= 128)
        # Renewals and creations through both, across the handover: no
        # error reaches the client (TRY_AGAIN and redirects are its own)
        load = RenewLoad([first.endpoint, second.endpoint], list(acknowledged), "g", LONG_TTL_MS,
                         create_prefix="gc")
        load.wait_renewals(50)
        termed = time.monotonic()
        second.signal(signal.SIGTERM)
        # The survivor serves the leaver's shards within 0.5 s of the
        # SIGTERM: the leaver finishes its commits, releases with a NOTIFY,
        # the survivor takes and loads them
        while first.call("GET", lease_id=probe)["code"] != "OK":
            assert time.monotonic() - termed < DEADLINE, first.log()
            time.sleep(0.005)
        handoff = time.monotonic() - termed
        print(f"graceful handoff under load: served by the other {handoff * 1000:.0f} ms after the SIGTERM")
        assert handoff < 0.5, first.log()
        assert second.wait_exit() == 0
        load.wait_renewals(len(load.renewed) + 50)
        load.stop()
        assert not load.errors, load.errors[:5]
        for lease_id, lease in list(acknowledged.items()) + list(load.created.items()):
            reply = router.call("GET", lease_shard(lease_id), lease_id=lease_id)
            assert reply["code"] == "OK", reply
            assert reply["lease"]["expires_at"] >= load.renewed.get(lease_id, lease["expires_at"]), reply
    finally:
        if load:
            load.stop()
        router.close()
    first.signal(signal.SIGTERM)
    assert first.wait_exit() == 0


def test_zz_postgresql_restart_under_load_fails_nobody_over_and_keeps_every_invariant(database, tmp_path, nodes):
    cluster = local_cluster()
    if cluster is None:
        pytest.skip("needs root and pg_ctlcluster for the local cluster serving DATABASE_URL")
    first, second = two_balanced(database, tmp_path, nodes)
    epochs_before = psql(database, "SELECT string_agg (owner || ':' || epoch, ',' ORDER BY shard) FROM gt_shards")
    router = Router([first.endpoint, second.endpoint])
    load = None
    try:
        acknowledged = create_routed(router, "r", 300,
                                     lambda index: LONG_TTL_MS if index % 3 else 3000 + (index % 11) * 200)
        long_ids = [lease_id for lease_id, lease in acknowledged.items() if lease["ttl_ms"] == LONG_TTL_MS]

        load = RenewLoad([first.endpoint, second.endpoint], long_ids, "r", LONG_TTL_MS, timeout=60)
        load.wait_renewals(50)
        # PostgreSQL goes away at once (immediate mode) and comes back; the
        # brokers fence themselves meanwhile (HEALTH DEGRADED), and the
        # first one's attempts to reconnect are put out of step with the
        # second's.  Alive when PostgreSQL is back, it must keep its shards
        # all the same: the second may not take them for having got in first
        down_renewals = postgres_outage_out_of_step(cluster, [first, second], first,
                                                    on_fenced=lambda: len(load.renewed))
        # Back by themselves, still both, with the same shards at the same
        # epochs: nobody failed over
        deadline = time.monotonic() + DEADLINE
        try:
            while first.call("HEALTH")["status"] != "SERVING" or second.call("HEALTH")["status"] != "SERVING":
                assert time.monotonic() < deadline, "the brokers did not recover"
                time.sleep(0.05)
        except AssertionError as error:
            raise AssertionError(f"{error}\nnode-a:\n{first.log()}\nnode-b:\n{second.log()}") from None
        load.wait_renewals(down_renewals + 50)
        load.stop()
        renewed = load.renewed
        assert not load.errors, load.errors[:5]
        assert first.proc.poll() is None and second.proc.poll() is None
        assert psql(database, "SELECT string_agg (owner || ':' || epoch, ',' ORDER BY shard)"
                              " FROM gt_shards") == epochs_before
        # Every invariant: nothing acknowledged lost, nothing early, one
        # reclaim per object
        for lease_id, lease in acknowledged.items():
            reply = router.call("GET", lease_shard(lease_id), lease_id=lease_id)
            assert reply["code"] == "OK", reply
            if lease["ttl_ms"] == LONG_TTL_MS:
                assert reply["lease"]["state"] == "ACTIVE"
                assert reply["lease"]["expires_at"] >= renewed.get(lease_id, lease["expires_at"])
        short = {lease_id for lease_id, lease in acknowledged.items() if lease["ttl_ms"] != LONG_TTL_MS}
        deadline = time.monotonic() + DEADLINE
        while True:
            expired = {}
            for _, _, event in shard_events(database, "lease.expired"):
                expired.setdefault(event["lease"]["id"], []).append(event)
            if short <= set(expired):
                break
            assert time.monotonic() < deadline, len(short - set(expired))
            time.sleep(0.1)
        for lease_id in short:
            assert len(expired[lease_id]) == 1, expired[lease_id]
            assert expired[lease_id][0]["at"] >= acknowledged[lease_id]["expires_at"], ("early", lease_id)
        reclaimed = {}
        for _, _, event in shard_events(database, "object.reclaimed"):
            reclaimed[event["lease"]["object_id"]] = reclaimed.get(event["lease"]["object_id"], 0) + 1
        assert all(count == 1 for count in reclaimed.values()), reclaimed
    finally:
        if load:
            load.stop()
        router.close()
    for node in (first, second):
        node.signal(signal.SIGTERM)
        assert node.wait_exit() == 0
