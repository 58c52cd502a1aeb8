"""The SDKs across a kill -9 in cluster mode (issue 14, acceptance 6).

"The Python, Go and C clients, each holding leases with keep-alive, survive
a kill -9 of a broker without losing a lease.  Their subscribers see every
event of their leases exactly once after de-duplication."

Two brokers in cluster mode (GC_CLUSTER=1) on one real PostgreSQL, 128
shards each (ownership lease 1.2 s, renewal 0.3 s: cluster_nodes' defaults).
For each SDK, one test:

* the SDK holds leases (TTL 3 s) with its own keep-alive, half of them in
  shards of the broker that will die and half in the other's, through a
  client given both endpoints; a subscriber of the same SDK, also given both
  endpoints, follows every shard from seq 1 (so it owes every event the
  database has, whatever the SUB sockets' joining time);
  - Python: in-process, Client.hold (HeldLease) and Subscriber;
  - Go: tests/cluster/goclient (Client.Hold and Client.Subscribe), built
    once (modules from the cache or the Go module proxy), printing JSON lines;
  - C: one `gtctl keepalive` per lease (created by the tests' own Router)
    and `gtctl watch --from 1`, both with `--endpoint A,B`;
* once every lease was renewed and its creation heard, kill -9 of one
  broker, and the keep-alive goes on for 2 x TTL after it;
* then, from the clients' own records and from the database (gt_leases,
  gt_shard_events; a GET through the tests' Router as well):
  - no lease reported lost by the SDK;
  - every lease ACTIVE, renewed after the kill (renewed_at > the kill's
    wall ms), and the clients acknowledged a renewal after the kill, whose
    deadline the database has (or a later one);
  - the subscriber delivered, in each shard, exactly the seqs 1, 2, 3 ...
    in order (no (shard, seq) twice, no gap), each the event the database
    has under that (shard, seq), up to everything the database had once the
    checks began; among them each lease's lease.created and lease.renewed
    events from after the kill.

Polls with deadlines, no sleeps as synchronisation (the 2 x TTL after the
kill is the time that must pass, watched with a poll).  A failure while
PostgreSQL restarted (another test run on the same server may restart it)
says so: such a run proves nothing either way.
"""
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import msgpack
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(HERE, "..", "postgres"))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "sdk", "python"))   # this tree's SDK, not an installed copy

import garbagetruck  # noqa: E402
from garbagetruck import Client, GarbageTruckError, Subscriber, Timeout, TooOld  # noqa: E402

from pg_daemon import BUILD, DATABASE_URL, DEADLINE, psql  # noqa: E402
from pg_daemon import database_fixture, no_daemon_left  # noqa: F401,E402  (fixtures)
from cluster_nodes import (Node, Router, lease_shard, nodes_fixture, shard_of, shards,  # noqa: F401,E402
                           wait_balanced, wait_map)

pytestmark = pytest.mark.skipif(not DATABASE_URL, reason="DATABASE_URL is not set (PostgreSQL tests)")

TTL_S = 3.0
TTL_MS = int(TTL_S * 1000)
PER_SIDE = 3            # leases in the dying broker's shards, and as many in the survivor's
GTCTL_BIN = os.environ.get("GT_GTCTL_BIN", os.path.join(BUILD, "sdk", "c", "gtctl"))
GO_DIR = os.path.join(HERE, "goclient")


def now_ms():
    return int(time.time() * 1000)


def poll(condition, timeout, what, interval=0.02):
    """Until condition() is truthy (its value), else AssertionError(what())."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, what() if callable(what) else what
        time.sleep(interval)


def terminate(proc, timeout=DEADLINE):
    """SIGTERM a process this test started and wait for it; its exit status."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"pid {proc.pid} did not stop within {timeout} s of SIGTERM")


@pytest.fixture(name="procs")
def procs_fixture():
    """The client processes a test started: killed (by pid) if still running at its end."""
    started = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream:
                stream.close()


class Lines:
    """The JSON lines a client process prints, read by a thread:
    [(wall ms when read, object)] ({"raw": text} for a line that is not JSON)."""

    def __init__(self, proc):
        self.proc = proc
        self.lock = threading.Lock()
        self.items = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            text = line.decode(errors="replace").strip()
            if not text:
                continue
            try:
                item = json.loads(text)
            except ValueError:
                item = {"raw": text}
            with self.lock:
                self.items.append((now_ms(), item))

    def snapshot(self):
        with self.lock:
            return list(self.items)


