"""CURVE (issue 13): the client settings, then acceptance against a real
CURVE broker over TCP (the daemon, started by garbagetruck.testing with
--curve-cert and --curve-clients).

Principals of the broker in the ``world`` fixture (one broker per test):
service A, service B, an observer, and service H whose certificate allows
cleanup URLs under one prefix only.  Calls that must get no reply are given
a short timeout; nothing sleeps to synchronise: waits poll with a deadline.
"""

import asyncio
import contextlib
import os
import subprocess
import threading
import time
from types import SimpleNamespace

import pytest
import zmq

from conftest import unique, wait_until
from garbagetruck import (
    AsyncClient,
    Client,
    EventKind,
    InvalidArgument,
    LeaseState,
    ObjectType,
    PermissionDenied,
    Subscriber,
    Timeout,
    service_topic,
)
from garbagetruck.curve import resolve_curve
from garbagetruck.testing import (
    DEFAULT_TEST_SETTINGS,
    CurveKeyring,
    curve_broker,
    find_broker_binary,
    find_gtctl_binary,
)

#: Timeout of a call that must get no reply (the handshake is refused).
NO_REPLY = 0.5
HOOKS = "http://127.0.0.1:9/hooks/"


# -- client settings (no broker) ------------------------------------------


@pytest.fixture
def ring():
    with CurveKeyring() as keyring:
        yield keyring


def test_half_given_pair_is_a_clear_value_error(ring, monkeypatch):
    cert = ring.make_client("half", service="s")
    for kwargs, missing in (
        (dict(server_key=ring.server_key), "no client certificate"),
        (dict(client_cert=cert.secret_file), "no server key"),
    ):
        for make in (
            lambda: Client("tcp://127.0.0.1:9", **kwargs),
            lambda: AsyncClient("tcp://127.0.0.1:9", **kwargs),
            lambda: Subscriber("tcp://127.0.0.1:9", "tcp://127.0.0.1:9", **kwargs),
        ):
            with pytest.raises(ValueError, match=missing):
                make()
    # half from the environment, half from an argument: still half
    monkeypatch.setenv("GT_SERVER_KEY", ring.server_key)
    with pytest.raises(ValueError, match=r"no client certificate.*GT_CLIENT_CERT"):
        Client("tcp://127.0.0.1:9")


def test_settings_fall_back_to_the_environment_and_arguments_win(ring, monkeypatch):
    cert = ring.make_client("env", service="s")
    assert resolve_curve() is None  # nothing set: plaintext
    monkeypatch.setenv("GT_SERVER_KEY", ring.server_key)
    monkeypatch.setenv("GT_CLIENT_CERT", cert.secret_file)
    keys = resolve_curve()
    assert keys.server_key.decode() == ring.server_key and keys.public_key.decode() == cert.public_key
    assert len(keys.secret_key) == 40 and keys.secret_key.decode() not in repr(keys)
    assert resolve_curve(server_key="", client_cert="") is None  # "" = none, whatever the environment
    other = ring.make_client("other", service="s")
    assert resolve_curve(client_cert=other.secret_file).public_key.decode() == other.public_key


def test_server_key_may_be_a_certificate_file(ring, tmp_path, monkeypatch):
    cert = ring.make_client("file", service="s")
    for server_key in (ring.server_public_file, ring.server_secret_file):
        keys = resolve_curve(server_key=server_key, client_cert=cert.secret_file)
        assert keys.server_key.decode() == ring.server_key
    # a path of 40 Z85 characters ('/', '.', '-' are Z85) is still a file
    monkeypatch.chdir(tmp_path)
    name = "k" * 36 + ".key"
    (tmp_path / name).write_bytes(open(ring.server_public_file, "rb").read())
    assert len(name) == 40 and resolve_curve(name, cert.secret_file).server_key.decode() == ring.server_key


@pytest.mark.parametrize(
    "server_key, client_cert, fragment",
    [
        ("not-a-key", "{secret}", "neither a 40-character Z85 key nor an existing certificate file"),
        ("{server}", "{public}", "no secret-key"),
        ("{server}", "/nonexistent/cert_secret", "cannot read the certificate"),
    ],
)
def test_unusable_keys_are_refused(ring, server_key, client_cert, fragment):
    cert = ring.add_client("bad", service="s")
    values = dict(server=ring.server_key, secret=cert.secret_file, public=cert.public_file)
    with pytest.raises(InvalidArgument, match=fragment):
        resolve_curve(server_key.format(**values), client_cert.format(**values))


