"""Keep-alive: hold a lease for as long as a job runs, however long that is.

``client.hold(...)`` creates the lease, renews it in the background (every
TTL/3 give or take 10 %, batched with every other lease this client holds)
and releases it when the block ends.  If the lease is lost, ``on_lost`` is
called and ``held.lost`` is set: stop touching the object, someone may
reclaim it.

    GT_ENDPOINT=tcp://127.0.0.1:50051 python keepalive.py
"""

import os
import threading

from garbagetruck import Client, HeldLease, ObjectType

ENDPOINT = os.environ.get("GT_ENDPOINT", "tcp://127.0.0.1:50051")
TTL = float(os.environ.get("GT_EXAMPLE_TTL", "30"))  # seconds


def main() -> None:
    stop = threading.Event()

    def on_lost(held: HeldLease) -> None:
        print(f"lost {held.object_id}: {held.lost_reason}")
        stop.set()

    with Client(ENDPOINT, service_id="report-service") as client:
        with client.hold("/tmp/report.csv", ObjectType.TEMPORARY_FILE, TTL, on_lost=on_lost) as held:
            print(f"holding {held.object_id} ({held.lease_id}) with a {TTL:g} s TTL")
            # The "job": wait until the lease has been renewed twice (or lost).
            while held.renewals < 2 and not stop.wait(TTL / 10):
                pass
            print(f"still held after {held.renewals} background renewals; lost={held.lost}")
        print("block left: lease released")


if __name__ == "__main__":
    main()
