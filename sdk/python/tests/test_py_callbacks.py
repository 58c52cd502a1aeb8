"""Cleanup callbacks from a real broker to a real HTTP endpoint (the standard
library's http.server): the broker's signature verifies with
verify_signature, a tampered body does not; dead letters through the SDK
(list_leases(cleanup_status=...), retry_cleanup, the Lease fields)."""

import asyncio
import http.server
import json
import threading

import pytest

from garbagetruck import AsyncClient, CleanupConfig, CleanupStatus, Client, InvalidArgument, NotFound
from garbagetruck import verify_signature

from conftest import wait_until

SECRET = "broker-secret-\u2615"


class Endpoint:
    """Answers with the scripted statuses in order (then 200); records every
    request (raw body and headers)."""

    def __init__(self, statuses=()):
        self.statuses = list(statuses)
        self.requests = []
        self.cond = threading.Condition()
        endpoint = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with endpoint.cond:
                    status = endpoint.statuses.pop(0) if endpoint.statuses else 200
                    endpoint.requests.append((self.path, dict(self.headers), body))
                    endpoint.cond.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def wait(self, count, timeout=30.0):
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.requests) >= count, timeout=timeout)
            return list(self.requests)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint():
    server = Endpoint()
    yield server
    server.close()


def test_broker_signature_verifies(broker_factory, service, endpoint):
    b = broker_factory(min_lease=0.01, callback_secret=SECRET, cleanup_retry_delay=0.01)
    with Client(b.endpoint, service_id=service) as c:
        lease = c.create_lease("/tmp/signed.bin", ttl=30,
                               cleanup=CleanupConfig(url=endpoint.base + "/cleanup", payload="rm"))
        c.release_lease(lease.id)
        [(path, headers, body)] = endpoint.wait(1)
        assert path == "/cleanup"
        assert verify_signature(body, headers, SECRET)
        tampered = body.replace(b'"payload":"rm"', b'"payload":"rf"')
        assert tampered != body and not verify_signature(tampered, headers, SECRET)
        assert not verify_signature(body, headers, "another-secret")
        document = json.loads(body)
        assert document["lease_id"] == lease.id and document["attempt"] == 1
        assert headers["Idempotency-Key"] == f"{document['seq']}-{lease.id}"
        done = wait_until(lambda: c.get_lease(lease.id).cleanup_status is CleanupStatus.DELIVERED,
                          timeout=30, what="DELIVERED")
        assert done
        delivered = c.get_lease(lease.id)
        assert delivered.cleanup_attempts == 1 and delivered.cleanup_error is None


def test_dead_letter_and_retry(broker_factory, service):
    endpoint = Endpoint([404])
    b = broker_factory(min_lease=0.01, cleanup_retry_delay=0.01)
    try:
        with Client(b.endpoint, service_id=service) as c:
            lease = c.create_lease("row:7", ttl=30, cleanup=endpoint.base + "/rows")
            assert lease.cleanup_status is None and lease.cleanup_attempts is None
            c.release_lease(lease.id)
            dead = wait_until(lambda: c.get_lease(lease.id).cleanup_status is CleanupStatus.DEAD,
                              timeout=30, what="DEAD")
            assert dead
            dead = c.get_lease(lease.id)
            assert dead.cleanup_attempts == 1 and dead.cleanup_error == "HTTP 404"
            assert [x.id for x in c.list_leases(cleanup_status="DEAD")] == [lease.id]
            assert list(c.list_leases(cleanup_status=CleanupStatus.PENDING)) == []
            retried = c.retry_cleanup(lease.id)
            assert retried.id == lease.id
            wait_until(lambda: c.get_lease(lease.id).cleanup_status is CleanupStatus.DELIVERED,
                       timeout=30, what="DELIVERED")
            first, second = endpoint.wait(2)
            assert first[1]["Idempotency-Key"] == second[1]["Idempotency-Key"]
            with pytest.raises(InvalidArgument):
                c.retry_cleanup(lease.id)
            with pytest.raises(NotFound):
                c.retry_cleanup("0123456789abcdef0123456789abcdef")
    finally:
        endpoint.close()


async def _async_dead_letters(endpoint_url, service, b):
    async with AsyncClient(b.endpoint, service_id=service) as c:
        lease = await c.create_lease("blob-async", ttl=30, cleanup=endpoint_url)
        await c.release_lease(lease.id)
        deadline = asyncio.get_running_loop().time() + 30
        while (await c.get_lease(lease.id)).cleanup_status is not CleanupStatus.DEAD:
            assert asyncio.get_running_loop().time() < deadline, "never DEAD"
            await asyncio.sleep(0.01)  # pacing between polls
        listed = [x.id async for x in c.list_leases(cleanup_status="DEAD")]
        assert listed == [lease.id]
        retried = await c.retry_cleanup(lease.id)
        assert retried.cleanup_status in (CleanupStatus.PENDING, CleanupStatus.DELIVERED)
        return lease.id


def test_async_retry_cleanup(broker_factory, service):
    endpoint = Endpoint([410])
    b = broker_factory(min_lease=0.01, cleanup_retry_delay=0.01)
    try:
        lease_id = asyncio.run(_async_dead_letters(endpoint.base + "/blobs", service, b))
        assert endpoint.wait(2)[1][1]["Idempotency-Key"].endswith("-" + lease_id)
    finally:
        endpoint.close()
