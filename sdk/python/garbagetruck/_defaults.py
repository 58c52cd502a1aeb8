"""The defaults every GarbageTruck SDK shares (C, Python, Go).

tests/sdk_defaults checks that the three SDKs export the same values; the
table "Names across the SDKs" in each SDK's README lists them.
"""

#: Seconds a call waits for its reply unless the client or the call sets a
#: timeout (C: 5000 ms, Go: ``DefaultTimeout``).
DEFAULT_TIMEOUT = 5.0

#: Keep-alive renews a held lease every ``ttl * KEEPALIVE_TTL_FRACTION``...
KEEPALIVE_TTL_FRACTION = 1.0 / 3.0

#: ...give or take this fraction of it, drawn uniformly (±10 %) from a source
#: seeded by the operating system, so that holders do not renew in step.
KEEPALIVE_JITTER = 0.10

__all__ = ["DEFAULT_TIMEOUT", "KEEPALIVE_JITTER", "KEEPALIVE_TTL_FRACTION"]
