package garbagetruck

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/garbagetruck/garbagetruck/sdk/go/gttest"
)

// Acceptance tests of issue 13 against a real broker with CURVE over TCP:
// keys bound to services and roles, unknown keys and plaintext clients
// refused, revocation on open connections, events and REPLAY filtered by
// service, per-principal callback URL prefixes.

// noReply bounds the wait of a client the broker must not answer.
const noReply = time.Second

// trust generates a client certificate for p and puts it in the broker's
// clients directory.
func trust(t *testing.T, curve *gttest.Curve, name string, p gttest.Principal) *gttest.ClientCert {
	t.Helper()
	cc, err := curve.AddClient(name, p)
	if err != nil {
		t.Fatal(err)
	}
	return cc
}

// curveOpts are the options of a CURVE client with cc's key.
func curveOpts(curve *gttest.Curve, cc *gttest.ClientCert) []Option {
	return []Option{WithServerKey(curve.ServerKey), WithClientCert(cc.SecretCert)}
}

// dialCurve connects with cc's key, acting as service ("" for the key's own).
func dialCurve(t *testing.T, b *gttest.Broker, curve *gttest.Curve, cc *gttest.ClientCert, service string, opts ...Option) *Client {
	t.Helper()
	return dial(t, b.Endpoint, service, append(curveOpts(curve, cc), opts...)...)
}

// mustDeny checks that err is the broker's PERMISSION_DENIED.
func mustDeny(t *testing.T, what string, err error) {
	t.Helper()
	var be *BrokerError
	if !errors.As(err, &be) || be.Code != CodePermissionDenied {
		t.Errorf("%s: err = %v, want PERMISSION_DENIED", what, err)
	}
}

// mustTimeOut checks that a call got no reply at all.
func mustTimeOut(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("%s: err = %v, want no reply (context.DeadlineExceeded)", what, err)
	}
}

