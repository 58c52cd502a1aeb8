#!/usr/bin/env python3
"""gen_vectors.py - write the GTLP/1 test vectors in proto-spec/vectors/.

Each vector is one JSON file:

    {"name": ..., "description": ..., "kind": "request" | "reply" | "event",
     "topic": ... (events only), "value": <decoded map>, "msgpack": "<hex>"}

The values below are written by hand as Python dicts whose key order IS the
canonical order of GTLP.md (section 3 and the layout tables), with metadata
and stats keys already sorted.  The bytes come from the PyPI `msgpack`
package, an implementation independent of the C codec: it emits the shortest
int form and the str family (use_bin_type=True), and keeps dict order, which
is exactly the canonical form.  The script re-checks those rules itself.

Usage:  pip install msgpack && python3 proto-spec/tools/gen_vectors.py
"""

import json
import os
import sys

import msgpack

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, "..", "vectors")

LEASE_ID = "0123456789abcdef0123456789abcdef"
LEASE_ID_2 = "fedcba9876543210fedcba9876543210"
LEASE_ID_3 = "00000000000000000000000000000001"
T0 = 1700000000000          # a wall-clock ms timestamp: needs uint64
SERVICE = "upload-service"

# --- helpers -----------------------------------------------------------------

def lease(**overrides):
    """A LEASE map in canonical key order; overrides replace values in place."""
    value = {
        "id": LEASE_ID,
        "object_id": "tmp/upload-7f3a.bin",
        "object_type": "TEMPORARY_FILE",
        "service_id": SERVICE,
        "state": "ACTIVE",
        "fence": 1,
        "ttl_ms": 300000,                   # uint32
        "created_at": T0,
        "renewed_at": T0,
        "expires_at": T0 + 300000,
        "renewals": 0,
        "metadata": {"owner": "alice", "purpose": "thumbnail"},
    }
    # Optional keys, in canonical order after the required ones
    optional = [(key, overrides.pop(key)) for key in
                ("cleanup", "cleanup_status", "cleanup_attempts", "cleanup_error")
                if key in overrides]
    for key, val in overrides.items():
        assert key in value, key
        value[key] = val
    for key, val in optional:
        value[key] = val
    return value


CLEANUP = {
    "url": "http://127.0.0.1:8080/cleanup",
    "payload": "{\"path\":\"/tmp/upload-7f3a.bin\"}",
    "max_retries": 3,
    "retry_delay_ms": 1000,                 # uint16
}


def request(rid, cmd, **fields):
    return {"v": 1, "rid": rid, "cmd": cmd, **fields}


def reply(rid, code, **fields):
    return {"v": 1, "rid": rid, "code": code, **fields}


def event(seq, kind, at, lease_value, reason=None, shard=None):
    value = {"v": 1, "seq": seq}
    if shard is not None:
        value["shard"] = shard              # cluster mode (GTLP.md §14.4)
    value.update({"kind": kind, "at": at, "lease": lease_value})
    if reason is not None:
        value["reason"] = reason
    return value


VERBS = {"lease.created": "created", "lease.renewed": "renewed",
         "lease.released": "released", "lease.expired": "expired",
         "object.reclaimed": "reclaimed"}


def topic_of(value):
    lease_value = value["lease"]
    return "%s\x1f%s.%s" % (lease_value["service_id"], VERBS[value["kind"]],
                           lease_value["object_type"])

# --- the vectors ---------------------------------------------------------------

VECTORS = []


def vector(name, kind, description, value):
    VECTORS.append((name, kind, description, value))


# Requests: every command, minimal and with every optional field.
vector("request_create_minimal", "request",
       "CREATE with only the required fields",
       request(1, "CREATE", object_id="obj-1", service_id="svc-a"))
vector("request_create_full", "request",
       "CREATE with every optional field; metadata keys sorted bytewise "
       "(uppercase before lowercase), UTF-8 text, ttl_ms as uint16, rid as uint64",
       request(4294967296, "CREATE",
               object_id="tmp/upload-7f3a.bin",
               object_type="TEMPORARY_FILE",
               service_id=SERVICE,
               ttl_ms=30000,
               metadata={"Region": "eu-west-1", "note": "na\u00efve caf\u00e9 \u2615",
                         "owner": "alice", "purpose": "thumbnail"},
               cleanup=CLEANUP,
               idempotency_key="upload-7f3a"))