@contextlib.contextmanager
def _curve_peer(ring):
    """An in-process CURVE server (ROUTER + PUB, pyzmq's ZAP authenticator
    trusting the keyring's client keys): answers every request OK (REPLAY:
    no events, last_seq 0) and records the User-Id (client key) of each."""
    from zmq.auth.thread import ThreadAuthenticator

    from garbagetruck.codec import Reply, decode_request, encode_reply

    context = zmq.Context()  # its own: the ZAP handler is per context
    auth = ThreadAuthenticator(context)
    auth.start()
    auth.configure_curve(domain="*", location=str(ring.keys_dir))  # pyzmq's NAME.key files
    server_public, server_secret = zmq.auth.load_certificate(ring.server_secret_file)
    router, pub = context.socket(zmq.ROUTER), context.socket(zmq.PUB)
    for sock in (router, pub):
        sock.setsockopt(zmq.LINGER, 0)
        sock.curve_server = True
        sock.curve_publickey, sock.curve_secretkey = server_public, server_secret
    peer = SimpleNamespace(
        endpoint=f"tcp://127.0.0.1:{router.bind_to_random_port('tcp://127.0.0.1')}",
        events_endpoint=f"tcp://127.0.0.1:{pub.bind_to_random_port('tcp://127.0.0.1')}",
        pub=pub, users=[],
    )
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            if router.poll(20):
                identity, body = router.recv_multipart(copy=False)
                peer.users.append(body.get("User-Id"))
                request = decode_request(body.bytes)
                reply = Reply(rid=request.rid, events=[], last_seq=0, scanned_seq=0) \
                    if request.cmd.value == "REPLAY" else Reply(rid=request.rid, stats={"last_seq": 0})
                router.send_multipart([identity, encode_reply(reply)])

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield peer
    finally:
        stop.set()
        thread.join(5)
        router.close()
        pub.close()
        auth.stop()
        context.term()


def test_dealer_and_sub_authenticate_with_the_client_key(ring):
    """Both sockets speak CURVE with the client's key: a CURVE-only peer
    answers (and names the key), and refuses a key it does not trust."""
    from garbagetruck.codec import Request, encode_event
    from garbagetruck.types import Command

    cert = ring.make_client("peer", service="s")
    with _curve_peer(ring) as peer:
        with Client(peer.endpoint, timeout=5, **ring.client_args(cert)) as c:
            assert c.call(Request(Command.STATS)).ok
        assert peer.users == [cert.public_key]
        with Subscriber(peer.events_endpoint, peer.endpoint, gap_fill=False, **ring.client_args(cert)) as sub:
            event = _sample_event()
            deadline = time.monotonic() + 15
            while True:  # PUB drops what it publishes before the SUB is connected
                peer.pub.send_multipart([event.topic.encode(), encode_event(event)])
                try:
                    assert sub.receive(timeout=0.1).lease.id == event.lease.id
                    break
                except Timeout:
                    assert time.monotonic() < deadline, "the CURVE SUB never received"
        assert peer.users[-1] == cert.public_key  # the subscriber's REPLAY (its start)
        # plaintext, and a key the peer does not know: no reply
        outsider = CurveKeyring()
        try:
            stranger = outsider.make_client("stranger", service="s")
            for args in (dict(server_key="", client_cert=""),
                         dict(server_key=ring.server_key, client_cert=stranger.secret_file)):
                with Client(peer.endpoint, timeout=NO_REPLY, **args) as c, pytest.raises(Timeout):
                    c.call(Request(Command.STATS))
        finally:
            outsider.close()


def _sample_event():
    import json

    from conftest import VECTORS_DIR
    from garbagetruck.codec import decode_event

    vector = json.loads((VECTORS_DIR / "event_lease_created.json").read_text(encoding="utf-8"))
    return decode_event(bytes.fromhex(vector["msgpack"]))


# -- a CURVE broker --------------------------------------------------------


