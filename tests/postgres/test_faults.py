"""Faults around the PostgreSQL store: a graceful stop under load, reads during an outage.

* SIGTERM while CREATEs are in flight: the broker stops reading requests,
  finishes the batches it handed to PostgreSQL and sends every reply they
  owe, then exits 0.  Every CREATE in the database got its OK reply
  (committed => answered) and every OK reply is in the database
  (answered => durable); requests left unread are dropped, unanswered, and
  none of them is in the database.  Twice: SIGTERM at the first reply (a
  race with the writer), and with the commits held on a lock until the
  broker has begun to stop (so that a thousand replies are surely owed).
* Reads while PostgreSQL goes away under write load (pg_ctlcluster stop
  -m fast and -m immediate, with the commits held on a lock so that a batch
  is surely in flight): GET, LIST, REPLAY, HEALTH and STATS are answered OK
  from memory at once, never failed because a write failed and never
  queued behind a batch whose outcome is unknown (-m immediate leaves the
  batch in flight in doubt until the writer gets through to PostgreSQL
  again or its 10 s commit timeout passes); REPLAY serves durable events
  only.

Needs DATABASE_URL (skipped without it); each test makes a database of its
own on that server (psql) and drops it afterwards.  The outage test also
needs root and pg_ctlcluster for the local cluster serving DATABASE_URL
(skipped without them): it stops that cluster and starts it again in a
finally block, so it is named test_zz_* and runs after the SIGTERM test.
Requests go over raw pyzmq + msgpack (GTLP/1); the outage test's write load
runs in a process of its own, so that the reads it times do not wait for
the load's Python.  No sleeps as synchronisation: waits are polls with
deadlines.  Helpers: pg_daemon.py.
"""
import gc
import itertools
import multiprocessing
import re
import select
import signal
import subprocess
import time

import msgpack
import pytest
import zmq

from pg_daemon import (DATABASE_URL, DEADLINE, LONG_TTL_MS, Broker, call, create_many, local_cluster,
                       psql, wait_pg_ready)
from pg_daemon import database_fixture, no_daemon_left  # noqa: F401  (fixtures)

pytestmark = pytest.mark.skipif(not DATABASE_URL, reason="DATABASE_URL is not set (PostgreSQL tests)")


def stored_leases(url, prefix):
    """{object id: lease id (32 hex)} of the leases in gt_leases whose object id starts with prefix."""
    rows = psql(url, "SELECT object_id, replace(id::text, '-', '') FROM gt_leases"
                     f" WHERE object_id LIKE '{prefix}%'")
    return dict(line.split("|") for line in rows.splitlines() if line)


# ---------------------------------------------------------------------------
# Graceful stop: SIGTERM with 1,000 CREATEs in flight

SOCKETS = 4             # DEALERs
PER_SOCKET = 250        # CREATEs each sends at once; as many again right after the SIGTERM
QUIET_S = 0.5           # after the daemon exited: a socket silent this long is drained
STOPPING = re.compile(r"stopping: (\d+) replies were owed; (\d+) sent, (\d+) could not be .*?, (\d+) not sent")