func TestCurveKeyBoundToService(t *testing.T) {
	curve := gttest.TempCurve(t)
	keyA := trust(t, curve, "svc-a", gttest.Principal{Service: "svc-a"})
	keyB := trust(t, curve, "svc-b", gttest.Principal{Service: "svc-b"})
	b := gttest.Start(t, curve.Args()...)
	ctx := testCtx(t, 20*time.Second)

	// The key's own service, named or not: everything works.
	own := dialCurve(t, b, curve, keyA, "")
	named := dialCurve(t, b, curve, keyA, "svc-a")
	l, err := own.CreateTempFileLease(ctx, "/tmp/a", time.Minute, "")
	if err != nil {
		t.Fatal(err)
	}
	if l.ServiceID != "svc-a" {
		t.Errorf("lease of %q, want svc-a (from the key)", l.ServiceID)
	}
	if _, err := named.RenewLease(ctx, l.ID, 0); err != nil {
		t.Fatal(err)
	}
	if res, err := own.RenewLeases(ctx, []string{l.ID}, 0); err != nil || res[0].Err != nil {
		t.Fatalf("renew batch: %v %+v", err, res)
	}
	if _, err := own.GetLease(ctx, l.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := own.Health(ctx); err != nil {
		t.Fatal(err)
	}

	// The same key claiming service B: PERMISSION_DENIED, nothing changes.
	claim := dialCurve(t, b, curve, keyA, "svc-b")
	_, err = claim.CreateLease(ctx, CreateRequest{ObjectID: "/tmp/b"})
	mustDeny(t, "CREATE as svc-b", err)
	_, err = claim.RenewLease(ctx, l.ID, 0)
	mustDeny(t, "RENEW as svc-b", err)
	_, err = claim.RenewLeases(ctx, []string{l.ID}, 0)
	mustDeny(t, "RENEW_BATCH as svc-b", err)
	_, err = claim.ReleaseLease(ctx, l.ID)
	mustDeny(t, "RELEASE as svc-b", err)

	// B's leases are out of A's reach; LIST is narrowed to A's.
	other := dialCurve(t, b, curve, keyB, "")
	lb, err := other.CreateTempFileLease(ctx, "/tmp/b", time.Minute, "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = own.GetLease(ctx, lb.ID)
	mustDeny(t, "GET of svc-b's lease", err)
	_, err = own.ReleaseLease(ctx, lb.ID)
	mustDeny(t, "RELEASE of svc-b's lease", err)
	for lease, err := range own.ListLeases(ctx, ListFilter{}) {
		if err != nil {
			t.Fatal(err)
		}
		if lease.ServiceID != "svc-a" {
			t.Errorf("svc-a's LIST shows a lease of %s", lease.ServiceID)
		}
	}
	_, err = own.Stats(ctx)
	mustDeny(t, "STATS by a service", err)

	if _, err := own.ReleaseLease(ctx, l.ID); err != nil {
		t.Fatal(err)
	}
	if got, err := other.GetLease(ctx, lb.ID); err != nil || got.State != LeaseActive {
		t.Errorf("svc-b's lease after the refused release: %+v, %v", got, err)
	}
}

func TestCurveUnknownKeyAndPlaintextGetNoReply(t *testing.T) {
	curve := gttest.TempCurve(t)
	known := trust(t, curve, "svc-a", gttest.Principal{Service: "svc-a"})
	b := gttest.Start(t, curve.Args()...)
	unknown, err := curve.NewClient("stranger", gttest.Principal{Service: "svc-a"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t, 20*time.Second)
	good := dialCurve(t, b, curve, known, "")
	if _, err := good.Health(ctx); err != nil {
		t.Fatal(err)
	}

	stranger := dialCurve(t, b, curve, unknown, "")
	plain := dial(t, b.Endpoint, "svc-a", WithServerKey(""), WithClientCert(""))
	for name, c := range map[string]*Client{"unknown key": stranger, "plaintext client": plain} {
		callCtx, cancel := context.WithTimeout(ctx, noReply)
		_, err := c.CreateLease(callCtx, CreateRequest{ObjectID: "/tmp/" + name})
		cancel()
		mustTimeOut(t, name+" CREATE", err)
	}

	// The broker keeps serving the others, and neither got anything done.
	if _, err := good.CreateLease(ctx, CreateRequest{ObjectID: "/tmp/after"}); err != nil {
		t.Fatalf("known key after the refused ones: %v", err)
	}
	n := 0
	for lease, err := range good.ListLeases(ctx, ListFilter{}) {
		if err != nil {
			t.Fatal(err)
		}
		if lease.ObjectID != "/tmp/after" {
			t.Errorf("unexpected lease %s", lease.ObjectID)
		}
		n++
	}
	if n != 1 {
		t.Errorf("%d leases, want 1", n)
	}

	// Nor do they get events: once the known key's subscriber receives
	// events, the others have received nothing.
	plainSub := rawSub(t, b, nil, nil, "")
	strangerSub := rawSub(t, b, curve, unknown, "")
	knownSub := rawSub(t, b, curve, known, "")
	waitSubscribed(t, ctx, good, knownSub)
	for name, sub := range map[string]*zmq.Socket{"plaintext": plainSub, "unknown key": strangerSub} {
		if frames, err := sub.RecvMessageBytes(zmq.DONTWAIT); err == nil {
			t.Errorf("%s subscriber got an event: %q", name, frames[0])
		}
	}
	if _, err := good.Health(ctx); err != nil {
		t.Fatalf("broker after the refused clients: %v", err)
	}
}

func TestCurveRevokedKeyStopsOnOpenConnection(t *testing.T) {
	curve := gttest.TempCurve(t)
	keyA := trust(t, curve, "svc-a", gttest.Principal{Service: "svc-a"})
	b := gttest.Start(t, curve.Args()...)
	ctx := testCtx(t, 20*time.Second)
	c := dialCurve(t, b, curve, keyA, "")
	l, err := c.CreateLease(ctx, CreateRequest{ObjectID: "/tmp/a", TTL: time.Minute})
	if err != nil {
		t.Fatal(err) // the connection is open and authenticated
	}

	if err := curve.Revoke(keyA); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	// Within 1 s of the removal, a request on the open connection is
	// refused: poll until then, and one request sent after that second
	// must be refused in any case.
	var last error
	for {
		late := time.Since(revoked) >= time.Second
		callCtx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		_, last = c.RenewLease(callCtx, l.ID, 0)
		cancel()
		var be *BrokerError
		if errors.As(last, &be) && be.Code == CodePermissionDenied {
			if !strings.Contains(be.Message, "trusted") {
				t.Errorf("message %q does not say the key is no longer trusted", be.Message)
			}
			break
		}
		if last != nil && !errors.Is(last, context.DeadlineExceeded) {
			t.Fatalf("renew after revocation: %v", last)
		}
		if late {
			t.Fatalf("a request sent %v after the key was removed was not refused: %v", time.Since(revoked), last)
		}
		<-time.After(10 * time.Millisecond) // pacing between attempts
	}

	// A key added while the broker runs is served within about a second
	// (the client retries the refused handshake meanwhile).
	keyC := trust(t, curve, "svc-c", gttest.Principal{Service: "svc-c"})
	newcomer := dialCurve(t, b, curve, keyC, "", WithReconnectInterval(50*time.Millisecond, 100*time.Millisecond))
	addCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := newcomer.Health(addCtx); err != nil {
		t.Fatalf("key added at run time: %v", err)
	}
}

func TestCurveObserverChangesNothing(t *testing.T) {
	curve := gttest.TempCurve(t)
	keyA := trust(t, curve, "svc-a", gttest.Principal{Service: "svc-a"})
	keyB := trust(t, curve, "svc-b", gttest.Principal{Service: "svc-b"})
	keyObs := trust(t, curve, "watcher", gttest.Principal{Service: "watcher", Role: "observer"})
	b := gttest.Start(t, curve.Args()...)
	ctx := testCtx(t, 20*time.Second)
	a := dialCurve(t, b, curve, keyA, "")
	bc := dialCurve(t, b, curve, keyB, "")
	la, err := a.CreateTempFileLease(ctx, "/tmp/a", time.Minute, "")
	if err != nil {
		t.Fatal(err)
	}
	lb, err := bc.CreateTempFileLease(ctx, "/tmp/b", time.Minute, "")
	if err != nil {
		t.Fatal(err)
	}

	for _, service := range []string{"", "svc-a"} {
		obs := dialCurve(t, b, curve, keyObs, service)
		_, err := obs.CreateLease(ctx, CreateRequest{ObjectID: "/tmp/obs"})
		mustDeny(t, fmt.Sprintf("observer CREATE (service %q)", service), err)
		_, err = obs.RenewLease(ctx, la.ID, 0)
		mustDeny(t, "observer RENEW", err)
		res, err := obs.RenewLeases(ctx, []string{la.ID, lb.ID}, 0)
		if err == nil { // refused as a whole, or lease by lease
			for _, r := range res {
				mustDeny(t, "observer RENEW_BATCH "+r.LeaseID, r.Err)
			}
		} else {
			mustDeny(t, "observer RENEW_BATCH", err)
		}
		_, err = obs.ReleaseLease(ctx, lb.ID)
		mustDeny(t, "observer RELEASE", err)
		_, err = obs.RetryCleanup(ctx, la.ID)
		mustDeny(t, "observer RETRY", err)
	}

	// It reads everything.
	obs := dialCurve(t, b, curve, keyObs, "")
	seen := map[string]bool{}
	for lease, err := range obs.ListLeases(ctx, ListFilter{}) {
		if err != nil {
			t.Fatal(err)
		}
		seen[lease.ID] = true
		if lease.State != LeaseActive || lease.Renewals != 0 {
			t.Errorf("lease %s of %s changed: %s, %d renewals", lease.ID, lease.ServiceID, lease.State, lease.Renewals)
		}
	}
	if len(seen) != 2 || !seen[la.ID] || !seen[lb.ID] {
		t.Errorf("observer's LIST: %v, want both services' leases", seen)
	}
	for _, id := range []string{la.ID, lb.ID} {
		if _, err := obs.GetLease(ctx, id); err != nil {
			t.Errorf("observer GET %s: %v", id, err)
		}
	}
	if _, err := obs.Stats(ctx); err != nil {
		t.Errorf("observer STATS: %v", err)
	}
	if _, err := obs.Health(ctx); err != nil {
		t.Errorf("observer HEALTH: %v", err)
	}
	page, err := obs.Replay(ctx, 0, maxPage)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 2 || page.LastSeq != 2 {
		t.Errorf("observer REPLAY: %d events, last_seq %d; want both creations", len(page.Events), page.LastSeq)
	}
}

func TestCurveAdminMayActForAnyService(t *testing.T) {
	curve := gttest.TempCurve(t)
	keyA := trust(t, curve, "svc-a", gttest.Principal{Service: "svc-a"})
	keyAdmin := trust(t, curve, "ops", gttest.Principal{Service: "ops", Role: "admin"})
	b := gttest.Start(t, curve.Args()...)
	ctx := testCtx(t, 20*time.Second)
	a := dialCurve(t, b, curve, keyA, "")
	la, err := a.CreateLease(ctx, CreateRequest{ObjectID: "/tmp/a", TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	// Without a service id the admin acts as the lease's owner.
	admin := dialCurve(t, b, curve, keyAdmin, "")
	if _, err := admin.RenewLease(ctx, la.ID, 0); err != nil {
		t.Errorf("admin RENEW of svc-a's lease: %v", err)
	}
	if _, err := admin.Stats(ctx); err != nil {
		t.Errorf("admin STATS: %v", err)
	}
	if _, err := admin.ReleaseLease(ctx, la.ID, Retain()); err != nil {
		t.Errorf("admin RELEASE of svc-a's lease: %v", err)
	}
	// Naming a service, it acts for it.
	asB := dialCurve(t, b, curve, keyAdmin, "svc-b")
	lb, err := asB.CreateLease(ctx, CreateRequest{ObjectID: "/tmp/b"})
	if err != nil || lb.ServiceID != "svc-b" {
		t.Fatalf("admin CREATE as svc-b: %+v, %v", lb, err)
	}
}

// replayAll reads the whole history as c may see it, following scanned_seq.
func replayAll(t *testing.T, ctx context.Context, c *Client) []Event {
	t.Helper()
	var out []Event
	after := uint64(0)
	for {
		page, err := c.Replay(ctx, after, 3) // small pages: several rounds
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page.Events...)
		if page.ScannedSeq <= after && page.ScannedSeq < page.LastSeq {
			t.Fatalf("REPLAY after %d did not move on: scanned_seq %d, last_seq %d", after, page.ScannedSeq, page.LastSeq)
		}
		after = page.ScannedSeq
		if after >= page.LastSeq {
			return out
		}
	}
}

// rawSub is a bare SUB socket (no gap filling, no client-side matching):
// what the broker itself sends. With cc nil it is a plaintext socket.
func rawSub(t *testing.T, b *gttest.Broker, curve *gttest.Curve, cc *gttest.ClientCert, prefixes ...string) *zmq.Socket {
	t.Helper()
	sub, err := zmq.NewSocket(zmq.SUB)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Close() })
	sub.SetLinger(0)
	if cc != nil {
		cert, err := LoadCertificate(cc.SecretCert)
		if err != nil {
			t.Fatal(err)
		}
		if err := sub.ClientAuthCurve(curve.ServerKey, cert.PublicKey, cert.SecretKey); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range prefixes {
		if err := sub.SetSubscribe(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := sub.Connect(b.EventsEndpoint); err != nil {
		t.Fatal(err)
	}
	return sub
}

// waitSubscribed creates probe leases with c until sub receives an event
// (a subscription reaches the broker asynchronously), then drains sub.
func waitSubscribed(t *testing.T, ctx context.Context, c *Client, sub *zmq.Socket) {
	t.Helper()
	poller := zmq.NewPoller()
	poller.Add(sub, zmq.POLLIN)
	for {
		if _, err := c.CreateLease(ctx, CreateRequest{ObjectID: "probe"}); err != nil {
			t.Fatal(err)
		}
		if polled, _ := poller.Poll(100 * time.Millisecond); len(polled) > 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the subscriber never received anything")
		}
	}
	for {
		if _, err := sub.RecvMessageBytes(zmq.DONTWAIT); err != nil {
			return
		}
	}
}

// rawNext returns the topic and decoded event of the next message on sub.
func rawNext(t *testing.T, sub *zmq.Socket, d time.Duration) (string, *Event) {
	t.Helper()
	poller := zmq.NewPoller()
	poller.Add(sub, zmq.POLLIN)
	polled, err := poller.Poll(d)
	if err != nil || len(polled) == 0 {
		t.Fatalf("no event within %v (%v)", d, err)
	}
	frames, err := sub.RecvMessageBytes(0)
	if err != nil || len(frames) != 2 {
		t.Fatalf("event: %d frames, %v", len(frames), err)
	}
	ev, err := decodeEvent(frames[1])
	if err != nil {
		t.Fatal(err)
	}
	return string(frames[0]), ev
}

func TestCurveEventsAndReplayFilteredByService(t *testing.T) {
	curve := gttest.TempCurve(t)
	keyA := trust(t, curve, "svc-a", gttest.Principal{Service: "svc-a"})
	keyB := trust(t, curve, "svc-b", gttest.Principal{Service: "svc-b"})
	keyObs := trust(t, curve, "watcher", gttest.Principal{Service: "watcher", Role: "observer"})
	b := gttest.Start(t, curve.Args()...)
	ctx := testCtx(t, 30*time.Second)
	a := dialCurve(t, b, curve, keyA, "")
	bc := dialCurve(t, b, curve, keyB, "")
	obs := dialCurve(t, b, curve, keyObs, "")

	// Bare SUB sockets with A's key: one subscribed to everything, one to
	// B's prefix and A's creations. Wait until both receive A's events
	// (subscriptions are asynchronous) before the scenario starts.
	subAll := rawSub(t, b, curve, keyA, "")
	subB := rawSub(t, b, curve, keyA, ServicePrefix("svc-b"), ServicePrefix("svc-a")+"created.")
	waitSubscribed(t, ctx, a, subAll)
	waitSubscribed(t, ctx, a, subB) // its probes reach subAll too: skipped below

	// SDK subscriptions with A's key: the empty prefix, live and from the
	// start of the history; and one to B's prefix only.
	liveA, err := a.Subscribe(ctx, b.EventsEndpoint, SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	historyA, err := a.Subscribe(ctx, b.EventsEndpoint, SubscribeOptions{FromSeq: ptr(uint64(1))})
	if err != nil {
		t.Fatal(err)
	}
	onlyB, err := a.Subscribe(ctx, b.EventsEndpoint, SubscribeOptions{Topics: []string{ServicePrefix("svc-b")}})
	if err != nil {
		t.Fatal(err)
	}
	everything, err := obs.Subscribe(ctx, b.EventsEndpoint, SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	head, err := obs.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	start := head["last_seq"]

	// Interleaved: A, B, B, A, B ..., ending with A's marker, after which
	// no earlier event can arrive (events come in seq order).
	var wantA []string
	for i := range 4 {
		for j := range 3 {
			if _, err := bc.CreateLease(ctx, CreateRequest{ObjectID: fmt.Sprintf("b-%d-%d", i, j)}); err != nil {
				t.Fatal(err)
			}
		}
		id := fmt.Sprintf("a-%d", i)
		if _, err := a.CreateLease(ctx, CreateRequest{ObjectID: id}); err != nil {
			t.Fatal(err)
		}
		wantA = append(wantA, id)
	}

	check := func(name string, s *Subscription) {
		t.Helper()
		for _, id := range wantA {
			ev := next(t, s, 5*time.Second)
			for ev.Lease.ObjectID == "probe" && ev.Lease.ServiceID == "svc-a" {
				ev = next(t, s, 5*time.Second) // the history's probes
			}
			if ev.Lease.ServiceID != "svc-a" || ev.Lease.ObjectID != id {
				t.Fatalf("%s: got %s of %s (seq %d), want %s of svc-a", name, ev.Lease.ObjectID, ev.Lease.ServiceID, ev.Seq, id)
			}
		}
	}
	check("empty prefix, live", liveA)
	check("empty prefix, from seq 1", historyA)
	for _, name := range []string{"raw SUB, empty prefix", "raw SUB, B's prefix and A's creations"} {
		sub := subAll
		if strings.HasPrefix(name, "raw SUB, B") {
			sub = subB
		}
		for _, id := range wantA {
			topic, ev := rawNext(t, sub, 5*time.Second)
			for ev.Lease.ObjectID == "probe" && ev.Lease.ServiceID == "svc-a" {
				topic, ev = rawNext(t, sub, 5*time.Second) // a late probe
			}
			if !strings.HasPrefix(topic, ServicePrefix("svc-a")) || ev.Lease.ServiceID != "svc-a" || ev.Lease.ObjectID != id {
				t.Fatalf("%s: got %q %s of %s, want %s of svc-a", name, topic, ev.Lease.ObjectID, ev.Lease.ServiceID, id)
			}
		}
	}
	// The observer sees both services: every event after the start.
	for seq := start + 1; seq <= start+16; seq++ {
		if ev := next(t, everything, 5*time.Second); ev.Seq != seq {
			t.Fatalf("observer: got seq %d, want %d", ev.Seq, seq)
		}
	}
	// A's subscription to B's prefix got nothing, though the history was
	// checked (the catch-up REPLAY runs at least once a second).
	catchUp, err := a.Subscribe(ctx, b.EventsEndpoint, SubscribeOptions{Topics: []string{ServicePrefix("svc-b")}, FromSeq: ptr(uint64(1))})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-onlyB.Events():
		t.Errorf("svc-a subscribed to svc-b's prefix got %s of %s", ev.Lease.ObjectID, ev.Lease.ServiceID)
	case ev := <-catchUp.Events():
		t.Errorf("svc-a replaying svc-b's prefix got %s of %s", ev.Lease.ObjectID, ev.Lease.ServiceID)
	case <-time.After(1500 * time.Millisecond):
	}

	// REPLAY as A: only A's events; as the observer: all.
	for _, ev := range replayAll(t, ctx, a) {
		if ev.Lease.ServiceID != "svc-a" {
			t.Errorf("svc-a's REPLAY has seq %d of %s", ev.Seq, ev.Lease.ServiceID)
		}
	}
	all := replayAll(t, ctx, obs)
	if got := all[len(all)-1].Seq; got != start+16 || uint64(len(all)) != got {
		t.Errorf("observer's REPLAY: %d events up to seq %d, want all %d", len(all), got, start+16)
	}
}

func TestCurveCallbackAllowOfPrincipal(t *testing.T) {
	curve := gttest.TempCurve(t)
	key := trust(t, curve, "svc-a", gttest.Principal{Service: "svc-a", CallbackAllow: "http://127.0.0.1:9/hooks/"})
	b := gttest.Start(t, curve.Args()...)
	ctx := testCtx(t, 20*time.Second)
	c := dialCurve(t, b, curve, key, "")
	_, err := c.CreateTempFileLease(ctx, "/tmp/x", time.Minute, "http://127.0.0.1:9/elsewhere/x")
	mustCode(t, err, ErrInvalidArgument, CodeInvalidArgument)
	_, err = c.CreateTempFileLease(ctx, "/tmp/y", time.Minute, "http://127.0.0.1:9/hooksevil")
	mustCode(t, err, ErrInvalidArgument, CodeInvalidArgument)
	l, err := c.CreateTempFileLease(ctx, "/tmp/z", time.Minute, "http://127.0.0.1:9/hooks/z")
	if err != nil {
		t.Fatalf("URL under the principal's prefix: %v", err)
	}
	if _, err := c.ReleaseLease(ctx, l.ID, Retain()); err != nil { // no callback
		t.Fatal(err)
	}
}

func TestNonLoopbackBindWithoutKeysExits2(t *testing.T) {
	bin, err := gttest.FindBroker()
	if err != nil {
		t.Fatal(err)
	}
	// It must exit at once; one that serves is stopped after a few seconds.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--host", "0.0.0.0", "--port", "0", "--events-port", "0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("broker on 0.0.0.0 without keys: %v, want exit status 2\nstderr:\n%s", err, stderr.String())
	}
	for _, want := range []string{"gtctl keygen", "--insecure"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("message does not name %s:\n%s", want, stderr.String())
		}
	}
}
