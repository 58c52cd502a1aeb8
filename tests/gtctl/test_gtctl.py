"""gtctl against the real broker daemon (<build>/broker/garbagetruck).

Binaries: GT_BROKER_BIN and GT_GTCTL_BIN, else GT_BUILD_DIR (default
<repo>/build) + broker/garbagetruck and sdk/c/gtctl.  The daemon runs on
ephemeral loopback ports with a 50 ms minimum lease (started with
garbagetruck.testing).  No sleeps: every wait is a process wait or a read
with a deadline.
"""
import contextlib
import json
import os
import re
import selectors
import subprocess
import time

import pytest
from garbagetruck.testing import broker as run_daemon
from garbagetruck.testing import free_port

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("GT_BUILD_DIR", os.path.join(REPO, "build"))
BROKER_BIN = os.environ.get("GT_BROKER_BIN", os.path.join(BUILD, "broker", "garbagetruck"))
GTCTL_BIN = os.environ.get("GT_GTCTL_BIN", os.path.join(BUILD, "sdk", "c", "gtctl"))

LEASE_ID = re.compile(r"^[0-9a-f]{32}$")


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


@contextlib.contextmanager
def _run_broker(**settings):
    """The daemon on ephemeral ports for the with block; exit code 0 on SIGTERM
    is checked when it stops."""
    for path in (BROKER_BIN, GTCTL_BIN):
        if not os.access(path, os.X_OK):
            pytest.fail(f"{path} is missing: build first (cmake --build build)")
    with run_daemon(BROKER_BIN, startup_timeout=30, stop_timeout=30,
                    min_lease=0.05, **settings) as daemon:
        yield daemon


@pytest.fixture(scope="module")
def broker():
    with _run_broker() as daemon:
        yield daemon


