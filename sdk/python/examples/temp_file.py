"""Temporary file management: lease an upload while it is being processed.

If this process dies before it releases the lease, the broker reclaims the
file when the lease expires (one hour) and POSTs to the cleanup URL.

    GT_ENDPOINT=tcp://127.0.0.1:50051 python temp_file.py
"""

import os
import tempfile

from garbagetruck import Client

ENDPOINT = os.environ.get("GT_ENDPOINT", "tcp://127.0.0.1:50051")
CLEANUP_URL = os.environ.get("GT_CLEANUP_URL")  # e.g. http://my-service/cleanup-file


def process_image(path: str) -> int:
    with open(path, "rb") as f:
        return len(f.read())


def main() -> None:
    with Client(ENDPOINT, service_id="upload-service") as client:
        fd, path = tempfile.mkstemp(prefix="user-upload-", suffix=".jpg")
        os.write(fd, b"\xff\xd8\xff\xe0 not really a jpeg")
        os.close(fd)

        # Lease the file: delete it after 1 hour unless we are done earlier.
        lease = client.create_temp_file_lease(path, ttl=3600, cleanup_url=CLEANUP_URL)
        print(f"leased {lease.object_id} as {lease.id}, expires {lease.expires_at:%Y-%m-%d %H:%M:%S %Z}")

        size = process_image(path)
        print(f"processed {size} bytes")

        # Done: release early.  The broker reclaims the object now (and calls
        # the cleanup URL, whose handler deletes the file).
        released = client.release_lease(lease.id)
        print(f"released: {released.state.value}")
        os.remove(path)  # this demo has no cleanup service, so tidy up here


if __name__ == "__main__":
    main()
