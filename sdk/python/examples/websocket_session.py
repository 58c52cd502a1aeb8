"""WebSocket session management with asyncio: renew the session lease on
every message, release it when the connection closes.  If the server dies,
the lease expires after 5 minutes and the broker forces the disconnect.

    GT_ENDPOINT=tcp://127.0.0.1:50051 python websocket_session.py
"""

import asyncio
import os
import uuid
from typing import Optional

from garbagetruck import AsyncClient

ENDPOINT = os.environ.get("GT_ENDPOINT", "tcp://127.0.0.1:50051")
CLEANUP_URL = os.environ.get("GT_CLEANUP_URL")  # e.g. http://websocket-service/force-disconnect


async def fake_connection(messages: "asyncio.Queue[Optional[str]]") -> None:
    """Stands in for a WebSocket: three messages, then the peer disconnects."""
    for text in ("hello", "typing...", "bye"):
        await messages.put(text)
    await messages.put(None)


async def handle_websocket_connection(client: AsyncClient, session_id: str, user_id: str) -> None:
    lease = await client.create_session_lease(session_id, user_id, ttl=300, cleanup_url=CLEANUP_URL)
    print(f"session {session_id} of {user_id} leased: {lease.id}")
    messages: "asyncio.Queue[Optional[str]]" = asyncio.Queue()
    asyncio.get_running_loop().create_task(fake_connection(messages))
    while True:
        message = await messages.get()
        if message is None:  # connection closed
            await client.release_lease(lease.id)
            print("connection closed: lease released")
            break
        lease = await client.renew_lease(lease.id, ttl=300)  # activity: 5 more minutes
        print(f"message {message!r}: renewed ({lease.renewals}x)")


async def main() -> None:
    async with AsyncClient(ENDPOINT, service_id="websocket-service") as client:
        await handle_websocket_connection(client, f"ws-{uuid.uuid4().hex[:8]}", "user123")


if __name__ == "__main__":
    asyncio.run(main())
