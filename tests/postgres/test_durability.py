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
the test waits for the clock.
"""
import itertools
import os
import re
import selectors
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import msgpack
import pytest
import zmq

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("GT_BUILD_DIR", os.path.join(REPO, "build"))
BROKER_BIN = os.environ.get("GT_BROKER_BIN", os.path.join(BUILD, "broker", "garbagetruck"))
DATABASE_URL = os.environ.get("DATABASE_URL")

READY = re.compile(r"^garbagetruck ready requests=(\S+) events=(\S+)(?: metrics=(http://\S+))?")
DEADLINE = 30.0         # seconds any single wait may take (the writer's commit timeout is 10 s)
LONG_TTL_MS = 600000    # leases that must not expire during a test

pytestmark = pytest.mark.skipif(not DATABASE_URL, reason="DATABASE_URL is not set (PostgreSQL tests)")

_databases = itertools.count(1)
_running = []           # every daemon a test started: killed if the test left it running


# ---------------------------------------------------------------------------
# PostgreSQL

def psql(url, sql):
    """Run sql with the psql CLI; returns its unaligned output."""
    result = subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-qAtc", sql],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def _database_url(name):
    """DATABASE_URL pointing at database name instead."""
    if re.match(r"^postgres(ql)?://", DATABASE_URL):
        parts = urllib.parse.urlsplit(DATABASE_URL)
        return urllib.parse.urlunsplit(parts._replace(path="/" + name))
    return f"{DATABASE_URL} dbname={name}"


@pytest.fixture
def database():
    """A fresh, empty database; its URL.  Dropped afterwards."""
    name = f"gt_pytest_{os.getpid()}_{next(_databases)}"
    psql(DATABASE_URL, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    psql(DATABASE_URL, f"CREATE DATABASE {name}")
    yield _database_url(name)
    psql(DATABASE_URL, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _cluster():
    """(version, name) of the local cluster serving DATABASE_URL, or None."""
    if not shutil.which("pg_lsclusters") or not shutil.which("pg_ctlcluster") or os.geteuid() != 0:
        return None
    port = 5432
    if re.match(r"^postgres(ql)?://", DATABASE_URL):
        port = urllib.parse.urlsplit(DATABASE_URL).port or 5432
    else:
        match = re.search(r"\bport=(\d+)", DATABASE_URL)
        port = int(match.group(1)) if match else 5432
    listing = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True).stdout
    for line in listing.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[2] == str(port):
            return fields[0], fields[1]
    return None


def _pg_ready():
    """Wait until the server accepts connections again (pg_isready polls with its own timeout)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if subprocess.run(["pg_isready", "-q", "-d", DATABASE_URL, "-t", "5"]).returncode == 0:
            return
    raise AssertionError("PostgreSQL did not come back within 60 s")


# ---------------------------------------------------------------------------
# The daemon

