package garbagetruck

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Client routing over several brokers (docs/CLUSTER.md, "Client routing:
// what the three SDKs and gtctl do (one contract)"; GTLP.md §14.3). With one
// endpoint and no redirect, a call is one attempt with the whole timeout, as
// it always was. Otherwise ("routed") the client keeps the cluster's shard
// map, sends each request to the owner of its shard, waits at most
// attemptTimeout per attempt and retries as the contract says.

const (
	attemptTimeout = time.Second            // per attempt, when routed (and per MAP asked)
	maxRedirects   = 5                      // MOVED followed for one call
	firstBackoff   = 100 * time.Millisecond // first wait before a retry without retry_ms
	maxBackoff     = time.Second            // the waits double up to this
	asyncMapWait   = 5 * time.Second        // bound of a map refresh nobody waits for
)

// router is a Client's view of the cluster.
type router struct {
	mu           sync.Mutex
	seeds        []string  // the endpoints given to Dial
	redirected   bool      // a broker answered MOVED or TRY_AGAIN: route even with one seed
	smap         *ShardMap // nil until a MAP was answered
	owners       [ShardCount]string
	gen          uint64 // counts installed maps
	lastAnswered string // endpoint of the last reply
	failed       map[string]time.Time

	refreshing     chan struct{} // closed when the refresh under way ends; nil: none
	refreshStarted time.Time     // start of the last refresh
}

func (r *router) init(seeds []string) {
	r.seeds = seeds
	r.failed = map[string]time.Time{}
}

// routing reports whether calls are routed: several endpoints, or a redirect.
func (c *Client) routing() bool {
	c.rt.mu.Lock()
	defer c.rt.mu.Unlock()
	return len(c.rt.seeds) > 1 || c.rt.redirected
}

func (r *router) setRedirected() {
	r.mu.Lock()
	r.redirected = true
	r.mu.Unlock()
}

func (r *router) noteAnswered(ep string) {
	r.mu.Lock()
	r.lastAnswered = ep
	delete(r.failed, ep)
	r.mu.Unlock()
}

func (r *router) noteFailed(ep string) {
	r.mu.Lock()
	r.failed[ep] = time.Now()
	r.mu.Unlock()
}

// route returns the endpoint for a request of shard: its owner in the map;
// with no owner known, the endpoint that last answered, else the first one.
func (r *router) route(shard int) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if shard >= 0 && shard < ShardCount && r.owners[shard] != "" {
		return r.owners[shard]
	}
	if r.lastAnswered != "" {
		return r.lastAnswered
	}
	return r.seeds[0]
}

// install makes m the current map.
func (r *router) install(m *ShardMap) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.smap = m
	r.owners = [ShardCount]string{}
	for _, b := range m.Brokers {
		for _, sh := range b.Shards {
			if sh >= 0 && sh < ShardCount {
				r.owners[sh] = b.Endpoint
			}
		}
	}
	r.gen++
}

// current returns the map (nil if none yet) and its generation.
func (r *router) current() (*ShardMap, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.smap, r.gen
}

// candidates lists the endpoints to ask for the map, in turn: the given
// ones, then those the map names; the endpoint that last answered first,
// those that failed lately last.
func (r *router) candidates() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var all []string
	add := func(ep string) {
		if ep != "" && !slices.Contains(all, ep) {
			all = append(all, ep)
		}
	}
	add(r.lastAnswered)
	for _, ep := range r.seeds {
		add(ep)
	}
	if r.smap != nil {
		for _, b := range r.smap.Brokers {
			add(b.Endpoint)
		}
	}
	var ok, bad []string
	for _, ep := range all {
		if _, failed := r.failed[ep]; failed {
			bad = append(bad, ep)
		} else {
			ok = append(ok, ep)
		}
	}
	return append(ok, bad...)
}

