"""The codec against every shared vector, and its strictness."""

import json
from datetime import timedelta

import msgpack
import pytest

from conftest import VECTORS_DIR
from garbagetruck import CleanupConfig, CleanupStatus, Command, LeaseState, ObjectType, ProtocolError
from garbagetruck.codec import (
    Request,
    decode_event,
    decode_raw,
    decode_reply,
    decode_request,
    encode_event,
    encode_reply,
    encode_request,
    lease_to_wire,
)
from garbagetruck.types import datetime_to_ms, ms_to_datetime, ttl_to_ms

VECTORS = sorted(VECTORS_DIR.glob("*.json"))
DECODE = {"request": decode_request, "reply": decode_reply, "event": decode_event}
ENCODE = {"request": encode_request, "reply": encode_reply, "event": encode_event}


def ordered(value):
    """Compare with key order: dicts as lists of (key, value) pairs."""
    if isinstance(value, dict):
        return [(k, ordered(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [ordered(v) for v in value]
    return value


def test_vectors_exist():
    assert len(VECTORS) >= 40, f"expected the shared vectors in {VECTORS_DIR}"
    kinds = {json.loads(p.read_text(encoding="utf-8"))["kind"] for p in VECTORS}
    assert kinds == {"request", "reply", "event"}


@pytest.mark.parametrize("path", VECTORS, ids=[p.stem for p in VECTORS])
def test_vector(path):
    vector = json.loads(path.read_text(encoding="utf-8"))
    data = bytes.fromhex(vector["msgpack"])
    # The raw decode is the vector's value, keys in the same order.
    assert ordered(decode_raw(data)) == ordered(vector["value"])
    # Typed decode, then re-encode: byte for byte.
    message = DECODE[vector["kind"]](data)
    assert ENCODE[vector["kind"]](message) == data
    if vector["kind"] == "event":
        assert message.topic == vector["topic"]
    # Encoding the value itself with msgpack is canonical too (the vector's premise).
    assert msgpack.packb(vector["value"], use_bin_type=True) == data


def test_typed_request_matches_vector():
    """A request built through the typed API encodes to the vector bytes."""
    vector = json.loads((VECTORS_DIR / "request_create_full.json").read_text(encoding="utf-8"))
    value = vector["value"]
    request = Request(
        Command.CREATE,
        rid=value["rid"],
        object_id=value["object_id"],
        object_type=ObjectType.TEMPORARY_FILE,
        service_id=value["service_id"],
        ttl_ms=ttl_to_ms(timedelta(seconds=30)),
        # deliberately unsorted: the encoder sorts bytewise
        metadata={k: value["metadata"][k] for k in reversed(list(value["metadata"]))},
        cleanup=CleanupConfig(
            url=value["cleanup"]["url"],
            payload=value["cleanup"]["payload"],
            max_retries=3,
            retry_delay=timedelta(seconds=1),
        ),
        idempotency_key=value["idempotency_key"],
    )
    assert encode_request(request) == bytes.fromhex(vector["msgpack"])


def test_decoded_types_are_rich():
    vector = json.loads((VECTORS_DIR / "reply_get_ok.json").read_text(encoding="utf-8"))
    reply = decode_reply(bytes.fromhex(vector["msgpack"]))
    lease = reply.lease
    assert lease.created_at.tzinfo is not None
    assert datetime_to_ms(lease.created_at) == vector["value"]["lease"]["created_at"]
    assert lease.ttl == timedelta(milliseconds=vector["value"]["lease"]["ttl_ms"])
    assert lease.object_type is ObjectType(vector["value"]["lease"]["object_type"])


def pack(value):
    return msgpack.packb(value, use_bin_type=True)


GOOD_REPLY = {"v": 1, "rid": 7, "code": "OK", "stats": {"a": 1}}


def test_unknown_keys_are_ignored():
    body = pack({"future": [1, 2], **GOOD_REPLY, "also_new": {"x": "y"}})
    reply = decode_reply(body)
    assert reply.rid == 7 and reply.stats == {"a": 1}
    # keys in any order
    assert decode_reply(pack(dict(reversed(list(GOOD_REPLY.items()))))).rid == 7


def test_any_integer_width_is_accepted():
    # rid 7 as uint64 (cf 00..07) instead of a fixint
    body = bytes.fromhex("83a17601a3726964cf0000000000000007a4636f6465a24f4b")
    assert decode_reply(body).rid == 7


@pytest.mark.parametrize(
    "body, fragment",
    [
        (pack([1, 2]), "not a map"),
        (pack(GOOD_REPLY) + b"\x00", "trailing"),
        (b"\x81\xa1v", "MessagePack"),  # truncated
        (pack({**GOOD_REPLY, "rid": "7"}), "rid"),
        (pack({**GOOD_REPLY, "rid": True}), "rid"),
        (pack({**GOOD_REPLY, "rid": -1}), "rid"),
        (pack({**GOOD_REPLY, "code": b"OK"}), "code"),
        (pack({"v": 1, "code": "OK"}), "rid: missing"),
        (pack({**GOOD_REPLY, "stats": {"a": 1.5}}), "stats.a"),
        (bytes.fromhex("83a17601a372696407a4636f6465a2ff4b"), "UTF-8"),
        (pack({1: 2}), "MessagePack"),  # strict_map_key: int keys refused
    ],
)
def test_strict_decoding(body, fragment):
    with pytest.raises(ProtocolError) as info:
        decode_reply(body)
    assert fragment in str(info.value)


def test_lease_id_and_depth_limits():
    lease_reply = json.loads((VECTORS_DIR / "reply_get_ok.json").read_text(encoding="utf-8"))["value"]
    lease_reply["lease"]["id"] = "ABCDEF" * 5 + "00"  # upper case: not a lease id
    with pytest.raises(ProtocolError, match="lease.id"):
        decode_reply(pack(lease_reply))
    deep = {"v": 1, "rid": 1, "code": "OK", "x": [[[[[[[[1]]]]]]]]}
    with pytest.raises(ProtocolError, match="deeper"):
        decode_reply(pack(deep))


def test_request_decoder_checks_required_keys_and_limits():
    with pytest.raises(ProtocolError, match="object_id: missing"):
        decode_request(pack({"v": 1, "rid": 1, "cmd": "CREATE", "service_id": "s"}))
    with pytest.raises(ProtocolError, match="object_id"):
        decode_request(pack({"v": 1, "rid": 1, "cmd": "CREATE", "object_id": "x" * 513, "service_id": "s"}))
    with pytest.raises(ProtocolError, match="cmd"):
        decode_request(pack({"v": 1, "rid": 1, "cmd": "EXPLODE"}))


def test_unknown_reply_code_is_kept():
    reply = decode_reply(pack({"v": 1, "rid": 3, "code": "SOMETHING_NEW", "message": "m"}))
    assert reply.code == "SOMETHING_NEW" and not reply.ok


def test_time_conversions_are_exact():
    for ms in (0, 1, 1700000000000, 1700000000001, 253402300799999):
        assert datetime_to_ms(ms_to_datetime(ms)) == ms
    assert ttl_to_ms(0.3) == 300
    assert ttl_to_ms(timedelta(minutes=5)) == 300000
    assert ttl_to_ms(30) == 30000
    with pytest.raises(ValueError):
        ttl_to_ms(-1)


def _vector(name):
    return json.loads((VECTORS_DIR / f"{name}.json").read_text(encoding="utf-8"))


def test_dead_letter_lease_fields():
    """cleanup_status, cleanup_attempts and cleanup_error decode to typed
    fields and encode back after cleanup, in that order."""
    vector = _vector("reply_get_dead_letter")
    reply = decode_reply(bytes.fromhex(vector["msgpack"]))
    lease = reply.lease
    assert lease.cleanup_status is CleanupStatus.DEAD
    assert lease.cleanup_attempts == 4 and lease.cleanup_error == "HTTP 503"
    assert encode_reply(reply) == bytes.fromhex(vector["msgpack"])
    lease.cleanup_error = None                  # no error: the key is left out
    assert "cleanup_error" not in lease_to_wire(lease)
    lease.cleanup_status = None                 # no callback: no cleanup_* keys
    assert not [key for key in lease_to_wire(lease) if key.startswith("cleanup_")]


def test_typed_retry_and_list_filter_match_vectors():
    retry = _vector("request_retry")
    request = Request(Command.RETRY, rid=17, lease_id=retry["value"]["lease_id"])
    assert encode_request(request) == bytes.fromhex(retry["msgpack"])
    listed = _vector("request_list_cleanup_status")
    request = Request(Command.LIST, rid=16, state=LeaseState.EXPIRED,
                      cleanup_status=CleanupStatus.DEAD, limit=50)
    assert encode_request(request) == bytes.fromhex(listed["msgpack"])
    assert decode_request(bytes.fromhex(listed["msgpack"])).cleanup_status is CleanupStatus.DEAD
    with pytest.raises(ProtocolError):
        decode_request(msgpack.packb({"v": 1, "rid": 1, "cmd": "LIST", "cleanup_status": "LOST"}))
    with pytest.raises(ValueError):
        encode_request(Request(Command.RETRY, rid=1))      # lease_id is required


# -- issue 13: service_id optional, control characters, scanned_seq ---------

LEASE_ID = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    "request_, expected",
    [
        (Request(Command.CREATE, rid=1, object_id="x"), {"object_id": "x"}),
        (Request(Command.RENEW, rid=1, lease_id=LEASE_ID), {"lease_id": LEASE_ID}),
        (Request(Command.RENEW_BATCH, rid=1, lease_ids=[LEASE_ID]), {"lease_ids": [LEASE_ID]}),
        (Request(Command.RELEASE, rid=1, lease_id=LEASE_ID), {"lease_id": LEASE_ID}),
    ],
    ids=["CREATE", "RENEW", "RENEW_BATCH", "RELEASE"],
)
def test_service_id_is_optional_in_owner_requests(request_, expected):
    """With CURVE the broker takes the service from the caller's key, so the
    codec encodes and decodes these requests without service_id."""
    body = encode_request(request_)
    assert list(decode_raw(body)) == ["v", "rid", "cmd", *expected]
    decoded = decode_request(body)
    assert decoded.service_id is None and decoded.cmd is request_.cmd


@pytest.mark.parametrize("bad", ["a\x1fb", "\x00", "tab\there", "del\x7f", "nl\n"])
def test_request_service_id_with_a_control_character_is_refused(bad):
    for cmd, extra in (("CREATE", {"object_id": "x"}), ("RENEW", {"lease_id": LEASE_ID}),
                       ("LIST", {})):
        with pytest.raises(ProtocolError, match="service_id: contains a control character"):
            decode_request(pack({"v": 1, "rid": 1, "cmd": cmd, **extra, "service_id": bad}))
    # printable non-ASCII is fine
    assert decode_request(pack({"v": 1, "rid": 1, "cmd": "CREATE", "object_id": "x",
                                "service_id": "s\u00e9rvice"})).service_id == "s\u00e9rvice"


def test_client_refuses_a_service_id_with_a_control_character():
    from garbagetruck import InvalidArgument
    from garbagetruck._requests import RequestBuilder

    with pytest.raises(InvalidArgument, match="control character"):
        RequestBuilder("upload\x1fevil")
    assert RequestBuilder(None).create("x", ObjectType.UNKNOWN, None, None, None, None).service_id is None


def test_replay_scanned_seq_is_optional_and_canonical():
    filtered = _vector("reply_replay_filtered")
    data = bytes.fromhex(filtered["msgpack"])
    reply = decode_reply(data)
    assert (reply.last_seq, reply.scanned_seq) == (57, 50) and [e.seq for e in reply.events] == [42]
    assert list(decode_raw(encode_reply(reply)))[-2:] == ["last_seq", "scanned_seq"]
    # an older broker leaves it out: decoded as None, and not encoded back
    old = {k: v for k, v in filtered["value"].items() if k != "scanned_seq"}
    reply = decode_reply(pack(old))
    assert reply.scanned_seq is None and encode_reply(reply) == pack(old)
    with pytest.raises(ProtocolError, match="scanned_seq"):
        decode_reply(pack({**filtered["value"], "scanned_seq": -1}))


def test_event_topic_starts_with_the_service():
    from garbagetruck import EventKind, service_topic

    event = decode_event(bytes.fromhex(_vector("event_lease_expired")["msgpack"]))
    assert event.topic == "upload-service\x1fexpired.TEMPORARY_FILE"
    assert event.topic.startswith(service_topic("upload-service"))
    assert not event.topic.startswith(service_topic("upload"))   # the old prefix weakness
    assert service_topic("upload-service", EventKind.LEASE_EXPIRED, "TEMPORARY_FILE") == event.topic
    assert service_topic("upload-service", "expired") == "upload-service\x1fexpired."
    for bad in (dict(service_id=""), dict(service_id="a\x1f"), dict(service_id="a", object_type="BLOB_STORAGE"),
                dict(service_id="a", kind="exploded")):
        with pytest.raises(ValueError):
            service_topic(**bad)


def test_shard_vectors():
    """The shard of an object id and of a lease id, as the broker computes them."""
    from garbagetruck.codec import SHARD_COUNT, fnv1a_64, lease_id_shard, shard_of

    doc = json.loads((VECTORS_DIR / "shards" / "shards.json").read_text(encoding="utf-8"))
    assert doc["shard_count"] == SHARD_COUNT
    assert len(doc["cases"]) >= 5
    for case in doc["cases"]:
        assert format(fnv1a_64(case["object_id"].encode("utf-8")), "016x") == case["fnv1a_64"]
        assert shard_of(case["object_id"]) == case["shard"]
    assert lease_id_shard("ff" + "0" * 30) == 255
    with pytest.raises(ValueError):
        lease_id_shard("not-a-lease")


def test_broker_lease_ids_name_their_shard(client):
    """A lease id created by the real broker starts with its object's shard."""
    from garbagetruck.codec import lease_id_shard, shard_of

    for name in ("tmp/a", "row:orders:42", "blob/\u00e9t\u00e9"):
        lease = client.create_lease(name, ttl=60)
        assert lease_id_shard(lease.id) == shard_of(name)


# -- cluster (GTLP.md §14): MAP, MOVED, TRY_AGAIN, REPLAY's shard, events' shard


def test_map_request_and_cluster_reply():
    from garbagetruck import BrokerInfo, Code, ShardMap
    from garbagetruck._requests import RequestBuilder, shard_map_of
    from garbagetruck.codec import Reply

    request = _vector("request_map")
    assert encode_request(Request(Command.MAP, rid=18)) == bytes.fromhex(request["msgpack"])
    built = RequestBuilder(None).map()
    built.rid = 18
    assert encode_request(built) == bytes.fromhex(request["msgpack"])
    assert decode_request(bytes.fromhex(request["msgpack"])).cmd is Command.MAP

    vector = _vector("reply_map_cluster")
    data = bytes.fromhex(vector["msgpack"])
    shard_map = shard_map_of(decode_reply(data))
    assert (shard_map.map_version, shard_map.cluster) == (514, True)
    a, b = shard_map.brokers
    assert a == BrokerInfo("broker-a", "tcp://10.0.0.1:50051", "tcp://10.0.0.1:50052", (0, 1, 2, 200),
                           (1, 1, 3, 300))
    assert b.broker_id == "broker-b" and b.shards == (4, 255) and b.epochs == (2, 70000)
    assert shard_map.owner_of(200) is a and shard_map.owner_of(255) is b
    assert shard_map.owner_of(3) is None            # no owner at the moment
    # built by hand, the typed reply encodes to the vector's bytes
    assert encode_reply(Reply(rid=18, code=Code.OK, shard_map=ShardMap(514, True, [a, b]))) == data

    single = _vector("reply_map_single")
    shard_map = shard_map_of(decode_reply(bytes.fromhex(single["msgpack"])))
    assert not shard_map.cluster and shard_map.map_version == 0
    assert shard_map.brokers[0].shards == () and shard_map.owner_of(0) is None
    assert shard_map.brokers[0].epochs == ()        # present but empty: not None

    # A broker before epochs (GTLP.md §14.2): accepted, epochs None, re-encoded without them.
    old = _vector("reply_map_without_epochs")
    data = bytes.fromhex(old["msgpack"])
    shard_map = shard_map_of(decode_reply(data))
    (broker,) = shard_map.brokers
    assert broker == BrokerInfo("old", "tcp://127.0.0.1:50051", "tcp://127.0.0.1:50052", (7,))
    assert broker.epochs is None and shard_map.owner_of(7) is broker
    assert encode_reply(Reply(rid=24, code=Code.OK, shard_map=ShardMap(3, False, [broker]))) == data


@pytest.mark.parametrize(
    "change, fragment",
    [
        ({"cluster": 1}, "cluster"),
        ({"map_version": "1"}, "map_version"),
        ({"brokers": {}}, "brokers"),
        ({"brokers": [{"broker_id": "x", "endpoint": "e", "events_endpoint": "p", "shards": [256]}]},
         "brokers[0].shards"),
        ({"brokers": [{"broker_id": "x", "endpoint": "e", "shards": []}]}, "events_endpoint: missing"),
        ({"brokers": [{"broker_id": "x", "endpoint": "e", "events_endpoint": "p", "shards": [1, 2],
                       "epochs": [1]}]}, "brokers[0].epochs: 1 entries, expected 2"),
        ({"brokers": [{"broker_id": "x", "endpoint": "e", "events_endpoint": "p", "shards": [],
                       "epochs": [1]}]}, "brokers[0].epochs: 1 entries, expected 0"),
        ({"brokers": [{"broker_id": "x", "endpoint": "e", "events_endpoint": "p", "shards": [1],
                       "epochs": [-1]}]}, "brokers[0].epochs"),
        ({"brokers": [{"broker_id": "x", "endpoint": "e", "events_endpoint": "p", "shards": [1],
                       "epochs": ["1"]}]}, "brokers[0].epochs"),
        ({"brokers": [{"broker_id": "x", "endpoint": "e", "events_endpoint": "p", "shards": [1],
                       "epochs": 1}]}, "brokers[0].epochs"),
    ],
)
def test_map_reply_is_checked(change, fragment):
    value = {**_vector("reply_map_cluster")["value"], **change}
    with pytest.raises(ProtocolError) as info:
        decode_reply(pack(value))
    assert fragment in str(info.value)
    missing = {k: v for k, v in _vector("reply_map_cluster")["value"].items() if k != "cluster"}
    with pytest.raises(ProtocolError, match="cluster: missing"):
        decode_reply(pack(missing))


def test_moved_and_try_again_errors():
    from garbagetruck import Code, GarbageTruckError, Moved, TryAgain
    from garbagetruck._requests import check
    from garbagetruck.codec import Reply
    from garbagetruck.errors import error_from_code

    moved = _vector("reply_error_moved")
    reply = decode_reply(bytes.fromhex(moved["msgpack"]))
    assert reply.code is Code.MOVED and not reply.ok
    assert (reply.shard, reply.owner, reply.map_version) == (200, "tcp://10.0.0.2:50051", 514)
    with pytest.raises(Moved) as info:
        check(reply)
    err = info.value
    assert isinstance(err, GarbageTruckError) and err.code == "MOVED"
    assert (err.shard, err.owner, err.map_version) == (200, "tcp://10.0.0.2:50051", 514)
    assert err.message == moved["value"]["message"]
    typed = Reply(rid=130, code=Code.MOVED, message=moved["value"]["message"], shard=200,
                  owner="tcp://10.0.0.2:50051", map_version=514)
    assert encode_reply(typed) == bytes.fromhex(moved["msgpack"])

    again = _vector("reply_error_try_again")
    reply = decode_reply(bytes.fromhex(again["msgpack"]))
    assert reply.code is Code.TRY_AGAIN and (reply.shard, reply.retry_ms) == (3, 100)
    assert reply.owner is None and reply.map_version is None
    with pytest.raises(TryAgain) as info:
        check(reply)
    assert (info.value.shard, info.value.retry_ms, info.value.code) == (3, 100, "TRY_AGAIN")
    typed = Reply(rid=131, code=Code.TRY_AGAIN, message="shard 3 has no owner", shard=3, retry_ms=100)
    assert encode_reply(typed) == bytes.fromhex(again["msgpack"])

    # without details (as from an older caller of error_from_code): attributes None
    plain = error_from_code("MOVED", "m")
    assert isinstance(plain, Moved) and plain.owner is None and plain.shard is None
    with pytest.raises(ProtocolError, match="shard"):
        decode_reply(pack({**moved["value"], "shard": 256}))


def test_renew_batch_results_with_moved_and_try_again():
    from garbagetruck import Code, Moved, TryAgain

    vector = _vector("reply_renew_batch_moved")
    results = decode_reply(bytes.fromhex(vector["msgpack"])).results
    assert [r.code for r in results] == [Code.OK, Code.MOVED, Code.TRY_AGAIN]
    assert results[0].ok and results[0].error is None
    moved, again = results[1].error, results[2].error
    assert isinstance(moved, Moved) and moved.message == "shard 7 is owned by broker-b"
    assert moved.shard == 0xFE and moved.owner is None and moved.map_version is None  # the lease id's shard
    assert isinstance(again, TryAgain) and again.shard == 0 and again.retry_ms is None


def test_replay_of_one_shard():
    from garbagetruck._requests import RequestBuilder

    vector = _vector("request_replay_shard")
    data = bytes.fromhex(vector["msgpack"])
    assert encode_request(Request(Command.REPLAY, rid=19, after_seq=41, limit=500, shard=200)) == data
    built = RequestBuilder(None).replay(41, 500, 200)
    built.rid = 19
    assert encode_request(built) == data
    assert list(decode_raw(data))[-3:] == ["after_seq", "limit", "shard"]
    assert decode_request(data).shard == 200
    assert decode_request(bytes.fromhex(_vector("request_replay")["msgpack"])).shard is None
    with pytest.raises(ProtocolError, match="shard"):
        decode_request(pack({**vector["value"], "shard": 256}))

    reply = decode_reply(bytes.fromhex(_vector("reply_replay_shard")["msgpack"]))
    assert [(e.seq, e.shard) for e in reply.events] == [(42, 200)]


def test_event_shard_is_optional_and_goes_after_seq():
    created = decode_event(bytes.fromhex(_vector("event_lease_created_shard")["msgpack"]))
    assert (created.seq, created.shard) == (7, 200)
    reclaimed_vector = _vector("event_object_reclaimed_shard")
    reclaimed = decode_event(bytes.fromhex(reclaimed_vector["msgpack"]))
    assert reclaimed.shard == 0                     # shard 0 is present, not absent
    assert list(decode_raw(encode_event(reclaimed)))[:4] == ["v", "seq", "shard", "kind"]
    single = decode_event(bytes.fromhex(_vector("event_lease_created")["msgpack"]))
    assert single.shard is None and "shard" not in decode_raw(encode_event(single))
    single.shard = 200                              # as cluster mode sends it
    assert list(decode_raw(encode_event(single)))[:4] == ["v", "seq", "shard", "kind"]
    assert decode_event(encode_event(single)) == single
    with pytest.raises(ProtocolError, match="shard"):
        decode_event(pack({**reclaimed_vector["value"], "shard": 256}))
    with pytest.raises(ProtocolError, match="events\\[0\\].shard"):
        value = _vector("reply_replay_shard")["value"]
        value["events"][0]["shard"] = -1
        decode_reply(pack(value))