@pytest.fixture
def world():
    """A CURVE broker over TCP with principals A, B (services), an observer
    and H (a service with callback-allow); ``client(cert, ...)`` makes
    clients that are closed after the test."""
    with CurveKeyring() as keyring, contextlib.ExitStack() as stack:
        w = SimpleNamespace(ring=keyring, A=unique("svc-a"), B=unique("svc-b"), H=unique("svc-h"))
        w.a = keyring.add_client("a", service=w.A)
        w.b = keyring.add_client("b", service=w.B)
        w.observer = keyring.add_client("observer", role="observer")
        w.h = keyring.add_client("h", service=w.H, callback_allow=HOOKS)
        w.broker = stack.enter_context(curve_broker(keyring, **DEFAULT_TEST_SETTINGS))

        def client(cert, service_id=None, timeout=5.0, **kwargs):
            args = keyring.client_args(cert) if cert is not None else dict(server_key="", client_cert="")
            args.update(kwargs)
            return stack.enter_context(Client(w.broker.endpoint, service_id, timeout, **args))

        def subscriber(cert, **kwargs):
            return stack.enter_context(
                Subscriber(w.broker.events_endpoint, w.broker.endpoint, **keyring.client_args(cert), **kwargs)
            )

        w.client, w.subscriber = client, subscriber
        yield w


def test_valid_key_works_for_its_service(world):
    # no service_id: the broker acts for the key's service
    a = world.client(world.a)
    lease = a.create_lease("a-obj", ObjectType.TEMPORARY_FILE, ttl=30)
    assert lease.service_id == world.A and lease.state is LeaseState.ACTIVE
    assert a.renew_lease(lease.id, ttl=60).renewals == 1
    assert a.renew_leases([lease.id])[0].ok
    assert a.release_lease(lease.id).state is LeaseState.RELEASED
    # naming its own service is fine too
    named = world.client(world.a, service_id=world.A)
    assert named.release_lease(named.create_lease("a-named", ttl=30).id).state is LeaseState.RELEASED
    assert a.health().serving


def test_same_key_claiming_another_service_is_denied(world):
    a = world.client(world.a)
    lease = a.create_lease("a-own", ttl=30)
    as_b = world.client(world.a, service_id=world.B)
    for attempt in (
        lambda: as_b.create_lease("claimed", ttl=30),
        lambda: as_b.renew_lease(lease.id),
        lambda: as_b.renew_leases([lease.id]),
        lambda: as_b.release_lease(lease.id),
    ):
        with pytest.raises(PermissionDenied) as info:
            attempt()
        assert info.value.code == "PERMISSION_DENIED"
    unchanged = a.get_lease(lease.id)
    assert unchanged.state is LeaseState.ACTIVE and unchanged.renewals == 0
    observer = world.client(world.observer)
    assert not list(observer.list_leases(service_id=world.B))  # nothing was created for B


def test_unknown_key_and_plaintext_client_get_no_reply(world):
    stranger = world.ring.make_client("stranger", service=world.A)  # never trusted
    unknown = world.client(stranger, timeout=NO_REPLY)
    plaintext = world.client(None, service_id=world.A, timeout=NO_REPLY)
    for who in (unknown, plaintext):
        with pytest.raises(Timeout):
            who.health()
        with pytest.raises(Timeout):
            who.create_lease("sneaky", ttl=30)
    # a raw plaintext socket sending a valid request: nothing comes back either
    raw = zmq.Context.instance().socket(zmq.DEALER)
    try:
        raw.setsockopt(zmq.LINGER, 0)
        raw.connect(world.broker.endpoint)
        raw.send(b"\x83\xa1v\x01\xa3rid\x01\xa3cmd\xa6HEALTH")
        assert not raw.poll(int(NO_REPLY * 1000)), "a plaintext request got a reply"
    finally:
        raw.close()
    # the broker keeps serving the others, and nothing was created
    assert world.broker.running
    a = world.client(world.a)
    assert a.health().serving
    assert a.create_lease("after", ttl=30).service_id == world.A
    assert [lease.object_id for lease in world.client(world.observer).list_leases()] == ["after"]


