package garbagetruck

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/garbagetruck/garbagetruck/sdk/go/gttest"
)

// holdTTL is the TTL of held leases: renewals come every ~TTL/3, so a lease
// survives a stall of the keeper (race detector, a loaded machine) of ~1 s.
const holdTTL = 1500 * time.Millisecond

// waitHeldPastTTL polls the broker until it and the holder count at least
// renewals renewals of h and the broker still calls it ACTIVE more than two
// TTLs after heldSince (a time taken after Hold returned). It fails the test
// at once if the lease is lost or not ACTIVE, and after timeout.
func waitHeldPastTTL(t *testing.T, ctx context.Context, observer *Client, h *Held, heldSince time.Time, renewals uint64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-h.Done():
			t.Fatalf("lease lost: %v", h.Err())
		default:
		}
		askedAt := time.Now()
		got, err := observer.GetLease(ctx, h.ID())
		if err != nil {
			t.Fatal(err)
		}
		if got.State != LeaseActive {
			t.Fatalf("lease %s %v after Hold returned", got.State, askedAt.Sub(heldSince))
		}
		if got.Renewals >= renewals && h.Lease().Renewals >= renewals && askedAt.Sub(heldSince) > 2*holdTTL {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("renewals in %v: broker %d, holder %d", timeout, got.Renewals, h.Lease().Renewals)
		}
		time.Sleep(10 * time.Millisecond) // polling with a deadline
	}
}

func waitDone(t *testing.T, h *Held, d time.Duration) {
	t.Helper()
	select {
	case <-h.Done():
	case <-time.After(d):
		t.Fatalf("lease %s still held after %v", h.ID(), d)
	}
}

func TestHoldKeepsShortLeaseAlive(t *testing.T) {
	b := gttest.Start(t, "--min-lease", "0.05")
	c := dial(t, b.Endpoint, "holder")
	observer := dial(t, b.Endpoint, "holder") // same service: may release it
	ctx := testCtx(t, 60*time.Second)

	h, err := c.Hold(ctx, CreateRequest{ObjectID: "/tmp/held", ObjectType: ObjectTypeTemporaryFile, TTL: holdTTL})
	if err != nil {
		t.Fatal(err)
	}
	waitHeldPastTTL(t, ctx, observer, h, time.Now(), 3, 30*time.Second)
	if h.Err() != nil {
		t.Errorf("held view: %+v, %v", h.Lease(), h.Err())
	}

	// Someone else ends it: Done closes, Err says why.
	if _, err := observer.ReleaseLease(ctx, h.ID()); err != nil {
		t.Fatal(err)
	}
	waitDone(t, h, 10*time.Second)
	if err := h.Err(); !errors.Is(err, ErrLeaseLost) || !errors.Is(err, ErrLeaseEnded) {
		t.Errorf("Err = %v", err)
	}
	if err := h.Release(ctx); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("Release after loss = %v", err)
	}
}

