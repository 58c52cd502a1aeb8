package garbagetruck

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"iter"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
)

// CreateRequest describes a lease to create. The lease belongs to the
// client's service.
type CreateRequest struct {
	// ObjectID is the leased object (1..512 bytes). Leases on the same
	// object id, from any services, are references to one object.
	ObjectID string
	// ObjectType is the kind of object; empty means UNKNOWN.
	ObjectType ObjectType
	// TTL is the lease's time to live (millisecond resolution); 0 means the
	// broker's default. It must lie within the broker's bounds.
	TTL time.Duration
	// Metadata is stored with the lease and passed to the cleanup endpoint.
	Metadata map[string]string
	// Cleanup, if set, registers the HTTP endpoint that cleans the object up.
	Cleanup *CleanupConfig
	// IdempotencyKey, if set, makes the creation safe to retry: a repeated
	// CreateLease with the same key returns the lease the first one created.
	IdempotencyKey string
}

func ptr[T any](v T) *T { return &v }

// service returns the service_id of the client's changes: nil (left out)
// when the client was dialled without one, so that a broker with CURVE
// takes it from the client's key.
func (c *Client) service() *string {
	if c.serviceID == "" {
		return nil
	}
	return ptr(c.serviceID)
}

// CreateLease leases an object for the client's service. A client with
// several endpoints (or redirected by a cluster) adds a random idempotency
// key when req has none, so that the creation is safe to send again to
// another broker.
func (c *Client) CreateLease(ctx context.Context, req CreateRequest) (*Lease, error) {
	return c.leaseCall(ctx, c.createRequest(req))
}

// createRequest encodes a CreateRequest as the CREATE the client sends.
func (c *Client) createRequest(req CreateRequest) *request {
	r := &request{
		Cmd:       cmdCreate,
		ObjectID:  ptr(req.ObjectID),
		ServiceID: c.service(),
		Metadata:  req.Metadata,
		Cleanup:   req.Cleanup,
	}
	if req.ObjectType != "" {
		r.ObjectType = ptr(string(req.ObjectType))
	}
	if req.TTL != 0 {
		r.TTLms = ptr(durationMS(req.TTL))
	}
	if req.IdempotencyKey != "" {
		r.IdempotencyKey = ptr(req.IdempotencyKey)
	} else if c.routing() {
		if key := newIdempotencyKey(); key != "" {
			r.IdempotencyKey = ptr(key)
		}
	}
	return r
}

// leaseCall runs a command whose reply is a lease.
func (c *Client) leaseCall(ctx context.Context, r *request) (*Lease, error) {
	rep, err := c.call(ctx, r)
	if err != nil {
		return nil, err
	}
	if rep.Lease == nil {
		return nil, fmt.Errorf("garbagetruck: %s reply: %w: no lease", r.Cmd, ErrProtocol)
	}
	return rep.Lease, nil
}

// RenewLease extends a lease of the client's service: it now expires ttl from
// now. A ttl of 0 renews for the lease's own TTL; any other ttl becomes the
// lease's TTL. Errors: ErrNotFound, ErrLeaseEnded, ErrPermissionDenied,
// ErrInvalidArgument (ttl out of bounds).
func (c *Client) RenewLease(ctx context.Context, leaseID string, ttl time.Duration) (*Lease, error) {
	r := &request{Cmd: cmdRenew, LeaseID: ptr(leaseID), ServiceID: c.service()}
	if ttl != 0 {
		r.TTLms = ptr(durationMS(ttl))
	}
	return c.leaseCall(ctx, r)
}

