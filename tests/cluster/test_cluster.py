"""Several brokers on one PostgreSQL (issue 14, docs/CLUSTER.md): ownership,
fencing, failover, as far as they are built.

In this version a broker owns every shard or none: the first broker on a
database owns them, the others wait as standbys and take over when the
owner stops (SIGTERM: it releases them, NOTIFY) or dies (kill -9: its
ownership lease runs out).  The tests start real daemons on one real
PostgreSQL, drive them over raw pyzmq + msgpack (GTLP/1), and check the
invariants from the clients' own records and from the database, not from
the broker's word:

* kill -9 of the owner under load: the standby serves every acknowledged
  lease with its acknowledged deadline, within 5 s of the kill; nothing
  acknowledged is lost; nothing expires before its acknowledged deadline.
* The zombie: the owner is stopped (SIGSTOP) past its ownership lease, the
  standby takes over and expires what fell due; the owner is resumed
  (SIGCONT).  It commits nothing (its requests made during the pause are
  nowhere in the database), publishes nothing (its subscriber hears
  nothing after SIGCONT), and steps down (exit 3).  Exactly one
  object.reclaimed per object in the history.
* Graceful handoff: SIGTERM the owner; the standby owns the shards at the
  next epoch within a moment of the owner's exit.
* PostgreSQL restarted (immediate mode) with the owner's attempts to
  reconnect out of step with the standby's: the owner keeps the shards at
  the same epoch and the standby stays a standby.

Needs DATABASE_URL (skipped without it); each test makes a database of its
own.  Ownership settings are shortened (lease 1.2 s, renew 0.3 s) so that
the tests are quick, except in the kill -9 test, which measures its 5 s
with the defaults (3 s / 1 s).
No sleeps as synchronisation: waits are polls with deadlines.
"""
import os
import signal
import sys
import time
import urllib.parse

import msgpack

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "postgres"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pg_daemon import DATABASE_URL, DEADLINE, local_cluster, psql  # noqa: E402
from pg_daemon import database_fixture, no_daemon_left  # noqa: F401,E402  (fixtures)
from cluster_nodes import (EXIT_STEPPED_DOWN, LEASE_S, Node, create_acknowledged, expired_events,  # noqa: E402
                           nodes_fixture, postgres_outage_out_of_step, reclaimed_per_object, shards, stored,
                           wait_map, wait_subscribed)

pytestmark = pytest.mark.skipif(not DATABASE_URL, reason="DATABASE_URL is not set (PostgreSQL tests)")