func TestHoldRelease(t *testing.T) {
	b := gttest.Start(t, "--min-lease", "0.05")
	c := dial(t, b.Endpoint, "holder")
	ctx := testCtx(t, 20*time.Second)
	h, err := c.Hold(ctx, CreateRequest{ObjectID: "blob", TTL: holdTTL})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Release(ctx, Retain()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-h.Done():
	default:
		t.Fatal("Done not closed after Release")
	}
	if h.Err() != nil || h.Lease().State != LeaseReleased {
		t.Errorf("after release: %v, %+v", h.Err(), h.Lease())
	}
	if err := h.Release(ctx); !errors.Is(err, ErrLeaseEnded) {
		t.Errorf("second release: %v", err)
	}
	// Closing the client ends the holds still running.
	h2, err := c.Hold(ctx, CreateRequest{ObjectID: "blob2", TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	waitDone(t, h2, 5*time.Second)
	if !errors.Is(h2.Err(), ErrClosed) {
		t.Errorf("after Close: %v", h2.Err())
	}
	if _, err := c.Hold(ctx, CreateRequest{ObjectID: "blob3"}); !errors.Is(err, ErrClosed) {
		t.Errorf("Hold after Close: %v", err)
	}
}

func TestHoldLostWhenBrokerUnreachable(t *testing.T) {
	b := gttest.Start(t, "--min-lease", "0.05")
	c := dial(t, b.Endpoint, "holder")
	ctx := testCtx(t, 30*time.Second)
	h, err := c.Hold(ctx, CreateRequest{ObjectID: "doomed", TTL: holdTTL})
	if err != nil {
		t.Fatal(err)
	}
	// Down, its ports held by sockets that never answer: no other broker can
	// take them over and refuse the renewal instead.
	resume, err := b.Outage()
	if err != nil {
		t.Fatal(err)
	}
	waitDone(t, h, 10*time.Second)
	if err := h.Err(); !errors.Is(err, ErrLeaseLost) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Err = %v", err)
	}
	if err := resume(); err != nil {
		t.Fatal(err)
	}
}

func TestHoldBatchesRenewals(t *testing.T) {
	b := gttest.Start(t, "--min-lease", "0.05")
	c := dial(t, b.Endpoint, "batcher")
	ctx := testCtx(t, 60*time.Second)
	const n = 200
	held := make([]*Held, n)
	for i := range held {
		h, err := c.Hold(ctx, CreateRequest{ObjectID: fmt.Sprint("obj-", i), TTL: holdTTL})
		if err != nil {
			t.Fatal(err)
		}
		held[i] = h
	}
	before, err := c.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Poll until the broker has renewed each lease about twice; the renewal
	// request counters leave these STATS calls out.
	renewRequests := func(s Stats) uint64 { return s["requests_renew"] + s["requests_renew_batch"] }
	deadline := time.Now().Add(30 * time.Second)
	var after Stats
	for {
		for _, h := range held {
			if h.Err() != nil {
				t.Fatalf("lost %s: %v", h.ID(), h.Err())
			}
		}
		if after, err = c.Stats(ctx); err != nil {
			t.Fatal(err)
		}
		if after["leases_renewed"]-before["leases_renewed"] >= 2*n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d renewals of %d leases in 30 s", after["leases_renewed"]-before["leases_renewed"], n)
		}
		time.Sleep(10 * time.Millisecond) // polling with a deadline
	}
	renewals := after["leases_renewed"] - before["leases_renewed"]
	requests := renewRequests(after) - renewRequests(before)
	if requests*10 > renewals {
		t.Errorf("%d renewal requests for %d renewals: not batched", requests, renewals)
	}
	for _, h := range held {
		if h.Err() != nil {
			t.Fatalf("lost %s: %v", h.ID(), h.Err())
		}
		if err := h.Release(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// The shared keep-alive schedule (issue 15): TTL/3 give or take 10 %, the
// same in every SDK.
func TestRenewIntervalIsAThirdGiveOrTakeTenPercent(t *testing.T) {
	ttl := 3 * time.Second
	for _, c := range []struct {
		u    float64
		want time.Duration
	}{{0, 900 * time.Millisecond}, {0.5, time.Second}, {1, 1100 * time.Millisecond}} {
		got := jitteredInterval(ttl, c.u)
		if d := got - c.want; d < -time.Microsecond || d > time.Microsecond {
			t.Errorf("jitteredInterval(%v, %v) = %v, want %v", ttl, c.u, got, c.want)
		}
	}
	lo, hi := ttl, time.Duration(0)
	for range 2000 {
		d := renewInterval(ttl)
		lo, hi = min(lo, d), max(hi, d)
	}
	if lo < 900*time.Millisecond || hi > 1100*time.Millisecond || lo > 950*time.Millisecond || hi < 1050*time.Millisecond {
		t.Errorf("renewInterval(%v) over 2000 draws: [%v, %v], want spread over [0.9 s, 1.1 s]", ttl, lo, hi)
	}
	if DefaultTimeout != 5*time.Second || KeepAliveTTLFraction != 1.0/3 || KeepAliveJitter != 0.10 {
		t.Errorf("defaults %v %v %v", DefaultTimeout, KeepAliveTTLFraction, KeepAliveJitter)
	}
}
