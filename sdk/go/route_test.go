package garbagetruck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/garbagetruck/garbagetruck/sdk/go/gttest"
)

// Client routing (docs/CLUSTER.md, "Client routing"). Real brokers serve
// what they can today (MAP; the memory store is one broker owning every
// shard); the redirects a cluster will send (MOVED, TRY_AGAIN, per-lease
// MOVED) come from fake brokers: a ROUTER socket answering with the SDK's
// own codec, whatever the test says.

// fakeBroker answers GTLP requests with handle (nil: no reply at all).
type fakeBroker struct {
	Endpoint string
	handle   func(req *request) *reply

	mu   sync.Mutex
	reqs []*request
}

// startFake binds a ROUTER on a loopback port and serves until the test ends.
func startFake(t *testing.T, handle func(req *request) *reply) *fakeBroker {
	t.Helper()
	sock := zmqSockets(t, zmq.ROUTER)[0]
	if err := sock.Bind("tcp://127.0.0.1:*"); err != nil {
		t.Fatal(err)
	}
	ep, _ := sock.GetLastEndpoint()
	f := &fakeBroker{Endpoint: ep, handle: handle}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		poller := zmq.NewPoller()
		poller.Add(sock, zmq.POLLIN)
		for {
			select {
			case <-stop:
				return
			default:
			}
			polled, err := poller.Poll(20 * time.Millisecond)
			if err != nil || len(polled) == 0 {
				continue
			}
			frames, err := sock.RecvMessageBytes(0)
			if err != nil || len(frames) < 2 {
				continue
			}
			req, err := decodeRequest(frames[len(frames)-1])
			if err != nil {
				t.Errorf("fake broker: %v", err)
				continue
			}
			f.mu.Lock()
			f.reqs = append(f.reqs, req)
			f.mu.Unlock()
			rep := f.handle(req)
			if rep == nil {
				continue
			}
			rep.V, rep.RID = 1, req.RID
			body, err := encodeReply(rep)
			if err != nil {
				t.Errorf("fake broker: encode: %v", err)
				continue
			}
			sock.SendMessage(frames[:len(frames)-1], body)
		}
	}()
	t.Cleanup(func() {
		close(stop)
		<-done
	})
	return f
}

// soleOwnerMap is the MAP reply of a single-mode broker at endpoint: one
// broker owning every shard.
func soleOwnerMap(endpoint string) *reply {
	return &reply{Code: CodeOK, MapVersion: ptr(uint64(1)), Cluster: ptr(false),
		Brokers: []BrokerInfo{{BrokerID: "a", Endpoint: endpoint, EventsEndpoint: "tcp://127.0.0.1:9", Shards: shardRange(0, 256)}}}
}

// zmqSockets makes a context and a socket of each of types (linger 0) for
// an in-process fake broker. The sockets are closed and the context ended
// when the test ends, after the cleanups registered later (which stop the
// goroutine that uses them).
func zmqSockets(t *testing.T, types ...zmq.Type) []*zmq.Socket {
	t.Helper()
	zctx, err := zmq.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	var socks []*zmq.Socket
	t.Cleanup(func() {
		for _, s := range socks {
			s.Close()
		}
		zctx.Term()
	})
	for _, typ := range types {
		s, err := zctx.NewSocket(typ)
		if err != nil {
			t.Fatal(err)
		}
		s.SetLinger(0)
		socks = append(socks, s)
	}
	return socks
}

// requests returns the requests of cmd received so far.
func (f *fakeBroker) requests(cmd string) []*request {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*request
	for _, r := range f.reqs {
		if r.Cmd == cmd {
			out = append(out, r)
		}
	}
	return out
}

// fakeMap is a shard map the fakes share and tests change.
type fakeMap struct {
	mu sync.Mutex
	m  ShardMap
}

func (fm *fakeMap) reply() *reply {
	fm.mu.Lock()
	defer fm.mu.Unlock()
	m := fm.m.clone()
	return &reply{Code: CodeOK, MapVersion: ptr(m.MapVersion), Cluster: ptr(m.Cluster), Brokers: m.Brokers}
}

