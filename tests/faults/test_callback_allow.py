"""GC_CALLBACK_ALLOW against the real daemon: the allow-list cannot be walked past.

One daemon (memory store, ephemeral ports, --min-lease 1, metrics off) runs with
GC_CALLBACK_ALLOW=http://127.0.0.1:<port>/hooks/,https://cleanup.internal, where
<port> is a real HTTP receiver (http.server in a thread) that records every
request line it gets.  Each case CREATEs a lease with one cleanup URL through the
Python SDK and expects OK or INVALID_ARGUMENT; two cases let a 1-second lease
expire and look at what the receiver got.  Waits are condition waits and polls
with deadlines, never sleeps.

The binary is $GT_BROKER_BIN, else <repo>/build/broker/garbagetruck.
"""

import http.server
import os
import threading
import time
import uuid
from pathlib import Path

import pytest

from garbagetruck import CleanupStatus, Client, InvalidArgument
from garbagetruck.testing import broker as run_broker

REPO = Path(__file__).resolve().parents[2]
BROKER_BIN = os.environ.get("GT_BROKER_BIN", str(REPO / "build" / "broker" / "garbagetruck"))
DEADLINE = 20.0         # seconds any single wait may take (sanitizer builds are slow)
LONG_TTL = 600          # seconds: leases that must not expire during the module


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


# ---------------------------------------------------------------------------
# The receiver