vector("request_create_cleanup_url_only", "request",
       "CREATE whose cleanup has only its required url; empty metadata map; rid as uint8",
       request(200, "CREATE", object_id="row:42", object_type="DATABASE_ROW",
               service_id="orders", metadata={},
               cleanup={"url": "https://cleanup.internal/rows"}))
vector("request_create_long_strings", "request",
       "CREATE whose object_id needs str8 (40 bytes) and a metadata value str16 (300 bytes); "
       "ttl_ms as uint32, rid as uint16",
       request(65535, "CREATE", object_id="blob/" + "a" * 35, object_type="BLOB_STORAGE",
               service_id="blob-service", ttl_ms=3600000,
               metadata={"blob": "x" * 300}))
vector("request_renew", "request", "RENEW with ttl_ms",
       request(2, "RENEW", lease_id=LEASE_ID, service_id=SERVICE, ttl_ms=60000))
vector("request_renew_minimal", "request", "RENEW without ttl_ms (the lease's own TTL applies)",
       request(3, "RENEW", lease_id=LEASE_ID, service_id=SERVICE))
vector("request_renew_batch", "request", "RENEW_BATCH of three leases with ttl_ms",
       request(4, "RENEW_BATCH", service_id=SERVICE,
               lease_ids=[LEASE_ID, LEASE_ID_2, LEASE_ID_3], ttl_ms=120000))
vector("request_renew_batch_minimal", "request", "RENEW_BATCH of one lease without ttl_ms",
       request(5, "RENEW_BATCH", service_id=SERVICE, lease_ids=[LEASE_ID]))
vector("request_release", "request", "RELEASE without retain",
       request(6, "RELEASE", lease_id=LEASE_ID, service_id=SERVICE))
vector("request_release_retain", "request", "RELEASE with retain = true",
       request(7, "RELEASE", lease_id=LEASE_ID, service_id=SERVICE, retain=True))
vector("request_release_retain_false", "request", "RELEASE with an explicit retain = false",
       request(8, "RELEASE", lease_id=LEASE_ID, service_id=SERVICE, retain=False))
vector("request_get", "request", "GET",
       request(9, "GET", lease_id=LEASE_ID))
vector("request_list_all_filters", "request", "LIST with every filter, a cursor and a limit (uint16)",
       request(10, "LIST", service_id=SERVICE, object_id="tmp/upload-7f3a.bin",
               object_type="TEMPORARY_FILE", state="EXPIRED",
               cursor="c1700000000000-17", limit=1000))
vector("request_list_minimal", "request", "LIST without filters",
       request(11, "LIST"))
vector("request_list_cleanup_status", "request",
       "LIST of the dead-lettered cleanup callbacks: the cleanup_status filter comes after state",
       request(16, "LIST", state="EXPIRED", cleanup_status="DEAD", limit=50))
vector("request_health", "request", "HEALTH",
       request(12, "HEALTH"))
vector("request_stats", "request", "STATS",
       request(13, "STATS"))
vector("request_replay", "request", "REPLAY with a limit",
       request(14, "REPLAY", after_seq=41, limit=500))
vector("request_replay_minimal", "request", "REPLAY from the start, default limit",
       request(15, "REPLAY", after_seq=0))
vector("request_retry", "request", "RETRY: resubmit a lease's dead-lettered cleanup callback",
       request(17, "RETRY", lease_id=LEASE_ID))

# Replies: every command's OK reply.
vector("reply_create_ok", "reply", "CREATE OK: the new lease, with metadata and cleanup",
       reply(1, "OK", lease=lease(cleanup=CLEANUP)))
vector("reply_renew_ok", "reply", "RENEW OK: renewed once, new TTL",
       reply(2, "OK", lease=lease(ttl_ms=60000, renewed_at=T0 + 250000,
                                  expires_at=T0 + 310000, renewals=1)))
vector("reply_release_ok", "reply", "RELEASE OK: lease now RELEASED, expires_at is the release time",
       reply(6, "OK", lease=lease(state="RELEASED", expires_at=T0 + 12345, renewals=200,
                                  cleanup=CLEANUP)))
vector("reply_get_ok", "reply", "GET OK: an EXPIRED lease with empty metadata and no cleanup",
       reply(9, "OK", lease=lease(object_id="sess-99", object_type="WEBSOCKET_SESSION",
                                  service_id="chat", state="EXPIRED", fence=70000,
                                  ttl_ms=30000, metadata={})))