// RenewLeases extends many leases of the client's service with as few
// messages as possible (RENEW_BATCH, up to 10,000 leases per message). It
// returns one result per id, in order; a per-lease failure is reported in its
// result, not as the returned error. A ttl of 0 renews each lease for its own
// TTL.
//
// With several brokers, the leases go out as one batch per owner (by the
// shard map); a lease answered MOVED or TRY_AGAIN is sent again, within the
// call's timeout. A batch that fails as a whole gives its leases that error
// in their results; the call returns an error only when no batch was
// answered.
func (c *Client) RenewLeases(ctx context.Context, leaseIDs []string, ttl time.Duration) ([]RenewResult, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	results := make([]RenewResult, len(leaseIDs))
	todo := make([]int, len(leaseIDs)) // indices still to renew
	for i := range todo {
		todo[i] = i
	}
	if c.routing() {
		c.ensureMap(ctx, time.Now())
	}
	var backoff time.Duration
	rounds := 0
	for len(todo) > 0 {
		roundStart := time.Now()
		answered, err := c.renewRound(ctx, leaseIDs, todo, ttl, results)
		if rounds == 0 && answered == 0 && err != nil {
			return nil, err
		}
		rounds++
		var again []int
		var tryAgain time.Duration
		moved := false
		for _, i := range todo {
			var be *BrokerError
			if errors.As(results[i].Err, &be) && (be.Code == CodeMoved || be.Code == CodeTryAgain) {
				again = append(again, i)
				if be.Code == CodeMoved {
					moved = true
				} else {
					tryAgain = firstBackoff
				}
			}
		}
		if len(again) == 0 || rounds > maxRedirects && moved {
			break
		}
		c.rt.setRedirected()
		if tryAgain > 0 {
			if c.pause(ctx, nextBackoff(&backoff, tryAgain), nil) != nil {
				break // out of time: those leases keep their MOVED / TRY_AGAIN
			}
		}
		c.refreshMap(ctx, roundStart)
		if ctx.Err() != nil {
			break
		}
		todo = again
	}
	return results, nil
}

// renewRound renews the leases todo (indices into ids), one RENEW_BATCH per
// owner and per maxBatch leases, the batches concurrently, and writes their
// results. It returns how many batches were answered and the error of one
// that was not.
func (c *Client) renewRound(ctx context.Context, ids []string, todo []int, ttl time.Duration, results []RenewResult) (int, error) {
	var groups [][]int
	if c.routing() {
		byOwner := map[string]int{}
		for _, i := range todo {
			sh, err := LeaseIDShard(ids[i])
			if err != nil {
				sh = 0 // the broker answers it; any broker will do
			}
			ep := c.rt.route(sh)
			g, ok := byOwner[ep]
			if !ok {
				g = len(groups)
				byOwner[ep] = g
				groups = append(groups, nil)
			}
			groups[g] = append(groups[g], i)
		}
	} else {
		groups = [][]int{todo}
	}
	var batches [][]int
	for _, g := range groups {
		for start := 0; start < len(g); start += maxBatch {
			batches = append(batches, g[start:min(start+maxBatch, len(g))])
		}
	}
	var (
		mu       sync.Mutex
		answered int
		lastErr  error
	)
	run := func(batch []int) {
		err := c.renewBatch(ctx, ids, batch, ttl, results)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			lastErr = err
			for _, i := range batch {
				results[i] = RenewResult{LeaseID: ids[i], Err: err}
			}
			return
		}
		answered++
	}
	if !c.routing() {
		// One broker: the batches in turn, the first failure ends the call.
		for _, b := range batches {
			if err := c.renewBatch(ctx, ids, b, ttl, results); err != nil {
				return 0, err
			}
			answered++
		}
		return answered, nil
	}
	if len(batches) == 1 {
		run(batches[0])
	} else {
		var wg sync.WaitGroup
		for _, b := range batches {
			wg.Add(1)
			go func() {
				defer wg.Done()
				run(b)
			}()
		}
		wg.Wait()
	}
	return answered, lastErr
}

// renewBatch sends one RENEW_BATCH and writes its results.
func (c *Client) renewBatch(ctx context.Context, ids []string, batch []int, ttl time.Duration, results []RenewResult) error {
	chunk := make([]string, len(batch))
	for k, i := range batch {
		chunk[k] = ids[i]
	}
	r := &request{Cmd: cmdRenewBatch, ServiceID: c.service(), LeaseIDs: chunk}
	if ttl != 0 {
		r.TTLms = ptr(durationMS(ttl))
	}
	rep, err := c.call(ctx, r)
	if err != nil {
		return err
	}
	if len(rep.Results) != len(chunk) {
		return fmt.Errorf("garbagetruck: RENEW_BATCH reply: %w: %d results for %d leases",
			ErrProtocol, len(rep.Results), len(chunk))
	}
	for k, res := range rep.Results {
		out := RenewResult{LeaseID: res.LeaseID}
		if res.Code == CodeOK {
			if res.ExpiresAt != nil {
				out.ExpiresAt = time.UnixMilli(int64(min(*res.ExpiresAt, 1<<62))).UTC()
			}
		} else {
			be := &BrokerError{Code: res.Code}
			if res.Message != nil {
				be.Message = *res.Message
			}
			if res.Code == CodeMoved || res.Code == CodeTryAgain {
				// The RESULT names no shard: it is the lease id's.
				be.Shard, _ = LeaseIDShard(res.LeaseID)
			}
			out.Err = be
		}
		results[batch[k]] = out
	}
	return nil
}

