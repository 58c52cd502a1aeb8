"""A connection that never reads its replies cannot make the broker hold
unbounded memory, and other connections do not notice (GTLP.md §11).

Against the real daemon (GT_BROKER_BIN, else <repo>/build/broker/garbagetruck,
memory store, ephemeral loopback ports) over raw pyzmq + msgpack.  The bound
checked is the one GTLP.md §11 documents for one connection: the ROUTER's
send high-water mark (1,000 replies) times the largest reply (LIST and REPLAY
pages stop at 64 KiB), plus GC_CONNECTION_MAX_QUEUED_BYTES of the broker's own
backlog, plus what requests in flight hold.  No sleeps as synchronisation:
every wait polls with a deadline.
"""
import os
import threading
import time

import msgpack
import pytest
import zmq
from garbagetruck.testing import broker as run_daemon

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("GT_BUILD_DIR", os.path.join(REPO, "build"))
BROKER_BIN = os.environ.get("GT_BROKER_BIN", os.path.join(BUILD, "broker", "garbagetruck"))

DEADLINE = float(os.environ.get("GT_TEST_DEADLINE", "30"))
LEASES = 2000               # each LIST limit=1000 would be ~700 KB without the page bound
LISTS = 1500                # the fault report's figure: ~60 KB of requests
RENEWS = 2000               # the other client's lock-step samples
QUEUED_BYTES = 4 * 1024 * 1024
# Documented per-connection bound (GTLP.md §11): 1,000 x 64 KiB in libzmq's
# pipe + the broker's own queue; plus slack for allocator overhead.
BOUND_BYTES = 1000 * 64 * 1024 + QUEUED_BYTES + 32 * 1024 * 1024


def rss_bytes(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for pid {pid}")


class Connection:
    def __init__(self, context, endpoint, rcvhwm=1000):
        self.socket = context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.RCVHWM, rcvhwm)
        self.socket.setsockopt(zmq.SNDHWM, 0)
        self.socket.connect(endpoint)
        self.rid = 0
        self.early = {}     # replies read while waiting for another (they may come in any order)

    def send(self, cmd, **fields):
        self.rid += 1
        self.socket.send(msgpack.packb({"v": 1, "rid": self.rid, "cmd": cmd, **fields}))
        return self.rid

    def reply(self, rid):
        if rid in self.early:
            return self.early.pop(rid)
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            if self.socket.poll(int((deadline - time.monotonic()) * 1000) + 1):
                reply = msgpack.unpackb(self.socket.recv(), raw=False)
                if reply["rid"] == rid:
                    return reply
                self.early[reply["rid"]] = reply
        raise AssertionError(f"no reply to rid {rid} within {DEADLINE} s")

    def call(self, cmd, **fields):
        return self.reply(self.send(cmd, **fields))

    def stats(self):
        reply = self.call("STATS")
        assert reply["code"] == "OK"
        return reply["stats"]


@pytest.fixture
def daemon():
    if not os.access(BROKER_BIN, os.X_OK):
        pytest.fail(f"{BROKER_BIN} is missing: build first")
    env = dict(os.environ)
    env["GC_METRICS_PORT"] = "0"
    env["GC_CONNECTION_MAX_QUEUED_BYTES"] = str(QUEUED_BYTES)
    with run_daemon(binary=BROKER_BIN, env=env, min_lease=1) as process:
        yield process