def _read_line(stream, timeout):
    """One line from a pipe within timeout seconds, else None."""
    selector = selectors.DefaultSelector()
    selector.register(stream, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    data = b""
    try:
        while not data.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                return None
            chunk = os.read(stream.fileno(), 1)
            if not chunk:
                return None
            data += chunk
    finally:
        selector.close()
    return data.decode().rstrip("\n")


def _start(url, log_path, *extra, storage="postgres"):
    """Start the daemon; (process, ready line or None)."""
    if not os.access(BROKER_BIN, os.X_OK):
        pytest.fail(f"{BROKER_BIN} is missing: build first (cmake --build build)")
    env = dict(os.environ)
    for name in list(env):
        if name.startswith("GC_"):
            del env[name]
    env["GC_STORAGE_BACKEND"] = storage
    if url is None:
        env.pop("DATABASE_URL", None)
    else:
        env["DATABASE_URL"] = url
    log = open(log_path, "ab")
    proc = subprocess.Popen(
        [BROKER_BIN, "--host", "127.0.0.1", "--port", "0", "--events-port", "0",
         "--metrics-port", "auto", "--min-lease", "0.05", "--max-leases-per-service", "100000",
         *extra],
        stdout=subprocess.PIPE, stderr=log, env=env)
    log.close()
    _running.append(proc)
    return proc, _read_line(proc.stdout, 60)


@pytest.fixture(autouse=True)
def _no_daemon_left():
    """A failing test must not leave its daemons running."""
    yield
    while _running:
        proc = _running.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


class Broker:
    """The daemon on a database, and a DEALER to it."""

    def __init__(self, url, tmp_path, *extra):
        self.log_path = tmp_path / "broker.log"
        self.proc, line = _start(url, self.log_path, *extra)
        match = READY.match(line or "")
        if not match:
            self.kill()
            pytest.fail(f"broker did not print its ready line (got {line!r}); log:\n{self.log()}")
        self.endpoint, self.events, self.metrics_url = match.groups()
        self.context = zmq.Context()
        self.dealer = self.socket()
        self.rids = itertools.count(1)

    def socket(self):
        dealer = self.context.socket(zmq.DEALER)
        dealer.setsockopt(zmq.LINGER, 0)
        dealer.connect(self.endpoint)
        return dealer

    def log(self):
        return self.log_path.read_text(errors="replace")

    def call(self, cmd, **fields):
        """One request on the main DEALER; the decoded reply."""
        return call(self.dealer, next(self.rids), cmd, **fields)

    def readyz(self):
        """HTTP status of /readyz, or None when the metrics endpoint is not there."""
        if not self.metrics_url:
            return None
        try:
            with urllib.request.urlopen(self.metrics_url + "/readyz", timeout=DEADLINE) as answer:
                return answer.status
        except urllib.error.HTTPError as error:
            return error.code

    def list_all(self):
        """Every lease, through LIST pages: {lease id: lease}."""
        leases = {}
        cursor = None
        while True:
            fields = {"limit": 1000}
            if cursor:
                fields["cursor"] = cursor
            reply = self.call("LIST", **fields)
            assert reply["code"] == "OK", reply
            for lease in reply["leases"]:
                assert lease["id"] not in leases, f"lease {lease['id']} listed twice"
                leases[lease["id"]] = lease
            cursor = reply.get("cursor")
            if not cursor:
                return leases

    def replay(self, after_seq):
        """Every event after after_seq, through REPLAY pages (sequence checked)."""
        events = []
        while True:
            reply = self.call("REPLAY", after_seq=after_seq, limit=1000)
            assert reply["code"] == "OK", reply
            for event in reply["events"]:
                assert event["seq"] == after_seq + 1, "gap in the event sequence"
                after_seq = event["seq"]
                events.append(event)
            if not reply["events"]:
                return events

    def last_seq(self):
        reply = self.call("REPLAY", after_seq=0, limit=1)
        assert reply["code"] == "OK", reply
        return reply["last_seq"]

    def close_sockets(self):
        if self.context is not None:
            self.context.destroy(linger=0)
            self.context = None

    def stop(self):
        """SIGTERM: a graceful stop (exit 0)."""
        self.close_sockets()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                assert self.proc.wait(timeout=60) == 0
            finally:
                if self.proc.poll() is None:
                    self.kill()

    def kill(self):
        """SIGKILL: a crash."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.close_sockets()


def call(dealer, rid, cmd, timeout=DEADLINE, **fields):
    """One request on a DEALER; the decoded reply (AssertionError on timeout)."""
    dealer.send(msgpack.packb({"v": 1, "rid": rid, "cmd": cmd, **fields}))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if dealer.poll(int((deadline - time.monotonic()) * 1000) + 1):
            reply = msgpack.unpackb(dealer.recv(), raw=False)
            if reply["rid"] == rid:
                return reply
    raise AssertionError(f"no reply to {cmd} rid {rid} within {timeout} s")


def create_many(dealer, prefix, count, ttl_ms, window=256):
    """CREATE count leases pipelined (object prefix-i, service prefix); {object id: lease}."""
    created = {}
    sent = {}
    rids = itertools.count(1)
    index = 0
    while index < count or sent:
        while index < count and len(sent) < window:
            rid = next(rids)
            object_id = f"{prefix}-{index}"
            dealer.send(msgpack.packb({"v": 1, "rid": rid, "cmd": "CREATE", "object_id": object_id,
                                       "service_id": prefix, "ttl_ms": ttl_ms}))
            sent[rid] = object_id
            index += 1
        assert dealer.poll(int(DEADLINE * 1000)), "no reply within the deadline"
        reply = msgpack.unpackb(dealer.recv(), raw=False)
        object_id = sent.pop(reply["rid"])
        assert reply["code"] == "OK", reply
        created[object_id] = reply["lease"]
    return created


def wait_wall(wall_ms):
    """Wait until the wall clock has passed wall_ms: time itself must pass."""
    while time.time() * 1000 <= wall_ms:
        time.sleep(max(0.001, (wall_ms - time.time() * 1000) / 1000 + 0.001))


def same_lease(stored, acknowledged):
    for field in ("id", "object_id", "service_id", "object_type", "fence", "ttl_ms",
                  "created_at", "renewed_at", "expires_at", "renewals"):
        assert stored[field] == acknowledged[field], (field, stored, acknowledged)


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
        sub.setsockopt(zmq.SUBSCRIBE, b"expired.")
        sub.setsockopt(zmq.SUBSCRIBE, b"reclaimed.")
        sub.connect(broker.events)
        due_ids = {lease["id"] for lease in due.values()}
        published = {}
        deadline = time.monotonic() + 60
        while True:
            while sub.poll(0):
                topic, body = sub.recv_multipart()
                event = msgpack.unpackb(body, raw=False)
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
    proc, line = _start(database, log_path)
    assert proc.wait(timeout=60) != 0
    assert line is None
    message = log_path.read_text()
    assert "newer than this garbagetruck knows" in message, message
    assert psql(database, "SELECT max (version) FROM gt_schema_migrations") == "999"

    # Nothing listening: a clear message at once (GC_DB_CONNECT_WAIT 0)
    log_path = tmp_path / "unreachable.log"
    proc, line = _start("postgresql://nobody:secret@127.0.0.1:1/none", log_path)
    assert proc.wait(timeout=60) == 1 and line is None
    message = log_path.read_text()
    assert "cannot connect to PostgreSQL" in message and "secret" not in message, message

    # No DATABASE_URL at all: a setting error
    log_path = tmp_path / "no-url.log"
    proc, line = _start(None, log_path)
    assert proc.wait(timeout=60) == 2 and line is None
    assert "DATABASE_URL" in log_path.read_text()


# ---------------------------------------------------------------------------
# Outage: PostgreSQL stops while clients work (LAST: it stops the cluster)

def test_zz_outage_refuses_changes_and_recovers_without_a_restart(database, tmp_path):
    cluster = _cluster()
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
            _pg_ready()
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