// requestShard returns the shard a request is routed by: CREATE the shard
// of its object, a lease id its first byte, REPLAY its shard, RENEW_BATCH
// its first lease's; anything else shard 0.
func requestShard(req *request) int {
	switch {
	case req.Cmd == cmdCreate && req.ObjectID != nil:
		return ShardOf(*req.ObjectID)
	case req.LeaseID != nil:
		if sh, err := LeaseIDShard(*req.LeaseID); err == nil {
			return sh
		}
	case req.Cmd == cmdReplay && req.Shard != nil:
		return int(min(*req.Shard, maxShard))
	case req.Cmd == cmdRenewBatch && len(req.LeaseIDs) > 0:
		if sh, err := LeaseIDShard(req.LeaseIDs[0]); err == nil {
			return sh
		}
	}
	return 0
}

// safeToRepeat reports whether a request may be sent again after an attempt
// that got no reply: it changes nothing, or repeating it changes nothing
// more (GTLP.md §11, §14.3).
func safeToRepeat(req *request) bool {
	switch req.Cmd {
	case cmdGet, cmdList, cmdRenew, cmdRenewBatch, cmdReplay, cmdMap, cmdHealth, cmdStats, cmdRelease:
		return true
	case cmdCreate:
		return req.IdempotencyKey != nil
	}
	return false
}

// newIdempotencyKey returns 128 random bits in hex (32 characters); "" in
// the unlikely case the system has no randomness to give.
func newIdempotencyKey() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return ""
	}
	return hex.EncodeToString(b[:])
}

// call sends a request and waits for its reply. The reply's code is checked:
// an error reply becomes a *BrokerError.
func (c *Client) call(ctx context.Context, req *request) (*reply, error) {
	rep, _, err := c.callTo(ctx, req, "")
	return rep, err
}

// callTo runs a call: to pin if set (LIST of one broker), else routed by the
// request's shard. repeated reports that an earlier attempt went out and got
// no reply, so that it may have been applied.
func (c *Client) callTo(ctx context.Context, req *request, pin string) (rep *reply, repeated bool, err error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	start := time.Now()
	shard := requestShard(req)
	var (
		redirects int
		backoff   time.Duration
		movedTo   string
		lastErr   error
	)
	for first := true; ; first = false {
		routing := c.routing()
		ep := movedTo
		movedTo = ""
		if ep == "" {
			ep = pin
		}
		if ep == "" {
			if routing && first {
				c.ensureMap(ctx, start)
			}
			ep = c.rt.route(shard)
		}
		up := c.upSignal()
		attemptStart := time.Now()
		actx, acancel := ctx, context.CancelFunc(func() {})
		if routing {
			actx, acancel = context.WithTimeout(ctx, attemptTimeout)
		}
		body, sent, err := c.attempt(actx, ep, req, routing)
		acancel()
		if err != nil {
			if errors.Is(err, ErrClosed) || !routing {
				return nil, repeated, err
			}
			if ctx.Err() != nil {
				return nil, repeated, c.endErr(ctx, req, err)
			}
			c.rt.noteFailed(ep)
			if sent {
				if !safeToRepeat(req) {
					return nil, repeated, fmt.Errorf("garbagetruck: %s to %s: no reply, and it is not safe to send again: %w",
						req.Cmd, ep, err)
				}
				repeated = true
			}
			lastErr = err
			if err := c.pause(ctx, nextBackoff(&backoff, 0), up); err != nil {
				return nil, repeated, c.endErr(ctx, req, lastErr)
			}
			c.refreshMap(ctx, attemptStart)
			continue
		}
		rep, err := decodeReply(body)
		if err != nil {
			return nil, repeated, fmt.Errorf("garbagetruck: %s reply: %w", req.Cmd, err)
		}
		c.rt.noteAnswered(ep)
		switch rep.Code {
		case CodeOK:
			return rep, repeated, nil
		case CodeMoved:
			be := rep.brokerError()
			c.rt.setRedirected()
			redirects++
			if redirects > maxRedirects || be.Owner == "" {
				return nil, repeated, be
			}
			movedTo = be.Owner // at once, and the map is refreshed meanwhile
			c.refreshAsync(attemptStart)
			continue
		case CodeTryAgain, CodeUnavailable:
			be := rep.brokerError()
			if rep.Code == CodeTryAgain {
				c.rt.setRedirected()
			} else if !routing {
				return nil, repeated, be
			}
			lastErr = be
			if err := c.pause(ctx, nextBackoff(&backoff, be.RetryAfter), nil); err != nil {
				if errors.Is(err, ErrClosed) {
					return nil, repeated, err
				}
				return nil, repeated, be
			}
			c.refreshMap(ctx, attemptStart)
			continue
		}
		return nil, repeated, rep.brokerError()
	}
}

