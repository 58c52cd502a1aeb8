"""Cleanup callbacks survive a crash of the daemon on the PostgreSQL store.

The promise (CALLBACKS.md, "Delivery is at least once"): a reclaim's
callback is written to the outbox in the reclaim's own transaction; when the
broker dies with callbacks pending, the broker that starts on the same
database delivers every one of them, with the Idempotency-Key (and the body)
of the first attempt.

The receiver is real: http.server in a thread on 127.0.0.1, one request per
connection, recording every request.  It answers 503 until the daemon is
killed, so every callback is left pending with retries to go; then 200.
Needs DATABASE_URL (skipped without it).  Helpers and fixtures:
pg_daemon.py.  No sleeps as synchronisation: every wait polls a condition
with a deadline.
"""
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pg_daemon import DATABASE_URL, DEADLINE, LONG_TTL_MS, Broker
from pg_daemon import database_fixture, no_daemon_left  # noqa: F401  (fixtures)

pytestmark = pytest.mark.skipif(not DATABASE_URL, reason="DATABASE_URL is not set (PostgreSQL tests)")

SECRET = "crash-test-secret"
CALLBACKS = 20          # objects with a cleanup URL
WITHOUT = 5             # objects without one: nothing may be called for them
BODY_FIELDS = ("lease_id", "object_id", "object_type", "service_id", "metadata", "payload",
               "reason", "seq", "fence")     # everything but "attempt": the same on every attempt


def _verify_signature():
    """garbagetruck.verify_signature: the installed SDK, else this tree's."""
    try:
        from garbagetruck import verify_signature
    except ImportError:
        sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "sdk", "python"))
        from garbagetruck import verify_signature
    return verify_signature


class Receiver:
    """The cleanup endpoint: answers every POST with `status`, records it."""

    def __init__(self):
        self.changed = threading.Condition()
        self.status = 503               # what the next request gets
        self.records = []               # every request: path, headers (names in lower case), body, status
        self.handling = 0               # connections being served now
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"       # one request per connection

            def handle(self):
                with receiver.changed:
                    receiver.handling += 1
                try:
                    super().handle()
                finally:
                    with receiver.changed:
                        receiver.handling -= 1
                        receiver.changed.notify_all()

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.changed:
                    status = receiver.status
                    receiver.records.append({"path": self.path, "headers": {name.lower(): value for name, value in self.headers.items()},
                                             "body": body, "status": status})
                    receiver.changed.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def wait_for(self, predicate, what, timeout=DEADLINE):
        """Wait (condition variable, deadline) until predicate() holds under the lock."""
        with self.changed:
            assert self.changed.wait_for(predicate, timeout=timeout), f"timed out waiting for {what}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=DEADLINE)


@pytest.fixture
def receiver():
    endpoint = Receiver()
    yield endpoint
    endpoint.close()


