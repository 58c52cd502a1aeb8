"""gtctl with several endpoints and the cluster commands, against the real
broker daemon: `gtctl cluster`, `gtctl keepalive`, GT_ENDPOINT /
GT_EVENTS_ENDPOINT, and an endpoint list with a dead endpoint first
(docs/CLUSTER.md, "Client routing").

Binaries as in test_gtctl.py: GT_BROKER_BIN and GT_GTCTL_BIN, else
GT_BUILD_DIR (default <repo>/build) + broker/garbagetruck and sdk/c/gtctl.
Waits are process waits or reads with deadlines; the only sleeps are the
durations the tests are about (a lease kept alive for 3 s, and for 5 s).
"""
import itertools
import json
import os
import re
import signal
import subprocess
import time

import pytest
from garbagetruck.testing import broker as run_daemon

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("GT_BUILD_DIR", os.path.join(REPO, "build"))
BROKER_BIN = os.environ.get("GT_BROKER_BIN", os.path.join(BUILD, "broker", "garbagetruck"))
GTCTL_BIN = os.environ.get("GT_GTCTL_BIN", os.path.join(BUILD, "sdk", "c", "gtctl"))

LEASE_ID = re.compile(r"^[0-9a-f]{32}$")
RENEWAL = re.compile(r"^([0-9a-f]{32}) expires_at (\d+)$")


@pytest.fixture(scope="module")
def broker():
    for path in (BROKER_BIN, GTCTL_BIN):
        if not os.access(path, os.X_OK):
            pytest.fail(f"{path} is missing: build first (cmake --build build)")
    with run_daemon(BROKER_BIN, startup_timeout=30, stop_timeout=30, min_lease=0.05) as daemon:
        yield daemon


