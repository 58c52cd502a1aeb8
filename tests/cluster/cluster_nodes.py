"""Shared by the cluster tests: daemons on one PostgreSQL database (Node),
and what the tests read back from the database and the brokers."""
import itertools
import os
import signal
import subprocess
import sys
import threading
import time

import msgpack
import pytest
import zmq

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "postgres"))

from pg_daemon import (BROKER_BIN, DATABASE_URL, DEADLINE, READY, _read_line, call,  # noqa: E402
                       psql, running, wait_pg_ready)


LEASE_S = 1.2           # GC_SHARD_LEASE for these tests
RENEW_S = 0.3           # GC_SHARD_RENEW
EXIT_STEPPED_DOWN = 3   # the daemon's exit status after stepping down


class Node:
    """One daemon (GC_BROKER_ID name) on the database; it may be a standby
    that prints its ready line only once it owns the shards."""

    def __init__(self, url, tmp_path, name, lease_s=LEASE_S, renew_s=RENEW_S, cluster=False):
        self.name = name
        self.log_path = tmp_path / f"{name}.log"
        env = {key: value for key, value in os.environ.items() if not key.startswith("GC_")}
        env.update({"GC_STORAGE_BACKEND": "postgres", "DATABASE_URL": url, "GC_BROKER_ID": name})
        if lease_s:
            env.update({"GC_SHARD_LEASE": str(lease_s), "GC_SHARD_RENEW": str(renew_s)})
        if cluster:
            env["GC_CLUSTER"] = "1"
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [BROKER_BIN, "--host", "127.0.0.1", "--port", "0", "--events-port", "0", "--metrics-port", "0",
             "--min-lease", "0.05", "--max-leases-per-service", "100000"],
            stdout=subprocess.PIPE, stderr=log, env=env)
        log.close()
        running.append(self.proc)
        self.endpoint = self.events = None
        self.context = zmq.Context()
        self.rids = itertools.count(1)
        self.dealer = None

    def wait_ready(self, timeout=DEADLINE):
        """Wait for the ready line (the shards are owned); the monotonic time it came."""
        line = _read_line(self.proc.stdout, timeout)
        at = time.monotonic()
        match = READY.match(line or "")
        assert match, f"{self.name} did not become ready (got {line!r}); log:\n{self.log()}"
        self.endpoint, self.events, _ = match.groups()
        self.dealer = self.context.socket(zmq.DEALER)
        self.dealer.setsockopt(zmq.LINGER, 0)
        self.dealer.connect(self.endpoint)
        return at

    def log(self):
        return self.log_path.read_text(errors="replace")

    def call(self, cmd, **fields):
        return call(self.dealer, next(self.rids), cmd, **fields)

    def subscriber(self):
        sub = self.context.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(self.events)
        return sub

    def signal(self, number):
        self.proc.send_signal(number)

    def wait_exit(self, timeout=DEADLINE):
        return self.proc.wait(timeout=timeout)

    def close(self):
        self.context.destroy(linger=0)


@pytest.fixture(name="nodes")
def nodes_fixture():
    made = []
    yield made
    for node in made:
        if node.proc.poll() is None:
            node.proc.kill()
            node.proc.wait()
        node.close()


def postgres_outage_out_of_step(cluster, watched, paused, on_fenced=None):
    """Stop the local PostgreSQL cluster (version, name) in immediate mode,
    wait until every node of watched fences itself (HEALTH DEGRADED), and
    start it again, whatever happens; returns what on_fenced (if given)
    returned, called once they all fenced themselves.  Faults, not waits: the outage lasts
    4 s (the reconnect delays reach their cap), then the node paused is
    stopped 2.5 s (SIGSTOP), which puts its attempts to reconnect out of
    step with the others'.  (Before the delay was capped at the renewal
    period, such a node got in ~1.5 s after another, which a lease later
    took its shards, and it stepped down.)"""
    version, name = cluster
    subprocess.run(["pg_ctlcluster", version, name, "stop", "-m", "immediate"], check=True,
                   capture_output=True, timeout=120)
    try:
        deadline = time.monotonic() + DEADLINE
        while any(node.call("HEALTH")["status"] != "DEGRADED" for node in watched):
            assert time.monotonic() < deadline, "the brokers did not notice the outage"
            time.sleep(0.05)
        fenced = on_fenced() if on_fenced else None
        time.sleep(4.0)
        paused.signal(signal.SIGSTOP)
        try:
            time.sleep(LEASE_S + 1.3)
        finally:
            paused.signal(signal.SIGCONT)
    finally:
        subprocess.run(["pg_ctlcluster", version, name, "start"], check=True, capture_output=True, timeout=120)
        wait_pg_ready()
    return fenced


def shards(url):
    """{owner: (number of shards, set of epochs)} from gt_shards."""
    rows = psql(url, "SELECT coalesce (owner, ''), count (*), string_agg (DISTINCT epoch::text, ',')"
                     " FROM gt_shards GROUP BY owner")
    result = {}
    for line in rows.splitlines():
        owner, count, epochs = line.split("|")
        result[owner] = (int(count), {int(epoch) for epoch in epochs.split(",")})
    return result


