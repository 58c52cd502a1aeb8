package garbagetruck

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/garbagetruck/garbagetruck/sdk/go/gttest"
)

// These tests run against the real broker binary (see gttest for how it is
// found).

func dial(t *testing.T, endpoint, service string, opts ...Option) *Client {
	t.Helper()
	c, err := Dial(context.Background(), endpoint, service, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func mustCode(t *testing.T, err error, sentinel error, code Code) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("err = %v, want %s", err, code)
	}
	var be *BrokerError
	if !errors.As(err, &be) || be.Code != code || be.Message == "" {
		t.Fatalf("err = %#v, want a *BrokerError %s with a message", err, code)
	}
}

func TestCommands(t *testing.T) {
	b := gttest.Start(t, "--min-lease", "0.05")
	c := dial(t, b.Endpoint, "upload-service")
	ctx := testCtx(t, 20*time.Second)

	before := time.Now().Add(-time.Second)
	lease, err := c.CreateLease(ctx, CreateRequest{
		ObjectID:   "/tmp/upload-1.jpg",
		ObjectType: ObjectTypeTemporaryFile,
		TTL:        30 * time.Second,
		Metadata:   map[string]string{"path": "/tmp/upload-1.jpg", "Region": "eu"},
		Cleanup: &CleanupConfig{URL: "http://127.0.0.1:9/cleanup", Payload: "rm",
			MaxRetries: ptr(2), RetryDelay: ptr(1500 * time.Millisecond)},
		IdempotencyKey: "upload-1",
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(lease.ID) != 32 || strings.Trim(lease.ID, "0123456789abcdef") != "" {
		t.Errorf("lease id %q", lease.ID)
	}
	if lease.ObjectID != "/tmp/upload-1.jpg" || lease.ObjectType != ObjectTypeTemporaryFile ||
		lease.ServiceID != "upload-service" || lease.State != LeaseActive || lease.Fence < 1 ||
		lease.TTL != 30*time.Second || lease.Renewals != 0 || lease.Metadata["Region"] != "eu" {
		t.Errorf("created %+v", lease)
	}
	if lease.CreatedAt.Before(before) || !lease.RenewedAt.Equal(lease.CreatedAt) ||
		!lease.ExpiresAt.Equal(lease.CreatedAt.Add(30*time.Second)) {
		t.Errorf("times: created %v renewed %v expires %v", lease.CreatedAt, lease.RenewedAt, lease.ExpiresAt)
	}
	if cl := lease.Cleanup; cl == nil || cl.URL != "http://127.0.0.1:9/cleanup" || cl.Payload != "rm" ||
		cl.MaxRetries == nil || *cl.MaxRetries != 2 || cl.RetryDelay == nil || *cl.RetryDelay != 1500*time.Millisecond {
		t.Errorf("cleanup %+v", lease.Cleanup)
	}

	// CREATE with the same idempotency key returns the same lease.
	again, err := c.CreateLease(ctx, CreateRequest{ObjectID: "/tmp/upload-1.jpg", IdempotencyKey: "upload-1"})
	if err != nil || again.ID != lease.ID {
		t.Fatalf("idempotent create: %v, %v", again, err)
	}

	got, err := c.GetLease(ctx, lease.ID)
	if err != nil || got.ID != lease.ID || got.Metadata["path"] != "/tmp/upload-1.jpg" {
		t.Fatalf("get: %+v, %v", got, err)
	}

	renewed, err := c.RenewLease(ctx, lease.ID, 45*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if renewed.Renewals != 1 || renewed.TTL != 45*time.Second || !renewed.ExpiresAt.Equal(renewed.RenewedAt.Add(45*time.Second)) {
		t.Errorf("renewed %+v", renewed)
	}
	renewed, err = c.RenewLease(ctx, lease.ID, 0) // the lease's own TTL, now 45 s
	if err != nil || renewed.Renewals != 2 || renewed.TTL != 45*time.Second {
		t.Fatalf("renew without ttl: %+v, %v", renewed, err)
	}

	// RENEW_BATCH: per-lease outcomes.
	other, err := c.CreateDBRowLease(ctx, "carts", "42", time.Minute, "")
	if err != nil {
		t.Fatal(err)
	}
	ended, err := c.CreateCacheLease(ctx, "user:7:profile", time.Minute, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReleaseLease(ctx, ended.ID); err != nil {
		t.Fatal(err)
	}
	unknown := strings.Repeat("0", 32)
	results, err := c.RenewLeases(ctx, []string{lease.ID, other.ID, ended.ID, unknown}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 4 {
		t.Fatalf("results %+v", results)
	}
	for i, want := range []error{nil, nil, ErrLeaseEnded, ErrNotFound} {
		r := results[i]
		if want == nil && (r.Err != nil || r.ExpiresAt.IsZero()) || want != nil && !errors.Is(r.Err, want) {
			t.Errorf("result %d: %+v, want %v", i, r, want)
		}
	}
	if results[1].LeaseID != other.ID || !results[1].ExpiresAt.After(other.ExpiresAt) && !results[1].ExpiresAt.Equal(other.ExpiresAt) {
		t.Errorf("batch result %+v for %+v", results[1], other)
	}
	if none, err := c.RenewLeases(ctx, nil, 0); err != nil || len(none) != 0 {
		t.Errorf("empty batch: %v, %v", none, err)
	}

	released, err := c.ReleaseLease(ctx, lease.ID)
	if err != nil || released.State != LeaseReleased {
		t.Fatalf("release: %+v, %v", released, err)
	}
	_, err = c.ReleaseLease(ctx, lease.ID)
	mustCode(t, err, ErrLeaseEnded, CodeLeaseEnded)
	retained, err := c.ReleaseLease(ctx, other.ID, Retain())
	if err != nil || retained.State != LeaseReleased {
		t.Fatalf("release with retain: %+v, %v", retained, err)
	}
	_, err = c.GetLease(ctx, unknown)
	mustCode(t, err, ErrNotFound, CodeNotFound)

	health, err := c.Health(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if health.Status != "SERVING" || health.Store != "memory" || health.StoreStatus != "OK" ||
		health.Version == "" || health.Now.Before(before) || health.ActiveLeases != 0 {
		t.Errorf("health %+v", health)
	}
	stats, err := c.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"active_leases", "active_objects", "leases_created", "leases_renewed",
		"leases_released", "leases_expired", "objects_reclaimed", "events_published", "last_seq",
		"requests", "errors", "replies_dropped"} {
		if _, ok := stats[name]; !ok {
			t.Errorf("stats lack %s: %v", name, stats)
		}
	}
	if stats["leases_created"] != 3 || stats["leases_released"] != 3 {
		t.Errorf("stats %v", stats)
	}

	page, err := c.Replay(ctx, 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 2 || page.Events[0].Seq != 1 || page.Events[0].Kind != EventLeaseCreated ||
		page.Events[0].Lease.ID != lease.ID || page.LastSeq != stats["last_seq"] {
		t.Errorf("replay %+v", page)
	}
}

func TestListLeases(t *testing.T) {
	b := gttest.Start(t)
	c := dial(t, b.Endpoint, "svc-a")
	cb := dial(t, b.Endpoint, "svc-b")
	ctx := testCtx(t, 20*time.Second)
	var ids []string
	for i := range 7 {
		l, err := c.CreateTempFileLease(ctx, fmt.Sprintf("/tmp/f%d", i), time.Minute, "")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, l.ID)
	}
	if _, err := cb.CreateBlobLease(ctx, "bucket", "key", time.Minute, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReleaseLease(ctx, ids[6]); err != nil {
		t.Fatal(err)
	}
	var listed []string
	for l, err := range c.ListLeases(ctx, ListFilter{ServiceID: "svc-a", State: LeaseActive, PageSize: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		listed = append(listed, l.ID)
	}
	if strings.Join(listed, ",") != strings.Join(ids[:6], ",") {
		t.Errorf("listed %v, want %v (oldest first)", listed, ids[:6])
	}
	// Stopping early, other filters, raw pages.
	n := 0
	for range c.ListLeases(ctx, ListFilter{}) {
		n++
		if n == 3 {
			break
		}
	}
	all := 0
	for _, err := range c.ListLeases(ctx, ListFilter{}) {
		if err != nil {
			t.Fatal(err)
		}
		all++
	}
	if n != 3 || all != 8 {
		t.Errorf("break after %d, all %d", n, all)
	}
	leases, cursor, err := c.ListPage(ctx, ListFilter{ObjectType: ObjectTypeBlobStorage}, "")
	if err != nil || len(leases) != 1 || leases[0].ObjectID != "bucket/key" || cursor != "" {
		t.Errorf("blob page %v %q %v", leases, cursor, err)
	}
	leases, _, err = c.ListPage(ctx, ListFilter{ObjectID: "/tmp/f6"}, "")
	if err != nil || len(leases) != 1 || leases[0].State != LeaseReleased {
		t.Errorf("object page %v %v", leases, err)
	}
	for _, err := range c.ListLeases(ctx, ListFilter{PageSize: 5000}) {
		mustCode(t, err, ErrInvalidArgument, CodeInvalidArgument)
	}
	_, _, err = c.ListPage(ctx, ListFilter{}, "not-a-cursor")
	mustCode(t, err, ErrInvalidArgument, CodeInvalidArgument)
}

func TestConvenienceConventions(t *testing.T) {
	b := gttest.Start(t)
	c := dial(t, b.Endpoint, "conv")
	ctx := testCtx(t, 10*time.Second)
	check := func(l *Lease, err error, id string, typ ObjectType, meta map[string]string) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if l.ObjectID != id || l.ObjectType != typ || fmt.Sprint(l.Metadata) != fmt.Sprint(meta) {
			t.Errorf("got %s %s %v, want %s %s %v", l.ObjectID, l.ObjectType, l.Metadata, id, typ, meta)
		}
	}
	l, err := c.CreateTempFileLease(ctx, "/tmp/a.jpg", time.Minute, "http://127.0.0.1:9/rm")
	check(l, err, "/tmp/a.jpg", ObjectTypeTemporaryFile, map[string]string{"path": "/tmp/a.jpg"})
	if l.Cleanup == nil || l.Cleanup.URL != "http://127.0.0.1:9/rm" {
		t.Errorf("cleanup %+v", l.Cleanup)
	}
	l, err = c.CreateDBRowLease(ctx, "user_sessions", "s-9", time.Minute, "")
	check(l, err, "user_sessions:s-9", ObjectTypeDatabaseRow, map[string]string{"table": "user_sessions", "row_id": "s-9"})
	if l.Cleanup != nil {
		t.Errorf("no cleanup url, but cleanup %+v", l.Cleanup)
	}
	l, err = c.CreateBlobLease(ctx, "temp-uploads", "a/b.png", time.Minute, "")
	check(l, err, "temp-uploads/a/b.png", ObjectTypeBlobStorage, map[string]string{"bucket": "temp-uploads", "key": "a/b.png"})
	l, err = c.CreateSessionLease(ctx, "sess-1", "user-1", time.Minute, "")
	check(l, err, "sess-1", ObjectTypeWebSocketSession, map[string]string{"user_id": "user-1"})
	l, err = c.CreateCacheLease(ctx, "cache:k", time.Minute, "")
	check(l, err, "cache:k", ObjectTypeCacheEntry, map[string]string{})
}

func TestErrorCodes(t *testing.T) {
	b := gttest.Start(t, "--min-lease", "0.05", "--max-lease", "60", "--default-lease", "30", "--max-leases-per-service", "3",
		"--event-history", "5")
	c := dial(t, b.Endpoint, "owner")
	intruder := dial(t, b.Endpoint, "intruder")
	ctx := testCtx(t, 20*time.Second)

	// INVALID_ARGUMENT: ttl out of bounds, bad lease id, bad cleanup url.
	_, err := c.CreateLease(ctx, CreateRequest{ObjectID: "o", TTL: 10 * time.Millisecond})
	mustCode(t, err, ErrInvalidArgument, CodeInvalidArgument)
	_, err = c.CreateLease(ctx, CreateRequest{ObjectID: "o", TTL: 61 * time.Second})
	mustCode(t, err, ErrInvalidArgument, CodeInvalidArgument)
	_, err = c.GetLease(ctx, "NOT-HEX")
	mustCode(t, err, ErrInvalidArgument, CodeInvalidArgument)
	_, err = c.CreateLease(ctx, CreateRequest{ObjectID: "o", Cleanup: &CleanupConfig{URL: "ftp://x"}})
	mustCode(t, err, ErrInvalidArgument, CodeInvalidArgument)

	l1, err := c.CreateLease(ctx, CreateRequest{ObjectID: "obj-1", TTL: time.Minute, IdempotencyKey: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	// CONFLICT: the key again, another object.
	_, err = c.CreateLease(ctx, CreateRequest{ObjectID: "obj-2", IdempotencyKey: "k1"})
	mustCode(t, err, ErrConflict, CodeConflict)
	// PERMISSION_DENIED: another service renews or releases it.
	_, err = intruder.RenewLease(ctx, l1.ID, 0)
	mustCode(t, err, ErrPermissionDenied, CodePermissionDenied)
	_, err = intruder.ReleaseLease(ctx, l1.ID)
	mustCode(t, err, ErrPermissionDenied, CodePermissionDenied)
	// QUOTA_EXCEEDED: the fourth active lease.
	for i := range 2 {
		if _, err := c.CreateLease(ctx, CreateRequest{ObjectID: fmt.Sprint("q", i), TTL: time.Minute}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = c.CreateLease(ctx, CreateRequest{ObjectID: "q-too-many", TTL: time.Minute})
	mustCode(t, err, ErrQuotaExceeded, CodeQuotaExceeded)
	var be *BrokerError
	if errors.As(err, &be); !be.Temporary() {
		t.Error("QUOTA_EXCEEDED should be temporary")
	}
	// LEASE_ENDED and NOT_FOUND.
	if _, err := c.ReleaseLease(ctx, l1.ID); err != nil {
		t.Fatal(err)
	}
	_, err = c.RenewLease(ctx, l1.ID, 0)
	mustCode(t, err, ErrLeaseEnded, CodeLeaseEnded)
	_, err = c.RenewLease(ctx, strings.Repeat("f", 32), 0)
	mustCode(t, err, ErrNotFound, CodeNotFound)
	// TOO_OLD: 5 events retained, 6+ published.
	for i := range 3 {
		if _, err := intruder.CreateLease(ctx, CreateRequest{ObjectID: fmt.Sprint("h", i), TTL: time.Minute}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = c.Replay(ctx, 0, 10)
	mustCode(t, err, ErrTooOld, CodeTooOld)
	// UNSUPPORTED_VERSION and UNSUPPORTED_COMMAND: not expressible through
	// the typed API, so sent raw.
	_, err = c.call(ctx, &request{V: 2, Cmd: cmdHealth})
	mustCode(t, err, ErrUnsupportedVersion, CodeUnsupportedVersion)
	if errors.As(err, &be); len(be.Versions) == 0 || be.Versions[0] != 1 {
		t.Errorf("versions %v", be.Versions)
	}
	_, err = c.call(ctx, &request{Cmd: "FROBNICATE"})
	mustCode(t, err, ErrUnsupportedCommand, CodeUnsupportedCommand)
}

func TestManyGoroutinesShareOneClient(t *testing.T) {
	b := gttest.Start(t)
	c := dial(t, b.Endpoint, "crowd")
	ctx := testCtx(t, 60*time.Second)
	const n = 1000
	var wg sync.WaitGroup
	ids := make([]string, n)
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := c.CreateLease(ctx, CreateRequest{ObjectID: fmt.Sprintf("obj-%d", i), TTL: time.Minute})
			if err != nil {
				errs <- err
				return
			}
			if l.ObjectID != fmt.Sprintf("obj-%d", i) {
				errs <- fmt.Errorf("goroutine %d got the reply for %s", i, l.ObjectID)
				return
			}
			if _, err := c.RenewLease(ctx, l.ID, 0); err != nil {
				errs <- err
				return
			}
			r, err := c.ReleaseLease(ctx, l.ID)
			if err != nil {
				errs <- err
				return
			}
			if r.ID != l.ID || r.State != LeaseReleased {
				errs <- fmt.Errorf("goroutine %d: release returned %s %s", i, r.ID, r.State)
				return
			}
			ids[i] = l.ID
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Fatalf("duplicate lease id %s", id)
		}
		seen[id] = true
	}
	stats, err := c.Stats(ctx)
	if err != nil || stats["leases_created"] != n || stats["leases_released"] != n || stats["leases_renewed"] != n {
		t.Errorf("stats %v, %v", stats, err)
	}
}

func TestDeadlineWithoutBroker(t *testing.T) {
	// A port held by a socket that never answers: no broker can appear on it.
	c := dial(t, gttest.SilentEndpoint(t), "lonely", WithTimeout(200*time.Millisecond))
	start := time.Now()
	_, err := c.Health(context.Background()) // the client's default timeout
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("default timeout took %v", d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := c.GetLease(ctx, strings.Repeat("a", 32)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := c.CreateLease(ctx, CreateRequest{ObjectID: "x"})
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

func TestReconnectAfterBrokerRestart(t *testing.T) {
	b := gttest.Start(t) // the kernel's ports, kept across the restart
	c := dial(t, b.Endpoint, "phoenix")
	ctx := testCtx(t, 30*time.Second)
	before, err := c.CreateLease(ctx, CreateRequest{ObjectID: "before-restart", TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	// Down, its ports held by sockets that never answer: no other broker can
	// take them meanwhile.
	resume, err := b.Outage()
	if err != nil {
		t.Fatal(err)
	}
	// A call while the broker is down fails with its deadline.
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = c.CreateLease(short, CreateRequest{ObjectID: "during-outage"})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if err := resume(); err != nil {
		t.Fatal(err)
	}
	// The client reconnects by itself; the next call waits for it.
	l, err := c.CreateLease(ctx, CreateRequest{ObjectID: "after-restart", TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	// The restarted broker answers, with fresh state (memory store).
	if _, err := c.GetLease(ctx, before.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("lease from before the restart: %v", err)
	}
	// The cancelled CREATE was never sent: only the new lease exists.
	n := 0
	for l2, err := range c.ListLeases(ctx, ListFilter{}) {
		if err != nil {
			t.Fatal(err)
		}
		if l2.ID != l.ID {
			t.Errorf("unexpected lease %+v", l2)
		}
		n++
	}
	if n != 1 {
		t.Errorf("%d leases after restart", n)
	}
}

func TestClose(t *testing.T) {
	c := dial(t, gttest.SilentEndpoint(t), "closing", WithTimeout(0))
	done := make(chan error)
	go func() {
		_, err := c.Health(context.Background()) // no deadline: only Close ends it
		done <- err
	}()
	// Wait until the call is registered, then close.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c.mu.Lock()
		n := len(c.pending)
		c.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("call never registered")
		}
		time.Sleep(time.Millisecond) // polling with a deadline
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("in-flight call: %v", err)
	}
	if _, err := c.Health(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("call after close: %v", err)
	}
	c.Close() // twice is fine
	if _, err := Dial(context.Background(), "tcp://127.0.0.1:1", ""); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("empty service id: %v", err)
	}
	if _, err := Dial(context.Background(), "nonsense", "svc"); err == nil {
		t.Error("bad endpoint accepted")
	}
}
