"""Blob storage: lease an uploaded blob; keep it or let it be cleaned up.

Releasing with ``retain=True`` keeps the object (it was moved to permanent
storage): no cleanup runs.  A plain release lets the broker reclaim it.

    GT_ENDPOINT=tcp://127.0.0.1:50051 python blob.py
"""

import os
import uuid
from datetime import timedelta

from garbagetruck import Client

ENDPOINT = os.environ.get("GT_ENDPOINT", "tcp://127.0.0.1:50051")
CLEANUP_URL = os.environ.get("GT_CLEANUP_URL")  # e.g. http://storage-service/delete-s3-object


def upload_to_s3(data: bytes) -> str:
    return f"uploads/{uuid.uuid4().hex}.bin"  # stand-in for a real upload


def main() -> None:
    with Client(ENDPOINT, service_id="storage-service") as client:
        for should_keep in (True, False):
            s3_key = upload_to_s3(b"file data")
            # 1 hour (the broker's default GC_MAX_LEASE_DURATION is 3600 s).
            lease = client.create_blob_lease("temp-uploads", s3_key, timedelta(hours=1), CLEANUP_URL)
            print(f"leased blob {lease.object_id}")

            if should_keep:
                # move_to_permanent_storage(s3_key), then drop the lease but keep the object
                client.release_lease(lease.id, retain=True)
                print("kept: released with retain=True, no cleanup")
            else:
                client.release_lease(lease.id)
                print("discarded: released, the broker reclaims it")


if __name__ == "__main__":
    main()
