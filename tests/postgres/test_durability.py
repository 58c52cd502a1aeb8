"""The durability promise of the PostgreSQL store, against the real daemon.

With GC_STORAGE_BACKEND=postgres the broker writes every change through
before acknowledging it; after a crash or a restart it comes back with
exactly the acknowledged leases, on their original deadlines, and continues
the event sequence; leases that fell due while it was down expire after the
start, each exactly once; while PostgreSQL is away, changes are refused
(UNAVAILABLE) and nothing acknowledged is lost.

Needs DATABASE_URL (skipped without it); each test creates a database of its
own on that server (psql) and drops it afterwards.  The outage test stops the
PostgreSQL cluster that serves DATABASE_URL (pg_ctlcluster, as root), starts
it again in a finally block, and runs LAST in this file.

Binary: GT_BROKER_BIN, else GT_BUILD_DIR (default <repo>/build) +
broker/garbagetruck.  Requests go over raw pyzmq + msgpack (GTLP/1).  No
sleeps as synchronisation: waits are reads or polls with deadlines; where
wall time itself must pass (a deadline falling due while the broker is down)
the test waits for the clock.  The daemon and database helpers are in
pg_daemon.py.
"""
import itertools
import re
import signal
import subprocess
import threading
import time

import msgpack
import pytest
import zmq

from pg_daemon import (DATABASE_URL, DEADLINE, LONG_TTL_MS, Broker, call, create_many, local_cluster,
                       psql, same_lease, start_daemon, wait_pg_ready, wait_wall)
from pg_daemon import database_fixture, no_daemon_left  # noqa: F401  (fixtures)

pytestmark = pytest.mark.skipif(not DATABASE_URL, reason="DATABASE_URL is not set (PostgreSQL tests)")


# ---------------------------------------------------------------------------
# Crash: SIGKILL mid-load, restart on the same database

def test_crash_mid_load_keeps_exactly_the_acknowledged_leases(database, tmp_path):
    broker = Broker(database, tmp_path)
    clients, per_client, window = 8, 1250, 64
    acknowledged = {}                   # object id -> lease
    unanswered = set()                  # object ids sent, never answered
    errors = []
    progress = threading.Condition()
    killed = threading.Event()

    def client(number):
        dealer = broker.socket()
        sent = {}
        rids = itertools.count(1)
        index = 0
        silent_since = None
        try:
            while True:
                while not killed.is_set() and index < per_client and len(sent) < window:
                    rid = next(rids)
                    object_id = f"crash-{number}-{index}"
                    dealer.send(msgpack.packb({"v": 1, "rid": rid, "cmd": "CREATE",
                                               "object_id": object_id, "service_id": f"svc-{number}",
                                               "ttl_ms": LONG_TTL_MS}))
                    sent[rid] = object_id
                    index += 1
                if not sent:
                    return
                if dealer.poll(100):
                    silent_since = None
                    reply = msgpack.unpackb(dealer.recv(), raw=False)
                    object_id = sent.pop(reply["rid"])
                    if reply["code"] != "OK":
                        errors.append(reply)
                        continue
                    with progress:
                        acknowledged[object_id] = reply["lease"]
                        progress.notify_all()
                elif killed.is_set():
                    # Replies the broker sent before dying may still be on
                    # their way: stop after a second without any
                    silent_since = silent_since or time.monotonic()
                    if time.monotonic() - silent_since > 1.0:
                        break
        finally:
            with progress:
                unanswered.update(sent.values())
            dealer.close(linger=0)

    threads = [threading.Thread(target=client, args=(number,)) for number in range(clients)]
    for thread in threads:
        thread.start()
    with progress:
        assert progress.wait_for(lambda: len(acknowledged) >= 4000, timeout=120), \
            f"only {len(acknowledged)} leases acknowledged"
    broker.proc.send_signal(signal.SIGKILL)
    killed.set()
    for thread in threads:
        thread.join(timeout=120)
    broker.kill()
    assert not errors, errors[:3]
    total = clients * per_client
    assert len(acknowledged) < total, "the kill came too late to be mid-load"
    sent_objects = {f"crash-{n}-{i}" for n in range(clients) for i in range(per_client)}

    restarted = Broker(database, tmp_path)
    try:
        present = restarted.list_all()
        by_object = {}
        for lease in present.values():
            assert lease["object_id"] not in by_object, f"object {lease['object_id']} twice"
            by_object[lease["object_id"]] = lease
        # Every acknowledged lease, exactly as acknowledged
        for object_id, lease in acknowledged.items():
            assert object_id in by_object, f"acknowledged lease {lease['id']} lost"
            same_lease(by_object[object_id], lease)
            assert by_object[object_id]["state"] == "ACTIVE"
        # Anything else was in flight at the crash, and is whole
        extra = set(by_object) - set(acknowledged)
        assert extra <= unanswered, sorted(extra - unanswered)[:5]
        for object_id in extra:
            lease = by_object[object_id]
            number = int(object_id.split("-")[1])
            assert lease["service_id"] == f"svc-{number}" and lease["state"] == "ACTIVE"
            assert lease["ttl_ms"] == LONG_TTL_MS
            assert lease["expires_at"] == lease["created_at"] + LONG_TTL_MS
            assert re.match(r"^[0-9a-f]{32}$", lease["id"])
        assert set(by_object) <= sent_objects
        print(f"\ncrash: {len(acknowledged)} acknowledged, {len(unanswered)} unanswered at the kill, "
              f"{len(extra)} of those present after the restart")
        # Numbering goes on: a new lease's event comes after every stored one
        last = restarted.last_seq()
        reply = restarted.call("CREATE", object_id="after-crash", service_id="svc", ttl_ms=LONG_TTL_MS)
        assert reply["code"] == "OK"
        events = restarted.replay(last)
        assert events and events[-1]["lease"]["id"] == reply["lease"]["id"]
    finally:
        restarted.stop()