def test_removed_key_stops_working_on_its_open_connection_within_1s(world):
    a = world.client(world.a)
    lease = a.create_lease("revoked", ttl=30)
    assert a.get_lease(lease.id).id == lease.id  # the connection is open and served
    pause = threading.Event()
    removed_at = time.monotonic()
    world.ring.remove_client(world.a)
    while True:
        try:
            a.get_lease(lease.id, timeout=1.0)
        except PermissionDenied as exc:
            denied, elapsed = exc, time.monotonic() - removed_at
            break
        assert time.monotonic() - removed_at < 1.0, "still served 1 s after its key was removed"
        pause.wait(0.01)  # pacing between polls, not synchronisation
    assert elapsed < 1.0 and "trusted" in denied.message, denied
    with pytest.raises(PermissionDenied):
        a.renew_lease(lease.id)
    # a new connection with the removed key: its handshake is refused
    with pytest.raises(Timeout):
        world.client(world.a, timeout=NO_REPLY).health()
    # the others are unaffected, and the lease was not renewed
    b = world.client(world.b)
    assert b.health().serving
    assert world.client(world.observer).get_lease(lease.id).renewals == 0


def test_observer_reads_everything_and_changes_nothing(world):
    a_lease = world.client(world.a).create_lease("a-1", ttl=30)
    b_lease = world.client(world.b).create_lease("b-1", ttl=30)
    observer = world.client(world.observer)
    for attempt in (
        lambda: observer.create_lease("obs", ttl=30),
        lambda: world.client(world.observer, service_id=world.A).create_lease("obs-as-a", ttl=30),
        lambda: observer.release_lease(a_lease.id),
        lambda: world.client(world.observer, service_id=world.B).release_lease(b_lease.id),
        lambda: observer.renew_lease(b_lease.id),
    ):
        with pytest.raises(PermissionDenied) as info:
            attempt()
        assert info.value.code == "PERMISSION_DENIED"
    listed = {lease.id: lease for lease in observer.list_leases()}
    assert set(listed) == {a_lease.id, b_lease.id}
    assert all(lease.state is LeaseState.ACTIVE and lease.renewals == 0 for lease in listed.values())
    assert observer.get_lease(b_lease.id).service_id == world.B
    assert observer.stats()["active_leases"] == 2
    # a service key lists its own leases only
    assert [lease.id for lease in world.client(world.a).list_leases()] == [a_lease.id]


def _live(sub, probe):
    """Wait until ``sub`` (a raw, live-only subscriber) sees events: create
    probe leases until one is received (probes published before the
    subscription went live are lost, by design of PUB/SUB)."""
    deadline = time.monotonic() + 15
    while True:
        lease = probe()
        try:
            while sub.receive(timeout=0.5).lease.id != lease.id:
                pass
            return
        except Timeout:
            assert time.monotonic() < deadline, "no probe seen in 15 s: the subscription never went live"


def _until(sub, lease_id, timeout=5.0):
    events = []
    while not events or events[-1].lease.id != lease_id:
        events.append(sub.receive(timeout=timeout))
    return events


def test_service_subscriber_gets_none_of_another_services_events(world):
    a, b = world.client(world.a), world.client(world.b)
    # Live-only subscribers to the empty prefix: what they get, the broker sent.
    a_raw = world.subscriber(world.a, topics=("",), gap_fill=False)
    observer_raw = world.subscriber(world.observer, topics=("",), gap_fill=False)
    # A's key subscribing to B's prefix (refused by the broker) and its own.
    keys = resolve_curve(**world.ring.client_args(world.a))
    sock = zmq.Context.instance().socket(zmq.SUB)
    with contextlib.closing(sock):
        keys.apply(sock)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SUBSCRIBE, service_topic(world.B).encode())
        sock.setsockopt(zmq.SUBSCRIBE, service_topic(world.A).encode())
        sock.connect(world.broker.events_endpoint)
        # A's gap-filling subscriber from now on, and another from the start
        a_sub = world.subscriber(world.a)
        with pytest.raises(Timeout):
            a_sub.receive(timeout=0.05)  # starts it
        _live(a_raw, lambda: a.create_lease(unique("probe"), ttl=30))
        _live(observer_raw, lambda: a.create_lease(unique("probe"), ttl=30))
        deadline = time.monotonic() + 15
        while True:  # the raw socket is live once a probe of A reaches it
            probe = a.create_lease(unique("probe"), ttl=30)
            if sock.poll(500) and _raw_until(sock, probe.id):
                break
            assert time.monotonic() < deadline, "raw SUB never went live"

        theirs = [b.create_lease(f"b-{i}", ObjectType.CACHE_ENTRY, ttl=30) for i in range(3)]
        b.release_lease(theirs[0].id)
        marker = a.create_lease("a-marker", ObjectType.TEMPORARY_FILE, ttl=30)
        # Published after B's events: once it is in, B's would have been too.
        seen_by_a = _until(a_raw, marker.id)
        seen_by_observer = _until(observer_raw, marker.id)
        seen_by_a_sub = _until(a_sub, marker.id)
        raw_topics = _raw_until(sock, marker.id)
        from_start = world.subscriber(world.a, from_seq=1)
        replayed = _until(from_start, marker.id)

    b_ids = {lease.id for lease in theirs}
    # the control: B's events were published, and an observer got them
    assert b_ids <= {e.lease.id for e in seen_by_observer}
    for events in (seen_by_a, seen_by_a_sub, replayed):
        assert {e.lease.service_id for e in events} == {world.A}, [e.topic for e in events]
    assert raw_topics and all(t.startswith(service_topic(world.A)) for t in raw_topics), raw_topics
    # the gap-filling subscribers are in order, without duplicates
    for events in (seen_by_a_sub, replayed):
        seqs = [e.seq for e in events]
        assert seqs == sorted(set(seqs))
    assert replayed[-1].kind is EventKind.LEASE_CREATED and replayed[-1].lease.id == marker.id