# ---------------------------------------------------------------------------
# The cluster and what the database says


class Cluster:
    """Two brokers in cluster mode, balanced 128/128; `victim` will be killed."""

    def __init__(self, database, tmp_path, nodes):
        self.database = database
        self.a = Node(database, tmp_path, "node-a", cluster=True)
        nodes.append(self.a)
        self.a.wait_ready()
        self.b = Node(database, tmp_path, "node-b", cluster=True)
        nodes.append(self.b)
        self.b.wait_ready()
        owned = wait_balanced(database, ["node-a", "node-b"])
        assert owned == {"node-a": 128, "node-b": 128}, owned
        # Both brokers answer the same map: two brokers, 128 shards each
        for node in (self.a, self.b):
            reply = wait_map(node, lambda reply: len(reply["brokers"]) == 2
                             and all(len(broker["shards"]) == 128 for broker in reply["brokers"]))
            assert reply["cluster"] is True
        self.owned = {broker["broker_id"]: set(broker["shards"]) for broker in reply["brokers"]}
        self.victim, self.survivor = self.b, self.a
        self.endpoints = [self.a.endpoint, self.b.endpoint]
        self.events = [self.a.events, self.b.events]
        self.kill_ms = None

    def objects(self, prefix):
        """PER_SIDE object ids in distinct shards of the victim, then as many
        in distinct shards of the survivor."""
        picked = {self.victim.name: [], self.survivor.name: []}
        used = set()
        for index in range(100000):
            object_id = f"{prefix}-{index}"
            shard = shard_of(object_id)
            for name, chosen in picked.items():
                if shard in self.owned[name] and shard not in used and len(chosen) < PER_SIDE:
                    chosen.append(object_id)
                    used.add(shard)
            if all(len(chosen) == PER_SIDE for chosen in picked.values()):
                return picked[self.victim.name] + picked[self.survivor.name]
        raise AssertionError("could not pick the object ids")

    def kill_victim(self):
        self.kill_ms = now_ms()
        self.victim.signal(signal.SIGKILL)
        self.victim.wait_exit()
        return self.kill_ms

    def stored_leases(self, lease_ids):
        """{lease id: (state, renewed_at, expires_at, renewals)} from gt_leases."""
        listed = ",".join(f"'{lease_id}'::uuid" for lease_id in lease_ids)
        rows = psql(self.database, "SELECT replace (id::text, '-', ''), state, renewed_at, expires_at, renewals"
                                   f" FROM gt_leases WHERE id IN ({listed})")
        result = {}
        for line in rows.splitlines():
            lease_id, state, renewed_at, expires_at, renewals = line.split("|")
            result[lease_id] = (state, int(renewed_at), int(expires_at), int(renewals))
        return result

    def stored_events(self):
        """{(shard, seq): (kind, lease id, at)} of every event in gt_shard_events."""
        rows = psql(self.database, "SELECT shard, seq, kind, encode (body, 'hex') FROM gt_shard_events")
        result = {}
        for line in rows.splitlines():
            shard, seq, kind, body = line.split("|")
            event = msgpack.unpackb(bytes.fromhex(body), raw=False)
            assert (event["shard"], event["seq"], event["kind"]) == (int(shard), int(seq), kind), event
            result[(int(shard), int(seq))] = (kind, event["lease"]["id"], event["at"])
        return result

    def stop_survivor(self):
        self.survivor.signal(signal.SIGTERM)
        assert self.survivor.wait_exit() == 0, self.survivor.log()


# ---------------------------------------------------------------------------
# One SDK's side: the leases it holds and the events its subscriber delivered
#
# leases(): {lease id: {"object_id", "acks": [expires_at of each acknowledged
#           renewal, wall ms, in order], "lost": None or why}}
# events(): [(shard, seq, kind, lease id, at ms)] in delivery order
# trouble(): None, or why the side cannot go on (a process died)
# stop(): [problems reported at the end]


