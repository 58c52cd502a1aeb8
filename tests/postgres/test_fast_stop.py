"""A fast stop of PostgreSQL under write load: what was in flight is settled at once.

`pg_ctlcluster ... stop -m fast` ends every session with an error (FATAL
57P01, "terminating connection due to administrator command") before
closing it.  A transaction the broker's writer had in flight without its
commit answered therefore did not commit, and the broker knows it: the
CREATEs in it must be answered UNAVAILABLE at once, not after the writer's
10 s commit timeout with "outcome unknown" (which also leaves open whether
they are in the database).  Then, with PostgreSQL back, every CREATE
answered OK is in gt_leases and none answered UNAVAILABLE is.  Ten rounds,
each a fresh race between the stop and the writer's pipeline.

Needs DATABASE_URL (skipped without it) and, like the outage test in
test_durability.py, root and pg_ctlcluster for the local cluster serving it
(skipped without them): it stops that cluster and starts it again (in a
finally block).  Like that test it is named test_zz_*, and this module's
name sorts after test_durability.py, so the cluster-stopping tests run last
and together.  The test has a database of its own, each round a service
(and object ids) of its own; requests go over raw pyzmq + msgpack
(GTLP/1); waits are polls with deadlines.  Helpers: pg_daemon.py.
"""
import itertools
import subprocess
import time

import msgpack
import pytest
import zmq

from pg_daemon import DATABASE_URL, DEADLINE, LONG_TTL_MS, Broker, local_cluster, psql, wait_pg_ready
from pg_daemon import database_fixture, no_daemon_left  # noqa: F401  (fixtures)

pytestmark = pytest.mark.skipif(not DATABASE_URL, reason="DATABASE_URL is not set (PostgreSQL tests)")

ROUNDS = 10
CLIENTS = 2             # DEALERs
WINDOW = 64             # CREATEs in flight per DEALER
WARM_UP = 300           # CREATEs answered OK in a round before the stop
RESOLVE_S = 2.0         # every CREATE in flight answered within this of the stop (commit timeout: 10 s)
MEASURE_S = 15.0        # how long a round waits for the answers at most (to report how long it took)


class Load:
    """CREATEs from a few DEALERs, WINDOW in flight on each; replies sorted by code."""

    def __init__(self, broker, prefix):
        self.prefix = prefix
        self.dealers = [broker.socket() for _ in range(CLIENTS)]
        self.poller = zmq.Poller()
        for dealer in self.dealers:
            self.poller.register(dealer, zmq.POLLIN)
        self.rids = itertools.count(1)
        self.in_flight = {dealer: 0 for dealer in self.dealers}
        self.pending = {}               # rid -> (dealer, object id)
        self.ok = set()                 # object ids answered OK
        self.unavailable = set()        # ... UNAVAILABLE
        self.other = []                 # any other reply
        self.last_reply = None          # monotonic time of the last reply

    def fill(self):
        """Top every DEALER up to WINDOW requests in flight."""
        for dealer in self.dealers:
            while self.in_flight[dealer] < WINDOW:
                rid = next(self.rids)
                object_id = f"{self.prefix}-{rid}"
                dealer.send(msgpack.packb({"v": 1, "rid": rid, "cmd": "CREATE", "object_id": object_id,
                                           "service_id": self.prefix, "ttl_ms": LONG_TTL_MS}))
                self.pending[rid] = (dealer, object_id)
                self.in_flight[dealer] += 1

    def read(self, timeout_s):
        """Take the replies there are, waiting up to timeout_s for the first."""
        for dealer, _ in self.poller.poll(max(0, int(timeout_s * 1000))):
            while dealer.poll(0):
                reply = msgpack.unpackb(dealer.recv(), raw=False)
                sender, object_id = self.pending.pop(reply["rid"])
                assert sender is dealer
                self.in_flight[dealer] -= 1
                self.last_reply = time.monotonic()
                if reply["code"] == "OK":
                    self.ok.add(object_id)
                elif reply["code"] == "UNAVAILABLE":
                    self.unavailable.add(object_id)
                else:
                    self.other.append(reply)

    def close(self):
        for dealer in self.dealers:
            dealer.close(linger=0)


def wait_store_ok(broker):
    deadline = time.monotonic() + DEADLINE
    while True:
        health = broker.call("HEALTH")
        if health["store_status"] == "OK":
            return
        assert time.monotonic() < deadline, f"the store did not recover: {health}"
        broker.dealer.poll(50)          # ask again in a little while


def test_zz_fast_stop_resolves_in_flight_batch_at_once(database, tmp_path):
    cluster = local_cluster()
    if cluster is None:
        pytest.skip("needs root and pg_ctlcluster for the local cluster serving DATABASE_URL")
    version, name = cluster
    broker = Broker(database, tmp_path)
    rounds = []                         # (seconds from the stop to the last answer, OK, UNAVAILABLE)
    try:
        for round_number in range(ROUNDS):
            load = Load(broker, f"fast-{round_number}")
            stopped_at = None
            try:
                deadline = time.monotonic() + DEADLINE
                while len(load.ok) < WARM_UP:
                    assert time.monotonic() < deadline, "no write load"
                    load.fill()
                    load.read(1.0)
                assert not load.unavailable and not load.other, (load.unavailable, load.other[:3])
                # Stop while the writer has transactions in flight: the load
                # goes on until the broker refuses (or the cluster is down)
                stopped_at = time.monotonic()
                stop = subprocess.Popen(["pg_ctlcluster", version, name, "stop", "-m", "fast"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                while not load.unavailable and stop.poll() is None:
                    assert time.monotonic() < stopped_at + DEADLINE, "the stop did not end"
                    load.fill()
                    load.read(0.01)
                # Every CREATE sent gets its answer, and soon
                while load.pending and time.monotonic() < stopped_at + MEASURE_S:
                    load.read(0.1)
                unanswered = len(load.pending)
                resolved_s = (load.last_reply or stopped_at) - stopped_at
                rounds.append((round(resolved_s, 2) if not unanswered else None,
                               len(load.ok), len(load.unavailable)))
                assert stop.wait(timeout=120) == 0, stop.stderr.read()
                assert not load.other, load.other[:3]
            finally:
                load.close()
                if stopped_at is not None:
                    subprocess.run(["pg_ctlcluster", version, name, "start"], check=True,
                                   capture_output=True, timeout=120)
                    wait_pg_ready()
            # Back: exactly the CREATEs answered OK are in the database
            wait_store_ok(broker)
            stored = set(psql(database, "SELECT object_id FROM gt_leases"
                                        f" WHERE service_id = '{load.prefix}'").split())
            lost = load.ok - stored
            assert not lost, f"round {round_number}: {len(lost)} acknowledged CREATEs not stored"
            refused_but_stored = load.unavailable & stored
            assert not refused_but_stored, \
                f"round {round_number}: {len(refused_but_stored)} CREATEs answered UNAVAILABLE are stored"
    finally:
        summary = ", ".join(f"{seconds} s ({ok} OK, {unavailable} UNAVAILABLE)"
                            for seconds, ok, unavailable in rounds)
        print(f"\nfast stop, seconds from the stop to the last answer per round: {summary}")
    log = broker.log()
    broker.stop()
    slow = [seconds for seconds, _, _ in rounds if seconds is None or seconds > RESOLVE_S]
    assert not slow, f"CREATEs in flight were answered late: {summary}"
    assert "outcome unknown" not in log, [line for line in log.splitlines() if "outcome unknown" in line]