// ReleaseOption modifies a release.
type ReleaseOption func(*request)

// Retain keeps the object when this is its last lease: no cleanup runs and no
// object.reclaimed event is published (for example, the object was moved to
// permanent storage).
func Retain() ReleaseOption {
	return func(r *request) { r.Retain = ptr(true) }
}

// ReleaseLease drops a lease of the client's service and returns it in its
// RELEASED state. If it was the object's last active lease, the object is
// reclaimed unless Retain is given. Releasing again answers ErrLeaseEnded.
//
// A routed client (several brokers) that sends the RELEASE again after an
// attempt without a reply takes NOT_FOUND or LEASE_ENDED as done (the first
// attempt released it): it returns the lease as GetLease finds it.
func (c *Client) ReleaseLease(ctx context.Context, leaseID string, opts ...ReleaseOption) (*Lease, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	r := &request{Cmd: cmdRelease, LeaseID: ptr(leaseID), ServiceID: c.service()}
	for _, o := range opts {
		o(r)
	}
	rep, repeated, err := c.callTo(ctx, r, "")
	if err != nil {
		if repeated && (errors.Is(err, ErrNotFound) || errors.Is(err, ErrLeaseEnded)) {
			if l, gerr := c.GetLease(ctx, leaseID); gerr == nil {
				return l, nil
			}
		}
		return nil, err
	}
	if rep.Lease == nil {
		return nil, fmt.Errorf("garbagetruck: %s reply: %w: no lease", r.Cmd, ErrProtocol)
	}
	return rep.Lease, nil
}

// GetLease returns a lease of any service, active or ended (ended leases are
// retained for the broker's GC_LEASE_RETENTION). Unknown: ErrNotFound.
func (c *Client) GetLease(ctx context.Context, leaseID string) (*Lease, error) {
	return c.leaseCall(ctx, &request{Cmd: cmdGet, LeaseID: ptr(leaseID)})
}

// RetryCleanup delivers the dead-lettered cleanup callback of a lease (of any
// service) again: attempts are counted from 1, the Idempotency-Key is the
// same. It returns the lease, its CleanupStatus PENDING (or already
// DELIVERED). A lease without a dead callback: ErrInvalidArgument; an
// unknown lease: ErrNotFound.
func (c *Client) RetryCleanup(ctx context.Context, leaseID string) (*Lease, error) {
	return c.leaseCall(ctx, &request{Cmd: cmdRetry, LeaseID: ptr(leaseID)})
}

// ListFilter selects leases; empty fields match everything. Filters combine
// with AND.
type ListFilter struct {
	// ServiceID selects the leases of one service.
	ServiceID string
	// ObjectID selects the leases on one object.
	ObjectID string
	// ObjectType selects one kind of object.
	ObjectType ObjectType
	// State selects one state.
	State LeaseState
	// CleanupStatus selects leases by the state of their cleanup callback;
	// CleanupDead lists the dead letters.
	CleanupStatus CleanupStatus
	// PageSize is the number of leases fetched per request (1..1000;
	// 0 means the broker's default, 100).
	PageSize int
}

func (f *ListFilter) request(cursor string) *request {
	r := &request{Cmd: cmdList}
	if f.ServiceID != "" {
		r.ServiceID = ptr(f.ServiceID)
	}
	if f.ObjectID != "" {
		r.ObjectID = ptr(f.ObjectID)
	}
	if f.ObjectType != "" {
		r.ObjectType = ptr(string(f.ObjectType))
	}
	if f.State != "" {
		r.State = ptr(string(f.State))
	}
	if f.CleanupStatus != CleanupNone {
		r.CleanupStatus = ptr(string(f.CleanupStatus))
	}
	if cursor != "" {
		r.Cursor = ptr(cursor)
	}
	if f.PageSize != 0 {
		r.Limit = ptr(uint64(max(f.PageSize, 0)))
	}
	return r
}

// ListPage fetches one page of leases, oldest first. Pass the cursor of the
// previous page ("" for the first); the returned cursor is "" on the last page.
//
// In cluster mode (several brokers, each serving its own shards) the pages
// of every broker of the map are listed in turn (oldest first within each
// broker), and the cursor names the broker.
func (c *Client) ListPage(ctx context.Context, filter ListFilter, cursor string) (leases []*Lease, next string, err error) {
	if c.routing() {
		ctx, cancel := c.withTimeout(ctx)
		defer cancel()
		c.ensureMap(ctx, time.Now())
		if m, _ := c.rt.current(); m != nil && m.Cluster {
			return c.listCluster(ctx, m, filter, cursor)
		}
	}
	return c.listOne(ctx, filter, cursor, "")
}