class PythonSide:
    name = "python"

    def __init__(self, cluster, procs, tmp_path):
        self.cluster = cluster
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.delivered = []
        self.errors = []
        self.subscribed = threading.Event()
        self.held = []
        self.acks = {}
        self.lost = {}
        self.stack = contextlib.ExitStack()
        self.client = None
        self.threads = []
        self.dead = False

    def start(self, objects):
        self.threads.append(threading.Thread(target=self._subscribe, daemon=True))
        self.threads[-1].start()
        self.client = Client(self.cluster.endpoints, service_id="py-svc", timeout=5.0)
        for object_id in objects:
            held = self.stack.enter_context(self.client.hold(object_id, ttl=TTL_S, on_lost=self._on_lost))
            self.held.append(held)
            with self.lock:
                self.acks[held.lease_id] = []
        self.threads.append(threading.Thread(target=self._follow, daemon=True))
        self.threads[-1].start()

    def _on_lost(self, held):
        with self.lock:
            self.lost[held.lease_id] = held.lost_reason or "lost"

    def _follow(self):
        """Record each renewal the keeper acknowledged (renewals grew)."""
        seen = {held.lease_id: (0, held.expires_at) for held in self.held}
        while not self.stop_event.is_set():
            for held in self.held:
                # the keeper sets renewals, then expires_at: a change of either is a renewal
                now = (held.renewals, held.expires_at)
                if now != seen[held.lease_id]:
                    seen[held.lease_id] = now
                    with self.lock:
                        self.acks[held.lease_id].append(int(now[1].timestamp() * 1000))
            self.stop_event.wait(0.02)

    def _subscribe(self):
        try:
            with Subscriber(self.cluster.events, self.cluster.endpoints, from_seq=1, timeout=5.0) as sub:
                while not self.stop_event.is_set():
                    try:
                        event = sub.receive(timeout=0.2)
                    except Timeout:
                        self.subscribed.set()
                        continue
                    except TooOld as error:
                        with self.lock:
                            self.errors.append(f"TooOld: {error}")
                        continue
                    except GarbageTruckError as error:   # a REPLAY that failed: the next receive tries again
                        with self.lock:
                            self.errors.append(f"{type(error).__name__}: {error}")
                        continue
                    self.subscribed.set()
                    with self.lock:
                        self.delivered.append((event.shard, event.seq, event.kind.value, event.lease.id,
                                               int(event.at.timestamp() * 1000)))
        except Exception as error:  # noqa: BLE001  (reported by trouble())
            with self.lock:
                self.errors.append(f"subscriber died: {type(error).__name__}: {error}")
            self.dead = True

    def leases(self):
        with self.lock:
            return {held.lease_id: {"object_id": held.object_id, "acks": list(self.acks[held.lease_id]),
                                    "lost": self.lost.get(held.lease_id) or (held.lost_reason if held.lost else None)}
                    for held in self.held}

    def events(self):
        with self.lock:
            return list(self.delivered)

    def trouble(self):
        if self.dead:
            return self.errors[-1]
        return None

    def notes(self):
        with self.lock:
            return {"subscriber errors (transient, retried)": list(self.errors)}

    def stop(self):
        problems = [f"{held.lease_id} lost: {held.lost_reason}" for held in self.held if held.lost]
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout=DEADLINE)
            if thread.is_alive():
                problems.append(f"thread {thread.name} did not stop")
        try:
            self.stack.close()          # releases the leases through the SDK
        except GarbageTruckError as error:
            problems.append(f"release: {error}")
        self.close()
        with self.lock:
            problems += [error for error in self.errors if error.startswith(("TooOld", "subscriber died"))]
        return problems

    def close(self):
        """After a failure too: stop the threads and the client (its keeper), releasing nothing."""
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout=DEADLINE)
        if self.client is not None:
            self.client.close()
            self.client = None