def wait_subscribed(node, sub, rid_base):
    """Until sub hears the node's events: renew nothing, just create and release a probe."""
    deadline = time.monotonic() + DEADLINE
    for attempt in itertools.count():
        assert time.monotonic() < deadline, "the subscriber never heard an event"
        reply = node.call("CREATE", object_id=f"probe-{rid_base}-{attempt}", service_id="probe", ttl_ms=60000)
        assert reply["code"] == "OK", reply
        if sub.poll(200):
            while sub.poll(50):
                sub.recv_multipart()
            return


def create_acknowledged(node, prefix, count, ttl_ms_of, window=200):
    """Pipelined CREATEs; {lease id: acknowledged lease} of those answered OK."""
    acknowledged = {}
    sent = {}
    rids = itertools.count(1000000)
    index = 0
    dealer = node.dealer
    while index < count or sent:
        while index < count and len(sent) < window:
            rid = next(rids)
            dealer.send(msgpack.packb({"v": 1, "rid": rid, "cmd": "CREATE", "object_id": f"{prefix}-{index}",
                                       "service_id": prefix, "ttl_ms": ttl_ms_of(index)}))
            sent[rid] = index
            index += 1
        assert dealer.poll(int(DEADLINE * 1000)), "no reply within the deadline"
        reply = msgpack.unpackb(dealer.recv(), raw=False)
        if reply["rid"] not in sent:
            continue
        sent.pop(reply["rid"])
        if reply["code"] == "OK":
            acknowledged[reply["lease"]["id"]] = reply["lease"]
    return acknowledged


def stored(url, prefix):
    """{lease id: (state, expires_at)} of gt_leases rows whose object starts with prefix."""
    rows = psql(url, "SELECT replace (id::text, '-', ''), state, expires_at FROM gt_leases"
                     f" WHERE object_id LIKE '{prefix}-%'")
    result = {}
    for line in rows.splitlines():
        lease_id, state, expires_at = line.split("|")
        result[lease_id] = (state, int(expires_at))
    return result


def reclaimed_per_object(url):
    """{object id: number of object.reclaimed events in gt_events}: read through REPLAY's bodies."""
    rows = psql(url, "SELECT encode (body, 'hex') FROM gt_events WHERE kind = 'object.reclaimed'")
    counts = {}
    for line in rows.splitlines():
        event = msgpack.unpackb(bytes.fromhex(line), raw=False)
        object_id = event["lease"]["object_id"]
        counts[object_id] = counts.get(object_id, 0) + 1
    return counts


def wait_map(node, ready):
    """The node's MAP reply once ready(reply) holds (the map follows the
    database within a renewal)."""
    deadline = time.monotonic() + DEADLINE
    while True:
        reply = node.call("MAP")
        assert reply["code"] == "OK", reply
        if ready(reply):
            return reply
        assert time.monotonic() < deadline, reply
        time.sleep(0.05)


def expired_events(url):
    """{lease id: [at of each lease.expired event]} from gt_events."""
    rows = psql(url, "SELECT encode (body, 'hex') FROM gt_events WHERE kind = 'lease.expired'")
    result = {}
    for line in rows.splitlines():
        event = msgpack.unpackb(bytes.fromhex(line), raw=False)
        result.setdefault(event["lease"]["id"], []).append(event["at"])
    return result


# ---------------------------------------------------------------------------


# ---------------------------------------------------------------------------
# Cluster mode (GTLP.md §14): a client of the tests' own, written from the
# spec and independent of the SDKs, so that a shared bug cannot hide.

FNV_OFFSET = 0xcbf29ce484222325
FNV_PRIME = 0x100000001b3