def _raw_until(sock, lease_id):
    """Topics received on a raw SUB socket until the event of lease_id
    (decoded), or None if nothing more comes within 5 s."""
    from garbagetruck.codec import decode_event

    topics = []
    while sock.poll(5000):
        topic, body = sock.recv_multipart()
        topics.append(topic.decode())
        if decode_event(body).lease.id == lease_id:
            return topics
    return None


def test_replay_as_a_service_returns_only_its_events(world):
    a, b = world.client(world.a), world.client(world.b)
    mine = []
    for i in range(3):
        b.release_lease(b.create_lease(f"b-{i}", ttl=30).id)
        mine.append(a.create_lease(f"a-{i}", ttl=30))
    everything = world.client(world.observer).replay(0, 1000)
    assert {e.lease.service_id for e in everything.events} == {world.A, world.B}  # the control
    page = a.replay(0, 1000)
    assert {e.lease.service_id for e in page.events} == {world.A}
    assert [e.lease.id for e in page.events] == [lease.id for lease in mine]
    assert page.last_seq == everything.last_seq and page.scanned_seq == page.last_seq
    # pages of one: resume after scanned_seq until last_seq; same events
    after, collected = 0, []
    while after < page.last_seq:
        small = a.replay(after, 1)
        assert len(small.events) <= 1 and small.scanned_seq is not None
        assert after < small.scanned_seq <= small.last_seq
        collected += small.events
        after = small.scanned_seq
    assert [e.seq for e in collected] == [e.seq for e in page.events]


def test_subscriber_resumes_after_scanned_seq(world):
    """A filtered REPLAY page may hold no event while later ones remain (the
    broker examines at most 20,000 events a page): the subscriber resumes
    after the page's scanned_seq instead of taking it for the end."""
    a, b = world.client(world.a), world.client(world.b)
    first = a.create_lease("before", ttl=30)
    theirs = [b.create_lease(f"b-{i}", ttl=600).id for i in range(10)]

    def flood():  # 30,000 of B's events (RENEW_BATCH: one event per entry)
        for _ in range(3):
            assert all(result.ok for result in b.renew_leases(theirs * 1000, timeout=30))

    flood()
    second = a.create_lease("after", ttl=30)
    # the premise: a page after A's first event holds none, yet ends early
    first_seq = a.replay(0, 1000).events[0].seq
    page = a.replay(first_seq, 1000)
    assert page.events == [] and first_seq < page.scanned_seq < page.last_seq, page
    sub = world.subscriber(world.a, from_seq=1)
    assert [sub.receive(timeout=5).lease.id for _ in range(2)] == [first.id, second.id]
    # live: an event after another flood reveals a gap of many pages
    flood()
    third = a.create_lease("live", ttl=30)
    assert sub.receive(timeout=10).lease.id == third.id
    assert sub.last_seq == a.replay(0, 1).last_seq