// move gives shard to broker i (and takes it from the others).
func (fm *fakeMap) move(shard, i int) {
	fm.mu.Lock()
	defer fm.mu.Unlock()
	for j := range fm.m.Brokers {
		b := &fm.m.Brokers[j]
		b.Shards = slices.DeleteFunc(b.Shards, func(s int) bool { return s == shard })
		if j == i {
			b.Shards = append(b.Shards, shard)
			slices.Sort(b.Shards)
		}
	}
	fm.m.MapVersion++
}

func shardRange(from, to int) []int {
	var out []int
	for s := from; s < to; s++ {
		out = append(out, s)
	}
	return out
}

func fakeLease(id string, state LeaseState) *Lease {
	now := time.Now().UTC().Truncate(time.Millisecond)
	return &Lease{ID: id, ObjectID: "o-" + id[:4], ServiceID: "svc", State: state, TTL: time.Minute,
		CreatedAt: now, RenewedAt: now, ExpiresAt: now.Add(time.Minute), Metadata: map[string]string{}}
}

func errReply(code Code, msg string) *reply { return &reply{Code: code, Message: ptr(msg)} }

// leaseIDOfShard returns a lease id in shard.
func leaseIDOfShard(shard int, tail byte) string {
	return fmt.Sprintf("%02x", shard) + strings.Repeat(string("0123456789abcdef"[tail%16]), 30)
}

// refusedEndpoint returns a loopback endpoint where nothing listens.
func refusedEndpoint(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ep := "tcp://" + l.Addr().String()
	l.Close()
	return ep
}

func TestSplitEndpoints(t *testing.T) {
	got := splitEndpoints(" tcp://a:1 ,tcp://b:2,,tcp://a:1", "tcp://c:3")
	if want := []string{"tcp://a:1", "tcp://b:2", "tcp://c:3"}; !slices.Equal(got, want) {
		t.Errorf("splitEndpoints = %q", got)
	}
	c := dial(t, "tcp://127.0.0.1:1, tcp://127.0.0.1:2", "svc", WithEndpoints("tcp://127.0.0.1:3"))
	if c.Endpoint() != "tcp://127.0.0.1:1,tcp://127.0.0.1:2,tcp://127.0.0.1:3" || len(c.Endpoints()) != 3 || !c.routing() {
		t.Errorf("Endpoint %q, Endpoints %q", c.Endpoint(), c.Endpoints())
	}
	if _, err := Dial(context.Background(), " , ", "svc"); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("no endpoint: %v", err)
	}
	if one := dial(t, "tcp://127.0.0.1:1", "svc"); one.routing() {
		t.Error("one endpoint routes")
	}
}

func TestRequestShardAndSafety(t *testing.T) {
	id := leaseIDOfShard(0xc8, 1)
	cases := []struct {
		req   *request
		shard int
		safe  bool
	}{
		{&request{Cmd: cmdCreate, ObjectID: ptr("obj")}, ShardOf("obj"), false},
		{&request{Cmd: cmdCreate, ObjectID: ptr("obj"), IdempotencyKey: ptr("k")}, ShardOf("obj"), true},
		{&request{Cmd: cmdRenew, LeaseID: ptr(id)}, 0xc8, true},
		{&request{Cmd: cmdRelease, LeaseID: ptr(id)}, 0xc8, true},
		{&request{Cmd: cmdGet, LeaseID: ptr(id)}, 0xc8, true},
		{&request{Cmd: cmdRetry, LeaseID: ptr(id)}, 0xc8, false},
		{&request{Cmd: cmdReplay, Shard: ptr(uint64(7))}, 7, true},
		{&request{Cmd: cmdRenewBatch, LeaseIDs: []string{id}}, 0xc8, true},
		{&request{Cmd: cmdHealth}, 0, true},
		{&request{Cmd: cmdStats}, 0, true},
		{&request{Cmd: cmdMap}, 0, true},
		{&request{Cmd: cmdList}, 0, true},
		{&request{Cmd: cmdGet, LeaseID: ptr("not-a-lease-id")}, 0, true},
	}
	for _, tc := range cases {
		if got := requestShard(tc.req); got != tc.shard {
			t.Errorf("%s: shard %d, want %d", tc.req.Cmd, got, tc.shard)
		}
		if got := safeToRepeat(tc.req); got != tc.safe {
			t.Errorf("%s: safe %v, want %v", tc.req.Cmd, got, tc.safe)
		}
	}
	var b time.Duration
	var waits []time.Duration
	for range 6 {
		waits = append(waits, nextBackoff(&b, 0))
	}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i := range want {
		want[i] *= time.Millisecond
	}
	if !slices.Equal(waits, want) {
		t.Errorf("backoff %v", waits)
	}
	b = 0
	if d := nextBackoff(&b, 30*time.Millisecond); d != 100*time.Millisecond {
		t.Errorf("retry_ms below 100 ms: %v", d)
	}
}

