"""Cleanup-callback signature verification (scheme v1)."""

import hashlib
import hmac
import time

from garbagetruck import verify_signature
from garbagetruck.webhook import sign, signature_headers

BODY = b'{"lease_id":"0123456789abcdef0123456789abcdef","object_id":"tmp/x"}'
SECRET = "s3cret"


def manual_headers(body, secret, ts):
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return {"X-GarbageTruck-Timestamp": str(ts), "X-GarbageTruck-Signature": f"v1={mac}"}


def test_valid_signature_verifies():
    now = int(time.time())
    headers = manual_headers(BODY, SECRET, now)
    assert verify_signature(BODY, headers, SECRET)
    assert verify_signature(BODY, headers, SECRET.encode())
    assert headers == signature_headers(BODY, SECRET, now)
    assert sign(BODY, SECRET, now) == headers["X-GarbageTruck-Signature"]


def test_header_names_are_case_insensitive():
    now = int(time.time())
    headers = {k.lower(): v for k, v in manual_headers(BODY, SECRET, now).items()}
    assert verify_signature(BODY, headers, SECRET)
    headers = {k.upper(): v for k, v in manual_headers(BODY, SECRET, now).items()}
    assert verify_signature(BODY, headers, SECRET)


def test_rejections():
    now = int(time.time())
    headers = manual_headers(BODY, SECRET, now)
    assert not verify_signature(BODY + b" ", headers, SECRET)  # body changed
    assert not verify_signature(BODY, headers, "other")  # wrong secret
    assert not verify_signature(BODY, {"X-GarbageTruck-Timestamp": str(now)}, SECRET)  # no signature
    assert not verify_signature(BODY, {}, SECRET)
    tampered = dict(headers, **{"X-GarbageTruck-Timestamp": str(now + 1)})
    assert not verify_signature(BODY, tampered, SECRET)  # timestamp is signed
    upper = dict(headers, **{"X-GarbageTruck-Signature": headers["X-GarbageTruck-Signature"].upper()})
    assert not verify_signature(BODY, upper, SECRET)  # lowercase hex and "v1=" exactly
    bad_ts = dict(headers, **{"X-GarbageTruck-Timestamp": "12e3"})
    assert not verify_signature(BODY, bad_ts, SECRET)


def test_tolerance():
    old = int(time.time()) - 301
    assert not verify_signature(BODY, manual_headers(BODY, SECRET, old), SECRET)
    assert verify_signature(BODY, manual_headers(BODY, SECRET, old), SECRET, tolerance=310)
    future = 1_700_000_000
    headers = manual_headers(BODY, SECRET, future)
    assert verify_signature(BODY, headers, SECRET, now=future + 300)
    assert not verify_signature(BODY, headers, SECRET, now=future - 301)


def test_default_tolerance():
    # 300 s, as the C SDK's GT_WEBHOOK_DEFAULT_TOLERANCE_S and Go's DefaultTolerance
    import inspect

    from garbagetruck.webhook import DEFAULT_TOLERANCE

    assert DEFAULT_TOLERANCE == 300
    assert inspect.signature(verify_signature).parameters["tolerance"].default == DEFAULT_TOLERANCE
