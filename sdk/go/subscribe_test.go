package garbagetruck

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/garbagetruck/garbagetruck/sdk/go/gttest"
)

// next returns the next event or fails the test after d.
func next(t *testing.T, s *Subscription, d time.Duration) Event {
	t.Helper()
	select {
	case ev, ok := <-s.Events():
		if !ok {
			t.Fatalf("subscription ended: %v", s.Err())
		}
		return ev
	case <-time.After(d):
		t.Fatalf("no event within %v", d)
	}
	panic("unreachable")
}

// closed waits for the Events channel to close.
func closed(t *testing.T, s *Subscription, d time.Duration) {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case _, ok := <-s.Events():
			if !ok {
				return
			}
		case <-timeout:
			t.Fatalf("subscription still open after %v", d)
		}
	}
}

func TestSubscribeLifecycle(t *testing.T) {
	b := gttest.Start(t, "--min-lease", "0.05")
	c := dial(t, b.Endpoint, "upload-service")
	ctx := testCtx(t, 20*time.Second)
	if _, err := c.CreateLease(ctx, CreateRequest{ObjectID: "before"}); err != nil {
		t.Fatal(err)
	}
	subCtx, cancel := context.WithCancel(ctx)
	s, err := c.Subscribe(subCtx, b.EventsEndpoint, SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := c.CreateTempFileLease(ctx, "/tmp/x", time.Minute, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.RenewLease(ctx, l.ID, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReleaseLease(ctx, l.ID); err != nil {
		t.Fatal(err)
	}
	short, err := c.CreateCacheLease(ctx, "k", 60*time.Millisecond, "")
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		kind   EventKind
		topic  string
		reason ReclaimReason
		id     string
	}{
		{EventLeaseCreated, "upload-service\x1fcreated.TEMPORARY_FILE", "", l.ID},
		{EventLeaseRenewed, "upload-service\x1frenewed.TEMPORARY_FILE", "", l.ID},
		{EventLeaseReleased, "upload-service\x1freleased.TEMPORARY_FILE", "", l.ID},
		{EventObjectReclaimed, "upload-service\x1freclaimed.TEMPORARY_FILE", ReasonReleased, l.ID},
		{EventLeaseCreated, "upload-service\x1fcreated.CACHE_ENTRY", "", short.ID},
		{EventLeaseExpired, "upload-service\x1fexpired.CACHE_ENTRY", "", short.ID},
		{EventObjectReclaimed, "upload-service\x1freclaimed.CACHE_ENTRY", ReasonExpired, short.ID},
	}
	var seq uint64 = 1 // "before" was event 1: not delivered
	for _, w := range want {
		ev := next(t, s, 5*time.Second)
		seq++
		if ev.Seq != seq || ev.Kind != w.kind || ev.Topic() != w.topic || ev.Reason != w.reason || ev.Lease.ID != w.id {
			t.Errorf("got #%d %s %s %q %s, want #%d %s %s %q %s", ev.Seq, ev.Kind, ev.Topic(), ev.Reason, ev.Lease.ID,
				seq, w.kind, w.topic, w.reason, w.id)
		}
	}
	cancel()
	closed(t, s, 2*time.Second)
	if s.Err() != nil {
		t.Errorf("Err after cancel = %v", s.Err())
	}
}

func TestSubscribeTopicsAndGapFilling(t *testing.T) {
	b := gttest.Start(t)
	c := dial(t, b.Endpoint, "svc")
	ctx := testCtx(t, 30*time.Second)
	// Lose every live event whose seq is a multiple of 3 (fault injection:
	// as if ZeroMQ had dropped it); the gaps must be filled from REPLAY.
	lose := func(seq uint64) bool { return seq%3 == 0 }
	s, err := c.Subscribe(ctx, b.EventsEndpoint, SubscribeOptions{Topics: []string{ServicePrefix("svc") + "released.TEMPORARY_FILE"}, dropLive: lose})
	if err != nil {
		t.Fatal(err)
	}
	all, err := c.Subscribe(ctx, b.EventsEndpoint, SubscribeOptions{dropLive: lose})
	if err != nil {
		t.Fatal(err)
	}

	var tempIDs []string
	for i := range 10 {
		tl, err := c.CreateTempFileLease(ctx, fmt.Sprint("/tmp/", i), time.Minute, "")
		if err != nil {
			t.Fatal(err)
		}
		rl, err := c.CreateDBRowLease(ctx, "t", fmt.Sprint(i), time.Minute, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{tl.ID, rl.ID} {
			if _, err := c.ReleaseLease(ctx, id, Retain()); err != nil {
				t.Fatal(err)
			}
		}
		tempIDs = append(tempIDs, tl.ID)
	}
	// The filtered subscription sees exactly the temp-file releases, in order.
	for i, id := range tempIDs {
		ev := next(t, s, 5*time.Second)
		if ev.Kind != EventLeaseReleased || ev.Lease.ID != id {
			t.Fatalf("filtered event %d: %s %s, want released %s", i, ev.Kind, ev.Lease.ID, id)
		}
	}
	// The unfiltered one sees every event once, without gaps.
	for seq := uint64(1); seq <= 40; seq++ {
		ev := next(t, all, 5*time.Second)
		if ev.Seq != seq {
			t.Fatalf("got seq %d, want %d", ev.Seq, seq)
		}
	}
	select {
	case ev := <-all.Events():
		t.Fatalf("extra event %+v", ev)
	case ev := <-s.Events():
		t.Fatalf("extra filtered event %+v", ev)
	default:
	}
}

func TestSubscribeFromSeq(t *testing.T) {
	b := gttest.Start(t)
	c := dial(t, b.Endpoint, "svc")
	ctx := testCtx(t, 30*time.Second)
	for i := range 5 {
		if _, err := c.CreateLease(ctx, CreateRequest{ObjectID: fmt.Sprint("o", i)}); err != nil {
			t.Fatal(err)
		}
	}
	from := uint64(2)
	s, err := c.Subscribe(ctx, b.EventsEndpoint, SubscribeOptions{FromSeq: &from})
	if err != nil {
		t.Fatal(err)
	}
	// History 2..5 first, then live 6..8, each once.
	go func() {
		for i := range 3 {
			c.CreateLease(ctx, CreateRequest{ObjectID: fmt.Sprint("live", i)})
		}
	}()
	for seq := uint64(2); seq <= 8; seq++ {
		ev := next(t, s, 5*time.Second)
		if ev.Seq != seq || ev.Kind != EventLeaseCreated {
			t.Fatalf("got %d %s, want %d", ev.Seq, ev.Kind, seq)
		}
	}
}

func TestSubscribeTooOld(t *testing.T) {
	b := gttest.Start(t, "--event-history", "5")
	c := dial(t, b.Endpoint, "svc")
	ctx := testCtx(t, 20*time.Second)
	for i := range 12 {
		if _, err := c.CreateLease(ctx, CreateRequest{ObjectID: fmt.Sprint("o", i)}); err != nil {
			t.Fatal(err)
		}
	}
	from := uint64(1)
	s, err := c.Subscribe(ctx, b.EventsEndpoint, SubscribeOptions{FromSeq: &from})
	if err != nil {
		t.Fatal(err)
	}
	closed(t, s, 5*time.Second)
	if !errors.Is(s.Err(), ErrTooOld) {
		t.Fatalf("Err = %v, want ErrTooOld", s.Err())
	}
	// From inside the retained history it works.
	from = 9
	s, err = c.Subscribe(ctx, b.EventsEndpoint, SubscribeOptions{FromSeq: &from})
	if err != nil {
		t.Fatal(err)
	}
	if ev := next(t, s, 5*time.Second); ev.Seq != 9 {
		t.Fatalf("got %d", ev.Seq)
	}
}

func TestSubscribeEndsOnClientClose(t *testing.T) {
	b := gttest.Start(t)
	c := dial(t, b.Endpoint, "svc")
	s, err := c.Subscribe(context.Background(), b.EventsEndpoint, SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	closed(t, s, 2*time.Second)
	if !errors.Is(s.Err(), ErrClosed) {
		t.Errorf("Err = %v", s.Err())
	}
}