def test_callbacks_pending_at_a_crash_are_delivered_after_the_restart(database, tmp_path, receiver):
    verify_signature = _verify_signature()
    settings = ("--callback-secret", SECRET, "--cleanup-retry-delay", "0.2",
                "--cleanup-max-retries", "50", "--cleanup-timeout", "5")
    broker = Broker(database, tmp_path, *settings)

    # Leases on distinct objects, with and without a cleanup URL; then all released
    leases = {}                         # object id -> lease (CREATE reply)
    for index in range(CALLBACKS + WITHOUT):
        object_id = f"crash-obj-{index}"
        fields = {"object_id": object_id, "object_type": "BLOB_STORAGE", "service_id": "crash-svc",
                  "ttl_ms": LONG_TTL_MS, "metadata": {"bucket": "b", "n": str(index)}}
        if index < CALLBACKS:
            fields["cleanup"] = {"url": f"{receiver.base}/cleanup/{object_id}", "payload": f"rm {index}"}
        reply = broker.call("CREATE", **fields)
        assert reply["code"] == "OK", reply
        leases[object_id] = reply["lease"]
    with_cleanup = {object_id for object_id, lease in leases.items() if "cleanup" in lease}
    assert len(with_cleanup) == CALLBACKS
    first_seq = broker.last_seq()
    for object_id, lease in leases.items():
        reply = broker.call("RELEASE", lease_id=lease["id"], service_id="crash-svc")
        assert reply["code"] == "OK", reply
    reclaimed_seq = {event["lease"]["id"]: event["seq"] for event in broker.replay(first_seq)
                     if event["kind"] == "object.reclaimed"}
    assert len(reclaimed_seq) == CALLBACKS + WITHOUT

    # Every callback attempted (and refused) at least once: then the crash
    wanted = {f"/cleanup/{object_id}" for object_id in with_cleanup}
    receiver.wait_for(lambda: wanted <= {record["path"] for record in receiver.records},
                      "a first attempt of every callback")
    for object_id in with_cleanup:
        reply = broker.call("GET", lease_id=leases[object_id]["id"])
        assert reply["lease"]["cleanup_status"] == "PENDING", reply
    broker.kill()
    # Requests the dead broker sent may still be in the receiver's hands:
    # let them finish (503) before the receiver starts saying 200
    receiver.wait_for(lambda: receiver.handling == 0, "the receiver to go idle")
    with receiver.changed:
        receiver.status = 200
        before_restart = len(receiver.records)

    restarted = Broker(database, tmp_path, *settings)
    try:
        # Every callback delivered by the new broker (GET polled until a deadline)
        deadline = time.monotonic() + DEADLINE
        undelivered = set(with_cleanup)
        while undelivered:
            for object_id in sorted(undelivered):
                reply = restarted.call("GET", lease_id=leases[object_id]["id"])
                assert reply["code"] == "OK", reply
                if reply["lease"].get("cleanup_status") == "DELIVERED":
                    assert reply["lease"]["cleanup_attempts"] >= 1
                    undelivered.discard(object_id)
            if undelivered:
                assert time.monotonic() < deadline, f"not delivered: {sorted(undelivered)}"
                with receiver.changed:      # polling interval (ends early when a request arrives)
                    receiver.changed.wait(0.05)
        stats = restarted.call("STATS")["stats"]
        assert stats["callbacks_recovered"] == CALLBACKS, stats
        assert stats["callbacks_delivered"] == CALLBACKS, stats
        assert stats["callbacks_pending"] == 0, stats

        with receiver.changed:
            records = list(receiver.records)
        by_path = {}
        for number, record in enumerate(records):
            by_path.setdefault(record["path"], []).append((number, record))
        # Nothing for the objects without a cleanup, nothing anywhere else
        assert set(by_path) == wanted, sorted(set(by_path) ^ wanted)
        for object_id in with_cleanup:
            lease = leases[object_id]
            attempts = by_path[f"/cleanup/{object_id}"]
            first = json.loads(attempts[0][1]["body"])
            key = f"{reclaimed_seq[lease['id']]}-{lease['id']}"
            # The first attempt: this lease, this reclaim
            assert first["lease_id"] == lease["id"] and first["object_id"] == object_id
            assert first["seq"] == reclaimed_seq[lease["id"]] and first["fence"] == lease["fence"]
            assert first["reason"] == "released" and first["payload"] == lease["cleanup"]["payload"]
            assert first["attempt"] == 1
            assert attempts[0][0] < before_restart and attempts[0][1]["status"] == 503
            for number, record in attempts:
                headers = record["headers"]
                body = json.loads(record["body"])
                # Same key and body as the first attempt, before and after the crash
                assert headers["idempotency-key"] == key, (object_id, headers)
                assert {name: body[name] for name in BODY_FIELDS} == \
                    {name: first[name] for name in BODY_FIELDS}, (object_id, body, first)
                assert headers["x-garbagetruck-attempt"] == str(body["attempt"])
                # Signed by the broker, verified by the SDK
                assert verify_signature(record["body"], headers, SECRET), (object_id, headers)
                assert not verify_signature(record["body"], headers, "another secret")
            # Delivered after the restart, by the new broker
            assert any(number >= before_restart and record["status"] == 200
                       for number, record in attempts), object_id
        # The leases without a cleanup show no callback state
        for object_id in set(leases) - with_cleanup:
            reply = restarted.call("GET", lease_id=leases[object_id]["id"])
            assert reply["code"] == "OK" and "cleanup_status" not in reply["lease"], reply
        print(f"\ncallbacks: {before_restart} refused attempt(s) before the crash, "
              f"{len(records) - before_restart} after the restart")
    finally:
        restarted.stop()