def test_standby_waits_then_takes_over_from_a_killed_owner_with_every_acknowledged_lease(database, tmp_path,
                                                                                          nodes):
    # The default ownership settings (3 s lease, 1 s renewal): the 5 s the
    # issue asks for is measured with them
    owner = Node(database, tmp_path, "broker-a", lease_s=None)
    nodes.append(owner)
    owner.wait_ready()
    standby = Node(database, tmp_path, "broker-b", lease_s=None)
    nodes.append(standby)
    # The standby registers and waits: it owns nothing, prints no ready line
    deadline = time.monotonic() + DEADLINE
    while psql(database, "SELECT count (*) FROM gt_brokers WHERE broker_id = 'broker-b'") != "1":
        assert time.monotonic() < deadline, standby.log()
        time.sleep(0.05)
    assert shards(database) == {"broker-a": (256, {1})}
    assert standby.proc.poll() is None

    # Load: long leases (must survive) and short ones (fall due around the
    # failover: none may expire before its acknowledged deadline)
    acknowledged = create_acknowledged(owner, "k", 3000,
                                       lambda index: 600000 if index % 3 else 1500 + (index % 7) * 300)
    assert len(acknowledged) == 3000
    renewed = {}
    for lease_id in list(acknowledged)[:300:3]:
        reply = owner.call("RENEW", lease_id=lease_id, service_id="k", ttl_ms=900000)
        assert reply["code"] == "OK", reply
        renewed[lease_id] = reply["lease"]
    acknowledged.update(renewed)

    killed = time.monotonic()
    owner.signal(signal.SIGKILL)
    owner.wait_exit()
    ready = standby.wait_ready()
    failover = ready - killed
    print(f"failover after kill -9: {failover * 1000:.0f} ms")
    assert failover < 5.0, standby.log()
    assert shards(database) == {"broker-b": (256, {2})}

    # Every acknowledged lease is served with its acknowledged deadline
    # (long ones ACTIVE; short ones ACTIVE, or EXPIRED never before it)
    for lease_id, lease in acknowledged.items():
        reply = standby.call("GET", lease_id=lease_id)
        assert reply["code"] == "OK", (lease_id, reply)
        served = reply["lease"]
        if lease["ttl_ms"] >= 600000:
            assert served["state"] == "ACTIVE", served
            assert served["expires_at"] == lease["expires_at"], (served, lease)
        elif served["state"] == "ACTIVE":
            assert served["expires_at"] == lease["expires_at"], (served, lease)
        else:
            assert served["state"] == "EXPIRED", served
            assert served["expires_at"] >= lease["expires_at"], ("expired early", served, lease)

    # The short ones all expire, each at or after its deadline, in the database
    deadline = time.monotonic() + DEADLINE
    while True:
        rows = stored(database, "k")
        short = {lease_id: rows[lease_id] for lease_id, lease in acknowledged.items() if lease["ttl_ms"] < 600000}
        if all(state == "EXPIRED" for state, _ in short.values()):
            break
        assert time.monotonic() < deadline, "short leases did not expire"
        time.sleep(0.1)
    assert len(rows) == 3000
    for lease_id, (state, ended_at) in short.items():
        assert ended_at >= acknowledged[lease_id]["expires_at"], ("expired early", lease_id)
    # Each short lease expired once, never before its acknowledged deadline
    # (the event's own time), and each of their objects was reclaimed once
    expired = expired_events(database)
    for lease_id in short:
        assert len(expired.get(lease_id, [])) == 1, (lease_id, expired.get(lease_id))
        assert expired[lease_id][0] >= acknowledged[lease_id]["expires_at"], ("expired early", lease_id)
    reclaimed = reclaimed_per_object(database)
    assert {acknowledged[lease_id]["object_id"] for lease_id in short} <= set(reclaimed)
    assert all(count == 1 for count in reclaimed.values()), reclaimed
    standby.signal(signal.SIGTERM)
    assert standby.wait_exit() == 0


def test_zombie_resumed_after_a_takeover_commits_and_publishes_nothing_and_steps_down(database, tmp_path, nodes):
    owner = Node(database, tmp_path, "broker-a")
    nodes.append(owner)
    owner.wait_ready()
    standby = Node(database, tmp_path, "broker-b")
    nodes.append(standby)
    owner_sub = owner.subscriber()
    wait_subscribed(owner, owner_sub, 1)

    # Leases that fall due while the owner is paused
    acknowledged = create_acknowledged(owner, "z", 200, lambda index: 1000 + index * 5)
    assert len(acknowledged) == 200
    while owner_sub.poll(100):
        owner_sub.recv_multipart()

    owner.signal(signal.SIGSTOP)
    stopped = time.monotonic()
    while owner_sub.poll(200):      # what it published just before the pause
        owner_sub.recv_multipart()
    # Requests queued to the paused owner: it reads them when resumed
    for index in range(50):
        owner.dealer.send(msgpack.packb({"v": 1, "rid": 5000 + index, "cmd": "CREATE",
                                         "object_id": f"zombie-{index}", "service_id": "z", "ttl_ms": 60000}))
    standby.wait_ready()
    assert time.monotonic() - stopped >= LEASE_S - 0.5 - 0.05, "taken over before the lease could run out"
    # The new owner expires what fell due: one reclaim each
    deadline = time.monotonic() + DEADLINE
    while not all(state == "EXPIRED" for state, _ in stored(database, "z").values()):
        assert time.monotonic() < deadline, standby.log()
        time.sleep(0.1)
    reclaims_before = reclaimed_per_object(database)
    events_before = int(psql(database, "SELECT count (*) FROM gt_events"))

    owner.signal(signal.SIGCONT)
    status = owner.wait_exit()
    assert status == EXIT_STEPPED_DOWN, owner.log()
    assert "stepping down" in owner.log()
    # It published nothing after SIGCONT
    heard = []
    while owner_sub.poll(300):
        heard.append(owner_sub.recv_multipart())
    assert heard == [], heard
    # It committed nothing: none of its paused requests is anywhere, the
    # history did not grow, every object was reclaimed exactly once
    assert psql(database, "SELECT count (*) FROM gt_leases WHERE object_id LIKE 'zombie-%'") == "0"
    assert int(psql(database, "SELECT count (*) FROM gt_events")) == events_before
    reclaims = reclaimed_per_object(database)
    assert reclaims == reclaims_before
    assert {f"z-{index}" for index in range(200)} <= set(reclaims)
    assert all(count == 1 for count in reclaims.values()), reclaims
    # Its replies to them, if any, are refusals
    while owner.dealer.poll(100):
        reply = msgpack.unpackb(owner.dealer.recv(), raw=False)
        assert reply["code"] != "OK", reply
    assert shards(database) == {"broker-b": (256, {2})}
    standby.signal(signal.SIGTERM)
    assert standby.wait_exit() == 0


