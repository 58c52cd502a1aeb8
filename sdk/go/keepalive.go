package garbagetruck

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// Held is a lease kept alive in the background by its Client (see
// Client.Hold). Its methods are safe for concurrent use.
type Held struct {
	c    *Client
	id   string
	ttl  time.Duration
	done chan struct{} // closed when the lease is released or lost

	mu    sync.Mutex
	lease *Lease // latest known state
	err   error  // why holding ended; nil after a clean Release
	ended bool   // done is closed

	// Owned by the keeper, under keeper.mu.
	deadline  time.Time // local estimate of the broker's deadline (conservative)
	nextRenew time.Time // when to renew next
	inFlight  bool      // a renewal is on its way
	lastErr   error     // last renewal failure, for the loss report
}

// keeper renews every held lease of a Client, batching them into RENEW_BATCH
// requests. One goroutine runs the schedule; each batch call runs in its own
// short-lived goroutine so that a slow broker does not delay the schedule.
type keeper struct {
	c       *Client
	mu      sync.Mutex
	held    map[string]*Held // by lease id
	changed chan struct{}    // a lease was added or removed (capacity 1)
	outcome chan batchOutcome
}

// batchOutcome is the result of one RENEW_BATCH call.
type batchOutcome struct {
	leases  []*Held
	sentAt  time.Time
	results []RenewResult
	err     error
}

// Hold creates a lease and keeps it alive in the background until it is
// released with Held.Release, lost, or the Client is closed. ctx bounds the
// creation only. Renewals happen every TTL/3 give or take 10 %
// (KeepAliveTTLFraction, KeepAliveJitter), batched with the client's other
// held leases. They go through the client, so with several brokers they
// follow the owner of the lease's shard through a failover; a renewal that
// keeps failing is retried until the lease's own deadline, after which the
// lease is reported lost.
func (c *Client) Hold(ctx context.Context, req CreateRequest) (*Held, error) {
	sentAt := time.Now()
	lease, err := c.CreateLease(ctx, req)
	if err != nil {
		return nil, err
	}
	if lease.State != LeaseActive {
		// An idempotent repeat of a creation whose lease has ended.
		return nil, &BrokerError{Code: CodeLeaseEnded, Message: "lease " + lease.ID + " is " + string(lease.State)}
	}
	h := &Held{
		c:        c,
		id:       lease.ID,
		ttl:      lease.TTL,
		done:     make(chan struct{}),
		lease:    lease,
		deadline: sentAt.Add(lease.TTL),
	}
	h.nextRenew = sentAt.Add(renewInterval(lease.TTL))
	k := c.startKeeper()
	k.mu.Lock()
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if !closed {
		k.held[h.id] = h
	}
	k.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	k.poke()
	return h, nil
}

// renewInterval is TTL/3 (KeepAliveTTLFraction) give or take 10 %
// (KeepAliveJitter), so that many holders do not renew in lockstep.
func renewInterval(ttl time.Duration) time.Duration {
	return jitteredInterval(ttl, rand.Float64())
}

// jitteredInterval is renewInterval for a draw u in [0, 1): u = 0 gives the
// shortest interval, u = 0.5 a third of the TTL exactly.
func jitteredInterval(ttl time.Duration, u float64) time.Duration {
	return time.Duration(float64(ttl) * KeepAliveTTLFraction * (1 + KeepAliveJitter*(2*u-1)))
}

// retryInterval is how soon a failed renewal is retried.
func retryInterval(ttl time.Duration) time.Duration {
	return max(ttl/10, 10*time.Millisecond)
}

func (c *Client) startKeeper() *keeper {
	c.keeperOnce.Do(func() {
		c.keeper = &keeper{
			c:       c,
			held:    map[string]*Held{},
			changed: make(chan struct{}, 1),
			outcome: make(chan batchOutcome),
		}
		c.wg.Add(1)
		go c.keeper.run()
	})
	return c.keeper
}

func (k *keeper) poke() {
	select {
	case k.changed <- struct{}{}:
	default:
	}
}

func (k *keeper) run() {
	defer k.c.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	inFlight := 0 // batch calls running
	for {
		wait := k.schedule(&inFlight)
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-k.changed:
		case out := <-k.outcome:
			inFlight--
			k.apply(out)
		case <-k.c.closing:
			// Batch calls in flight end with ErrClosed; collect them so
			// that none blocks on the outcome channel.
			for ; inFlight > 0; inFlight-- {
				<-k.outcome
			}
			k.mu.Lock()
			for id, h := range k.held {
				delete(k.held, id)
				h.finish(ErrClosed)
			}
			k.mu.Unlock()
			return
		}
	}
}

