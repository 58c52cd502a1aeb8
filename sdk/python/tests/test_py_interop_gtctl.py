"""Interoperability with the C SDK's command-line tool, gtctl: leases made on
one side are renewed and released on the other (same wire protocol)."""

import json
import subprocess

import pytest

from garbagetruck import LeaseState, ObjectType
from garbagetruck.testing import find_gtctl_binary

GTCTL = find_gtctl_binary()
pytestmark = pytest.mark.skipif(
    GTCTL is None,
    reason="gtctl not found (set GT_GTCTL_BIN or build <build>/sdk/c/gtctl); CI always has it",
)


def gtctl(broker, *args):
    result = subprocess.run(
        [GTCTL, "--endpoint", broker.endpoint, "--events", broker.events_endpoint, *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, f"gtctl {' '.join(args)}: exit {result.returncode}: {result.stderr}"
    return result.stdout


def test_python_lease_is_renewed_and_released_by_gtctl(client, broker, service):
    lease = client.create_lease("interop-py", ObjectType.TEMPORARY_FILE, ttl=30, metadata={"from": "python"})
    gtctl(broker, "renew", lease.id, "--service", service, "--ttl", "45")
    renewed = client.get_lease(lease.id)
    assert renewed.renewals == 1 and renewed.ttl.total_seconds() == 45
    shown = json.loads(gtctl(broker, "--json", "get", lease.id))
    assert shown["id"] == lease.id and shown["metadata"] == {"from": "python"}
    gtctl(broker, "release", lease.id, "--service", service)
    assert client.get_lease(lease.id).state is LeaseState.RELEASED


def test_gtctl_lease_is_renewed_and_released_by_python(client, service):
    broker_endpoint = client.endpoint
    result = subprocess.run(
        [GTCTL, "--endpoint", broker_endpoint, "create", "--object", "interop-c", "--type", "CACHE_ENTRY",
         "--service", service, "--ttl", "30", "--meta", "from=c"],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 0, result.stderr
    lease_id = result.stdout.strip()
    lease = client.get_lease(lease_id)
    assert lease.object_id == "interop-c" and lease.object_type is ObjectType.CACHE_ENTRY
    assert lease.service_id == service and lease.metadata == {"from": "c"}
    assert client.renew_lease(lease_id, ttl=60).renewals == 1
    assert client.release_lease(lease_id).state is LeaseState.RELEASED