def test_graceful_stop_hands_the_shards_to_the_standby_at_once(database, tmp_path, nodes):
    owner = Node(database, tmp_path, "broker-a")
    nodes.append(owner)
    owner.wait_ready()
    standby = Node(database, tmp_path, "broker-b")
    nodes.append(standby)
    acknowledged = create_acknowledged(owner, "g", 500, lambda index: 600000)
    assert len(acknowledged) == 500
    deadline = time.monotonic() + DEADLINE
    while psql(database, "SELECT count (*) FROM gt_brokers WHERE broker_id = 'broker-b'") != "1":
        assert time.monotonic() < deadline, standby.log()
        time.sleep(0.05)
    # MAP (GTLP.md §14.2): the owner has every shard at its bound endpoint;
    # the standby is listed, with none
    brokers = wait_map(owner, lambda reply: len(reply["brokers"]) == 2)
    assert brokers["map_version"] == 256 and brokers["cluster"] is False
    first, second = brokers["brokers"]
    assert (first["broker_id"], first["endpoint"], first["events_endpoint"]) == ("broker-a", owner.endpoint,
                                                                                 owner.events)
    assert first["shards"] == list(range(256)) and first["epochs"] == [1] * 256
    assert second["broker_id"] == "broker-b" and second["shards"] == [] and second["epochs"] == []
    owner.signal(signal.SIGTERM)
    assert owner.wait_exit() == 0
    exited = time.monotonic()
    ready = standby.wait_ready()
    print(f"handoff: standby ready {(ready - exited) * 1000:.0f} ms after the owner exited")
    # NOTIFY wakes the standby: far sooner than the lease (1.2 s) could run out
    assert ready - exited < LEASE_S, standby.log()
    assert shards(database) == {"broker-b": (256, {2})}
    # The new owner's MAP: itself with every shard, at its bound endpoint
    brokers = wait_map(standby, lambda reply: reply["map_version"] == 512 and len(reply["brokers"]) == 1)
    only = brokers["brokers"][0]
    assert (only["broker_id"], only["endpoint"], only["shards"]) == ("broker-b", standby.endpoint, list(range(256)))
    assert only["epochs"] == [2] * 256
    for lease_id, lease in acknowledged.items():
        reply = standby.call("GET", lease_id=lease_id)
        assert reply["code"] == "OK" and reply["lease"]["expires_at"] == lease["expires_at"], reply
    standby.signal(signal.SIGTERM)
    assert standby.wait_exit() == 0


