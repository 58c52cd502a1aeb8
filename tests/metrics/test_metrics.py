"""The broker's operator endpoints against the real daemon: /metrics (parsed
with prometheus_client's own parser), /healthz, /readyz, the metrics figures
in STATS, and the log lines.

Binary: GT_BROKER_BIN, else GT_BUILD_DIR (default <repo>/build) +
broker/garbagetruck.  The daemon runs on ephemeral loopback ports
(--metrics-port auto) with a 50 ms minimum lease, started with
garbagetruck.testing.  Requests go over raw pyzmq + msgpack (GTLP/1), so they
depend on no SDK client.  No sleeps: every wait is a read or a poll with a
deadline.
"""
import http.server
import json
import os
import re
import threading
import time
import urllib.error
import urllib.request

import msgpack
import pytest
import zmq
from garbagetruck.testing import broker as run_daemon
from prometheus_client.parser import text_string_to_metric_families

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("GT_BUILD_DIR", os.path.join(REPO, "build"))
BROKER_BIN = os.environ.get("GT_BROKER_BIN", os.path.join(BUILD, "broker", "garbagetruck"))

DEADLINE = 20.0         # seconds any single wait may take (generous: sanitizer builds)


class Broker:
    """The daemon (a garbagetruck.testing.BrokerProcess), a DEALER to it, and
    its metrics URL."""

    def __init__(self, daemon):
        self.daemon = daemon
        if not daemon.metrics_url.startswith("http://"):
            pytest.fail(f"broker did not print a ready line with metrics (got {daemon!r})")
        self.endpoint, self.events, self.metrics_url = (
            daemon.endpoint, daemon.events_endpoint, daemon.metrics_url)
        self.context = zmq.Context()
        self.dealer = self.dealer_socket()
        self.rid = 0

    def dealer_socket(self):
        dealer = self.context.socket(zmq.DEALER)
        dealer.setsockopt(zmq.LINGER, 0)
        dealer.connect(self.endpoint)
        return dealer

    def call(self, cmd, **fields):
        """One request; returns the decoded reply map."""
        self.rid += 1
        self.dealer.send(msgpack.packb({"v": 1, "rid": self.rid, "cmd": cmd, **fields}))
        return self.reply(self.rid)

    def send_raw(self, body):
        self.dealer.send(body)
        return self.reply(0)

    def reply(self, rid):
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            if self.dealer.poll(int((deadline - time.monotonic()) * 1000) + 1):
                reply = msgpack.unpackb(self.dealer.recv(), raw=False)
                if reply["rid"] == rid:
                    return reply
        raise AssertionError(f"no reply to rid {rid} within {DEADLINE} s")

    def stats(self):
        reply = self.call("STATS")
        assert reply["code"] == "OK"
        return reply["stats"]

    def get(self, path):
        """(status, content type, body) of GET path on the metrics port."""
        try:
            with urllib.request.urlopen(self.metrics_url + path, timeout=DEADLINE) as answer:
                return answer.status, answer.headers.get("Content-Type"), answer.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.headers.get("Content-Type"), error.read().decode()

    def scrape(self):
        """/metrics parsed by the reference parser: {family name: Metric}."""
        status, content_type, body = self.get("/metrics")
        assert status == 200, body
        assert content_type.startswith("text/plain") and "version=0.0.4" in content_type
        return {family.name: family for family in text_string_to_metric_families(body)}

    def log_lines(self):
        """The daemon's stderr: one JSON log record per line."""
        return [json.loads(line) for line in self.daemon.stderr_text().splitlines() if line]

    def close(self):
        self.dealer.close()
        self.context.term()


@pytest.fixture
def broker():
    """The daemon with JSON logs on stderr; its exit code 0 on SIGTERM is checked."""
    if not os.access(BROKER_BIN, os.X_OK):
        pytest.fail(f"{BROKER_BIN} is missing: build first (cmake --build build)")
    env = dict(os.environ)
    for name in ("GC_LOG_LEVEL", "GC_LOG_FORMAT", "GC_METRICS_PORT", "GC_METRICS_HOST"):
        env.pop(name, None)
    env["GC_LOG_FORMAT"] = "json"
    with run_daemon(BROKER_BIN, startup_timeout=30, stop_timeout=30, env=env,
                    metrics_port="auto", min_lease=0.05, lease_retention=60) as daemon:
        broker = Broker(daemon)
        try:
            yield broker
        finally:
            broker.close()


