"""garbagetruck.testing itself: the metrics URL of the ready line, the
daemon's environment, and its stderr read while it runs."""

import json
import os
import urllib.request

from garbagetruck.testing import broker


def test_metrics_url_env_and_stderr():
    env = dict(os.environ, GC_LOG_FORMAT="json")
    env.pop("GC_METRICS_PORT", None)
    with broker(env=env, metrics_port="auto", min_lease=0.05) as daemon:
        assert daemon.metrics_url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(daemon.metrics_url + "/healthz", timeout=10) as answer:
            assert answer.status == 200
        # the running daemon's stderr: JSON log lines (GC_LOG_FORMAT from env)
        lines = [json.loads(line) for line in daemon.stderr_text().splitlines() if line]
        assert lines and all(isinstance(line, dict) for line in lines)