def _env(**extra):
    """This environment without GT_ENDPOINT / GT_EVENTS_ENDPOINT, plus extra."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("GT_ENDPOINT", "GT_EVENTS_ENDPOINT")}
    env.update(extra)
    return env


def run(*args, env=None, timeout=60):
    return subprocess.run([GTCTL_BIN, *args], capture_output=True, text=True, timeout=timeout,
                          env=env if env is not None else _env())


def ok(*args, env=None):
    result = run(*args, env=env)
    assert result.returncode == 0, f"gtctl {args}: {result.stderr}"
    return result.stdout


_dead = itertools.count(1)


def dead_endpoint():
    """An endpoint nobody serves: an IPC path of this process that does not
    exist (a free TCP port could be taken by a parallel test meanwhile)."""
    return f"ipc:///tmp/gtctl-route-dead-{os.getpid()}-{next(_dead)}"


def create(broker, ttl="60", service="route-service", obj="route-object"):
    lease_id = ok("--endpoint", broker.endpoint, "create", "--object", obj, "--service", service,
                  "--ttl", ttl).strip()
    assert LEASE_ID.match(lease_id)
    return lease_id


def get_json(broker, lease_id):
    return json.loads(ok("--endpoint", broker.endpoint, "--json", "get", lease_id))


# --------------------------------------------------------------------------
# gtctl cluster

def test_cluster_prints_one_broker_with_every_shard(broker):
    # --json: the MAP reply's JSON mirror.  The memory store holds every shard
    # at epoch 0; a broker from before epochs (GTLP.md §14.2) sends none.
    reply = json.loads(ok("--endpoint", broker.endpoint, "--json", "cluster"))
    assert reply["cluster"] is False and len(reply["brokers"]) == 1
    assert reply["brokers"][0]["shards"] == list(range(256))
    with_epochs = "epochs" in reply["brokers"][0]
    if with_epochs:
        assert reply["brokers"][0]["epochs"] == [0] * 256
        assert list(reply["brokers"][0]) == ["broker_id", "endpoint", "events_endpoint",
                                             "shards", "epochs"]
    expected = "0-255@0" if with_epochs else "0-255"

    lines = ok("--endpoint", broker.endpoint, "cluster").splitlines()
    assert re.fullmatch(r"map_version \d+ mode single", lines[0]), lines
    assert lines[1].split() == ["BROKER", "ENDPOINT", "EVENTS",
                                "SHARDS@EPOCH" if with_epochs else "SHARDS"]
    assert len(lines) == 3, lines
    _broker_id, endpoint, events, shards = lines[2].split()
    assert endpoint == broker.endpoint and events == broker.events_endpoint
    assert shards == expected

    # The same through an endpoint list with a dead endpoint first
    routed = ok("--endpoint", f"{dead_endpoint()},{broker.endpoint}", "cluster").splitlines()
    assert routed[2].split()[1:] == [broker.endpoint, broker.events_endpoint, expected]


def test_cluster_takes_no_argument(broker):
    result = run("--endpoint", broker.endpoint, "cluster", "extra")
    assert result.returncode == 2 and "usage: gtctl" in result.stderr


def test_help_names_the_new_commands(broker):
    text = ok("--help")
    assert "keepalive ID --service SVC [--ttl S] [--release-on-exit]" in text
    assert "  cluster " in text
    assert "GT_ENDPOINT" in text and "GT_EVENTS_ENDPOINT" in text


# --------------------------------------------------------------------------
# gtctl keepalive

def _keepalive(broker, lease_id, *extra, endpoint=None, env=None):
    return subprocess.Popen(
        [GTCTL_BIN, "--endpoint", endpoint or broker.endpoint, "keepalive", lease_id,
         "--service", "route-service", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env if env is not None else _env())


def _stop(process, sig=signal.SIGINT, timeout=30):
    process.send_signal(sig)
    try:
        out, err = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return process.returncode, out, err


def _renewals(out, lease_id):
    lines = out.splitlines()
    matches = [RENEWAL.match(line) for line in lines]
    assert all(matches), lines
    assert all(match.group(1) == lease_id for match in matches)
    return [int(match.group(2)) for match in matches]


def test_keepalive_holds_a_short_lease(broker):
    lease_id = create(broker, ttl="1")
    process = _keepalive(broker, lease_id)
    time.sleep(3)                                   # three TTLs
    assert process.poll() is None
    code, out, err = _stop(process)
    assert code == 0, err
    expiries = _renewals(out, lease_id)
    assert len(expiries) >= 6                       # every third of a second
    assert expiries == sorted(expiries)
    lease = get_json(broker, lease_id)
    assert lease["state"] == "ACTIVE" and lease["renewals"] >= 6


def test_keepalive_release_on_exit(broker):
    """A 1 s lease held for 5 s (five TTLs), then released on SIGINT."""
    lease_id = create(broker, ttl="1")
    process = _keepalive(broker, lease_id, "--release-on-exit")
    time.sleep(5)
    assert process.poll() is None
    held = get_json(broker, lease_id)
    assert held["state"] == "ACTIVE" and held["ttl_ms"] == 1000
    code, out, err = _stop(process)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[-1] == f"{lease_id} RELEASED"
    expiries = _renewals("\n".join(lines[:-1]), lease_id)
    assert len(expiries) >= 12                      # every third of a second
    assert all(later - earlier < 1000 for earlier, later in zip(expiries, expiries[1:]))
    lease = get_json(broker, lease_id)
    assert lease["state"] == "RELEASED" and lease["renewals"] >= 12


def test_keepalive_sigterm_and_ttl(broker):
    """SIGTERM stops it cleanly too; --ttl is the TTL of every renewal."""
    lease_id = create(broker, ttl="60")
    process = _keepalive(broker, lease_id, "--ttl", "0.6")
    time.sleep(1)
    code, out, err = _stop(process, signal.SIGTERM)
    assert code == 0, err
    assert len(_renewals(out, lease_id)) >= 3
    assert get_json(broker, lease_id)["ttl_ms"] == 600


def test_keepalive_reports_a_lost_lease(broker):
    lease_id = create(broker, ttl="1")
    process = _keepalive(broker, lease_id)
    try:
        ok("--endpoint", broker.endpoint, "release", lease_id, "--service", "route-service")
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 1
    assert err.startswith("LEASE_ENDED: ") and lease_id in err


def test_keepalive_usage(broker):
    for args in (["keepalive", "--service", "s"],                       # no id
                 ["keepalive", "0" * 32],                               # no --service
                 ["keepalive", "0" * 32, "--service", "s", "--ttl", "0"],
                 ["keepalive", "0" * 32, "--service", "s", "--retain"]):
        result = run("--endpoint", broker.endpoint, *args)
        assert result.returncode == 2, (args, result)
        assert "usage: gtctl" in result.stderr
    result = run("--endpoint", broker.endpoint, "keepalive", "0" * 32, "--service", "s")
    assert result.returncode == 1 and result.stderr.startswith("NOT_FOUND: ")


def test_keepalive_through_an_endpoint_list(broker):
    lease_id = create(broker, ttl="1")
    process = _keepalive(broker, lease_id, "--release-on-exit",
                         endpoint=f"{dead_endpoint()},{broker.endpoint}")
    time.sleep(2)
    code, out, err = _stop(process)
    assert code == 0, err
    assert len(_renewals("\n".join(out.splitlines()[:-1]), lease_id)) >= 4
    assert get_json(broker, lease_id)["state"] == "RELEASED"


# --------------------------------------------------------------------------
# GT_ENDPOINT, GT_EVENTS_ENDPOINT, endpoint lists

def test_gt_endpoint_is_the_default(broker):
    env = _env(GT_ENDPOINT=broker.endpoint)
    assert ok("health", env=env).startswith("SERVING")
    lease_id = ok("create", "--object", "env-object", "--service", "env-service", env=env).strip()
    assert LEASE_ID.match(lease_id)
    # The flag wins over the environment
    env = _env(GT_ENDPOINT=dead_endpoint())
    assert ok("--endpoint", broker.endpoint, "health", env=env).startswith("SERVING")
    result = run("--timeout-ms", "300", "health", env=env)
    assert result.returncode == 1 and result.stderr.startswith("UNAVAILABLE: ")


def test_gt_events_endpoint_is_the_default(broker):
    env = _env(GT_ENDPOINT=broker.endpoint, GT_EVENTS_ENDPOINT=broker.events_endpoint)
    result = run("watch", "--from", "1", "--count", "1", "--timeout", "20", env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["seq"] == 1


def test_an_endpoint_list_with_a_dead_endpoint(broker):
    endpoints = f"{dead_endpoint()},{broker.endpoint}"
    lease_id = ok("--endpoint", endpoints, "create", "--object", "list-object", "--service",
                  "list-service", "--ttl", "30").strip()
    assert LEASE_ID.match(lease_id)
    assert json.loads(ok("--endpoint", endpoints, "--json", "get", lease_id))["state"] == "ACTIVE"
    assert ok("--endpoint", endpoints, "renew", lease_id, "--service", "list-service").startswith(lease_id)
    listed = json.loads(ok("--endpoint", endpoints, "--json", "list", "--service", "list-service"))
    assert [lease["id"] for lease in listed["leases"]] == [lease_id]
    assert ok("--endpoint", endpoints, "release", lease_id, "--service", "list-service").strip() \
        == f"{lease_id} RELEASED"
    # watch: no --events, several endpoints: the map's events endpoint
    result = run("--endpoint", endpoints, "watch", "--from", "1", "--count", "3", "--timeout", "20",
                 env=_env(GT_ENDPOINT="", GT_EVENTS_ENDPOINT=""))
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["seq"] for line in result.stdout.splitlines()] == [1, 2, 3]
    # GT_ENDPOINT may be a list too
    env = _env(GT_ENDPOINT=endpoints)
    assert ok("health", env=env).startswith("SERVING")


def test_no_endpoint_of_a_list_answers():
    endpoints = f"{dead_endpoint()},{dead_endpoint()}"
    started = time.monotonic()
    result = run("--endpoint", endpoints, "--timeout-ms", "1000", "health")
    assert result.returncode == 1
    assert result.stderr.startswith("UNAVAILABLE: ") and "within 1 s" in result.stderr
    assert time.monotonic() - started < 10
    result = run("--endpoint", "tcp://127.0.0.1:5,bogus", "health")
    assert result.returncode == 2
    assert result.stderr.startswith("gtctl: invalid endpoint 'bogus' in --endpoint "
                                    "'tcp://127.0.0.1:5,bogus'\nexpected tcp://HOST:PORT")