// schedule declares lost the leases past their deadline, starts a batch
// renewal of those that are due, and returns how long to wait for the next
// due time.
func (k *keeper) schedule(inFlight *int) time.Duration {
	k.mu.Lock()
	now := time.Now()
	wait := time.Hour
	var due, soon []*Held
	anyDue := false
	for id, h := range k.held {
		if h.inFlight {
			continue
		}
		if !now.Before(h.deadline) {
			delete(k.held, id)
			cause := h.lastErr
			if cause == nil {
				cause = context.DeadlineExceeded
			}
			h.finish(fmt.Errorf("%w: %s not renewed before its deadline: %w", ErrLeaseLost, h.id, cause))
			continue
		}
		if !h.nextRenew.After(now) {
			due = append(due, h)
			anyDue = true
			continue
		}
		// Leases due soon are renewed a little early with the due ones, so
		// that a batch covers a window of time rather than one instant.
		if !h.nextRenew.After(now.Add(h.ttl / 12)) {
			soon = append(soon, h)
		}
		wait = min(wait, h.nextRenew.Sub(now), h.deadline.Sub(now))
	}
	if anyDue {
		due = append(due, soon...)
		for _, h := range due {
			h.inFlight = true
		}
		wait = time.Hour
		for _, h := range k.held {
			if !h.inFlight {
				wait = min(wait, h.nextRenew.Sub(now), h.deadline.Sub(now))
			}
		}
	}
	k.mu.Unlock()
	for start := 0; start < len(due); start += maxBatch {
		batch := due[start:min(start+maxBatch, len(due))]
		*inFlight++
		k.c.wg.Add(1)
		go k.renew(batch, now)
	}
	return max(wait, 0)
}

// renew runs one RENEW_BATCH call. It gives up at the earliest deadline of
// the batch: past it, the lease may be gone anyway.
func (k *keeper) renew(batch []*Held, now time.Time) {
	defer k.c.wg.Done()
	ids := make([]string, len(batch))
	deadline := now.Add(k.c.opts.timeout)
	if k.c.opts.timeout <= 0 {
		deadline = now.Add(DefaultTimeout)
	}
	k.mu.Lock()
	for i, h := range batch {
		ids[i] = h.id
		if h.deadline.Before(deadline) {
			deadline = h.deadline
		}
	}
	k.mu.Unlock()
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	results, err := k.c.RenewLeases(ctx, ids, 0)
	k.outcome <- batchOutcome{leases: batch, sentAt: now, results: results, err: err}
}

// apply records the outcome of a batch renewal.
func (k *keeper) apply(out batchOutcome) {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := time.Now()
	for i, h := range out.leases {
		h.inFlight = false
		if k.held[h.id] != h {
			continue // released (or lost) meanwhile
		}
		err := out.err
		var res RenewResult
		if err == nil {
			res = out.results[i]
			err = res.Err
		}
		switch {
		case err == nil:
			h.deadline = out.sentAt.Add(h.ttl)
			h.nextRenew = out.sentAt.Add(renewInterval(h.ttl))
			h.lastErr = nil
			h.mu.Lock()
			h.lease.ExpiresAt = res.ExpiresAt
			h.lease.RenewedAt = res.ExpiresAt.Add(-h.ttl)
			h.lease.Renewals++
			h.mu.Unlock()
		case isTransient(err) || errors.Is(err, ErrClosed):
			h.lastErr = err
			h.nextRenew = now.Add(retryInterval(h.ttl))
		default:
			// The broker says the lease is gone (LEASE_ENDED, NOT_FOUND,
			// PERMISSION_DENIED) or will never renew it.
			delete(k.held, h.id)
			h.finish(fmt.Errorf("%w: %s: %w", ErrLeaseLost, h.id, err))
		}
	}
}

// finish ends the hold with err (nil for a clean release) and closes Done.
func (h *Held) finish(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ended {
		return
	}
	h.ended = true
	h.err = err
	close(h.done)
}

// ID returns the lease id.
func (h *Held) ID() string { return h.id }

// Lease returns a copy of the latest known state of the lease (ExpiresAt and
// Renewals follow the background renewals).
func (h *Held) Lease() *Lease {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lease.Clone()
}

// Done returns a channel that is closed when the lease is released or lost.
// Nothing needs to read it.
func (h *Held) Done() <-chan struct{} { return h.done }

// Err says why holding ended: nil while the lease is held and after a clean
// Release; an error matching ErrLeaseLost (and the broker's reason, such as
// ErrLeaseEnded) when the lease was lost, including when the broker could
// not be reached before the lease's deadline; ErrClosed when the Client was
// closed.
func (h *Held) Err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

// Release stops renewing the lease and releases it on the broker (Retain
// keeps the object). Done is closed whatever the outcome; Err is nil after a
// successful release, else the returned error. Releasing a lease that was
// lost returns the loss error.
func (h *Held) Release(ctx context.Context, opts ...ReleaseOption) error {
	k := h.c.keeper
	k.mu.Lock()
	holding := k.held[h.id] == h
	delete(k.held, h.id)
	k.mu.Unlock()
	if !holding {
		<-h.done // lost or closed: finish was called before the removal
		if err := h.Err(); err != nil {
			return err
		}
		return fmt.Errorf("%w: %s was already released", ErrLeaseEnded, h.id)
	}
	k.poke()
	lease, err := h.c.ReleaseLease(ctx, h.id, opts...)
	if err == nil {
		h.mu.Lock()
		h.lease = lease
		h.mu.Unlock()
	}
	h.finish(err)
	return err
}
