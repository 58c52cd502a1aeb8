"""Verify the signature of a cleanup callback (the broker's HTTP POST).

Scheme ``v1``: the broker sends two headers,

* ``X-GarbageTruck-Timestamp: <unix seconds, decimal>``
* ``X-GarbageTruck-Signature: v1=<lowercase hex HMAC-SHA256(secret, timestamp + "." + body)>``

where ``timestamp`` is the header's text as sent and ``body`` the raw request
body bytes.  A receiver recomputes the MAC with the shared secret, compares
in constant time, and rejects timestamps further than ``tolerance`` seconds
from its clock (replay protection; :data:`DEFAULT_TOLERANCE`, 300 s, as the C
SDK's ``GT_WEBHOOK_DEFAULT_TOLERANCE_S`` and the Go SDK's ``DefaultTolerance``).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Dict, Mapping, Optional, Union

__all__ = [
    "DEFAULT_TOLERANCE",
    "TIMESTAMP_HEADER",
    "SIGNATURE_HEADER",
    "sign",
    "signature_headers",
    "verify_signature",
]

TIMESTAMP_HEADER = "X-GarbageTruck-Timestamp"
SIGNATURE_HEADER = "X-GarbageTruck-Signature"
#: How far (seconds, either way) a callback's timestamp may be from the
#: receiver's clock: verify_signature's default ``tolerance``.
DEFAULT_TOLERANCE = 300
_SCHEME = "v1="


def _key(secret: Union[str, bytes]) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)


def sign(body: bytes, secret: Union[str, bytes], timestamp: Union[int, str]) -> str:
    """The ``X-GarbageTruck-Signature`` value for ``body`` sent at ``timestamp``."""
    message = str(timestamp).encode("ascii") + b"." + bytes(body)
    return _SCHEME + hmac.new(_key(secret), message, hashlib.sha256).hexdigest()


def signature_headers(
    body: bytes, secret: Union[str, bytes], timestamp: Optional[int] = None
) -> Dict[str, str]:
    """Both headers for ``body`` (timestamp: now), as the broker sends them."""
    ts = int(time.time()) if timestamp is None else int(timestamp)
    return {TIMESTAMP_HEADER: str(ts), SIGNATURE_HEADER: sign(body, secret, ts)}


def _header(headers: Mapping[str, str], name: str) -> Optional[str]:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def verify_signature(
    body: bytes,
    headers: Mapping[str, str],
    secret: Union[str, bytes],
    tolerance: float = DEFAULT_TOLERANCE,
    *,
    now: Optional[float] = None,
) -> bool:
    """True if ``headers`` carry a valid ``v1`` signature of ``body`` made with
    ``secret`` no more than ``tolerance`` seconds from now (header names are
    matched case-insensitively; ``now`` defaults to ``time.time()``)."""
    timestamp = _header(headers, TIMESTAMP_HEADER)
    signature = _header(headers, SIGNATURE_HEADER)
    if timestamp is None or signature is None:
        return False
    timestamp = timestamp.strip()
    if not timestamp.isdigit() or not timestamp.isascii():
        return False
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > tolerance:
        return False
    expected = sign(body, secret, timestamp)
    return hmac.compare_digest(expected.encode("ascii"), signature.strip().encode("utf-8"))
