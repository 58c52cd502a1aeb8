"""Events: follow what the broker does -- here, the reclaim of our object.

A Subscriber yields typed events in sequence order, fills gaps with REPLAY,
and can start from an older sequence number (``from_seq``).

    GT_ENDPOINT=tcp://127.0.0.1:50051 GT_EVENTS_ENDPOINT=tcp://127.0.0.1:50052 python events.py
"""

import os
import uuid

from garbagetruck import Client, EventKind, ObjectType, Subscriber, service_topic

ENDPOINT = os.environ.get("GT_ENDPOINT", "tcp://127.0.0.1:50051")
EVENTS = os.environ.get("GT_EVENTS_ENDPOINT", "tcp://127.0.0.1:50052")


def main() -> None:
    with Client(ENDPOINT, service_id="upload-service") as client:
        start = client.stats()["last_seq"] + 1
        path = f"/tmp/upload-{uuid.uuid4().hex[:8]}.bin"
        lease = client.create_temp_file_lease(path, ttl=60)
        client.release_lease(lease.id)

        # Our service's events about temporary files, from `start` on (history
        # first, then live).  Topics start with the service: service_topic()
        # builds "upload-service\x1freclaimed.TEMPORARY_FILE" and the like.
        kinds = (EventKind.LEASE_CREATED, EventKind.LEASE_RELEASED, EventKind.OBJECT_RECLAIMED)
        topics = [service_topic("upload-service", kind, ObjectType.TEMPORARY_FILE) for kind in kinds]
        with Subscriber(EVENTS, ENDPOINT, topics=topics, from_seq=start) as events:
            for event in events:
                print(f"#{event.seq} {event.kind.value:17} {event.lease.object_id} at {event.at:%H:%M:%S.%f}")
                if event.kind is EventKind.OBJECT_RECLAIMED and event.lease.object_id == path:
                    print(f"reclaimed ({event.reason.value}): delete {path} now")
                    break


if __name__ == "__main__":
    main()
