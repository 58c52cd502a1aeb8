"""`gtctl cluster` against a scripted broker: a ROUTER (pyzmq) that answers
MAP with the value of a vector of proto-spec/vectors (or one made here), so
that the shards and their epochs (GTLP.md §14.2) are known to the test.  The
real daemon's map is checked in test_gtctl_route.py.

Binaries as in test_gtctl.py (GT_GTCTL_BIN, else GT_BUILD_DIR + sdk/c/gtctl).
No sleeps: the ROUTER thread polls with a deadline, gtctl is a process wait.
"""
import copy
import json
import os
import subprocess
import threading

import msgpack
import pytest
import zmq

from test_gtctl_route import GTCTL_BIN, REPO, _env

VECTORS = os.path.join(REPO, "proto-spec", "vectors")


def vector(name):
    with open(os.path.join(VECTORS, name + ".json")) as handle:
        return json.load(handle)["value"]


class ScriptedBroker:
    """A ROUTER on an ephemeral loopback port that answers every MAP request
    with `value` (its rid replaced by the request's), anything else with
    UNSUPPORTED_COMMAND."""

    def __init__(self, value):
        self.value = value
        self.requests = []
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        port = self.socket.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = f"tcp://127.0.0.1:{port}"
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self):
        while not self.stopping.is_set():
            if not self.socket.poll(50):
                continue
            identity, body = self.socket.recv_multipart()
            request = msgpack.unpackb(body, raw=False)
            self.requests.append(request["cmd"])
            if request["cmd"] == "MAP":
                reply = dict(self.value, rid=request["rid"])
            else:
                reply = {"v": 1, "rid": request["rid"], "code": "UNSUPPORTED_COMMAND",
                         "message": "scripted broker: MAP only"}
            self.socket.send_multipart([identity, msgpack.packb(reply)])

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join(timeout=10)
        self.socket.close()
        self.context.term()


def cluster(value, *args):
    if not os.access(GTCTL_BIN, os.X_OK):
        pytest.fail(f"{GTCTL_BIN} is missing: build first (cmake --build build)")
    with ScriptedBroker(value) as broker:
        result = subprocess.run([GTCTL_BIN, "--endpoint", broker.endpoint, *args, "cluster"],
                                capture_output=True, text=True, timeout=60, env=_env())
    assert result.returncode == 0, result.stderr
    assert broker.requests == ["MAP"]
    return result.stdout


def table(value):
    """The printed map: (first line, header columns, {broker_id: row columns})."""
    lines = cluster(value).splitlines()
    rows = [line.split() for line in lines[2:]]
    return lines[0], lines[1].split(), {row[0]: row[1:] for row in rows}


def test_epochs_next_to_the_shard_ranges():
    first, header, rows = table(vector("reply_map_cluster"))
    assert first == "map_version 514 mode cluster"
    assert header == ["BROKER", "ENDPOINT", "EVENTS", "SHARDS@EPOCH"]
    # A range breaks where the shards stop being consecutive or the epoch changes
    assert rows == {
        "broker-a": ["tcp://10.0.0.1:50051", "tcp://10.0.0.1:50052", "0-1@1,2@3,200@300"],
        "broker-b": ["tcp://10.0.0.2:50051", "tcp://10.0.0.2:50052", "4@2,255@70000"],
    }


def test_a_broker_without_shards():
    first, header, rows = table(vector("reply_map_single"))
    assert first == "map_version 0 mode single"
    assert header[-1] == "SHARDS@EPOCH"
    assert rows == {"vm:50051": ["tcp://127.0.0.1:50051", "tcp://127.0.0.1:50052", "-"]}


def test_brokers_before_epochs_print_plain_ranges():
    first, header, rows = table(vector("reply_map_without_epochs"))
    assert first == "map_version 3 mode single"
    assert header == ["BROKER", "ENDPOINT", "EVENTS", "SHARDS"]
    assert rows == {"old": ["tcp://127.0.0.1:50051", "tcp://127.0.0.1:50052", "7"]}

    # Old and new brokers in one map (a rolling upgrade): each as it came
    value = vector("reply_map_cluster")
    value["brokers"].append(vector("reply_map_without_epochs")["brokers"][0])
    _first, header, rows = table(value)
    assert header[-1] == "SHARDS@EPOCH"
    assert rows["old"][-1] == "7" and rows["broker-b"][-1] == "4@2,255@70000"


def test_one_epoch_for_every_shard_and_every_shard_its_own_epoch():
    value = copy.deepcopy(vector("reply_map_single"))
    broker = value["brokers"][0]
    broker["shards"] = list(range(256))
    broker["epochs"] = [0] * 256
    assert table(value)[2]["vm:50051"][-1] == "0-255@0"

    # The longest line there is: 256 ranges of one shard, each with a 20-digit epoch
    top = 2 ** 64 - 1
    broker["epochs"] = [top - shard for shard in range(256)]
    shards = table(value)[2]["vm:50051"][-1]
    assert shards == ",".join(f"{shard}@{top - shard}" for shard in range(256))


def test_json_is_the_map_reply():
    for name in ("reply_map_cluster", "reply_map_single", "reply_map_without_epochs"):
        value = vector(name)
        printed = json.loads(cluster(value, "--json"))
        assert printed == dict(value, rid=printed["rid"]), name    # the rid is gtctl's
        for ours, theirs in zip(printed["brokers"], value["brokers"]):
            assert list(ours) == list(theirs), name                # the wire's key order