@pytest.fixture(name="go_client", scope="module")
def go_client_fixture(tmp_path_factory):
    """tests/cluster/goclient, built once (its modules from the cache, else the
    Go module proxy: on a fresh machine this runs before sdk/go's own tests)."""
    go = shutil.which("go") or ("/usr/local/go/bin/go" if os.access("/usr/local/go/bin/go", os.X_OK) else None)
    if go is None:
        pytest.skip("the Go toolchain is not installed (go not on PATH nor in /usr/local/go/bin)")
    output = str(tmp_path_factory.mktemp("goclient") / "goclient")
    env = dict(os.environ, GOFLAGS="-mod=readonly -buildvcs=false", GOWORK="off")
    result = subprocess.run([go, "build", "-o", output, "."], cwd=GO_DIR, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, f"go build of tests/cluster/goclient failed:\n{result.stderr}"
    return output


class GoSide:
    name = "go"

    def __init__(self, cluster, procs, tmp_path, binary):
        self.cluster = cluster
        self.procs = procs
        self.binary = binary
        self.stderr_path = tmp_path / "goclient.stderr"
        self.proc = None
        self.lines = None

    def start(self, objects):
        with open(self.stderr_path, "wb") as stderr:
            self.proc = subprocess.Popen(
                [self.binary, "-endpoints", ",".join(self.cluster.endpoints), "-service", "go-svc",
                 "-objects", ",".join(objects), "-ttl", f"{TTL_MS}ms", "-from", "1"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr)
        self.procs.append(self.proc)
        self.lines = Lines(self.proc)
        poll(lambda: sum(item.get("type") == "held" for _, item in self.lines.snapshot()) == len(objects),
             DEADLINE, lambda: f"the Go client did not hold its leases: {self.lines.snapshot()}\n{self.log()}")

    def log(self):
        return self.stderr_path.read_text(errors="replace")

    def leases(self):
        result = {}
        for _, item in self.lines.snapshot():
            kind = item.get("type")
            if kind == "held":
                result[item["id"]] = {"object_id": item["object_id"], "acks": [], "lost": None}
            elif kind == "renewed":
                result[item["id"]]["acks"].append(item["expires_at"])
            elif kind == "lost":
                result[item["id"]]["lost"] = item["error"] or "lost"
        return result

    def events(self):
        return [(item["shard"] if item["has_shard"] else None, item["seq"], item["kind"], item["lease"], item["at"])
                for _, item in self.lines.snapshot() if item.get("type") == "event"]

    def trouble(self):
        if self.proc.poll() is not None:
            return f"the Go client exited ({self.proc.returncode}):\n{self.log()}"
        return None

    def notes(self):
        return {"stderr": self.log()}

    def close(self):
        """Nothing: the procs fixture kills the process if it still runs."""

    def stop(self):
        self.proc.stdin.close()         # the client prints its final line and exits
        status = self.proc.wait(timeout=DEADLINE)
        self.lines.thread.join(timeout=DEADLINE)
        problems = [] if status == 0 else [f"the Go client exited {status}:\n{self.log()}"]
        finals = [item for _, item in self.lines.snapshot() if item.get("type") == "final"]
        if len(finals) != 1:
            return problems + [f"no final line from the Go client: {self.lines.snapshot()[-5:]}"]
        problems += [f"{lease_id} lost: {error}" for lease_id, error in finals[0]["leases"].items() if error]
        if finals[0]["subscription"]:
            problems.append(f"subscription: {finals[0]['subscription']}")
        problems += [f"not JSON: {item['raw']}" for _, item in self.lines.snapshot() if "raw" in item]
        return problems


class CSide:
    name = "c"
    service = "c-svc"

    def __init__(self, cluster, procs, tmp_path):
        self.cluster = cluster
        self.procs = procs
        self.tmp_path = tmp_path
        self.keepers = {}           # lease id: (object id, process, Lines, stderr path)
        self.watch = None

    def _spawn(self, name, *args):
        stderr_path = self.tmp_path / f"gtctl-{name}.stderr"
        with open(stderr_path, "wb") as stderr:
            proc = subprocess.Popen([GTCTL_BIN, "--endpoint", ",".join(self.cluster.endpoints), *args],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr)
        self.procs.append(proc)
        return proc, Lines(proc), stderr_path

    def start(self, objects):
        self.watch = self._spawn("watch", "watch", "--from", "1")
        router = Router(self.cluster.endpoints)
        try:
            for object_id in objects:
                reply = router.call("CREATE", shard_of(object_id), object_id=object_id, service_id=self.service,
                                    ttl_ms=TTL_MS, idempotency_key=f"create-{object_id}")
                assert reply["code"] == "OK", reply
                lease_id = reply["lease"]["id"]
                proc, lines, stderr_path = self._spawn(
                    lease_id, "--json", "keepalive", lease_id, "--service", self.service)
                self.keepers[lease_id] = (object_id, proc, lines, stderr_path)
        finally:
            router.close()

    def leases(self):
        result = {}
        for lease_id, (object_id, proc, lines, stderr_path) in self.keepers.items():
            acks = []
            for _, item in lines.snapshot():
                assert item.get("id") == lease_id, item
                acks.append(item["expires_at"])
            stderr = stderr_path.read_text(errors="replace")
            lost = None
            if proc.poll() is not None or "lost" in stderr:
                lost = f"gtctl keepalive exit {proc.poll()}: {stderr.strip()}"
            result[lease_id] = {"object_id": object_id, "acks": acks, "lost": lost}
        return result

    def events(self):
        return [(item.get("shard"), item["seq"], item["kind"], item["lease"]["id"], item["at"])
                for _, item in self.watch[1].snapshot() if "seq" in item]

    def trouble(self):
        for name, (proc, _, stderr_path) in self._all().items():
            if proc.poll() is not None:
                return f"gtctl {name} exited {proc.returncode}: {stderr_path.read_text(errors='replace')}"
        return None

    def _all(self):
        everything = {lease_id: (proc, lines, stderr_path)
                      for lease_id, (_, proc, lines, stderr_path) in self.keepers.items()}
        everything["watch"] = self.watch
        return everything

    def notes(self):
        return {name: stderr_path.read_text(errors="replace") for name, (_, _, stderr_path) in self._all().items()}

    def close(self):
        """Nothing: the procs fixture kills the processes still running."""

    def stop(self):
        problems = []
        for name, (proc, lines, stderr_path) in self._all().items():
            status = terminate(proc)
            lines.thread.join(timeout=DEADLINE)
            stderr = stderr_path.read_text(errors="replace")
            if status != 0 or "lost" in stderr:
                problems.append(f"gtctl {name}: exit {status}: {stderr.strip()}")
            problems += [f"gtctl {name} printed {item['raw']!r}" for _, item in lines.snapshot() if "raw" in item]
        return problems


# ---------------------------------------------------------------------------
# The scenario, the same for each SDK


def postmaster_started(url):
    """When PostgreSQL started (it is shared: another test run may restart it), or None if it is down."""
    try:
        return psql(url, "SELECT pg_postmaster_start_time ()")
    except AssertionError:
        return None


def run_failover(side_class, database, tmp_path, nodes, procs, *args):
    started = postmaster_started(database)
    cluster = Cluster(database, tmp_path, nodes)
    side = side_class(cluster, procs, tmp_path, *args)
    try:
        check_failover(cluster, side)
    except AssertionError as error:
        now = postmaster_started(database)
        if now != started:
            raise AssertionError(f"PostgreSQL restarted during the test (started {started}, now {now}): "
                                 "this run proves nothing either way") from error
        raise
    finally:
        side.close()


def check_failover(cluster, side):
    database = cluster.database
    objects = cluster.objects(side.name)
    began = time.monotonic()
    side.start(objects)

    def diagnosis():
        return (f"{side.name}: leases {side.leases()}\nlast events {side.events()[-10:]}\n"
                f"notes {side.notes()}\ntrouble {side.trouble()}")

    # Before the kill: every lease held and renewed once, its creation heard
    def ready():
        assert side.trouble() is None, side.trouble()
        leases = side.leases()
        created = {lease_id for _, _, kind, lease_id, _ in side.events() if kind == "lease.created"}
        return (len(leases) == len(objects) and all(record["acks"] for record in leases.values())
                and set(leases) <= created)
    poll(ready, DEADLINE, diagnosis)
    leases = side.leases()
    assert sorted(record["object_id"] for record in leases.values()) == sorted(objects)
    on_victim = {lease_id for lease_id in leases if lease_shard(lease_id) in cluster.owned[cluster.victim.name]}
    assert len(on_victim) == PER_SIDE, (on_victim, cluster.owned)
    for lease_id, record in leases.items():
        assert lease_shard(lease_id) == shard_of(record["object_id"])

    kill_ms = cluster.kill_victim()
    print(f"\n{side.name}: kill -9 of {cluster.victim.name} {time.monotonic() - began:.1f} s after the start")

    # The keep-alive goes on for 2 x TTL after the kill
    def waited():
        assert side.trouble() is None, diagnosis()
        return now_ms() > kill_ms + 2 * TTL_MS
    poll(waited, 2 * TTL_S + DEADLINE, diagnosis, interval=0.05)

    # No lease reported lost; each acknowledged a renewal after the kill
    leases = side.leases()
    for lease_id, record in leases.items():
        assert record["lost"] is None, (lease_id, record, diagnosis())
        acks = record["acks"]
        assert acks == sorted(acks), ("an acknowledged deadline went back", lease_id, acks)
        assert acks[-1] > kill_ms + TTL_MS, ("no renewal acknowledged after the kill", lease_id, acks, kill_ms)

    # The database: every lease ACTIVE, renewed after the kill, with at
    # least the last acknowledged deadline
    stored = cluster.stored_leases(list(leases))
    assert set(stored) == set(leases), (stored, leases)
    for lease_id, (state, renewed_at, expires_at, renewals) in stored.items():
        assert state == "ACTIVE", (lease_id, stored[lease_id])
        assert renewed_at > kill_ms, ("not renewed after the kill", lease_id, renewed_at, kill_ms)
        assert expires_at >= leases[lease_id]["acks"][-1], (lease_id, expires_at, leases[lease_id])
    # ... and the survivor serves each of them, ACTIVE
    router = Router([cluster.survivor.endpoint, cluster.victim.endpoint])
    try:
        for lease_id in leases:
            reply = router.call("GET", lease_shard(lease_id), lease_id=lease_id)
            assert reply["code"] == "OK" and reply["lease"]["state"] == "ACTIVE", (lease_id, reply)
    finally:
        router.close()
    assert shards(database)[cluster.survivor.name][0] == 256

    # The subscriber: in each shard, the seqs 1, 2, 3 ... once each and in
    # order, each the event the database has, up to all the database had
    # when the checks began
    wanted = cluster.stored_events()

    def caught_up():
        assert side.trouble() is None, diagnosis()
        heard = {(shard, seq) for shard, seq, _, _, _ in side.events()}
        return set(wanted) <= heard

    def missing():
        heard = {(shard, seq) for shard, seq, _, _, _ in side.events()}
        return f"the subscriber misses {sorted(set(wanted) - heard)[:20]}\n{diagnosis()}"
    poll(caught_up, DEADLINE, missing)
    delivered = side.events()
    stored_now = cluster.stored_events()
    per_shard = {}
    for shard, seq, kind, lease_id, at in delivered:
        assert shard is not None, ("an event without its shard in cluster mode", seq, kind)
        per_shard.setdefault(shard, []).append(seq)
        assert stored_now.get((shard, seq)) == (kind, lease_id, at), \
            ("delivered an event the database does not have", (shard, seq, kind, lease_id, at),
             stored_now.get((shard, seq)))
    for shard, seqs in per_shard.items():
        assert seqs == list(range(1, len(seqs) + 1)), ("a repeat, a gap or disorder", shard, seqs)
    # Each lease: its creation and its renewals after the kill
    for lease_id in leases:
        kinds = [(kind, at) for _, _, kind, event_lease, at in delivered if event_lease == lease_id]
        assert ("lease.created" in {kind for kind, _ in kinds}), (lease_id, kinds)
        after = [at for kind, at in kinds if kind == "lease.renewed" and at > kill_ms]
        assert after, ("no renewal after the kill heard", lease_id, kinds, kill_ms)
    heard_victim = {shard for shard in per_shard if shard in cluster.owned[cluster.victim.name]}
    assert heard_victim, "the subscriber heard nothing of the dead broker's shards"
    renewals_after = sum(1 for _, _, kind, _, at in delivered if kind == "lease.renewed" and at > kill_ms)
    print(f"{side.name}: {len(leases)} leases ({PER_SIDE} on the dead broker's shards), "
          f"{len(delivered)} events delivered in {len(per_shard)} shards, "
          f"{renewals_after} renewals after the kill, {len(wanted)} events in the database at the check; "
          f"notes: { {key: value for key, value in side.notes().items() if value} }")

    problems = side.stop()
    assert not problems, problems
    cluster.stop_survivor()
    print(f"{side.name}: {time.monotonic() - began:.1f} s from the start of the clients")


def test_python_sdk_survives_kill9_in_cluster_mode(database, tmp_path, nodes, procs):
    # This tree's SDK: sdk/python first on sys.path (above), or the copy
    # tests/run-all installed from this tree if another test imported it first
    run_failover(PythonSide, database, tmp_path, nodes, procs)


def test_go_sdk_survives_kill9_in_cluster_mode(go_client, database, tmp_path, nodes, procs):
    run_failover(GoSide, database, tmp_path, nodes, procs, go_client)


def test_c_sdk_survives_kill9_in_cluster_mode(database, tmp_path, nodes, procs):
    if not os.access(GTCTL_BIN, os.X_OK):
        pytest.fail(f"{GTCTL_BIN} is missing: build first (or set GT_GTCTL_BIN)")
    run_failover(CSide, database, tmp_path, nodes, procs)