def test_cleanup_url_outside_the_principals_prefixes_is_refused(world):
    h = world.client(world.h)
    with pytest.raises(InvalidArgument) as info:
        h.create_lease("h-out", ttl=30, cleanup="http://127.0.0.1:9/elsewhere/x")
    assert info.value.code == "INVALID_ARGUMENT"
    with pytest.raises(InvalidArgument):
        h.create_lease("h-evil", ttl=30, cleanup="http://127.0.0.1:9/hooksevil")
    assert h.create_lease("h-in", ttl=30, cleanup=HOOKS + "x").cleanup.url == HOOKS + "x"
    # the prefixes are H's: A (no callback-allow) may use the other URL
    a = world.client(world.a)
    assert a.create_lease("a-out", ttl=30, cleanup="http://127.0.0.1:9/elsewhere/x").service_id == world.A
    listed = [lease.object_id for lease in world.client(world.observer).list_leases(service_id=world.H)]
    assert listed == ["h-in"]


def test_keep_alive_and_async_client_use_the_key(world):
    a = world.client(world.a)
    with a.hold("held", ttl=0.3) as held:
        wait_until(lambda: held.renewals >= 2, timeout=5, what="two background renewals")
        assert not held.lost and held.lease.service_id == world.A
    assert a.get_lease(held.lease_id).state is LeaseState.RELEASED
    a_lease = a.create_lease("a-active", ttl=30)

    async def main():
        async with AsyncClient(world.broker.endpoint, **world.ring.client_args(world.b)) as b:
            lease = await b.create_lease("async-b", ttl=30)
            assert lease.service_id == world.B
            assert (await b.renew_lease(lease.id)).renewals == 1
            with pytest.raises(PermissionDenied):
                await b.release_lease(a_lease.id)
            return await b.release_lease(lease.id)

    assert asyncio.run(main()).state is LeaseState.RELEASED


def test_environment_settings_connect(world, monkeypatch):
    monkeypatch.setenv("GT_SERVER_KEY", world.ring.server_public_file)  # a certificate file
    monkeypatch.setenv("GT_CLIENT_CERT", world.a.secret_file)
    with Client(world.broker.endpoint) as a:
        assert a.create_lease("from-env", ttl=30).service_id == world.A


@pytest.mark.skipif(find_gtctl_binary() is None, reason="gtctl not found (set GT_GTCTL_BIN); CI always has it")
def test_certificates_of_gtctl_and_pyzmq_interoperate(tmp_path):
    """gtctl keygen's CZMQ certificates work with the Python client, and a
    pyzmq-made one (CurveKeyring) with gtctl, against one broker."""
    gtctl = find_gtctl_binary()
    with CurveKeyring(str(tmp_path)) as ring:
        made = subprocess.run([gtctl, "keygen", "upl", "--service", "upl-svc"], cwd=ring.keys_dir,
                              capture_output=True, text=True, timeout=30)
        assert made.returncode == 0, made.stderr
        (ring.clients_dir / "upl").write_bytes((ring.keys_dir / "upl").read_bytes())
        py = ring.add_client("py", service="py-svc")
        with curve_broker(ring, **DEFAULT_TEST_SETTINGS) as b:
            with Client(b.endpoint, server_key=ring.server_public_file,
                        client_cert=str(ring.keys_dir / "upl_secret")) as upl:
                assert upl.create_lease("from-python", ttl=30).service_id == "upl-svc"
            created = subprocess.run(
                [gtctl, "--endpoint", b.endpoint, "--server-key", ring.server_key, "--client-cert", py.secret_file,
                 "create", "--object", "from-gtctl", "--service", "py-svc", "--ttl", "30"],
                capture_output=True, text=True, timeout=30,
            )
            assert created.returncode == 0, created.stderr
            with Client(b.endpoint, **ring.client_args(py)) as c:
                lease = c.get_lease(created.stdout.strip())
            assert (lease.object_id, lease.service_id) == ("from-gtctl", "py-svc")


def test_non_loopback_bind_without_keys_exits_2():
    binary = find_broker_binary()
    assert binary, "no broker binary: set GT_BROKER_BIN"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GC_CURVE")}
    try:
        result = subprocess.run(
            [binary, "--host", "0.0.0.0", "--port", "0", "--events-port", "0"],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=10, env=env,
        )
    except subprocess.TimeoutExpired as exc:  # run() killed it
        pytest.fail(f"the broker served a non-loopback bind without keys for 10 s: {exc.stdout!r} {exc.stderr!r}")
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "gtctl keygen" in output and "--insecure" in output, output
    assert "ready" not in result.stdout