def test_a_connection_that_never_reads_cannot_make_the_broker_hold_its_replies(daemon):
    context = zmq.Context()
    try:
        control = Connection(context, daemon.endpoint)
        metadata = {f"key{index}": "v" * 48 for index in range(8)}
        # The population: pipelined CREATEs, then every reply read
        rids = [control.send("CREATE", object_id=f"unread-{index}", service_id="svc",
                             ttl_ms=600000, metadata=metadata) for index in range(LEASES)]
        leases = []
        for rid in rids:
            reply = control.reply(rid)
            assert reply["code"] == "OK", reply
            leases.append(reply["lease"]["id"])
        page = control.call("LIST", limit=1000)
        assert page["code"] == "OK" and "cursor" in page
        page_bytes = len(msgpack.packb(page))
        assert page_bytes <= 70 * 1024, f"a LIST page is {page_bytes} bytes (bound 64 KiB)"
        pid = daemon.process.pid
        before = rss_bytes(pid)

        # Another client renews lock-step throughout and measures each round trip
        latencies = []
        stop = threading.Event()
        renewer_error = []

        def renewer():
            try:
                connection = Connection(context, daemon.endpoint)
                index = 0
                while not stop.is_set() and len(latencies) < RENEWS:
                    started = time.perf_counter()
                    reply = connection.call("RENEW", lease_id=leases[index % len(leases)],
                                            service_id="svc", ttl_ms=600000)
                    latencies.append(time.perf_counter() - started)
                    assert reply["code"] == "OK", reply
                    index += 1
                connection.socket.close(linger=0)
            except Exception as error:      # reported by the main thread
                renewer_error.append(error)

        thread = threading.Thread(target=renewer)
        thread.start()
        try:
            # The client that never reads: a tiny receive queue so that its
            # replies back up into the broker as soon as TCP's buffers fill
            greedy = Connection(context, daemon.endpoint, rcvhwm=1)
            greedy.socket.setsockopt(zmq.RCVBUF, 4096)
            greedy.socket.connect(daemon.endpoint)
            # It goes on sending while the other client takes its samples
            sent = 0
            until = time.monotonic() + DEADLINE
            while sent < LISTS or (len(latencies) < RENEWS and time.monotonic() < until and thread.is_alive()):
                greedy.send("LIST", limit=1000)
                sent += 1
                if sent >= LISTS and sent % 50 == 0:
                    stop.wait(0.001)        # paces the load (~50 per ms at most): not a synchronisation
            # The broker has read them all when its counters say so
            deadline = time.monotonic() + DEADLINE
            while True:
                stats = control.stats()
                handled = stats["requests_list"] + stats["requests_shed_unread"]
                if handled >= sent + 1:
                    break
                assert time.monotonic() < deadline, stats
                control.socket.poll(20)     # a pause between STATS, not a synchronisation
            peak = rss_bytes(pid, "VmHWM")
            held = peak - before
            limited = stats["requests_refused_unread"] + stats["requests_shed_unread"]
            print(f"\nRSS before {before >> 20} MiB, peak {peak >> 20} MiB (+{held >> 20} MiB); "
                  f"LISTs sent {sent}, answered {stats['requests_list'] - 1}, refused {stats['requests_refused_unread']}, "
                  f"shed {stats['requests_shed_unread']}; backlog {stats['replies_backlog_bytes']} bytes")
            assert held <= BOUND_BYTES, f"the broker grew by {held >> 20} MiB (bound {BOUND_BYTES >> 20} MiB)"
            assert limited > 0, "the connection was never limited"
            assert stats["replies_backlog_bytes"] <= QUEUED_BYTES + 1024 * 1024
        finally:
            stop.set()
            thread.join(DEADLINE)
        assert not renewer_error, renewer_error
        assert len(latencies) >= RENEWS, len(latencies)
        latencies.sort()
        p99 = latencies[int(len(latencies) * 0.99)]
        print(f"other client's RENEW: {len(latencies)} lock-step, p50 {latencies[len(latencies) // 2] * 1e3:.2f} ms, "
              f"p99 {p99 * 1e3:.2f} ms, max {latencies[-1] * 1e3:.2f} ms")
        assert p99 < 0.005, f"RENEW p99 {p99 * 1e3:.2f} ms while a connection did not read"

        # The connection leaves: its replies go, and the broker serves as before
        greedy.socket.close(linger=0)
        deadline = time.monotonic() + DEADLINE
        while control.stats()["replies_backlog"] > 0:
            assert time.monotonic() < deadline, "the backlog of a gone peer was not dropped"
            control.socket.poll(20)
        # The broker hands the freed memory back (malloc_trim) a second after
        # the backlog went: wait for most of it, with a deadline
        deadline = time.monotonic() + 10
        while rss_bytes(pid) - before > held // 2 and time.monotonic() < deadline:
            control.socket.poll(50)         # a pause between reads of /proc, not a synchronisation
        after = rss_bytes(pid)
        print(f"after the connection left: RSS {after >> 20} MiB ({(peak - after) >> 20} MiB of the peak returned)")
        assert after - before <= held // 2, "the memory did not come back after the connection left"
        assert control.call("GET", lease_id=leases[0])["code"] == "OK"
        control.socket.close(linger=0)
    finally:
        context.destroy(linger=0)