def gtctl(broker, *args, timeout=60):
    """Run gtctl against the broker; returns the CompletedProcess."""
    command = [GTCTL_BIN, "--endpoint", broker.endpoint, "--events", broker.events_endpoint,
               *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def ok(broker, *args):
    result = gtctl(broker, *args)
    assert result.returncode == 0, f"gtctl {args}: {result.stderr}"
    return result.stdout


def ok_json(broker, *args):
    return json.loads(ok(broker, "--json", *args))


def last_seq(broker):
    return ok_json(broker, "stats")["stats"]["last_seq"]


def watch_lines(output):
    return [json.loads(line) for line in output.splitlines()]


# --------------------------------------------------------------------------
# The README tour

def test_readme_tour(broker):
    health = ok(broker, "health").strip()
    assert re.match(r"^SERVING \(memory, OK\) version \S+ uptime \d+s leases \d+$", health)

    start = last_seq(broker) + 1
    lease_id = ok(broker, "create", "--object", "/tmp/upload-1.jpg", "--type",
                  "TEMPORARY_FILE", "--service", "tour-service", "--ttl", "1",
                  "--meta", "owner=alice").strip()
    assert LEASE_ID.match(lease_id)

    table = ok(broker, "list", "--service", "tour-service").splitlines()
    assert table[0].split() == ["ID", "OBJECT", "TYPE", "SERVICE", "STATE", "CLEANUP", "EXPIRES", "IN"]
    row = next(line for line in table if line.startswith(lease_id))
    assert row.split()[1:5] == ["/tmp/upload-1.jpg", "TEMPORARY_FILE", "tour-service",
                                "ACTIVE"]

    detail = ok(broker, "get", lease_id)
    assert "owner=alice" in detail and "ACTIVE" in detail

    # Watch it expire (history first, so nothing is missed)
    result = gtctl(broker, "watch", "--service", "tour-service", "expired.", "--from", str(start),
                   "--count", "1", "--timeout", "20")
    assert result.returncode == 0, result.stderr
    [event] = watch_lines(result.stdout)
    assert event["kind"] == "lease.expired"
    assert event["topic"] == "tour-service\x1fexpired.TEMPORARY_FILE"
    assert event["lease"]["id"] == lease_id
    assert event["lease"]["state"] == "EXPIRED"
    assert event["seq"] >= start

    assert "EXPIRED" in ok(broker, "get", lease_id)
    expired = ok_json(broker, "list", "--service", "tour-service", "--state", "expired")
    assert [lease["id"] for lease in expired["leases"]] == [lease_id]


# --------------------------------------------------------------------------
# --json: the codec's JSON mirror

def test_json_outputs(broker):
    health = ok_json(broker, "health")
    assert health["code"] == "OK" and health["status"] == "SERVING"
    assert health["store"] == "memory"
    stats = ok_json(broker, "stats")
    assert "leases_created" in stats["stats"]

    lease = ok_json(broker, "create", "--object", "user_sessions:42", "--type",
                    "database_row", "--service", "json-service", "--ttl", "2.5",
                    "--meta", "table=user_sessions", "--meta", "row_id=42",
                    "--cleanup-url", "http://127.0.0.1:9/cleanup", "--payload", "x",
                    "--max-retries", "4", "--retry-delay", "1.5",
                    "--idempotency-key", "json-1")
    assert LEASE_ID.match(lease["id"])
    assert lease["object_type"] == "DATABASE_ROW"
    assert lease["ttl_ms"] == 2500
    assert lease["metadata"] == {"row_id": "42", "table": "user_sessions"}
    assert lease["cleanup"] == {"url": "http://127.0.0.1:9/cleanup", "payload": "x",
                                "max_retries": 4, "retry_delay_ms": 1500}

    again = ok_json(broker, "create", "--object", "user_sessions:42", "--service",
                    "json-service", "--idempotency-key", "json-1")
    assert again["id"] == lease["id"]

    got = ok_json(broker, "get", lease["id"])
    assert got["id"] == lease["id"] and got["state"] == "ACTIVE"

    renewed = ok_json(broker, "renew", lease["id"], "--service", "json-service",
                      "--ttl", "10")
    assert renewed["renewals"] == 1 and renewed["ttl_ms"] == 10000

    listed = ok_json(broker, "list", "--service", "json-service")
    assert [item["id"] for item in listed["leases"]] == [lease["id"]]
    assert "cursor" not in listed

    released = ok_json(broker, "release", lease["id"], "--service", "json-service")
    assert released["state"] == "RELEASED"

    replay = ok_json(broker, "replay", "--after", "0", "--limit", "1000")
    assert replay["code"] == "OK"
    seqs = [event["seq"] for event in replay["events"]]
    assert seqs == sorted(seqs) and replay["last_seq"] >= seqs[-1]
    kinds = {event["kind"] for event in replay["events"]
             if event["lease"]["id"] == lease["id"]}
    assert {"lease.created", "lease.renewed", "lease.released"} <= kinds


def test_human_outputs(broker):
    lease_id = ok(broker, "create", "--object", "cache:x", "--type", "CACHE_ENTRY",
                  "--service", "human-service", "--ttl", "30").strip()
    line = ok(broker, "renew", lease_id, "--service", "human-service").strip()
    assert re.match(rf"^{lease_id} ACTIVE expires in \d+\.\ds renewals 1$", line)
    assert ok(broker, "release", lease_id, "--service", "human-service").strip() \
        == f"{lease_id} RELEASED"
    stats = dict(line.split() for line in ok(broker, "stats").splitlines())
    assert int(stats["leases_released"]) >= 1
    replay = ok(broker, "replay", "--after", "0").splitlines()
    assert replay[-1].startswith("last_seq ")
    assert any(lease_id in line and "lease.released" in line for line in replay)


def test_list_paging(broker):
    ids = [ok(broker, "create", "--object", f"page-{n}", "--service", "page-service")
           .strip() for n in range(3)]
    first = gtctl(broker, "list", "--service", "page-service", "--limit", "2")
    assert first.returncode == 0
    assert len(first.stdout.splitlines()) == 3           # header + 2 rows
    cursor = re.search(r"--cursor (\S+)", first.stderr).group(1)
    page = ok_json(broker, "list", "--service", "page-service", "--limit", "2",
                   "--cursor", cursor)
    assert [lease["id"] for lease in page["leases"]] == ids[2:]


# --------------------------------------------------------------------------
# Exit codes

@pytest.mark.parametrize("args", [
    [],
    ["frobnicate"],
    ["create", "--service", "s"],                        # no --object
    ["create", "--object", "o"],                         # no --service
    ["create", "--object", "o", "--service", "s", "--ttl", "abc"],
    ["create", "--object", "o", "--service", "s", "--ttl", "0"],
    ["create", "--object", "o", "--service", "s", "--type", "SPACESHIP"],
    ["create", "--object", "o", "--service", "s", "--meta", "novalue"],
    ["create", "--object", "o", "--service", "s", "--payload", "p"],
    ["renew", "--service", "s"],                         # no id
    ["get", "a", "b"],
    ["health", "extra"],
    ["release", "0" * 32, "--service", "s", "--ttl", "3"],
    ["health", "--no-such-option"],
    ["list", "--limit", "0"],
    ["replay"],                                          # no --after
    ["watch", "--count", "-1"],
    ["--timeout-ms", "soon", "health"],
])
def test_usage_errors_exit_2(broker, args):
    result = gtctl(broker, *args)
    assert result.returncode == 2, result
    assert "usage: gtctl" in result.stderr
    assert result.stdout == ""


def test_help_exit_0(broker):
    result = gtctl(broker, "--help")
    assert result.returncode == 0 and "usage: gtctl" in result.stdout


def test_version_exit_0():
    """Both binaries say their version (and the protocol's) and exit 0."""
    for binary, name in ((GTCTL_BIN, "gtctl"), (BROKER_BIN, "garbagetruck")):
        result = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
        assert re.fullmatch(name + r" \d+\.\d+\.\d+ \(GTLP/1\)\n", result.stdout), result.stdout


def test_protocol_errors_exit_1(broker):
    result = gtctl(broker, "get", "0123456789abcdef0123456789abcdef")
    assert result.returncode == 1
    assert result.stderr.startswith("NOT_FOUND: ")
    result = gtctl(broker, "get", "not-a-lease-id")
    assert result.returncode == 1
    assert result.stderr.startswith("INVALID_ARGUMENT: ")
    result = gtctl(broker, "create", "--object", "o", "--service", "s", "--ttl", "0.01")
    assert result.returncode == 1                        # under the 50 ms minimum
    assert result.stderr.startswith("INVALID_ARGUMENT: ")


def test_unreachable_exit_1():
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    result = subprocess.run([GTCTL_BIN, "--endpoint", endpoint, "--timeout-ms", "200",
                             "health"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert result.stderr.strip() == "UNAVAILABLE: broker did not answer within 0.2 s"


def test_other_service_is_denied(broker):
    lease_id = ok(broker, "create", "--object", "shared", "--service", "owner-service",
                  "--ttl", "60").strip()
    for args in (["renew", lease_id, "--service", "thief"],
                 ["release", lease_id, "--service", "thief"]):
        result = gtctl(broker, *args)
        assert result.returncode == 1
        assert result.stderr.startswith("PERMISSION_DENIED: ")
    assert ok_json(broker, "get", lease_id)["state"] == "ACTIVE"
    ok(broker, "release", lease_id, "--service", "owner-service")
    result = gtctl(broker, "release", lease_id, "--service", "owner-service")
    assert result.returncode == 1 and result.stderr.startswith("LEASE_ENDED: ")


def test_retain_keeps_the_object(broker):
    start = last_seq(broker)
    kept = ok(broker, "create", "--object", "blob/kept", "--service", "retain-service")
    gone = ok(broker, "create", "--object", "blob/gone", "--service", "retain-service")
    released = ok_json(broker, "release", kept.strip(), "--service", "retain-service",
                       "--retain")
    assert released["state"] == "RELEASED"
    ok(broker, "release", gone.strip(), "--service", "retain-service")
    # Everything since start, through watch --from (history, then stop at count)
    end = last_seq(broker)
    result = gtctl(broker, "watch", "--from", str(start + 1), "--count",
                   str(end - start), "--timeout", "20")
    assert result.returncode == 0, result.stderr
    events = watch_lines(result.stdout)
    assert [event["seq"] for event in events] == list(range(start + 1, end + 1))
    reclaimed = {event["lease"]["object_id"] for event in events
                 if event["kind"] == "object.reclaimed"}
    assert "blob/gone" in reclaimed and "blob/kept" not in reclaimed


# --------------------------------------------------------------------------
# watch: exits

def test_watch_timeout_without_count_exits_0(broker):
    result = gtctl(broker, "watch", "--service", "nobody-uses-this", "reclaimed.", "--timeout", "0.3")
    assert result.returncode == 0 and result.stdout == ""


def test_watch_timeout_before_count_exits_3(broker):
    result = gtctl(broker, "watch", "--service", "nobody-uses-this", "--count", "1",
                   "--timeout", "0.3")
    assert result.returncode == 3 and result.stdout == ""
    assert result.stderr == "watch: timed out after 0.3 s with 0 of 1 events\n"


def test_watch_live_events(broker):
    """A live watcher sees a lease created after it started, flushed per line."""
    watcher = subprocess.Popen(
        [GTCTL_BIN, "--endpoint", broker.endpoint, "--events", broker.events_endpoint,
         "watch", "--service", "live-service", "created.CUSTOM", "--count", "1", "--timeout", "30"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # The subscription reaches the broker asynchronously: create leases
        # until the watcher prints one (its stdout is flushed per event).
        line = None
        deadline = time.monotonic() + 30
        while line is None and time.monotonic() < deadline:
            ok(broker, "create", "--object", "live-object", "--type", "CUSTOM",
               "--service", "live-service")
            line = _read_line(watcher.stdout, 0.5)
        assert line is not None
        event = json.loads(line)
        assert event["kind"] == "lease.created"
        assert event["topic"] == "live-service\x1fcreated.CUSTOM"
        assert watcher.wait(timeout=30) == 0
    finally:
        if watcher.poll() is None:
            watcher.kill()
        watcher.wait()
        watcher.stdout.close()
        watcher.stderr.close()


def test_watch_from_resumes_without_gap(broker):
    """watch --from SEQ: the history since SEQ, then live events, no gap and
    no duplicate, while events keep coming during the switch."""
    start = last_seq(broker) + 1
    for index in range(5):                              # history before the watcher
        ok(broker, "create", "--object", f"resume-{index}", "--service", "resume-service")
    total = 5 + 40
    watcher = subprocess.Popen(
        [GTCTL_BIN, "--endpoint", broker.endpoint, "--events", broker.events_endpoint,
         "watch", "--from", str(start), "--count", str(total), "--timeout", "30"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for index in range(40):                         # during replay and after it
            ok(broker, "create", "--object", f"resume-live-{index}", "--service",
               "resume-service")
        out, err = watcher.communicate(timeout=60)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.communicate()
    assert watcher.returncode == 0, err
    seqs = [event["seq"] for event in watch_lines(out)]
    assert seqs == list(range(start, start + total))


# --------------------------------------------------------------------------
# Cleanup callbacks: dead letters and gtctl retry, against a real HTTP endpoint

class _Endpoint:
    """A cleanup endpoint (http.server): answers with the scripted statuses
    in order (then 200) and records every request."""

    def __init__(self, statuses):
        import http.server
        import threading
        self.statuses = list(statuses)
        self.requests = []
        self.cond = threading.Condition()
        endpoint = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with endpoint.cond:
                    status = endpoint.statuses.pop(0) if endpoint.statuses else 200
                    endpoint.requests.append((dict(self.headers), body))
                    endpoint.cond.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/cleanup"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def callback_broker():
    with _run_broker(cleanup_max_retries=0, cleanup_retry_delay=0.01,
                     cleanup_timeout=5) as daemon:
        yield daemon


def _await_cleanup_status(broker, lease_id, status, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lease = ok_json(broker, "get", lease_id)
        if lease.get("cleanup_status") == status:
            return lease
        time.sleep(0.01)                                # polling interval
    pytest.fail(f"lease {lease_id} never reached cleanup_status {status}")


def test_dead_letter_list_and_retry(callback_broker):
    broker = callback_broker
    endpoint = _Endpoint([503])
    try:
        lease_id = ok(broker, "create", "--object", "/tmp/dead.bin", "--service", "dl-service",
                      "--cleanup-url", endpoint.url, "--payload", "rm").strip()
        shown = ok_json(broker, "get", lease_id)
        assert shown["cleanup"]["max_retries"] == 0 and "cleanup_status" not in shown
        ok(broker, "release", lease_id, "--service", "dl-service")
        lease = _await_cleanup_status(broker, lease_id, "DEAD")
        assert lease["cleanup_attempts"] == 1 and lease["cleanup_error"] == "HTTP 503"

        # Visible through list (filter, table column) and get
        listed = ok_json(broker, "list", "--cleanup-status", "DEAD")
        assert [item["id"] for item in listed["leases"]] == [lease_id]
        assert ok_json(broker, "list", "--cleanup-status", "pending")["leases"] == []
        table = ok(broker, "list", "--cleanup-status", "dead").splitlines()
        assert table[0].split()[5] == "CLEANUP"
        row = next(line for line in table if line.startswith(lease_id))
        assert row.split()[4:6] == ["RELEASED", "DEAD"]
        detail = ok(broker, "get", lease_id)
        assert "callback    DEAD after 1 attempt: HTTP 503" in detail
        assert f"gtctl retry {lease_id}" in detail

        # Retry delivers it, with the same Idempotency-Key
        retried = ok(broker, "retry", lease_id).split()
        assert retried[0] == lease_id and retried[1] == "RELEASED"
        lease = _await_cleanup_status(broker, lease_id, "DELIVERED")
        assert lease["cleanup_attempts"] == 1 and "cleanup_error" not in lease
        with endpoint.cond:
            assert endpoint.cond.wait_for(lambda: len(endpoint.requests) == 2, timeout=30)
            first, second = endpoint.requests
        assert first[0]["Idempotency-Key"] == second[0]["Idempotency-Key"]
        assert first[0]["Idempotency-Key"].endswith("-" + lease_id)
        assert json.loads(second[1])["attempt"] == 1
        assert ok_json(broker, "list", "--cleanup-status", "DEAD")["leases"] == []
        stats = ok_json(broker, "stats")["stats"]
        assert stats["callbacks_delivered"] == 1 and stats["callbacks_dead"] == 1
        assert stats["callback_attempts"] == 2 and stats["callback_failures"] == 1

        # Nothing dead to retry any more; bad input
        result = gtctl(broker, "retry", lease_id)
        assert result.returncode == 1 and result.stderr.startswith("INVALID_ARGUMENT: ")
        result = gtctl(broker, "retry", "0123456789abcdef0123456789abcdef")
        assert result.returncode == 1 and result.stderr.startswith("NOT_FOUND: ")
        assert gtctl(broker, "list", "--cleanup-status", "LOST").returncode == 2
        assert gtctl(broker, "retry").returncode == 2
    finally:
        endpoint.close()


def test_cleanup_url_outside_allow_list_is_refused():
    with _run_broker(callback_allow="http://127.0.0.1:9/allowed/") as broker:
        ok(broker, "create", "--object", "a", "--service", "s",
           "--cleanup-url", "http://127.0.0.1:9/allowed/x")
        result = gtctl(broker, "create", "--object", "b", "--service", "s",
                       "--cleanup-url", "http://127.0.0.1:9/elsewhere")
        assert result.returncode == 1
        assert result.stderr.startswith("INVALID_ARGUMENT: ") and "GC_CALLBACK_ALLOW" in result.stderr