// endErr is the error of a routed call whose time ran out: the broker's
// last answer if it was one (TRY_AGAIN, UNAVAILABLE), else the deadline.
func (c *Client) endErr(ctx context.Context, req *request, last error) error {
	var be *BrokerError
	if errors.As(last, &be) {
		return be
	}
	select {
	case <-c.closing:
		return ErrClosed
	default:
	}
	cause := ctx.Err()
	if cause == nil {
		cause = context.DeadlineExceeded
	}
	if last != nil && !errors.Is(last, cause) {
		return fmt.Errorf("garbagetruck: %s: %w (last attempt: %v)", req.Cmd, cause, last)
	}
	return fmt.Errorf("garbagetruck: %s: %w", req.Cmd, cause)
}

// nextBackoff returns how long to wait before the next attempt: the
// broker's hint, else 100 ms, doubling up to 1 s (or the hint, if longer).
func nextBackoff(b *time.Duration, hint time.Duration) time.Duration {
	if *b == 0 {
		*b = firstBackoff
	}
	d := max(*b, hint)
	*b = min(2*d, max(maxBackoff, hint))
	return d
}

// pause waits d, or less if up is closed (a broker became reachable). It
// fails when ctx ends or the client closes.
func (c *Client) pause(ctx context.Context, d time.Duration, up <-chan struct{}) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-up:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.closing:
		return ErrClosed
	}
}

// ensureMap fetches the map if there is none yet.
func (c *Client) ensureMap(ctx context.Context, since time.Time) {
	if m, _ := c.rt.current(); m == nil {
		c.refreshMap(ctx, since)
	}
}

// refreshMap asks for the map again, unless a refresh started after since
// (then it waits for that one). Concurrent calls share one refresh.
func (c *Client) refreshMap(ctx context.Context, since time.Time) {
	r := &c.rt
	r.mu.Lock()
	for r.refreshing != nil {
		ch := r.refreshing
		r.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return
		case <-c.closing:
			return
		}
		r.mu.Lock()
	}
	if r.refreshStarted.After(since) {
		r.mu.Unlock()
		return
	}
	done := make(chan struct{})
	r.refreshing = done
	r.refreshStarted = time.Now()
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.refreshing = nil
		r.mu.Unlock()
		close(done)
	}()
	for _, ep := range r.candidates() {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		body, _, err := c.attempt(actx, ep, &request{Cmd: cmdMap}, true)
		cancel()
		if err != nil {
			if errors.Is(err, ErrClosed) || ctx.Err() != nil {
				return
			}
			r.noteFailed(ep)
			continue
		}
		rep, err := decodeReply(body)
		if err != nil {
			continue
		}
		r.noteAnswered(ep)
		switch rep.Code {
		case CodeOK:
			if m, err := rep.shardMap(); err == nil {
				r.install(m)
				return
			}
		case CodeUnsupportedCommand:
			return // a broker without MAP: it serves every shard
		}
	}
}

// refreshAsync refreshes the map in the background (after a MOVED, whose
// request goes to the named owner at once).
func (c *Client) refreshAsync(since time.Time) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.wg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), asyncMapWait)
		defer cancel()
		c.refreshMap(ctx, since)
	}()
}

// eventsEndpoints returns the events endpoints of the brokers in the map.
func (r *router) eventsEndpoints() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	if r.smap != nil {
		for _, b := range r.smap.Brokers {
			if b.EventsEndpoint != "" && !slices.Contains(out, b.EventsEndpoint) {
				out = append(out, b.EventsEndpoint)
			}
		}
	}
	return out
}