def shard_of(object_id):
    """FNV-1a 64 of the id's bytes, mod 256 (GTLP.md §4.1)."""
    value = FNV_OFFSET
    for byte in object_id.encode():
        value = ((value ^ byte) * FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return value % 256


def lease_shard(lease_id):
    return int(lease_id[:2], 16)


class Router:
    """Routes each request to the owner of its shard from the MAP, follows
    MOVED, and repeats what is safe after TRY_AGAIN, UNAVAILABLE or a
    silence (GTLP.md §14.3).  One request at a time; one DEALER per
    endpoint, with ZMQ_IMMEDIATE so nothing waits for a dead broker."""

    def __init__(self, endpoints, attempt_s=0.5):
        self.context = zmq.Context()
        self.dealers = {}
        self.endpoints = list(endpoints)
        self.owners = {}
        self.attempt_s = attempt_s
        self.rids = itertools.count(1)
        self.redirects = 0

    def dealer(self, endpoint):
        if endpoint not in self.dealers:
            dealer = self.context.socket(zmq.DEALER)
            dealer.setsockopt(zmq.LINGER, 0)
            dealer.setsockopt(zmq.IMMEDIATE, 1)
            dealer.connect(endpoint)
            self.dealers[endpoint] = dealer
            if endpoint not in self.endpoints:
                self.endpoints.append(endpoint)
        return self.dealers[endpoint]

    def attempt(self, endpoint, cmd, fields):
        """One attempt: the reply, or None (silence, or could not send)."""
        rid = next(self.rids)
        dealer = self.dealer(endpoint)
        try:
            dealer.send(msgpack.packb({"v": 1, "rid": rid, "cmd": cmd, **fields}), zmq.NOBLOCK)
        except zmq.Again:
            return None
        deadline = time.monotonic() + self.attempt_s
        while time.monotonic() < deadline:
            if dealer.poll(max(1, int((deadline - time.monotonic()) * 1000))):
                reply = msgpack.unpackb(dealer.recv(), raw=False)
                if reply["rid"] == rid:
                    return reply
        return None

    def refresh(self):
        for endpoint in list(self.endpoints):
            reply = self.attempt(endpoint, "MAP", {})
            if reply and reply["code"] == "OK":
                self.owners = {shard: broker["endpoint"] for broker in reply["brokers"]
                               for shard in broker["shards"]}
                return reply
        return None

    def call(self, cmd, shard, timeout=DEADLINE, **fields):
        """The final answer to a safe request (anything but a CREATE without
        an idempotency key); AssertionError if none came within timeout."""
        deadline = time.monotonic() + timeout
        endpoint = None
        while time.monotonic() < deadline:
            if endpoint is None:
                if shard not in self.owners:
                    self.refresh()
                endpoint = self.owners.get(shard, self.endpoints[0])
            reply = self.attempt(endpoint, cmd, fields)
            if reply and reply["code"] == "MOVED":
                self.redirects += 1
                endpoint = reply["owner"]
                self.owners[shard] = endpoint
                continue
            if reply is None or reply["code"] in ("TRY_AGAIN", "UNAVAILABLE"):
                time.sleep(0.05)        # the retry-later pause the spec asks of a client
                self.owners.pop(shard, None)
                endpoint = None
                continue
            return reply
        raise AssertionError(f"{cmd} for shard {shard}: no final answer within {timeout} s")

    def close(self):
        self.context.destroy(linger=0)


def wait_balanced(url, names, timeout=DEADLINE):
    """Until each broker of names owns about 256 / len(names) shards (at
    most its share, ceil (256 / n), as the brokers take them; the last one
    the rest) and none is free; {name: shards owned}."""
    deadline = time.monotonic() + timeout
    share = -(-256 // len(names))
    while True:
        owned = {name: count for name, (count, _) in shards(url).items()}
        if set(owned) == set(names) and all(share - len(names) <= owned[name] <= share for name in names):
            return owned
        assert time.monotonic() < deadline, owned
        time.sleep(0.05)


class RenewLoad:
    """A thread renewing lease_ids in turn through its own Router until
    stopped, and with create_prefix also creating a new lease (with an
    idempotency key) after each renewal; renewed {lease id: the last
    acknowledged expires_at}, created {lease id: the acknowledged lease},
    errors [what was not OK in the end]."""

    def __init__(self, endpoints, lease_ids, service_id, ttl_ms, timeout=15, create_prefix=None):
        self.renewed, self.created, self.errors = {}, {}, []
        self._stop = threading.Event()
        self._args = (list(endpoints), list(lease_ids), service_id, ttl_ms, timeout, create_prefix)
        self._thread = threading.Thread(target=self._run, daemon=True)   # never keeps pytest alive
        self._thread.start()

    def _run(self):
        endpoints, lease_ids, service_id, ttl_ms, timeout, create_prefix = self._args
        client = Router(endpoints)
        try:
            index = 0
            while not self._stop.is_set():
                lease_id = lease_ids[index % len(lease_ids)]
                index += 1
                # A TTL of its own each time: each renewal moves the deadline
                reply = client.call("RENEW", lease_shard(lease_id), timeout=timeout, lease_id=lease_id,
                                    service_id=service_id, ttl_ms=ttl_ms + index)
                if reply["code"] == "OK":
                    self.renewed[lease_id] = reply["lease"]["expires_at"]
                else:
                    self.errors.append(reply)
                if create_prefix:
                    object_id = f"{create_prefix}-{index}"
                    reply = client.call("CREATE", shard_of(object_id), timeout=timeout, object_id=object_id,
                                        service_id=service_id, ttl_ms=ttl_ms,
                                        idempotency_key=f"create-{object_id}")
                    if reply["code"] == "OK":
                        self.created[reply["lease"]["id"]] = reply["lease"]
                    else:
                        self.errors.append(reply)
        except AssertionError as error:
            self.errors.append(str(error))
        finally:
            client.close()

    def wait_renewals(self, count, timeout=DEADLINE):
        """Until count leases have been renewed at least once in all (polls)."""
        deadline = time.monotonic() + timeout
        while len(self.renewed) < count:
            assert time.monotonic() < deadline and self._thread.is_alive(), self.errors[:3]
            time.sleep(0.01)

    def stop(self, timeout=DEADLINE * 2):
        self._stop.set()
        self._thread.join(timeout=timeout)
        assert not self._thread.is_alive(), "the renewals did not stop"
