"""Every example in sdk/python/examples runs as written against a test broker."""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import garbagetruck
from garbagetruck.webhook import signature_headers

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def example_env(broker, **extra):
    env = dict(os.environ)
    # the same garbagetruck package the tests import (installed or source tree)
    package_root = str(Path(garbagetruck.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    env.update(GT_ENDPOINT=broker.endpoint, GT_EVENTS_ENDPOINT=broker.events_endpoint, **extra)
    env.pop("GT_CLEANUP_URL", None)
    return env


@pytest.mark.parametrize(
    "name, expected",
    [
        ("temp_file.py", "released: RELEASED"),
        ("db_row.py", "released at logout"),
        ("blob.py", "discarded: released"),
        ("websocket_session.py", "connection closed: lease released"),
        ("keepalive.py", "lease released"),
        ("events.py", "reclaimed (released)"),
    ],
)
def test_example_runs(broker, name, expected):
    extra = {"GT_EXAMPLE_TTL": "0.3"} if name == "keepalive.py" else {}
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        env=example_env(broker, **extra),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, f"{name} failed:\n{result.stdout}\n{result.stderr}"
    assert expected in result.stdout, result.stdout


def test_example_webhook_receiver(broker):
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "webhook_receiver.py"), "--port", "0"],
        env=example_env(broker, GT_WEBHOOK_SECRET="s3cret"),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("listening on http://127.0.0.1:"), line
        url = line.split()[-1]
        body = json.dumps({"lease_id": "0" * 32, "object_id": "/tmp/x"}).encode()

        def post(headers):
            request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json", **headers})
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    return response.status
            except urllib.error.HTTPError as err:
                return err.code

        assert post(signature_headers(body, "s3cret")) == 204
        assert "cleanup of '/tmp/x'" in process.stdout.readline()
        assert post(signature_headers(body, "wrong")) == 401
        assert post({}) == 401
        assert post(signature_headers(body, "s3cret", int(time.time()) - 3600)) == 401
    finally:
        process.terminate()
        process.wait(10)
        process.stdout.close()