// TestRouteTable: the owner of a request's shard, else the endpoint that
// last answered, else the first.
func TestRouteTable(t *testing.T) {
	c := dial(t, "tcp://127.0.0.1:1,tcp://127.0.0.1:2", "svc")
	if ep := c.rt.route(5); ep != "tcp://127.0.0.1:1" {
		t.Errorf("no map, no answer: %s", ep)
	}
	c.rt.noteAnswered("tcp://127.0.0.1:2")
	if ep := c.rt.route(5); ep != "tcp://127.0.0.1:2" {
		t.Errorf("no map: %s", ep)
	}
	c.rt.install(&ShardMap{Cluster: true, Brokers: []BrokerInfo{
		{BrokerID: "a", Endpoint: "tcp://a:1", Shards: shardRange(0, 128)},
		{BrokerID: "b", Endpoint: "tcp://b:1", Shards: shardRange(128, 255)}, // 255: no owner
	}})
	for shard, want := range map[int]string{0: "tcp://a:1", 127: "tcp://a:1", 128: "tcp://b:1", 255: "tcp://127.0.0.1:2"} {
		if ep := c.rt.route(shard); ep != want {
			t.Errorf("shard %d: %s, want %s", shard, ep, want)
		}
	}
	if got := c.rt.candidates(); !slices.Equal(got, []string{"tcp://127.0.0.1:2", "tcp://127.0.0.1:1", "tcp://a:1", "tcp://b:1"}) {
		t.Errorf("candidates %q", got)
	}
	c.rt.noteFailed("tcp://127.0.0.1:2")
	if got := c.rt.candidates(); got[len(got)-1] != "tcp://127.0.0.1:2" {
		t.Errorf("a failed endpoint is asked last: %q", got)
	}
}

// TestAutoIdempotencyKeyEncoding: the CREATE a client builds carries a
// fresh random key only when it has several endpoints, and never replaces
// the caller's.
func TestAutoIdempotencyKeyEncoding(t *testing.T) {
	hex32 := regexp.MustCompile(`^[0-9a-f]{32}$`)
	one := dial(t, "tcp://127.0.0.1:1", "svc")
	if r := one.createRequest(CreateRequest{ObjectID: "o"}); r.IdempotencyKey != nil {
		t.Errorf("one endpoint: key %q", *r.IdempotencyKey)
	}
	several := dial(t, "tcp://127.0.0.1:1,tcp://127.0.0.1:2", "svc")
	r1 := several.createRequest(CreateRequest{ObjectID: "o"})
	r2 := several.createRequest(CreateRequest{ObjectID: "o"})
	if r1.IdempotencyKey == nil || !hex32.MatchString(*r1.IdempotencyKey) || r2.IdempotencyKey == nil ||
		*r1.IdempotencyKey == *r2.IdempotencyKey {
		t.Fatalf("several endpoints: keys %v %v", r1.IdempotencyKey, r2.IdempotencyKey)
	}
	if r := several.createRequest(CreateRequest{ObjectID: "o", IdempotencyKey: "mine"}); *r.IdempotencyKey != "mine" {
		t.Errorf("caller's key replaced by %q", *r.IdempotencyKey)
	}
	// A one-endpoint client redirected by a cluster routes, and adds keys.
	one.rt.setRedirected()
	if r := one.createRequest(CreateRequest{ObjectID: "o"}); r.IdempotencyKey == nil {
		t.Error("redirected client: no key")
	}
}