// listOne fetches one page from one broker (pin; "" routes to the owner of
// shard 0).
func (c *Client) listOne(ctx context.Context, filter ListFilter, cursor, pin string) ([]*Lease, string, error) {
	rep, _, err := c.callTo(ctx, filter.request(cursor), pin)
	if err != nil {
		return nil, "", err
	}
	if rep.Leases == nil {
		return nil, "", fmt.Errorf("garbagetruck: LIST reply: %w: no leases", ErrProtocol)
	}
	next := ""
	if rep.Cursor != nil {
		next = *rep.Cursor
	}
	return rep.Leases, next, nil
}

// clusterCursorPrefix starts the cursors of a cluster listing:
// "gtc:" base64url(broker_id) ":" the broker's own cursor.
const clusterCursorPrefix = "gtc:"

func clusterCursor(brokerID, inner string) string {
	return clusterCursorPrefix + base64.RawURLEncoding.EncodeToString([]byte(brokerID)) + ":" + inner
}

// listCluster lists the brokers of the map in broker_id order.
func (c *Client) listCluster(ctx context.Context, m *ShardMap, filter ListFilter, cursor string) ([]*Lease, string, error) {
	brokers := slices.Clone(m.Brokers)
	slices.SortFunc(brokers, func(a, b BrokerInfo) int { return strings.Compare(a.BrokerID, b.BrokerID) })
	if len(brokers) == 0 {
		return nil, "", fmt.Errorf("garbagetruck: LIST: %w: the shard map names no broker", ErrUnavailable)
	}
	at, inner := 0, ""
	if cursor != "" {
		rest, ok := strings.CutPrefix(cursor, clusterCursorPrefix)
		enc, in, ok2 := strings.Cut(rest, ":")
		id, err := base64.RawURLEncoding.DecodeString(enc)
		if !ok || !ok2 || err != nil {
			return nil, "", fmt.Errorf("%w: not a cluster LIST cursor: %q", ErrInvalidArgument, cursor)
		}
		// The broker named, or the next one (it left the map meanwhile).
		at = len(brokers)
		for i, b := range brokers {
			if b.BrokerID >= string(id) {
				at = i
				if b.BrokerID == string(id) {
					inner = in
				}
				break
			}
		}
	}
	for ; at < len(brokers); at, inner = at+1, "" {
		b := brokers[at]
		leases, next, err := c.listOne(ctx, filter, inner, b.Endpoint)
		if err != nil {
			return nil, "", err
		}
		if next != "" {
			return leases, clusterCursor(b.BrokerID, next), nil
		}
		if at+1 == len(brokers) {
			return leases, "", nil
		}
		if len(leases) > 0 {
			return leases, clusterCursor(brokers[at+1].BrokerID, ""), nil
		}
	}
	return []*Lease{}, "", nil
}

// ListLeases iterates over the leases matching filter, oldest first, fetching
// pages as the loop proceeds. An error ends the iteration after being yielded
// with a nil lease.
//
//	for lease, err := range client.ListLeases(ctx, filter) {
//		if err != nil { ... }
//	}
func (c *Client) ListLeases(ctx context.Context, filter ListFilter) iter.Seq2[*Lease, error] {
	return func(yield func(*Lease, error) bool) {
		cursor := ""
		for {
			leases, next, err := c.ListPage(ctx, filter, cursor)
			if err != nil {
				yield(nil, err)
				return
			}
			for _, l := range leases {
				if !yield(l, nil) {
					return
				}
			}
			if next == "" {
				return
			}
			cursor = next
		}
	}
}

// Health returns the broker's health.
func (c *Client) Health(ctx context.Context) (*Health, error) {
	rep, err := c.call(ctx, &request{Cmd: cmdHealth})
	if err != nil {
		return nil, err
	}
	if rep.Status == nil {
		return nil, fmt.Errorf("garbagetruck: HEALTH reply: %w: no status", ErrProtocol)
	}
	h := &Health{Status: *rep.Status}
	if rep.Version != nil {
		h.Version = *rep.Version
	}
	if rep.Store != nil {
		h.Store = *rep.Store
	}
	if rep.StoreStatus != nil {
		h.StoreStatus = *rep.StoreStatus
	}
	if rep.UptimeMS != nil {
		h.Uptime = time.Duration(min(*rep.UptimeMS, 1<<40)) * time.Millisecond
	}
	if rep.Now != nil {
		h.Now = time.UnixMilli(int64(min(*rep.Now, 1<<62))).UTC()
	}
	if rep.ActiveLeases != nil {
		h.ActiveLeases = *rep.ActiveLeases
	}
	return h, nil
}