vector("reply_get_dead_letter", "reply",
       "GET OK: an EXPIRED lease whose cleanup callback was dead-lettered after 4 attempts: "
       "cleanup_status, cleanup_attempts and cleanup_error follow cleanup",
       reply(16, "OK", lease=lease(state="EXPIRED", expires_at=T0 + 300001, cleanup=CLEANUP,
                                   cleanup_status="DEAD", cleanup_attempts=4,
                                   cleanup_error="HTTP 503")))
vector("reply_renew_batch_ok", "reply",
       "RENEW_BATCH OK: per-lease results, expires_at for OK and message otherwise",
       reply(4, "OK", results=[
           {"lease_id": LEASE_ID, "code": "OK", "expires_at": T0 + 120000},
           {"lease_id": LEASE_ID_2, "code": "NOT_FOUND", "message": "no such lease"},
           {"lease_id": LEASE_ID_3, "code": "LEASE_ENDED", "message": "lease has expired"},
       ]))
vector("reply_list_ok", "reply", "LIST OK: a page of two leases and a cursor",
       reply(10, "OK",
             leases=[lease(),
                     lease(id=LEASE_ID_2, object_id="cache:user:7", object_type="CACHE_ENTRY",
                           service_id="profile", fence=2, ttl_ms=45000, metadata={},
                           created_at=T0 + 5, renewed_at=T0 + 5, expires_at=T0 + 45005,
                           cleanup={"url": "http://127.0.0.1:9000/evict",
                                    "max_retries": 0, "retry_delay_ms": 0})],
             cursor="c1700000000005-2"))
vector("reply_list_last_page", "reply", "LIST OK: an empty last page (no cursor)",
       reply(11, "OK", leases=[]))
vector("reply_health_ok", "reply", "HEALTH OK",
       reply(12, "OK", status="SERVING", version="0.1.0", store="memory",
             store_status="OK", uptime_ms=86400000, now=T0, active_leases=3))
vector("reply_stats_ok", "reply", "STATS OK: counters sorted bytewise by name",
       reply(13, "OK", stats={
           "active_leases": 3, "active_objects": 2, "errors": 1,
           "events_published": 70000, "last_seq": 70000, "leases_created": 40000,
           "leases_expired": 12, "leases_released": 35000, "leases_renewed": 5000000000,
           "objects_reclaimed": 34000, "replies_dropped": 0, "requests": 5000100000}))
vector("reply_replay_ok", "reply", "REPLAY OK: two events, the second a reclaim with its reason",
       reply(14, "OK", events=[
           event(42, "lease.expired", T0 + 300001, lease(state="EXPIRED", expires_at=T0 + 300001)),
           event(43, "object.reclaimed", T0 + 300002, lease(state="EXPIRED", expires_at=T0 + 300001),
                 reason="expired"),
       ], last_seq=43, scanned_seq=43))
vector("reply_replay_filtered", "reply",
       "REPLAY OK for a service principal: its one event among 8 read; resume after scanned_seq 50",
       reply(16, "OK", events=[
           event(42, "lease.expired", T0 + 300001, lease(state="EXPIRED", expires_at=T0 + 300001)),
       ], last_seq=57, scanned_seq=50))
vector("reply_replay_empty", "reply", "REPLAY OK: nothing after after_seq",
       reply(15, "OK", events=[], last_seq=0, scanned_seq=0))

# Replies: one error reply per error code.
ERRORS = [
    ("INVALID_ARGUMENT", "ttl_ms: expected unsigned integer"),
    ("NOT_FOUND", "no such lease"),
    ("LEASE_ENDED", "lease was released"),
    ("PERMISSION_DENIED", "lease belongs to another service"),
    ("CONFLICT", "idempotency key reused for another object"),
    ("QUOTA_EXCEEDED", "service holds 10000 active leases"),
    ("UNAVAILABLE", "store unavailable"),
    ("UNSUPPORTED_COMMAND", "cmd: unknown command 'COMPACT'"),
    ("TOO_OLD", "history starts at seq 1000"),
    ("INTERNAL", "internal error"),
]
for rid, (code, message) in enumerate(ERRORS, start=100):
    vector("reply_error_" + code.lower(), "reply", code + " error reply",
           reply(rid, code, message=message))
