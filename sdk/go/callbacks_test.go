package garbagetruck

import (
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/garbagetruck/garbagetruck/sdk/go/gttest"
)

// TestDeadLetterFieldsVector decodes the dead-letter vector into the typed
// Lease fields and encodes it back byte for byte.
func TestDeadLetterFieldsVector(t *testing.T) {
	v := loadVectors(t)["reply_get_dead_letter.json"]
	want, err := hex.DecodeString(v.Msgpack)
	if err != nil {
		t.Fatal(err)
	}
	r, err := decodeReply(want)
	if err != nil {
		t.Fatal(err)
	}
	l := r.Lease
	if l.CleanupStatus != CleanupDead || l.CleanupAttempts != 4 || l.CleanupError != "HTTP 503" {
		t.Fatalf("cleanup state %q %d %q", l.CleanupStatus, l.CleanupAttempts, l.CleanupError)
	}
	if l.CleanupStatus.String() != "DEAD" {
		t.Errorf("String() = %q", l.CleanupStatus.String())
	}
	got, err := encodeReply(r)
	if err != nil || string(got) != string(want) {
		t.Fatalf("re-encoded %x, %v", got, err)
	}
	// Typed requests: RETRY and the LIST filter
	retry, _ := hex.DecodeString(loadVectors(t)["request_retry.json"].Msgpack)
	got, err = encodeRequest(&request{V: 1, RID: 17, Cmd: cmdRetry, LeaseID: ptr(l.ID)})
	if err != nil || string(got) != string(retry) {
		t.Errorf("RETRY %x, %v", got, err)
	}
	list, _ := hex.DecodeString(loadVectors(t)["request_list_cleanup_status.json"].Msgpack)
	f := ListFilter{State: LeaseExpired, CleanupStatus: CleanupDead, PageSize: 50}
	req := f.request("")
	req.V, req.RID = 1, 16
	got, err = encodeRequest(req)
	if err != nil || string(got) != string(list) {
		t.Errorf("LIST %x, %v", got, err)
	}
}

// endpoint is a cleanup endpoint answering the scripted statuses in order
// (then 200) and recording every request.
type endpoint struct {
	mu       sync.Mutex
	statuses []int
	keys     []string
}

func (e *endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	e.mu.Lock()
	status := http.StatusOK
	if len(e.statuses) > 0 {
		status, e.statuses = e.statuses[0], e.statuses[1:]
	}
	e.keys = append(e.keys, r.Header.Get("Idempotency-Key"))
	e.mu.Unlock()
	w.WriteHeader(status)
}

// TestRetryCleanup: a 404 dead-letters the callback; it is listed by
// CleanupStatus, and RetryCleanup delivers it with the same key.
func TestRetryCleanup(t *testing.T) {
	ep := &endpoint{statuses: []int{http.StatusNotFound}}
	server := httptest.NewServer(ep)
	defer server.Close()
	b := gttest.Start(t, "--min-lease", "0.05", "--cleanup-retry-delay", "0.01")
	c := dial(t, b.Endpoint, "dead-letter-service")
	ctx := testCtx(t, 30*time.Second)

	lease, err := c.CreateLease(ctx, CreateRequest{ObjectID: "row:9", TTL: 30 * time.Second,
		Cleanup: &CleanupConfig{URL: server.URL + "/rows"}})
	if err != nil {
		t.Fatal(err)
	}
	if lease.CleanupStatus != CleanupNone {
		t.Fatalf("new lease has cleanup status %q", lease.CleanupStatus)
	}
	if _, err := c.ReleaseLease(ctx, lease.ID); err != nil {
		t.Fatal(err)
	}
	await := func(status CleanupStatus) *Lease {
		t.Helper()
		for {
			l, err := c.GetLease(ctx, lease.ID)
			if err != nil {
				t.Fatal(err)
			}
			if l.CleanupStatus == status {
				return l
			}
			select {
			case <-ctx.Done():
				t.Fatalf("never %s (now %s)", status, l.CleanupStatus)
			case <-time.After(10 * time.Millisecond): // polling interval
			}
		}
	}
	dead := await(CleanupDead)
	if dead.CleanupAttempts != 1 || dead.CleanupError != "HTTP 404" {
		t.Errorf("dead letter %d %q", dead.CleanupAttempts, dead.CleanupError)
	}
	var listed []string
	for l, err := range c.ListLeases(ctx, ListFilter{CleanupStatus: CleanupDead}) {
		if err != nil {
			t.Fatal(err)
		}
		listed = append(listed, l.ID)
	}
	if len(listed) != 1 || listed[0] != lease.ID {
		t.Errorf("dead letters %v", listed)
	}
	if _, err := c.RetryCleanup(ctx, lease.ID); err != nil {
		t.Fatal(err)
	}
	if l := await(CleanupDelivered); l.CleanupAttempts != 1 || l.CleanupError != "" {
		t.Errorf("delivered %d %q", l.CleanupAttempts, l.CleanupError)
	}
	ep.mu.Lock()
	keys := append([]string(nil), ep.keys...)
	ep.mu.Unlock()
	if len(keys) != 2 || keys[0] != keys[1] || keys[0] == "" {
		t.Errorf("idempotency keys %q", keys)
	}
	_, err = c.RetryCleanup(ctx, lease.ID)
	mustCode(t, err, ErrInvalidArgument, CodeInvalidArgument)
	_, err = c.RetryCleanup(ctx, "0123456789abcdef0123456789abcdef")
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown lease: %v", err)
	}
}
