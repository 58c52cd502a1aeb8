package garbagetruck

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/garbagetruck/garbagetruck/sdk/go/gttest"
)

// stillHeld fails the test if the lease is lost within d.
func stillHeld(t *testing.T, h *Held, d time.Duration) {
	t.Helper()
	select {
	case <-h.Done():
		t.Fatalf("lease lost: %v", h.Err())
	case <-time.After(d): // the point of the test: it survives this long
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
	ctx := testCtx(t, 20*time.Second)

	h, err := c.Hold(ctx, CreateRequest{ObjectID: "/tmp/held", ObjectType: ObjectTypeTemporaryFile, TTL: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	stillHeld(t, h, 1200*time.Millisecond) // 4 TTLs
	got, err := observer.GetLease(ctx, h.ID())
	if err != nil {
		t.Fatal(err)
	}
	if got.State != LeaseActive || got.Renewals < 3 {
		t.Errorf("after 1.2 s: %s with %d renewals", got.State, got.Renewals)
	}
	if h.Lease().Renewals < 3 || h.Err() != nil {
		t.Errorf("held view: %+v, %v", h.Lease(), h.Err())
	}

	// Someone else ends it: Done closes, Err says why.
	if _, err := observer.ReleaseLease(ctx, h.ID()); err != nil {
		t.Fatal(err)
	}
	waitDone(t, h, 2*time.Second)
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
	h, err := c.Hold(ctx, CreateRequest{ObjectID: "blob", TTL: 200 * time.Millisecond})
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
	waitDone(t, h2, time.Second)
	if !errors.Is(h2.Err(), ErrClosed) {
		t.Errorf("after Close: %v", h2.Err())
	}
	if _, err := c.Hold(ctx, CreateRequest{ObjectID: "blob3"}); !errors.Is(err, ErrClosed) {
		t.Errorf("Hold after Close: %v", err)
	}
}

func TestHoldLostWhenBrokerUnreachable(t *testing.T) {
	// Fixed ports, so that no other broker takes them while this one is down.
	ports := freePorts(t, 2)
	b := gttest.Start(t, "--min-lease", "0.05", "--port", ports[0], "--events-port", ports[1])
	c := dial(t, b.Endpoint, "holder")
	ctx := testCtx(t, 20*time.Second)
	h, err := c.Hold(ctx, CreateRequest{ObjectID: "doomed", TTL: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	waitDone(t, h, 3*time.Second)
	if err := h.Err(); !errors.Is(err, ErrLeaseLost) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Err = %v", err)
	}
}

func TestHoldBatchesRenewals(t *testing.T) {
	b := gttest.Start(t, "--min-lease", "0.05")
	c := dial(t, b.Endpoint, "batcher")
	ctx := testCtx(t, 20*time.Second)
	const n = 200
	held := make([]*Held, n)
	for i := range held {
		h, err := c.Hold(ctx, CreateRequest{ObjectID: fmt.Sprint("obj-", i), TTL: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		held[i] = h
	}
	before, err := c.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stillHeld(t, held[0], time.Second)
	after, err := c.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	renewals := after["leases_renewed"] - before["leases_renewed"]
	requests := after["requests"] - before["requests"]
	if renewals < 2*n {
		t.Errorf("%d renewals of %d leases in 1 s", renewals, n)
	}
	if requests*10 > renewals {
		t.Errorf("%d requests for %d renewals: not batched", requests, renewals)
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