class HeldCommits:
    """A psql session holding gt_meta locked (every write transaction updates
    its row): the broker's commits wait until release()."""

    def __init__(self, url):
        self.proc = subprocess.Popen(["psql", url, "-qAtX", "-v", "ON_ERROR_STOP=1"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.proc.stdin.write("BEGIN; LOCK TABLE gt_meta IN ACCESS EXCLUSIVE MODE; SELECT 'locked';\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], DEADLINE)
        assert ready and self.proc.stdout.readline().strip() == "locked", self.proc.stderr.read()

    def release(self):
        if self.proc.poll() is None:
            self.proc.stdin.write("COMMIT;\n")
            self.proc.stdin.close()
            assert self.proc.wait(timeout=DEADLINE) == 0, self.proc.stderr.read()

    def wait_writer_blocked(self, url):
        """Wait (bounded) until a session (the broker's writer) waits for the lock."""
        deadline = time.monotonic() + DEADLINE
        while psql(url, "SELECT count(*) FROM pg_locks WHERE NOT granted"
                        " AND relation = 'gt_meta'::regclass") == "0":
            assert time.monotonic() < deadline, "no write waits for the lock"

    def abandon(self):
        """The server is gone (or going): end psql, whatever it says."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            self.proc.wait(timeout=DEADLINE)


def wait_log(broker, text, on_wait):
    """Wait (bounded) until the daemon's log contains text; on_wait() between looks."""
    deadline = time.monotonic() + DEADLINE
    while text not in broker.log():
        assert time.monotonic() < deadline, f"no {text!r} in the log:\n{broker.log()[-3000:]}"
        on_wait()


@pytest.mark.parametrize("when", ["first-reply", "commits-held"])
def test_sigterm_with_creates_in_flight_answers_every_committed_create(database, tmp_path, when):
    """first-reply: SIGTERM as soon as the first reply is in (a race with the
    writer: some runs find every batch committed already).  commits-held: the
    commits wait on a lock until the broker has begun to stop, so that all
    the first wave's replies are owed when it does."""
    broker = Broker(database, tmp_path)
    held = None
    try:
        dealers = [broker.socket() for _ in range(SOCKETS)]
        poller = zmq.Poller()
        for dealer in dealers:
            poller.register(dealer, zmq.POLLIN)
        # Every connection is up before the load (a HEALTH round trip each)
        for dealer in dealers:
            assert call(dealer, 2 * PER_SOCKET + 1, "HEALTH")["code"] == "OK"
        sent = {}                           # (socket number, rid) -> object id, until answered
        answered = {}                       # object id -> lease id (OK replies)
        refused = []                        # any other reply

        def send_wave(first, end):
            """CREATE term-<socket>-<index> for index in first..end-1 on every socket, no waiting."""
            for index in range(first, end):
                for number, dealer in enumerate(dealers):
                    object_id = f"term-{number}-{index}"
                    dealer.send(msgpack.packb({"v": 1, "rid": index + 1, "cmd": "CREATE",
                                               "object_id": object_id, "service_id": f"term-{number}",
                                               "ttl_ms": LONG_TTL_MS}))
                    sent[(number, index + 1)] = object_id

        def read(timeout_ms):
            for dealer, _ in poller.poll(timeout_ms):
                number = dealers.index(dealer)
                while dealer.poll(0):
                    reply = msgpack.unpackb(dealer.recv(), raw=False)
                    object_id = sent.pop((number, reply["rid"]))
                    if reply["code"] == "OK":
                        assert reply["lease"]["object_id"] == object_id, reply
                        answered[object_id] = reply["lease"]["id"]
                    else:
                        refused.append(reply)

        held = HeldCommits(database) if when == "commits-held" else None
        send_wave(0, PER_SOCKET)
        if held:
            # All applied in memory, their batches in flight, waiting on the lock
            deadline = time.monotonic() + DEADLINE
            while True:
                stats = broker.call("STATS")["stats"]
                if stats["active_leases"] == SOCKETS * PER_SOCKET and stats["store_batches_in_flight"]:
                    break
                assert time.monotonic() < deadline, f"the CREATEs were not applied: {stats}"
                broker.dealer.poll(10)      # ask again in a little while
            assert not poller.poll(0), "a CREATE was answered while the commits were held"
        else:
            # SIGTERM as soon as the first reply is in: the broker is mid-load
            assert poller.poll(int(DEADLINE * 1000)), "no reply to any CREATE"
        broker.proc.send_signal(signal.SIGTERM)
        # Clients that go on sending: what of this wave the broker reads before
        # the stop takes effect is applied and answered, the rest is dropped unread
        send_wave(PER_SOCKET, 2 * PER_SOCKET)
        if held:
            # The daemon passed the stop on to the broker: let the commits through
            wait_log(broker, "stopping (signal received)", lambda: read(10))
            held.release()
        # Replies until the daemon has exited, then until every socket is quiet
        deadline = time.monotonic() + DEADLINE
        while broker.proc.poll() is None:
            assert time.monotonic() < deadline, "the daemon did not exit within the deadline after SIGTERM"
            read(50)
        deadline = time.monotonic() + DEADLINE
        while poller.poll(int(QUIET_S * 1000)):
            assert time.monotonic() < deadline, "replies kept coming after the daemon exited"
            read(0)
    finally:
        if held:
            held.release()
        broker.close_sockets()      # no socket left open: a context collected with one hangs
    exit_code = broker.proc.wait()
    log = broker.log()

    stored = stored_leases(database, "term-")
    unanswered = set(sent.values())
    committed_unanswered = sorted(set(stored) - set(answered))
    acknowledged_lost = sorted(set(answered) - set(stored))
    stopping = [line for line in log.splitlines() if "stopping:" in line]
    print(f"\nsigterm ({when}): {2 * SOCKETS * PER_SOCKET} CREATEs sent, {len(stored)} committed, "
          f"{len(answered)} answered OK, {len(refused)} answered otherwise, {len(unanswered)} unanswered, "
          f"{len(committed_unanswered)} committed but unanswered; "
          f"{stopping[-1].split('stopping:', 1)[1].strip() if stopping else 'no stopping: line'}")
    assert exit_code == 0, f"exit code {exit_code}; log:\n{log[-3000:]}"
    # committed => answered OK, with the lease id that was stored
    assert not committed_unanswered, \
        f"{len(committed_unanswered)} committed CREATEs got no OK reply, e.g. {committed_unanswered[:5]}"
    for object_id, lease_id in answered.items():
        assert stored.get(object_id, lease_id) == lease_id, (object_id, stored[object_id], lease_id)
    # answered OK => durable
    assert not acknowledged_lost, \
        f"{len(acknowledged_lost)} CREATEs answered OK are not stored, e.g. {acknowledged_lost[:5]}"
    # The store was up: nothing was refused; what was not answered was not applied
    assert not refused, refused[:3]
    assert not unanswered & set(stored)
    # The broker's own account: it sent every reply it owed
    assert stopping, f"no 'stopping:' line in the log:\n{log[-3000:]}"
    match = STOPPING.search(stopping[-1])
    assert match, stopping[-1]
    owed, sent_count, gone, unsent = map(int, match.groups())
    assert (sent_count, gone, unsent) == (owed, 0, 0), stopping[-1]
    if held:
        assert owed >= SOCKETS * PER_SOCKET, stopping[-1]


# ---------------------------------------------------------------------------
# Outage: reads while PostgreSQL goes away under write load (LAST: it stops the cluster)

LOADERS = 3             # DEALERs writing (one process)
WINDOW = 64             # CREATEs in flight on each
BACKOFF_S = 0.01        # a DEALER refused UNAVAILABLE sends again after this
READ_ROUNDS = 20        # rounds of reads (GET, LIST, REPLAY twice, HEALTH, STATS) from the stop on,
READ_SPAN_S = 3.0       # at least, and for this long after the stop ended
READ_BOUND_S = 0.1      # every read answered within this


def write_load(endpoint, prefix, sending, ok_count, results):
    """The write load, in a process of its own (so that its pace does not
    hold the timed reads up): CREATEs from LOADERS DEALERs, WINDOW in flight
    on each (BACKOFF_S pause after an UNAVAILABLE), while sending is set;
    then the replies to what was sent (bounded).  Sends {"creates": {object
    id: (sent at, replied at or None, code or None, lease id or None)},
    "errors": [...]} to results."""
    context = zmq.Context()
    dealers = []
    poller = zmq.Poller()
    for _ in range(LOADERS):
        dealer = context.socket(zmq.DEALER)
        dealer.setsockopt(zmq.LINGER, 0)
        dealer.connect(endpoint)
        poller.register(dealer, zmq.POLLIN)
        dealers.append(dealer)
    pending = {dealer: {} for dealer in dealers}    # rid -> object id
    resume_at = {dealer: 0.0 for dealer in dealers}  # refused: send again from then on
    creates = {}
    errors = []
    rids = itertools.count(1)
    deadline = None
    try:
        while True:
            now = time.monotonic()
            if sending.is_set():
                for dealer in dealers:
                    while len(pending[dealer]) < WINDOW and now >= resume_at[dealer]:
                        rid = next(rids)
                        object_id = f"{prefix}-{rid}"
                        creates[object_id] = (time.monotonic(), None, None, None)
                        dealer.send(msgpack.packb({"v": 1, "rid": rid, "cmd": "CREATE", "object_id": object_id,
                                                   "service_id": prefix, "ttl_ms": LONG_TTL_MS}))
                        pending[dealer][rid] = object_id
            elif not any(pending.values()):
                break
            else:
                deadline = deadline or time.monotonic() + DEADLINE
                if time.monotonic() > deadline:
                    break
            for dealer, _ in poller.poll(10 if sending.is_set() else 20):
                while dealer.poll(0):
                    reply = msgpack.unpackb(dealer.recv(), raw=False)
                    object_id = pending[dealer].pop(reply["rid"])
                    lease_id = None
                    if reply["code"] == "OK":
                        lease_id = reply["lease"]["id"]
                        ok_count.value += 1
                    elif reply["code"] == "UNAVAILABLE":
                        resume_at[dealer] = time.monotonic() + BACKOFF_S    # as a client would
                    else:
                        errors.append(reply)
                    creates[object_id] = (creates[object_id][0], time.monotonic(), reply["code"], lease_id)
    except Exception as error:          # noqa: BLE001  (reported by the test)
        errors.append(repr(error))
    results.send({"creates": creates, "errors": errors})
    context.destroy(linger=0)


class WriteLoad:
    """write_load in a process of its own."""

    def __init__(self, broker, prefix):
        spawn = multiprocessing.get_context("spawn")
        self.sending = spawn.Event()
        self.sending.set()
        self.ok_count = spawn.RawValue("q", 0)
        self.results, child_end = spawn.Pipe(duplex=False)
        self.proc = spawn.Process(target=write_load, daemon=True,
                                  args=(broker.endpoint, prefix, self.sending, self.ok_count, child_end))
        self.proc.start()
        child_end.close()
        self.outcome = None

    def wait_ok(self, count):
        """Wait (bounded) until count CREATEs were answered OK."""
        deadline = time.monotonic() + DEADLINE
        while self.ok_count.value < count:
            assert self.proc.is_alive() and time.monotonic() < deadline, \
                f"no write load ({self.ok_count.value} CREATEs answered OK)"
            self.results.poll(0.01)         # look again in a little while

    def finish(self):
        """Stop sending; the outcome of every CREATE sent (see write_load)."""
        if self.outcome is None:
            self.sending.clear()
            assert self.results.poll(2 * DEADLINE), "the write load did not report"
            self.outcome = self.results.recv()
            self.proc.join(timeout=DEADLINE)
        if self.proc.is_alive():
            self.proc.kill()
        return self.outcome


def reads_overtaking(reads, creates, before):
    """The reads answered while a CREATE sent before `before` (monotonic) had no reply yet."""
    pending_until = max((record[1] if record[1] is not None else float("inf"))
                        for record in creates.values() if record[0] < before)
    return [read for read in reads if read[2] < pending_until]


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_zz_reads_during_outage_answer_from_memory_at_once(database, tmp_path, mode):
    cluster = local_cluster()
    if cluster is None:
        pytest.skip("needs root and pg_ctlcluster for the local cluster serving DATABASE_URL")
    version, name = cluster
    broker = Broker(database, tmp_path)
    load = held = None
    try:
        known = create_many(broker.dealer, f"known-{mode}", 20, LONG_TTL_MS)
        known_lease = known[f"known-{mode}-7"]
        reader = broker.socket()
        rids = itertools.count(1)
        reads = []                          # (command, sent at, replied at)
        in_flight_seen = []                 # store_batches_in_flight of every STATS during the outage
        served = {}                         # seq -> (kind, lease id) of the events REPLAY served meanwhile
        last_seq = 0                        # the newest last_seq REPLAY reported
        load = WriteLoad(broker, f"load-{mode}")
        load.wait_ok(500)
        # A batch surely in flight when the database goes away: the commits
        # wait on a lock (the load goes on until its windows are full)
        held = HeldCommits(database)
        held.wait_writer_blocked(database)
        blocked_at = time.monotonic()       # the CREATEs sent before are in the broker's hands
        stop = subprocess.Popen(["pg_ctlcluster", version, name, "stop", "-m", mode],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        stop_started = time.monotonic()
        stopped_at = None
        gc.disable()                        # no collector pause in the timed reads
        try:
            # Reads at once and again and again, back to back, while the
            # store goes away: each answered OK from memory within READ_BOUND_S
            rounds = 0
            while rounds < READ_ROUNDS or stopped_at is None or time.monotonic() < stopped_at + READ_SPAN_S:
                assert time.monotonic() < stop_started + DEADLINE, "the stop did not end"
                # The six at once (so that reads are in the broker's hands
                # most of the time), each timed from its send to its reply
                sent = {}
                for cmd, fields in (("GET", {"lease_id": known_lease["id"]}),
                                    ("LIST", {"limit": 10}),
                                    ("REPLAY", {"after_seq": 0, "limit": 10}),
                                    ("REPLAY", {"after_seq": max(0, last_seq - 5), "limit": 1000}),
                                    ("HEALTH", {}),
                                    ("STATS", {})):
                    rid = next(rids)
                    sent[rid] = (cmd, time.monotonic(), fields)
                    reader.send(msgpack.packb({"v": 1, "rid": rid, "cmd": cmd, **fields}))
                while sent:
                    assert reader.poll(int(DEADLINE * 1000)), \
                        f"round {rounds}: no reply to {[cmd for cmd, _, _ in sent.values()]}"
                    reply = msgpack.unpackb(reader.recv(), raw=False)
                    replied_at = time.monotonic()
                    cmd, sent_at, fields = sent.pop(reply["rid"])
                    reads.append((cmd, sent_at, replied_at))
                    milliseconds = (replied_at - sent_at) * 1000
                    assert reply["code"] == "OK", \
                        f"round {rounds}: {cmd} answered {reply} after {milliseconds:.0f} ms"
                    assert replied_at - sent_at < READ_BOUND_S, \
                        f"round {rounds}: {cmd} answered OK, but after {milliseconds:.0f} ms"
                    if cmd == "GET":
                        assert reply["lease"]["id"] == known_lease["id"]
                        assert reply["lease"]["state"] == "ACTIVE", reply
                    elif cmd == "LIST":
                        assert len(reply["leases"]) == 10, reply
                    elif cmd == "REPLAY" and fields["limit"] == 10:
                        assert [event["seq"] for event in reply["events"]] == list(range(1, 11)), reply
                    elif cmd == "REPLAY":
                        # The tail: in order, without a gap, none past last_seq (a
                        # page may end before it)
                        seqs = [event["seq"] for event in reply["events"]]
                        first = fields["after_seq"] + 1
                        assert seqs == list(range(first, first + len(seqs))), reply
                        assert seqs and seqs[-1] <= reply["last_seq"], reply
                        last_seq = max(last_seq, reply["last_seq"])
                        for event in reply["events"]:
                            served.setdefault(event["seq"], (event["kind"], event["lease"]["id"]))
                    elif cmd == "STATS":
                        in_flight_seen.append(reply["stats"]["store_batches_in_flight"])
                rounds += 1
                if stopped_at is None and stop.poll() is not None:
                    stopped_at = time.monotonic()
            assert stop.wait(timeout=DEADLINE) == 0, stop.stderr.read()
            health = broker.call("HEALTH")
            assert health["status"] == "DEGRADED" and health["store_status"] == "DEGRADED", health
        finally:
            gc.enable()
            stop.wait(timeout=120)
            held.abandon()
            subprocess.run(["pg_ctlcluster", version, name, "start"], check=True,
                           capture_output=True, timeout=120)
            wait_pg_ready()
        # Back without a restart
        deadline = time.monotonic() + DEADLINE
        while broker.call("HEALTH")["status"] != "SERVING":
            assert time.monotonic() < deadline, "the broker did not recover"
            broker.dealer.poll(50)          # ask again in a little while
        outcome = load.finish()
        assert not outcome["errors"], outcome["errors"][:3]
        creates = outcome["creates"]

        # The reads did not wait for writes whose outcome was open
        overtaking = reads_overtaking(reads, creates, blocked_at)
        unanswered = [object_id for object_id, record in creates.items() if record[2] is None]
        ok = {object_id: record[3] for object_id, record in creates.items() if record[2] == "OK"}
        refused = {object_id for object_id, record in creates.items() if record[2] == "UNAVAILABLE"}
        slowest = max(reads, key=lambda read: read[2] - read[1])
        print(f"\n{mode} stop: {len(reads)} reads in {rounds} rounds over {reads[-1][2] - reads[0][1]:.1f} s, "
              f"slowest {slowest[0]} {(slowest[2] - slowest[1]) * 1000:.1f} ms; store_batches_in_flight "
              f">0 in {sum(1 for n in in_flight_seen if n)} of {len(in_flight_seen)} STATS "
              f"(max {max(in_flight_seen)}); {len(overtaking)} reads answered before earlier CREATEs; "
              f"CREATEs: {len(ok)} OK, {len(refused)} UNAVAILABLE, {len(unanswered)} unanswered; "
              f"REPLAY served events up to seq {last_seq}")
        # The reads did not wait for the batch in flight (in doubt, with -m
        # immediate, until the writer gets through again)
        assert max(in_flight_seen) > 0, "no STATS saw a batch in flight"
        assert overtaking, "no read was answered while an earlier CREATE was unresolved"
        # REPLAY served durable events only: none of them was rolled back
        # (a rolled-back seq is used again by a later event)
        events = {event["seq"]: (event["kind"], event["lease"]["id"]) for event in broker.replay(0)}
        changed = [seq for seq, event in served.items() if events.get(seq) != event]
        assert not changed, f"REPLAY served events that were not durable: seqs {changed[:5]}"
        # Every write settled; what was answered OK is stored, what was refused is not
        assert not unanswered, f"{len(unanswered)} CREATEs never answered, e.g. {unanswered[:5]}"
        stored = stored_leases(database, f"load-{mode}-")
        lost = sorted(set(ok) - set(stored))
        assert not lost, f"{len(lost)} CREATEs answered OK are not stored, e.g. {lost[:5]}"
        assert all(stored[object_id] == lease_id for object_id, lease_id in ok.items())
        refused_stored = sorted(refused & set(stored))
        assert not refused_stored, f"{len(refused_stored)} CREATEs answered UNAVAILABLE are stored"
        broker.stop()
    finally:
        if held:
            held.abandon()
        if load and load.proc.is_alive():
            load.proc.kill()
        broker.kill()       # no-op once stopped; closes the sockets (a context collected with one open hangs)