def test_a_multi_host_database_url_reaches_the_writable_host(database, tmp_path, nodes):
    """DATABASE_URL may list several hosts with target_session_attrs=read-write
    (docs/CLUSTER.md, "PostgreSQL's own availability"): libpq tries them in
    order on every connection, so the writer and the shard ownership reach
    the primary after a switch.  Here the first host is down (nothing
    listens on port 1): the broker starts on the second and serves."""
    parts = urllib.parse.urlsplit(database)
    url = (f"postgresql://{parts.username}:{parts.password}@127.0.0.1:1,{parts.hostname}:{parts.port or 5432}"
           f"{parts.path}?target_session_attrs=read-write&connect_timeout=2")
    node = Node(url, tmp_path, "multi-host")
    nodes.append(node)
    node.wait_ready()
    reply = node.call("CREATE", object_id="multi-host-object", service_id="m", ttl_ms=600000)
    assert reply["code"] == "OK", reply
    assert psql(database, "SELECT count (*) FROM gt_leases WHERE object_id = 'multi-host-object'") == "1"
    assert shards(database) == {"multi-host": (256, {1})}
    node.signal(signal.SIGTERM)
    assert node.wait_exit() == 0


def test_zz_owner_out_of_step_keeps_its_shards_through_a_postgresql_restart(database, tmp_path, nodes):
    """When PostgreSQL comes back every ownership lease has run out on its
    clock; the standby may get in first, but must leave the shards to the
    owner, alive, which gets in within a renewal period.  Stops and starts
    the local cluster (hence zz: last in this file)."""
    cluster = local_cluster()
    if cluster is None:
        pytest.skip("needs root and pg_ctlcluster for the local cluster serving DATABASE_URL")
    owner = Node(database, tmp_path, "broker-a")
    nodes.append(owner)
    owner.wait_ready()
    standby = Node(database, tmp_path, "broker-b")
    nodes.append(standby)
    deadline = time.monotonic() + DEADLINE
    while psql(database, "SELECT count (*) FROM gt_brokers WHERE broker_id = 'broker-b'") != "1":
        assert time.monotonic() < deadline, standby.log()
        time.sleep(0.05)
    acknowledged = create_acknowledged(owner, "p", 200, lambda index: 600000)
    assert len(acknowledged) == 200

    # PostgreSQL away, the owner's attempts to reconnect out of step with
    # the standby's
    postgres_outage_out_of_step(cluster, [owner], owner)
    deadline = time.monotonic() + DEADLINE
    try:
        while owner.call("HEALTH")["status"] != "SERVING":
            assert time.monotonic() < deadline, "the owner did not recover"
            time.sleep(0.05)
    except AssertionError as error:
        raise AssertionError(f"{error}\nowner:\n{owner.log()}\nstandby:\n{standby.log()}") from None
    # A renewal or two later, still the owner at its epoch; the standby
    # waits on, and every acknowledged lease is served as acknowledged
    for lease_id, lease in acknowledged.items():
        reply = owner.call("GET", lease_id=lease_id)
        assert reply["code"] == "OK" and reply["lease"]["expires_at"] == lease["expires_at"], reply
    reply = owner.call("CREATE", object_id="after-restart", service_id="p", ttl_ms=600000)
    assert reply["code"] == "OK", reply
    assert shards(database) == {"broker-a": (256, {1})}, standby.log()
    assert owner.proc.poll() is None and standby.proc.poll() is None
    # The standby's start-up connection for the load died with the restart:
    # it makes a fresh one and takes over when the owner stops, with every lease
    owner.signal(signal.SIGTERM)
    assert owner.wait_exit() == 0
    standby.wait_ready()
    assert "connecting again for the load" in standby.log(), standby.log()
    for lease_id, lease in acknowledged.items():
        reply = standby.call("GET", lease_id=lease_id)
        assert reply["code"] == "OK" and reply["lease"]["expires_at"] == lease["expires_at"], reply
    assert shards(database) == {"broker-b": (256, {2})}
    standby.signal(signal.SIGTERM)
    assert standby.wait_exit() == 0
