"""The daemon and its database, for the PostgreSQL pytests in this directory.

The test modules import the fixtures `database` (database_fixture) and
`no_daemon_left` from here: not from a conftest.py, because sdk/python/tests
imports its own conftest by name and pytest runs both directories in one
session.  The helpers start the real daemon (GT_BROKER_BIN, else GT_BUILD_DIR
(default <repo>/build) + broker/garbagetruck) on a database of DATABASE_URL's
server, talk GTLP/1 to it over raw pyzmq + msgpack, crash it (SIGKILL) or
stop it (SIGTERM).  No sleeps as synchronisation: waits are reads or polls
with deadlines.
"""
import itertools
import os
import re
import selectors
import shutil
import signal
import subprocess
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

databases = itertools.count(1)   # numbers of the databases this process makes
running = []           # every daemon a test started: killed if the test left it running
brokers = []           # every Broker a test made: its sockets closed at the end of the test


# ---------------------------------------------------------------------------
# PostgreSQL

def psql(url, sql):
    """Run sql with the psql CLI; returns its unaligned output."""
    result = subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-qAtc", sql],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def database_url(name):
    """DATABASE_URL pointing at database name instead."""
    if re.match(r"^postgres(ql)?://", DATABASE_URL):
        parts = urllib.parse.urlsplit(DATABASE_URL)
        return urllib.parse.urlunsplit(parts._replace(path="/" + name))
    return f"{DATABASE_URL} dbname={name}"




def local_cluster():
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


def wait_pg_ready():
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


def start_daemon(url, log_path, *extra, storage="postgres", env=None):
    """Start the daemon (extra: more flags; env: more environment variables);
    (process, ready line or None)."""
    if not os.access(BROKER_BIN, os.X_OK):
        pytest.fail(f"{BROKER_BIN} is missing: build first (cmake --build build)")
    settings = {name: value for name, value in os.environ.items() if not name.startswith("GC_")}
    settings["GC_STORAGE_BACKEND"] = storage
    # One broker identity across restarts, as a fixed host:port gives in a
    # deployment: a restart after kill -9 takes its own shards back at once
    # instead of waiting out the ownership lease (tests/cluster covers that)
    settings["GC_BROKER_ID"] = "pg-test-broker"
    if url is None:
        settings.pop("DATABASE_URL", None)
    else:
        settings["DATABASE_URL"] = url
    settings.update(env or {})
    log = open(log_path, "ab")
    proc = subprocess.Popen(
        [BROKER_BIN, "--host", "127.0.0.1", "--port", "0", "--events-port", "0",
         "--metrics-port", "auto", "--min-lease", "0.05", "--max-leases-per-service", "100000",
         *extra],
        stdout=subprocess.PIPE, stderr=log, env=settings)
    log.close()
    running.append(proc)
    return proc, _read_line(proc.stdout, 60)


class Broker:
    """The daemon on a database, and a DEALER to it."""

    def __init__(self, url, tmp_path, *extra, env=None):
        self.log_path = tmp_path / "broker.log"
        self.proc, line = start_daemon(url, self.log_path, *extra, env=env)
        match = READY.match(line or "")
        if not match:
            self.kill()
            pytest.fail(f"broker did not print its ready line (got {line!r}); log:\n{self.log()}")
        self.endpoint, self.events, self.metrics_url = match.groups()
        self.context = zmq.Context()
        self.dealer = self.socket()
        self.rids = itertools.count(1)
        brokers.append(self)

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
# Fixtures

@pytest.fixture(name="database")
def database_fixture():
    """A fresh, empty database on DATABASE_URL's server; its URL.  Dropped afterwards."""
    name = f"gt_pytest_{os.getpid()}_{next(databases)}"
    psql(DATABASE_URL, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    psql(DATABASE_URL, f"CREATE DATABASE {name}")
    yield database_url(name)
    psql(DATABASE_URL, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(autouse=True)
def no_daemon_left():
    """A failing test must not leave its daemons running, nor sockets open
    (a zmq context collected with open sockets blocks pytest at exit)."""
    yield
    while brokers:
        brokers.pop().close_sockets()
    while running:
        proc = running.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