def value(families, name, **labels):
    """The value of one sample (family name without _total; sample name as exposed)."""
    for family in families.values():
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    raise KeyError(f"{name}{labels} not exposed")


def wait_for(check, what):
    """Poll check() until truthy (each poll is a scrape or a request, which is the pacing)."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
    raise AssertionError(f"timed out waiting for {what}")


def assert_histograms_consistent(families):
    """Every histogram series: buckets cumulative and monotone, le ascending, +Inf == _count."""
    checked = 0
    for family in families.values():
        if family.type != "histogram":
            continue
        series = {}
        for sample in family.samples:
            key = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "le"))
            entry = series.setdefault(key, {"buckets": [], "count": None, "sum": None})
            if sample.name.endswith("_bucket"):
                entry["buckets"].append((float(sample.labels["le"]), sample.value))
            elif sample.name.endswith("_count"):
                entry["count"] = sample.value
            elif sample.name.endswith("_sum"):
                entry["sum"] = sample.value
        for key, entry in series.items():
            buckets = entry["buckets"]
            assert buckets, (family.name, key)
            bounds = [le for le, _ in buckets]
            assert bounds == sorted(bounds) and len(set(bounds)) == len(bounds), (family.name, key)
            assert bounds[-1] == float("inf"), (family.name, key)
            counts = [count for _, count in buckets]
            assert all(a <= b for a, b in zip(counts, counts[1:])), (family.name, key, counts)
            assert counts[-1] == entry["count"], (family.name, key)
            assert entry["sum"] is not None and entry["sum"] >= 0
            checked += 1
    assert checked > 0


# ---------------------------------------------------------------------------

def test_health_and_readiness(broker):
    status, content_type, body = broker.get("/healthz")
    assert status == 200 and content_type == "application/json"
    assert json.loads(body) == {"status": "ok"}
    status, content_type, body = broker.get("/readyz")
    assert status == 200 and content_type == "application/json"
    answer = json.loads(body)
    assert answer["ready"] is True and answer["store"] == "memory"
    status, _, _ = broker.get("/nope")
    assert status == 404
    families = broker.scrape()
    assert value(families, "gc_store_up") == 1
    info = [s for s in families["gc_build_info"].samples]
    assert len(info) == 1 and info[0].value == 1 and info[0].labels["version"]
    # The names of the original product are all there
    for name in ("gc_leases_created", "gc_leases_renewed", "gc_leases_expired", "gc_leases_released",
                 "gc_active_leases", "gc_cleanup_operations", "gc_cleanup_failures",
                 "gc_request_duration_seconds", "gc_objects_reclaimed", "gc_active_objects",
                 "gc_callbacks_pending", "gc_callbacks_dead_lettered", "gc_expiry_lateness_seconds",
                 "gc_events_published", "gc_last_event_sequence", "gc_requests", "gc_request_errors",
                 "gc_replies_dropped", "gc_store_batch_size", "gc_store_commit_seconds",
                 "gc_active_leases_by_type", "gc_active_leases_by_service", "gc_store_up",
                 "gc_build_info"):
        assert name in families, name
    assert families["gc_leases_created"].type == "counter"
    assert families["gc_active_leases"].type == "gauge"
    assert families["gc_request_duration_seconds"].type == "histogram"


def test_workload_moves_the_figures(broker):
    before = broker.scrape()
    created = lambda: value(broker.scrape(), "gc_leases_created_total")  # noqa: E731

    leases = []
    for object_id, object_type, service, ttl in (("file-1", "TEMPORARY_FILE", "svc-a", 50),
                                                 ("file-2", "TEMPORARY_FILE", "svc-a", 60000),
                                                 ("blob-1", "BLOB_STORAGE", "svc-b", 60000)):
        reply = broker.call("CREATE", object_id=object_id, object_type=object_type,
                            service_id=service, ttl_ms=ttl)
        assert reply["code"] == "OK"
        leases.append(reply["lease"]["id"])
    assert broker.call("RENEW", lease_id=leases[1], service_id="svc-a")["code"] == "OK"
    assert broker.call("RELEASE", lease_id=leases[2], service_id="svc-b")["code"] == "OK"
    assert broker.call("GET", lease_id="0" * 32)["code"] == "NOT_FOUND"
    assert broker.send_raw(b"\x93\x01\x02\x03")["code"] == "INVALID_ARGUMENT"
    # The short lease expires: seen on /metrics without asking anything else
    families = wait_for(lambda: (lambda f: f if value(f, "gc_leases_expired_total") >= 1 else None)
                        (broker.scrape()), "the 50 ms lease to expire")
    assert created() == 3

    def delta(name, **labels):
        return value(families, name, **labels) - value(before, name, **labels)

    assert delta("gc_leases_created_total") == 3
    assert delta("gc_leases_renewed_total") == 1
    assert delta("gc_leases_released_total") == 1
    assert delta("gc_leases_expired_total") == 1
    assert delta("gc_objects_reclaimed_total") == 2
    assert value(families, "gc_active_leases") == 1
    assert value(families, "gc_active_objects") == 1
    # created 3 + renewed 1 + released 1 + expired 1 + reclaimed 2
    assert delta("gc_events_published_total") == 8
    assert value(families, "gc_last_event_sequence") == 8
    assert delta("gc_requests_total", command="CREATE") == 3
    assert delta("gc_requests_total", command="RENEW") == 1
    assert delta("gc_requests_total", command="MALFORMED") == 1
    assert delta("gc_request_errors_total", code="NOT_FOUND") == 1
    assert delta("gc_request_errors_total", code="INVALID_ARGUMENT") == 1
    assert delta("gc_request_duration_seconds_count", command="CREATE") == 3
    assert delta("gc_request_duration_seconds_count", command="RELEASE") == 1
    assert delta("gc_request_duration_seconds_count", command="MALFORMED") == 1
    assert value(families, "gc_request_duration_seconds_sum", command="CREATE") > 0
    assert delta("gc_expiry_lateness_seconds_count") == 1
    assert value(families, "gc_active_leases_by_type", object_type="TEMPORARY_FILE") == 1
    assert value(families, "gc_active_leases_by_type", object_type="BLOB_STORAGE") == 0
    assert value(families, "gc_active_leases_by_service", service="svc-a") == 1
    assert value(families, "gc_active_leases_by_service", service="_other") == 0
    assert value(families, "gc_replies_dropped_total") == 0
    # Memory store: the store histograms exist and stay at zero
    assert value(families, "gc_store_commit_seconds_count") == 0
    assert_histograms_consistent(families)

    # STATS carries the same figures, flattened
    stats = broker.stats()
    assert stats["request_duration_count_create"] == 3
    assert stats["expiry_lateness_count"] == 1
    assert stats["active_leases_temporary_file"] == 1
    assert stats["store_up"] == 1
    assert stats["request_duration_p99_us_create"] >= stats["request_duration_p50_us_create"]

    # Logs: JSON lines; the expiry is logged, the successful requests are not
    lines = wait_for(lambda: (lambda ls: ls if any(l["msg"] == "leases expired" for l in ls) else None)
                     (broker.log_lines()), "the expiry log line")
    assert lines[0]["msg"] == "starting" and lines[0]["GC_METRICS_PORT"] == "auto"
    expired = [l for l in lines if l["msg"] == "leases expired"]
    assert expired[0]["count"] == "1" and expired[0]["level"] == "info"
    assert not any(re.search(r"CREATE|RENEW|RELEASE", l["msg"]) for l in lines)


def test_service_label_cardinality_is_capped(broker):
    for index in range(60):
        reply = broker.call("CREATE", object_id=f"obj-{index}", service_id=f"svc-{index:03d}",
                            ttl_ms=60000)
        assert reply["code"] == "OK"
    for index in range(3):
        assert broker.call("CREATE", object_id=f"big-{index}", service_id="zz-big",
                           ttl_ms=60000)["code"] == "OK"
    families = broker.scrape()
    series = {s.labels["service"]: s.value for s in families["gc_active_leases_by_service"].samples}
    assert len(series) == 51 and "_other" in series
    # The biggest service first in importance; the rest by name; the others summed
    assert series["zz-big"] == 3
    assert series["svc-000"] == 1 and "svc-048" in series and "svc-049" not in series
    assert series["_other"] == 11
    assert sum(series.values()) == value(families, "gc_active_leases")


class _FailingCleanup(http.server.BaseHTTPRequestHandler):
    calls = 0

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).calls += 1
        self.send_response(500)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_failing_callback(broker):
    if "callback_attempts" not in broker.stats():
        pytest.skip("this broker has no cleanup delivery wired in (no callback_* in STATS)")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FailingCleanup)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/cleanup"
        reply = broker.call("CREATE", object_id="doomed", service_id="svc-cb", ttl_ms=60000,
                            cleanup={"url": url, "max_retries": 1, "retry_delay_ms": 1})
        assert reply["code"] == "OK"
        assert broker.call("RELEASE", lease_id=reply["lease"]["id"], service_id="svc-cb")["code"] == "OK"
        families = wait_for(lambda: (lambda f: f if value(f, "gc_callbacks_dead_lettered") >= 1 else None)
                            (broker.scrape()), "the callback to be dead-lettered")
        assert value(families, "gc_cleanup_operations_total") == 2      # first attempt + 1 retry
        assert value(families, "gc_cleanup_failures_total") == 2
        assert value(families, "gc_callbacks_pending") == 0
        assert _FailingCleanup.calls == 2
    finally:
        server.shutdown()
        server.server_close()


def test_metrics_answer_under_load(broker):
    """A thread pipelines requests flat out while /metrics is scraped repeatedly."""
    stop = threading.Event()
    done = {"replies": 0, "error": None}

    def load():
        dealer = broker.dealer_socket()
        try:
            window, sent, received, rid = 500, 0, 0, 1_000_000
            while not stop.is_set() or received < sent:
                while not stop.is_set() and sent - received < window:
                    rid += 1
                    # Spread over services: GC_MAX_LEASES_PER_SERVICE is 10,000
                    dealer.send(msgpack.packb({"v": 1, "rid": rid, "cmd": "CREATE",
                                               "object_id": f"load-{rid}",
                                               "service_id": f"load-{rid % 64}", "ttl_ms": 60000}))
                    sent += 1
                if not dealer.poll(int(DEADLINE * 1000)):
                    raise AssertionError("load: no reply within the deadline")
                reply = msgpack.unpackb(dealer.recv(), raw=False)
                assert reply["code"] == "OK", reply
                received += 1
                done["replies"] = received
        except Exception as error:  # noqa: BLE001 (reported by the main thread)
            done["error"] = error
            stop.set()
        finally:
            dealer.close()

    before = value(broker.scrape(), "gc_requests_total", command="CREATE")
    thread = threading.Thread(target=load)
    thread.start()
    try:
        wait_for(lambda: done["replies"] > 0 or done["error"], "the load to start")
        previous = before
        for _ in range(15):
            started = time.monotonic()
            families = broker.scrape()
            assert time.monotonic() - started < DEADLINE
            assert done["error"] is None, done["error"]
            current = value(families, "gc_requests_total", command="CREATE")
            assert current >= previous
            previous = current
        # The load ran all along: the last scrape saw requests the first did not
        assert previous > before
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not thread.is_alive()
    assert done["error"] is None, done["error"]
    families = broker.scrape()
    assert value(families, "gc_requests_total", command="CREATE") - before == done["replies"]
    assert value(families, "gc_request_duration_seconds_count", command="CREATE") == done["replies"]
    assert_histograms_consistent(families)


def test_docs_name_only_exposed_metrics(broker):
    """Every gc_* name in the alerts, the dashboard and the README is one the broker exposes."""
    families = broker.scrape()
    exposed = {sample.name for family in families.values() for sample in family.samples}
    exposed |= set(families)
    checked = 0
    for path in ("docs/alerts.yml", "docs/grafana-dashboard.json", "README.md"):
        with open(os.path.join(REPO, path)) as source:
            for name in set(re.findall(r"\bgc_[a-z_]+[a-z]", source.read())):
                assert name in exposed, f"{path} names {name}, which the broker does not expose"
                checked += 1
    assert checked > 20
