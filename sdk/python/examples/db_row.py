"""Database row protection: a session row lives as long as its lease.

Renew while the user is active, release at logout.  If the auth service
crashes, the lease expires and the broker reclaims the row.

    GT_ENDPOINT=tcp://127.0.0.1:50051 python db_row.py
"""

import os
import uuid
from datetime import timedelta

from garbagetruck import Client

ENDPOINT = os.environ.get("GT_ENDPOINT", "tcp://127.0.0.1:50051")
CLEANUP_URL = os.environ.get("GT_CLEANUP_URL")  # e.g. http://auth-service/cleanup-session


def main() -> None:
    session_id = uuid.uuid4().hex
    with Client(ENDPOINT, service_id="auth-service") as client:
        # INSERT INTO user_sessions ... (the row exists now), then protect it:
        lease = client.create_db_row_lease("user_sessions", session_id, timedelta(minutes=30), CLEANUP_URL)
        print(f"row {lease.object_id} protected until {lease.expires_at:%H:%M:%S %Z}")

        # The user is active: extend the session by another 30 minutes.
        lease = client.renew_lease(lease.id, timedelta(minutes=30))
        print(f"renewed ({lease.renewals}x), now until {lease.expires_at:%H:%M:%S %Z}")

        # Logout: release; the broker reclaims the row.
        client.release_lease(lease.id)
        print("released at logout")


if __name__ == "__main__":
    main()