// Stats returns the broker's counters and gauges.
func (c *Client) Stats(ctx context.Context) (Stats, error) {
	rep, err := c.call(ctx, &request{Cmd: cmdStats})
	if err != nil {
		return nil, err
	}
	if rep.Stats == nil {
		return nil, fmt.Errorf("garbagetruck: STATS reply: %w: no stats", ErrProtocol)
	}
	return rep.Stats, nil
}

// Replay reads the broker's event history: up to limit events (1..1000;
// 0 means the broker's default, 100) with seq > afterSeq, in order. When the
// history no longer reaches back to afterSeq+1 it fails with ErrTooOld.
func (c *Client) Replay(ctx context.Context, afterSeq uint64, limit int) (*ReplayPage, error) {
	return c.replay(ctx, nil, afterSeq, limit)
}

// ReplayShard reads the event history of one shard (0..255) of a cluster
// (GTLP.md §14.4), where seq counts within the shard; it is answered by the
// shard's owner (ErrMoved otherwise, ErrTryAgain while it has none). A
// broker in single mode ignores the shard and answers as Replay.
func (c *Client) ReplayShard(ctx context.Context, shard int, afterSeq uint64, limit int) (*ReplayPage, error) {
	if shard < 0 || shard > maxShard {
		return nil, fmt.Errorf("%w: shard %d out of range 0..%d", ErrInvalidArgument, shard, maxShard)
	}
	return c.replay(ctx, ptr(uint64(shard)), afterSeq, limit)
}

func (c *Client) replay(ctx context.Context, shard *uint64, afterSeq uint64, limit int) (*ReplayPage, error) {
	r := &request{Cmd: cmdReplay, AfterSeq: ptr(afterSeq), Shard: shard}
	if limit != 0 {
		r.Limit = ptr(uint64(max(limit, 0)))
	}
	rep, err := c.call(ctx, r)
	if err != nil {
		return nil, err
	}
	if rep.Events == nil || rep.LastSeq == nil {
		return nil, fmt.Errorf("garbagetruck: REPLAY reply: %w: no events or last_seq", ErrProtocol)
	}
	page := &ReplayPage{Events: rep.Events, LastSeq: *rep.LastSeq}
	switch {
	case rep.ScannedSeq != nil:
		page.ScannedSeq = *rep.ScannedSeq
	case len(rep.Events) > 0:
		// A broker without scanned_seq does not filter: it read up to its
		// last event.
		page.ScannedSeq = rep.Events[len(rep.Events)-1].Seq
	default:
		page.ScannedSeq = min(afterSeq, page.LastSeq)
	}
	return page, nil
}

// ShardMap asks the broker which broker owns which shard (MAP, GTLP.md
// §14.2). A broker without cluster support answers ErrUnsupportedCommand. A
// routed client (several endpoints) also routes by the map it gets.
func (c *Client) ShardMap(ctx context.Context) (*ShardMap, error) {
	rep, err := c.call(ctx, &request{Cmd: cmdMap})
	if err != nil {
		return nil, err
	}
	m, err := rep.shardMap()
	if err == nil && c.routing() {
		c.rt.install(m.clone())
	}
	return m, err
}

// shardMap returns the ShardMap of a MAP reply.
func (r *reply) shardMap() (*ShardMap, error) {
	if r.MapVersion == nil || r.Cluster == nil || r.Brokers == nil {
		return nil, fmt.Errorf("garbagetruck: MAP reply: %w: no map_version, cluster or brokers", ErrProtocol)
	}
	return &ShardMap{MapVersion: *r.MapVersion, Cluster: *r.Cluster, Brokers: r.Brokers}, nil
}

// headSeq returns the newest sequence number the broker has published. It
// asks REPLAY for the events after the largest seq (there are none), which
// every role may read, where STATS is not open to a CURVE service key.
func (c *Client) headSeq(ctx context.Context) (uint64, error) {
	page, err := c.Replay(ctx, math.MaxUint64, 1)
	if err != nil {
		return 0, err
	}
	return page.LastSeq, nil
}