# ---------------------------------------------------------------------------
# Downtime: deadlines that pass while the broker is down

def test_leases_due_while_down_expire_once_after_the_restart(database, tmp_path):
    broker = Broker(database, tmp_path)
    due = create_many(broker.dealer, "due", 300, 1000)
    kept = create_many(broker.dealer, "kept", 50, LONG_TTL_MS)
    renewed_id = kept["kept-0"]["id"]
    reply = broker.call("RENEW", lease_id=renewed_id, service_id="kept", ttl_ms=LONG_TTL_MS - 1000)
    assert reply["code"] == "OK"
    kept["kept-0"] = reply["lease"]
    last_seq = broker.last_seq()
    broker.stop()
    wait_wall(max(lease["expires_at"] for lease in due.values()) + 50)

    # Paced catch-up (200 a second: about 1.5 s), watched on the PUB socket too
    broker = Broker(database, tmp_path, "--recovery-expiry-rate", "200")
    try:
        sub = broker.context.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.SUBSCRIBE, b"")     # expiries and reclaims: kind is checked below
        sub.connect(broker.events)
        due_ids = {lease["id"] for lease in due.values()}
        published = {}
        deadline = time.monotonic() + 60
        while True:
            while sub.poll(0):
                topic, body = sub.recv_multipart()
                event = msgpack.unpackb(body, raw=False)
                if event["kind"] not in ("lease.expired", "object.reclaimed"):
                    continue
                key = (event["kind"], event["lease"]["id"])
                published[key] = published.get(key, 0) + 1
            events = broker.replay(last_seq)
            expired = [e for e in events if e["kind"] == "lease.expired"]
            reclaimed = [e for e in events if e["kind"] == "object.reclaimed"]
            if len(reclaimed) >= len(due_ids) or time.monotonic() > deadline:
                break
            sub.poll(100)       # the next event, or a tenth of a second
        # Exactly once each, durable, numbered after the first broker's
        assert events[0]["seq"] == last_seq + 1
        assert sorted(e["lease"]["id"] for e in expired) == sorted(due_ids)
        assert sorted(e["lease"]["id"] for e in reclaimed) == sorted(due_ids)
        for event in expired:
            assert event["at"] >= event["lease"]["expires_at"]
        # Published at most once each (a late subscriber misses the first ones)
        assert all(count == 1 for count in published.values()), \
            [key for key, count in published.items() if count > 1][:5]
        assert {lease_id for _, lease_id in published} <= due_ids
        # Paced: spread over more than a second, not in one turn
        times = sorted(e["at"] for e in expired)
        assert times[-1] - times[0] >= 1000, times[-1] - times[0]
        # The others kept their deadlines (no TTL reset), the renewal included
        for object_id, lease in kept.items():
            reply = broker.call("GET", lease_id=lease["id"])
            assert reply["code"] == "OK"
            same_lease(reply["lease"], lease)
            assert reply["lease"]["state"] == "ACTIVE"
        reply = broker.call("GET", lease_id=due["due-7"]["id"])
        assert reply["lease"]["state"] == "EXPIRED"
    finally:
        broker.stop()

    # A second restart expires nothing again
    broker = Broker(database, tmp_path)
    try:
        seq = broker.last_seq()
        reply = broker.call("HEALTH")
        assert reply["code"] == "OK" and reply["active_leases"] == 50
        assert broker.replay(seq) == []
    finally:
        broker.stop()


# ---------------------------------------------------------------------------
# Start-up: migrations, a newer schema, an unreachable database