// TestAutoIdempotencyKeyOnTheWire: what the broker receives, and the key
// stays the same when the CREATE is sent again after a lost reply.
func TestAutoIdempotencyKeyOnTheWire(t *testing.T) {
	var mu sync.Mutex
	creates := 0
	var owner *fakeBroker
	owner = startFake(t, func(req *request) *reply {
		switch req.Cmd {
		case cmdMap:
			return soleOwnerMap(owner.Endpoint)
		case cmdCreate:
			mu.Lock()
			creates++
			n := creates
			mu.Unlock()
			if n == 2 { // the routed client's first CREATE: its reply is "lost"
				return nil
			}
			return &reply{Code: CodeOK, Lease: fakeLease(leaseIDOfShard(ShardOf(*req.ObjectID), 1), LeaseActive)}
		}
		return errReply(CodeUnsupportedCommand, "fake")
	})
	ctx := testCtx(t, 20*time.Second)
	one := dial(t, owner.Endpoint, "svc")
	if _, err := one.CreateLease(ctx, CreateRequest{ObjectID: "obj"}); err != nil {
		t.Fatal(err)
	}
	if got := owner.requests(cmdCreate); len(got) != 1 || got[0].IdempotencyKey != nil {
		t.Fatalf("one endpoint sent %d CREATE, key %v", len(got), got[0].IdempotencyKey)
	}
	if len(owner.requests(cmdMap)) != 0 {
		t.Error("a one-endpoint client asked for the MAP")
	}
	several := dial(t, owner.Endpoint+","+refusedEndpoint(t), "svc")
	start := time.Now()
	if _, err := several.CreateLease(ctx, CreateRequest{ObjectID: "obj"}); err != nil {
		t.Fatal(err)
	}
	got := owner.requests(cmdCreate)[1:]
	if len(got) != 2 || got[0].IdempotencyKey == nil || len(*got[0].IdempotencyKey) != 32 ||
		got[1].IdempotencyKey == nil || *got[0].IdempotencyKey != *got[1].IdempotencyKey {
		t.Fatalf("routed CREATEs: %d, keys %v", len(got), got)
	}
	if d := time.Since(start); d < attemptTimeout || d > 5*time.Second {
		t.Errorf("the lost attempt took %v to be sent again (1 s per attempt)", d)
	}
}