vector("reply_error_unsupported_version", "reply",
       "UNSUPPORTED_VERSION error reply with the versions the broker speaks",
       reply(120, "UNSUPPORTED_VERSION", message="v: version 2 not supported", versions=[1]))
vector("reply_error_rid_zero", "reply",
       "error reply to a body whose rid could not be read: rid 0",
       reply(0, "INVALID_ARGUMENT", message="body: not a msgpack map"))

# Events: every kind, with its topic.
vector("event_lease_created", "event", "lease.created",
       event(1, "lease.created", T0, lease(cleanup=CLEANUP)))
vector("event_lease_renewed", "event", "lease.renewed",
       event(2, "lease.renewed", T0 + 250000,
             lease(renewed_at=T0 + 250000, expires_at=T0 + 550000, renewals=1)))
vector("event_lease_released", "event", "lease.released (of a database row)",
       event(3, "lease.released", T0 + 1000,
             lease(object_id="row:42", object_type="DATABASE_ROW", service_id="orders",
                   state="RELEASED", expires_at=T0 + 1000, metadata={})))
vector("event_lease_expired", "event", "lease.expired",
       event(4, "lease.expired", T0 + 300001, lease(state="EXPIRED", expires_at=T0 + 300001)))
vector("event_object_reclaimed_expired", "event", "object.reclaimed after the last lease expired",
       event(5, "object.reclaimed", T0 + 300002,
             lease(state="EXPIRED", expires_at=T0 + 300001, cleanup=CLEANUP), reason="expired"))
vector("event_object_reclaimed_released", "event",
       "object.reclaimed after the last lease was released; custom object type, seq as uint32",
       event(70000, "object.reclaimed", T0 + 2000,
             lease(object_id="thing-1", object_type="CUSTOM", service_id="svc-a",
                   state="RELEASED", fence=3, expires_at=T0 + 2000, metadata={}),
             reason="released"))

# Cluster (GTLP.md §14): MAP, MOVED, TRY_AGAIN, per-shard REPLAY and events.
vector("request_map", "request", "MAP: who owns which shard",
       request(18, "MAP"))
vector("request_replay_shard", "request", "REPLAY of one shard (cluster mode): shard after limit",
       request(19, "REPLAY", after_seq=41, limit=500, shard=200))
vector("reply_map_cluster", "reply",
       "MAP OK in cluster mode: two brokers, each with its shards ascending; shard 3 has no owner",
       reply(18, "OK", map_version=514, cluster=True, brokers=[
           {"broker_id": "broker-a", "endpoint": "tcp://10.0.0.1:50051",
            "events_endpoint": "tcp://10.0.0.1:50052", "shards": [0, 1, 2, 200], "epochs": [1, 1, 3, 300]},
           {"broker_id": "broker-b", "endpoint": "tcp://10.0.0.2:50051",
            "events_endpoint": "tcp://10.0.0.2:50052", "shards": [4, 255], "epochs": [2, 70000]},
       ]))
vector("reply_map_single", "reply",
       "MAP OK in single mode: one broker that owns no shard yet (empty list)",
       reply(21, "OK", map_version=0, cluster=False, brokers=[
           {"broker_id": "vm:50051", "endpoint": "tcp://127.0.0.1:50051",
            "events_endpoint": "tcp://127.0.0.1:50052", "shards": [], "epochs": []},
       ]))
vector("reply_map_without_epochs", "reply",
       "MAP OK from a broker before epochs were added: a BROKER without epochs is still accepted",
       reply(24, "OK", map_version=3, cluster=False, brokers=[
           {"broker_id": "old", "endpoint": "tcp://127.0.0.1:50051",
            "events_endpoint": "tcp://127.0.0.1:50052", "shards": [7]},
       ]))
vector("reply_error_moved", "reply",
       "MOVED error reply: the shard, its owner's endpoint and the map version",
       reply(130, "MOVED", message="shard 200 is owned by broker-b", shard=200,
             owner="tcp://10.0.0.2:50051", map_version=514))
vector("reply_error_try_again", "reply",
       "TRY_AGAIN error reply: the shard and a retry hint",
       reply(131, "TRY_AGAIN", message="shard 3 has no owner", shard=3, retry_ms=100))