class Receiver:
    """Records the request target of every request; /hooks/redirect answers
    307 with Location: /admin, everything else 200."""

    def __init__(self):
        self.paths = []
        self.changed = threading.Condition()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                with receiver.changed:
                    receiver.paths.append(self.path)
                    receiver.changed.notify_all()
                if self.path.startswith("/hooks/redirect"):
                    self.send_response(307)
                    self.send_header("Location", "/admin")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_GET = do_PUT = _answer

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def mark(self):
        with self.changed:
            return len(self.paths)

    def since(self, mark):
        with self.changed:
            return list(self.paths[mark:])

    def wait_for(self, path, mark, timeout=DEADLINE):
        """Block until path was received after mark (a condition wait, not a poll)."""
        with self.changed:
            if not self.changed.wait_for(lambda: path in self.paths[mark:], timeout):
                raise AssertionError(f"receiver never got {path}; got {self.paths[mark:]}")

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def wait_for_status(client, lease_id, status, timeout=DEADLINE):
    """Poll GET until the lease's cleanup_status is status; returns the lease."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:
        lease = client.get_lease(lease_id)
        if lease.cleanup_status is status:
            return lease
        if time.monotonic() >= deadline:
            raise AssertionError(f"cleanup_status is {lease.cleanup_status} after {timeout} s, not {status}")
        pause.wait(0.02)  # pacing between polls, not synchronisation


# ---------------------------------------------------------------------------
# Fixtures


def broker_env(allow):
    env = dict(os.environ)
    env.update({
        "GC_CALLBACK_ALLOW": allow,
        "GC_METRICS_PORT": "0",
        "GC_STORAGE_BACKEND": "memory",
    })
    env.pop("DATABASE_URL", None)
    return env


@pytest.fixture(scope="module")
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture(scope="module")
def daemon(receiver):
    allow = f"http://127.0.0.1:{receiver.port}/hooks/,https://cleanup.internal"
    with run_broker(BROKER_BIN, env=broker_env(allow), min_lease=1) as process:
        yield process


@pytest.fixture
def client(daemon):
    with Client(daemon.endpoint, service_id=unique("allow"), timeout=10) as connection:
        yield connection


# ---------------------------------------------------------------------------
# CREATE: accepted or refused

#: (url with {port} for the receiver's port, accepted?)
CASES = {
    "dot-dot": ("http://127.0.0.1:{port}/hooks/../admin", False),
    "encoded-dot-dot-lower": ("http://127.0.0.1:{port}/hooks/%2e%2e/admin", False),
    "encoded-dot-dot-upper": ("http://127.0.0.1:{port}/hooks/%2E%2E/admin", False),
    "encoded-slash": ("http://127.0.0.1:{port}/hooks/%2fadmin", False),
    "userinfo": ("http://user:pw@127.0.0.1:{port}/hooks/x", False),
    "uppercase-scheme": ("HTTP://127.0.0.1:{port}/hooks/x", True),
    "default-port-explicit": ("https://cleanup.internal:443/x", True),
    "other-port": ("https://cleanup.internal:444/x", False),
    "trailing-dot-host": ("https://cleanup.internal./x", False),
    "prefix-without-boundary": ("http://127.0.0.1:{port}/hooksevil", False),
    "good": ("http://127.0.0.1:{port}/hooks/ok", True),
}


@pytest.mark.parametrize("case", list(CASES))
def test_create(case, receiver, client):
    template, accepted = CASES[case]
    url = template.format(port=receiver.port)
    object_id = unique(case)
    if accepted:
        lease = client.create_lease(object_id, ttl=LONG_TTL, cleanup=url)
        # stored as sent: the URL libcurl will use is the one that was checked
        assert lease.cleanup is not None and lease.cleanup.url == url
        # left to its long TTL: a release would call the URL now
    else:
        with pytest.raises(InvalidArgument) as refused:
            client.create_lease(object_id, ttl=LONG_TTL, cleanup=url)
        # the allow-list refused it (not the codec's scheme check)
        assert "GC_CALLBACK_ALLOW" in refused.value.message


# ---------------------------------------------------------------------------
# Delivery: what the receiver gets


def test_good_url_delivers_exactly_that_path(receiver, client):
    url = f"http://127.0.0.1:{receiver.port}/hooks/ok"
    mark = receiver.mark()
    lease = client.create_lease(unique("deliver"), ttl=1, cleanup=url)
    receiver.wait_for("/hooks/ok", mark)
    done = wait_for_status(client, lease.id, CleanupStatus.DELIVERED)
    assert done.cleanup_attempts == 1
    assert receiver.since(mark) == ["/hooks/ok"]


def test_redirect_is_not_followed(receiver, client):
    url = f"http://127.0.0.1:{receiver.port}/hooks/redirect"
    mark = receiver.mark()
    lease = client.create_lease(unique("redirect"), ttl=1, cleanup=url)
    receiver.wait_for("/hooks/redirect", mark)
    # 307 is neither success nor retryable: a dead letter after one attempt;
    # once it is dead the transfer is over, so a followed redirect would
    # already have reached the receiver
    dead = wait_for_status(client, lease.id, CleanupStatus.DEAD)
    assert dead.cleanup_attempts == 1
    assert "307" in (dead.cleanup_error or "")
    assert receiver.since(mark) == ["/hooks/redirect"]
    assert "/admin" not in receiver.since(0)


# ---------------------------------------------------------------------------
# Start-up: an entry that is not a usable prefix stops the daemon

BAD_ENTRIES = {
    "userinfo": "http://user:pw@127.0.0.1:9/hooks/",
    "dot-dot": "http://127.0.0.1:9/hooks/../admin/",
    "encoded-slash": "http://127.0.0.1:9/hooks%2f",
    "trailing-dot-host": "https://cleanup.internal./",
    "not-http": "ftp://cleanup.internal/",
    "query": "http://127.0.0.1:9/hooks/?token=1",
}


@pytest.mark.parametrize("case", list(BAD_ENTRIES))
def test_bad_entry_refused_at_start(case):
    allow = "http://127.0.0.1:9/ok/," + BAD_ENTRIES[case]
    with pytest.raises(RuntimeError) as failed:
        with run_broker(BROKER_BIN, env=broker_env(allow), min_lease=1, startup_timeout=DEADLINE):
            pass
    message = str(failed.value)
    assert "exited before it was ready" in message
    assert "GC_CALLBACK_ALLOW" in message and BAD_ENTRIES[case] in message
