"""A cleanup endpoint with the standard library: verify the broker's
signature, then clean up the object named in the body.

    GT_WEBHOOK_SECRET=s3cret python webhook_receiver.py --port 8080

The broker POSTs a JSON body with headers X-GarbageTruck-Timestamp and
X-GarbageTruck-Signature; requests that fail verification get 401.
"""

import argparse
import json
import os
from http.server import BaseHTTPRequestHandler, HTTPServer

from garbagetruck import verify_signature

SECRET = os.environ.get("GT_WEBHOOK_SECRET", "change-me")


class CleanupHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if not verify_signature(body, dict(self.headers), SECRET):
            self.send_response(401)
            self.end_headers()
            return
        request = json.loads(body or b"{}")
        print(f"cleanup of {request.get('object_id')!r} (lease {request.get('lease_id')})", flush=True)
        # ... delete the file / row / blob here; make it idempotent ...
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep the output to the cleanup lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    server = HTTPServer((args.host, args.port), CleanupHandler)
    print(f"listening on http://{args.host}:{server.server_port}/cleanup", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