vector("reply_renew_batch_moved", "reply",
       "RENEW_BATCH OK in cluster mode: one lease renewed, one of another broker's shard, one of a "
       "shard without an owner",
       reply(22, "OK", results=[
           {"lease_id": LEASE_ID, "code": "OK", "expires_at": T0 + 120000},
           {"lease_id": LEASE_ID_2, "code": "MOVED", "message": "shard 7 is owned by broker-b"},
           {"lease_id": LEASE_ID_3, "code": "TRY_AGAIN", "message": "shard 9 has no owner"},
       ]))
vector("reply_replay_shard", "reply", "REPLAY OK of one shard: its events carry the shard",
       reply(23, "OK", events=[
           event(42, "lease.expired", T0 + 300001, lease(state="EXPIRED", expires_at=T0 + 300001),
                 shard=200),
       ], last_seq=42, scanned_seq=42))
vector("event_lease_created_shard", "event", "lease.created in cluster mode: seq per shard, then shard",
       event(7, "lease.created", T0, lease(cleanup=CLEANUP), shard=200))
vector("event_object_reclaimed_shard", "event",
       "object.reclaimed in cluster mode (shard 0, a positive fixint like the others)",
       event(70000, "object.reclaimed", T0 + 2000,
             lease(object_id="thing-1", object_type="CUSTOM", service_id="svc-a",
                   state="RELEASED", fence=3, expires_at=T0 + 2000, metadata={}),
             reason="released", shard=0))

# --- canonical-form checks, independent of the msgpack package -------------------

def check_canonical(data):
    """Walk the bytes and assert: only map/array/str/uint/bool, shortest forms."""
    pos = 0

    def walk():
        nonlocal pos
        b = data[pos]
        pos += 1
        if b <= 0x7f:
            return
        if 0xa0 <= b <= 0xbf:
            pos += b & 0x1f
            return
        if 0x80 <= b <= 0x8f or 0x90 <= b <= 0x9f:
            n = b & 0x0f
            for _ in range(n * (2 if b <= 0x8f else 1)):
                walk()
            return
        if b in (0xc2, 0xc3):
            return
        widths = {0xcc: 1, 0xcd: 2, 0xce: 4, 0xcf: 8, 0xd9: 1, 0xda: 2, 0xdb: 4,
                  0xdc: 2, 0xdd: 4, 0xde: 2, 0xdf: 4}
        assert b in widths, "non-canonical type byte 0x%02x" % b
        width = widths[b]
        n = int.from_bytes(data[pos:pos + width], "big")
        pos += width
        minimum = {0xcc: 0x80, 0xcd: 0x100, 0xce: 0x10000, 0xcf: 0x100000000,
                   0xd9: 32, 0xda: 0x100, 0xdb: 0x10000,
                   0xdc: 16, 0xdd: 0x10000, 0xde: 16, 0xdf: 0x10000}[b]
        assert n >= minimum, "non-shortest form 0x%02x for %d" % (b, n)
        if b in (0xd9, 0xda, 0xdb):
            pos += n
        elif b in (0xdc, 0xdd):
            for _ in range(n):
                walk()
        elif b in (0xde, 0xdf):
            for _ in range(2 * n):
                walk()

    walk()
    assert pos == len(data), "trailing bytes"


def check_sorted_maps(value, key=None):
    if isinstance(value, dict):
        if key in ("metadata", "stats"):
            keys = [k.encode("utf-8") for k in value]
            assert keys == sorted(keys), "%s keys not sorted" % key
        for k, v in value.items():
            check_sorted_maps(v, k)
    elif isinstance(value, list):
        for item in value:
            check_sorted_maps(item)


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    written = set()
    for name, kind, description, value in VECTORS:
        assert name not in written, name
        check_sorted_maps(value)
        data = msgpack.packb(value, use_bin_type=True)
        check_canonical(data)
        assert msgpack.unpackb(data, raw=False) == value
        doc = {"name": name, "description": description, "kind": kind}
        if kind == "event":
            doc["topic"] = topic_of(value)
        doc["value"] = value
        doc["msgpack"] = data.hex()
        path = os.path.join(OUT_DIR, name + ".json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2, ensure_ascii=False)
            f.write("\n")
        written.add(name)
    # Remove vectors this script no longer produces, so the directory is exactly its output.
    for filename in os.listdir(OUT_DIR):
        if filename.endswith(".json") and filename[:-5] not in written:
            os.remove(os.path.join(OUT_DIR, filename))
    print("wrote %d vectors to %s" % (len(written), os.path.normpath(OUT_DIR)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