def test_migrations_are_applied_once_and_a_newer_schema_is_refused(database, tmp_path):
    for _ in range(2):
        broker = Broker(database, tmp_path)
        broker.stop()
    rows = psql(database, "SELECT version, name, applied_at FROM gt_schema_migrations ORDER BY version")
    versions = [int(line.split("|")[0]) for line in rows.splitlines()]
    assert versions == list(range(1, len(versions) + 1)) and len(versions) >= 2
    broker = Broker(database, tmp_path)
    broker.stop()
    assert psql(database, "SELECT version, name, applied_at FROM gt_schema_migrations ORDER BY version") == rows

    # A schema from a newer garbagetruck: refused, untouched
    psql(database, "INSERT INTO gt_schema_migrations (version, name) VALUES (999, 'from_the_future')")
    log_path = tmp_path / "refused.log"
    proc, line = start_daemon(database, log_path)
    assert proc.wait(timeout=60) != 0
    assert line is None
    message = log_path.read_text()
    assert "newer than this garbagetruck knows" in message, message
    assert psql(database, "SELECT max (version) FROM gt_schema_migrations") == "999"

    # Nothing listening: a clear message at once (GC_DB_CONNECT_WAIT 0)
    log_path = tmp_path / "unreachable.log"
    proc, line = start_daemon("postgresql://nobody:secret@127.0.0.1:1/none", log_path)
    assert proc.wait(timeout=60) == 1 and line is None
    message = log_path.read_text()
    assert "cannot connect to PostgreSQL" in message and "secret" not in message, message

    # No DATABASE_URL at all: a setting error
    log_path = tmp_path / "no-url.log"
    proc, line = start_daemon(None, log_path)
    assert proc.wait(timeout=60) == 2 and line is None
    assert "DATABASE_URL" in log_path.read_text()


# ---------------------------------------------------------------------------
# Outage: PostgreSQL stops while clients work (LAST: it stops the cluster)

def test_zz_outage_refuses_changes_and_recovers_without_a_restart(database, tmp_path):
    cluster = local_cluster()
    if cluster is None:
        pytest.skip("needs root and pg_ctlcluster for the local cluster serving DATABASE_URL")
    version, name = cluster
    broker = Broker(database, tmp_path)
    acknowledged = {}                   # lease id -> lease
    refused = [0]
    other = []
    stop = threading.Event()
    lock = threading.Condition()

    def client(number):
        dealer = broker.socket()
        try:
            for index in itertools.count():
                if stop.is_set():
                    return
                reply = call(dealer, index + 1, "CREATE", object_id=f"outage-{number}-{index}",
                             service_id=f"svc-{number}", ttl_ms=LONG_TTL_MS)
                with lock:
                    if reply["code"] == "OK":
                        acknowledged[reply["lease"]["id"]] = reply["lease"]
                    elif reply["code"] == "UNAVAILABLE":
                        refused[0] += 1
                    else:
                        other.append(reply)
                    lock.notify_all()
        finally:
            dealer.close(linger=0)

    threads = [threading.Thread(target=client, args=(number,)) for number in range(4)]
    for thread in threads:
        thread.start()
    try:
        with lock:
            assert lock.wait_for(lambda: len(acknowledged) >= 200, timeout=DEADLINE)
        assert broker.readyz() in (None, 200)
        subprocess.run(["pg_ctlcluster", version, name, "stop", "-m", "fast"], check=True,
                       capture_output=True, timeout=120)
        try:
            # Changes are refused (fail fast), reads keep working
            with lock:
                assert lock.wait_for(lambda: refused[0] >= 10, timeout=DEADLINE), "no UNAVAILABLE"
            health = broker.call("HEALTH")
            assert health["status"] == "DEGRADED" and health["store_status"] == "DEGRADED", health
            started = time.monotonic()
            reply = broker.call("CREATE", object_id="during-outage", service_id="svc", ttl_ms=60000)
            assert reply["code"] == "UNAVAILABLE", reply
            assert time.monotonic() - started < 1.0     # refused before being applied, not after a timeout
            with lock:
                some_id = next(iter(acknowledged))
            reply = broker.call("GET", lease_id=some_id)
            assert reply["code"] == "OK" and reply["lease"]["state"] == "ACTIVE"
            assert broker.call("LIST", limit=10)["code"] == "OK"
            if broker.metrics_url:
                assert broker.readyz() == 503
        finally:
            subprocess.run(["pg_ctlcluster", version, name, "start"], check=True,
                           capture_output=True, timeout=120)
            wait_pg_ready()
        # Back without a restart: the writer reconnects by itself
        deadline = time.monotonic() + DEADLINE
        while broker.call("HEALTH")["status"] != "SERVING":
            assert time.monotonic() < deadline, "the broker did not recover"
            broker.dealer.poll(50)          # ask again in a little while
        reply = broker.call("CREATE", object_id="after-outage", service_id="svc", ttl_ms=LONG_TTL_MS)
        assert reply["code"] == "OK", reply
        acknowledged[reply["lease"]["id"]] = reply["lease"]
        if broker.metrics_url:
            assert broker.readyz() == 200
        with lock:
            count = len(acknowledged)
            assert lock.wait_for(lambda: len(acknowledged) >= count + 50, timeout=DEADLINE)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=2 * DEADLINE)
    assert not other, other[:3]
    if not broker.metrics_url:
        print("\n/readyz not checked: the daemon has no metrics endpoint")

    # Nothing acknowledged was lost: all of it is there after a restart too
    broker.stop()
    restarted = Broker(database, tmp_path)
    try:
        present = restarted.list_all()
        for lease_id, lease in acknowledged.items():
            assert lease_id in present, f"acknowledged lease {lease_id} lost"
            same_lease(present[lease_id], lease)
        print(f"\noutage: {len(acknowledged)} acknowledged, {refused[0]} refused UNAVAILABLE")
    finally:
        restarted.stop()