// TestDeadEndpointThenLiveBroker: a client given a dead endpoint first and
// a live broker second gets the map from the live one and works.
func TestDeadEndpointThenLiveBroker(t *testing.T) {
	b := gttest.Start(t)
	for name, dead := range map[string]string{"refused": refusedEndpoint(t), "silent": gttest.SilentEndpoint(t)} {
		t.Run(name, func(t *testing.T) {
			c := dial(t, dead+","+b.Endpoint, "svc")
			ctx := testCtx(t, 20*time.Second)
			start := time.Now()
			l, err := c.CreateLease(ctx, CreateRequest{ObjectID: "obj-" + name, TTL: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("first call (MAP, then CREATE) took %v", time.Since(start))
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("first call took %v", d)
			}
			m, gen := c.rt.current()
			if m == nil || gen == 0 || len(m.Brokers) != 1 || m.Brokers[0].Endpoint != b.Endpoint {
				t.Fatalf("map %+v", m)
			}
			for _, sh := range []int{0, 100, 255} {
				if ep := c.rt.route(sh); ep != b.Endpoint {
					t.Errorf("shard %d routed to %s", sh, ep)
				}
			}
			if _, err := c.RenewLease(ctx, l.ID, 0); err != nil {
				t.Fatal(err)
			}
			if r, err := c.ReleaseLease(ctx, l.ID); err != nil || r.State != LeaseReleased {
				t.Fatalf("release: %v %v", r, err)
			}
			if h, err := c.Health(ctx); err != nil || h.Status == "" {
				t.Fatalf("health: %v %v", h, err)
			}
		})
	}
}

// TestRouteByShardMemoryBrokers: two memory brokers, a map that gives each
// half of the shards: every request goes to its shard's owner, a batch
// renewal is split by owner, and a cluster LIST walks both brokers.
func TestRouteByShardMemoryBrokers(t *testing.T) {
	ba, bb := gttest.Start(t), gttest.Start(t)
	c := dial(t, ba.Endpoint+","+bb.Endpoint, "svc")
	c.rt.install(&ShardMap{MapVersion: 1, Cluster: true, Brokers: []BrokerInfo{
		{BrokerID: "a", Endpoint: ba.Endpoint, EventsEndpoint: ba.EventsEndpoint, Shards: shardRange(0, 128)},
		{BrokerID: "b", Endpoint: bb.Endpoint, EventsEndpoint: bb.EventsEndpoint, Shards: shardRange(128, 256)},
	}})
	ctx := testCtx(t, 30*time.Second)
	onA, onB := dial(t, ba.Endpoint, "svc"), dial(t, bb.Endpoint, "svc")
	var ids []string
	inA := map[string]bool{}
	for i := 0; len(ids) < 8; i++ {
		obj := fmt.Sprint("object-", i)
		l, err := c.CreateLease(ctx, CreateRequest{ObjectID: obj, TTL: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if sh, _ := LeaseIDShard(l.ID); sh != ShardOf(obj) {
			t.Fatalf("lease %s of %s: shard %d, want %d", l.ID, obj, sh, ShardOf(obj))
		}
		want, other := onA, onB
		if ShardOf(obj) >= 128 {
			want, other = onB, onA
		}
		if _, err := want.GetLease(ctx, l.ID); err != nil {
			t.Fatalf("%s (shard %d) not on its owner: %v", obj, ShardOf(obj), err)
		}
		if _, err := other.GetLease(ctx, l.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("%s (shard %d) on the other broker: %v", obj, ShardOf(obj), err)
		}
		inA[l.ID] = ShardOf(obj) < 128
		ids = append(ids, l.ID)
	}
	nA := 0
	for _, id := range ids {
		if inA[id] {
			nA++
		}
	}
	if nA == 0 || nA == len(ids) {
		t.Fatalf("all %d leases in one half; pick other objects", len(ids))
	}
	// GET routes by lease id.
	for _, id := range ids {
		if _, err := c.GetLease(ctx, id); err != nil {
			t.Fatalf("GET %s: %v", id, err)
		}
	}
	// RENEW_BATCH: one batch per owner, every lease renewed.
	res, err := c.RenewLeases(ctx, ids, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil || r.LeaseID != ids[i] {
			t.Errorf("renew %s: %+v", ids[i], r)
		}
	}
	sa, _ := onA.Stats(ctx)
	sb, _ := onB.Stats(ctx)
	if sa["leases_renewed"] != uint64(nA) || sb["leases_renewed"] != uint64(len(ids)-nA) {
		t.Errorf("renewed %d on a, %d on b; want %d and %d", sa["leases_renewed"], sb["leases_renewed"], nA, len(ids)-nA)
	}
	// LIST in cluster mode: every broker, pages concatenated.
	seen := map[string]bool{}
	pages := 0
	cursor := ""
	for {
		leases, next, err := c.ListPage(ctx, ListFilter{PageSize: 3}, cursor)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, l := range leases {
			if seen[l.ID] {
				t.Errorf("listed twice: %s", l.ID)
			}
			seen[l.ID] = true
		}
		if next == "" {
			break
		}
		if !strings.HasPrefix(next, clusterCursorPrefix) {
			t.Fatalf("cursor %q", next)
		}
		cursor = next
	}
	if len(seen) != len(ids) || pages < 3 {
		t.Errorf("listed %d of %d leases in %d pages", len(seen), len(ids), pages)
	}
	if _, _, err := c.ListPage(ctx, ListFilter{}, "bogus"); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("bad cursor: %v", err)
	}
	for _, id := range ids {
		if _, err := c.ReleaseLease(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
}

// TestMovedOneEndpoint: a one-endpoint client follows MOVED to the owner
// at once, then routes by the map it asks for.
func TestMovedOneEndpoint(t *testing.T) {
	fm := &fakeMap{}
	id := leaseIDOfShard(200, 3)
	var a, b *fakeBroker
	a = startFake(t, func(req *request) *reply {
		switch req.Cmd {
		case cmdMap:
			return fm.reply()
		case cmdGet:
			return &reply{Code: CodeMoved, Message: ptr("shard 200 is owned by b"), Shard: ptr(uint64(200)),
				Owner: ptr(b.Endpoint), MapVersion: ptr(uint64(2))}
		}
		return errReply(CodeInternal, "unexpected")
	})
	b = startFake(t, func(req *request) *reply {
		switch req.Cmd {
		case cmdMap:
			return fm.reply()
		case cmdGet:
			return &reply{Code: CodeOK, Lease: fakeLease(*req.LeaseID, LeaseActive)}
		}
		return errReply(CodeInternal, "unexpected")
	})
	fm.m = ShardMap{MapVersion: 2, Cluster: true, Brokers: []BrokerInfo{
		{BrokerID: "a", Endpoint: a.Endpoint, EventsEndpoint: "tcp://127.0.0.1:9", Shards: shardRange(0, 128)},
		{BrokerID: "b", Endpoint: b.Endpoint, EventsEndpoint: "tcp://127.0.0.1:9", Shards: shardRange(128, 256)},
	}}
	c := dial(t, a.Endpoint, "svc")
	ctx := testCtx(t, 20*time.Second)
	l, err := c.GetLease(ctx, id)
	if err != nil || l.ID != id {
		t.Fatalf("GET: %v %v", l, err)
	}
	if !c.routing() {
		t.Error("not routing after MOVED")
	}
	// The map is asked for in the background; then GET goes straight to b.
	deadline := time.Now().Add(5 * time.Second)
	for c.rt.route(200) != b.Endpoint {
		if time.Now().After(deadline) {
			t.Fatal("map not refreshed after MOVED")
		}
		time.Sleep(10 * time.Millisecond) // polling with a deadline
	}
	if _, err := c.GetLease(ctx, id); err != nil {
		t.Fatal(err)
	}
	if n, m := len(a.requests(cmdGet)), len(b.requests(cmdGet)); n != 1 || m != 2 {
		t.Errorf("GETs: %d on a, %d on b; want 1 and 2", n, m)
	}
	// Endless MOVED: at most 5 redirects, then the MOVED is the answer.
	loop := startFake(t, nil)
	loop.handle = func(req *request) *reply {
		return &reply{Code: CodeMoved, Message: ptr("elsewhere"), Shard: ptr(uint64(0)), Owner: ptr(loop.Endpoint),
			MapVersion: ptr(uint64(1))}
	}
	c2 := dial(t, loop.Endpoint, "svc")
	if _, err := c2.Stats(ctx); !errors.Is(err, ErrMoved) {
		t.Fatalf("endless MOVED: %v", err)
	}
	if n := len(loop.requests(cmdStats)); n != 1+maxRedirects {
		t.Errorf("%d STATS sent, want %d", n, 1+maxRedirects)
	}
}

// TestTryAgainAndUnavailable: TRY_AGAIN waits retry_ms (growing) and sends
// again; UNAVAILABLE is the answer with one endpoint, retried with several.
func TestTryAgainAndUnavailable(t *testing.T) {
	var mu sync.Mutex
	n := 0
	f := startFake(t, func(req *request) *reply {
		switch req.Cmd {
		case cmdHealth:
			mu.Lock()
			n++
			k := n
			mu.Unlock()
			if k <= 2 {
				return &reply{Code: CodeTryAgain, Message: ptr("loading"), Shard: ptr(uint64(0)), RetryMS: ptr(uint64(50))}
			}
			return &reply{Code: CodeOK, Status: ptr("SERVING")}
		case cmdStats:
			return errReply(CodeUnavailable, "store down")
		case cmdMap:
			return errReply(CodeUnsupportedCommand, "no MAP here")
		}
		return errReply(CodeInternal, "unexpected")
	})
	ctx := testCtx(t, 20*time.Second)
	c := dial(t, f.Endpoint, "svc")
	if _, err := c.Stats(ctx); !errors.Is(err, ErrUnavailable) || len(f.requests(cmdStats)) != 1 {
		t.Fatalf("one endpoint, UNAVAILABLE: %v after %d requests", err, len(f.requests(cmdStats)))
	}
	start := time.Now()
	if h, err := c.Health(ctx); err != nil || h.Status != "SERVING" {
		t.Fatalf("TRY_AGAIN twice, then OK: %v %v", h, err)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("retried after %v: 100 ms then 200 ms expected", d)
	}
	// Routed now (TRY_AGAIN is a cluster's): UNAVAILABLE is retried until
	// the call's time runs out, and the answer is UNAVAILABLE.
	short, cancel := context.WithTimeout(ctx, 700*time.Millisecond)
	defer cancel()
	if _, err := c.Stats(short); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("routed UNAVAILABLE: %v", err)
	}
	if k := len(f.requests(cmdStats)); k < 3 {
		t.Errorf("routed UNAVAILABLE sent %d times in total", k)
	}
}

// TestReleaseRepeat: a RELEASE whose first attempt got no reply and whose
// repeat is answered LEASE_ENDED is done: the lease is returned. Without a
// lost attempt, LEASE_ENDED is the answer. An unsafe request (RETRY) is
// not sent again after an attempt without a reply.
func TestReleaseRepeat(t *testing.T) {
	var mu sync.Mutex
	released := map[string]int{}
	var f *fakeBroker
	f = startFake(t, func(req *request) *reply {
		switch req.Cmd {
		case cmdMap:
			return soleOwnerMap(f.Endpoint)
		case cmdRelease:
			mu.Lock()
			released[*req.LeaseID]++
			k := released[*req.LeaseID]
			mu.Unlock()
			if k == 1 && strings.HasPrefix(*req.LeaseID, "01") {
				return nil // applied, but the reply is lost
			}
			return errReply(CodeLeaseEnded, "lease is RELEASED")
		case cmdGet:
			return &reply{Code: CodeOK, Lease: fakeLease(*req.LeaseID, LeaseReleased)}
		case cmdRetry:
			return nil
		}
		return errReply(CodeInternal, "unexpected")
	})
	c := dial(t, f.Endpoint+","+refusedEndpoint(t), "svc")
	ctx := testCtx(t, 20*time.Second)
	lost := leaseIDOfShard(1, 5)
	l, err := c.ReleaseLease(ctx, lost)
	if err != nil || l.ID != lost || l.State != LeaseReleased {
		t.Fatalf("repeated RELEASE: %v %v", l, err)
	}
	if len(f.requests(cmdRelease)) != 2 || len(f.requests(cmdGet)) != 1 {
		t.Errorf("%d RELEASE, %d GET", len(f.requests(cmdRelease)), len(f.requests(cmdGet)))
	}
	if _, err := c.ReleaseLease(ctx, leaseIDOfShard(2, 5)); !errors.Is(err, ErrLeaseEnded) {
		t.Fatalf("first-attempt LEASE_ENDED: %v", err)
	}
	if _, err := c.RetryCleanup(ctx, lost); err == nil {
		t.Fatal("RETRY without a reply succeeded")
	}
	if n := len(f.requests(cmdRetry)); n != 1 {
		t.Errorf("RETRY sent %d times", n)
	}
}

// TestRenewBatchSplitAndMoved: a batch renewal goes out as one batch per
// owner; a lease answered MOVED in its RESULT is sent again to its new
// owner after the map is refreshed.
func TestRenewBatchSplitAndMoved(t *testing.T) {
	fm := &fakeMap{}
	var mu sync.Mutex
	movedOnce := false
	renewer := func(self int) func(req *request) *reply {
		return func(req *request) *reply {
			switch req.Cmd {
			case cmdMap:
				return fm.reply()
			case cmdRenewBatch:
				rep := &reply{Code: CodeOK, Results: []renewResult{}}
				for _, id := range req.LeaseIDs {
					sh, _ := LeaseIDShard(id)
					res := renewResult{LeaseID: id, Code: CodeOK, ExpiresAt: ptr(uint64(time.Now().Add(time.Minute).UnixMilli()))}
					mu.Lock()
					if self == 0 && sh == 1 && !movedOnce {
						// Shard 1 just moved to b.
						movedOnce = true
						fm.move(1, 1)
						res = renewResult{LeaseID: id, Code: CodeMoved, Message: ptr("shard 1 is owned by b")}
					}
					mu.Unlock()
					rep.Results = append(rep.Results, res)
				}
				return rep
			}
			return errReply(CodeInternal, "unexpected")
		}
	}
	a, b := startFake(t, renewer(0)), startFake(t, renewer(1))
	fm.m = ShardMap{MapVersion: 1, Cluster: true, Brokers: []BrokerInfo{
		{BrokerID: "a", Endpoint: a.Endpoint, EventsEndpoint: "tcp://127.0.0.1:9", Shards: shardRange(0, 128)},
		{BrokerID: "b", Endpoint: b.Endpoint, EventsEndpoint: "tcp://127.0.0.1:9", Shards: shardRange(128, 256)},
	}}
	c := dial(t, a.Endpoint+","+b.Endpoint, "svc")
	ctx := testCtx(t, 20*time.Second)
	ids := []string{leaseIDOfShard(0, 1), leaseIDOfShard(128, 2), leaseIDOfShard(1, 3), leaseIDOfShard(200, 4)}
	res, err := c.RenewLeases(ctx, ids, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil || r.LeaseID != ids[i] || r.ExpiresAt.IsZero() {
			t.Errorf("lease %s: %+v", ids[i], r)
		}
	}
	batches := func(f *fakeBroker) [][]string {
		var out [][]string
		for _, r := range f.requests(cmdRenewBatch) {
			out = append(out, r.LeaseIDs)
		}
		return out
	}
	ba, bb := batches(a), batches(b)
	if len(ba) != 1 || !slices.Equal(ba[0], []string{ids[0], ids[2]}) {
		t.Errorf("batches to a: %q", ba)
	}
	if len(bb) != 2 || !slices.Equal(bb[0], []string{ids[1], ids[3]}) || !slices.Equal(bb[1], []string{ids[2]}) {
		t.Errorf("batches to b: %q", bb)
	}
}

// TestSubscribeThroughEndpointList: a subscription of a client with several
// endpoints takes the events endpoint from the map.
func TestSubscribeThroughEndpointList(t *testing.T) {
	b := gttest.Start(t)
	c := dial(t, refusedEndpoint(t)+","+b.Endpoint, "svc")
	ctx := testCtx(t, 20*time.Second)
	s, err := c.Subscribe(ctx, "", SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.socks) != 1 || s.socks[0].ep != b.EventsEndpoint {
		t.Errorf("subscribed on %v, want %s", s.socks, b.EventsEndpoint)
	}
	l, err := c.CreateLease(ctx, CreateRequest{ObjectID: "watched", TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReleaseLease(ctx, l.ID); err != nil {
		t.Fatal(err)
	}
	var kinds []EventKind
	for len(kinds) < 3 {
		ev := next(t, s, 5*time.Second)
		if ev.Lease.ID != l.ID || ev.HasShard {
			t.Fatalf("event %+v", ev)
		}
		kinds = append(kinds, ev.Kind)
	}
	if !slices.Equal(kinds, []EventKind{EventLeaseCreated, EventLeaseReleased, EventObjectReclaimed}) {
		t.Errorf("kinds %v", kinds)
	}
	// A one-endpoint client given no events endpoint asks the map too.
	one := dial(t, b.Endpoint, "svc")
	s2, err := one.Subscribe(ctx, "", SubscribeOptions{})
	if err != nil || len(s2.socks) != 1 || s2.socks[0].ep != b.EventsEndpoint {
		t.Fatalf("one endpoint, events from the map: %v", err)
	}
}
