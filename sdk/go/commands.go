package garbagetruck

import (
	"context"
	"fmt"
	"iter"
	"math"
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

// CreateLease leases an object for the client's service.
func (c *Client) CreateLease(ctx context.Context, req CreateRequest) (*Lease, error) {
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
	}
	return c.leaseCall(ctx, r)
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
func (c *Client) RenewLeases(ctx context.Context, leaseIDs []string, ttl time.Duration) ([]RenewResult, error) {
	results := make([]RenewResult, 0, len(leaseIDs))
	for start := 0; start < len(leaseIDs); start += maxBatch {
		chunk := leaseIDs[start:min(start+maxBatch, len(leaseIDs))]
		r := &request{Cmd: cmdRenewBatch, ServiceID: c.service(), LeaseIDs: chunk}
		if ttl != 0 {
			r.TTLms = ptr(durationMS(ttl))
		}
		rep, err := c.call(ctx, r)
		if err != nil {
			return nil, err
		}
		if len(rep.Results) != len(chunk) {
			return nil, fmt.Errorf("garbagetruck: RENEW_BATCH reply: %w: %d results for %d leases",
				ErrProtocol, len(rep.Results), len(chunk))
		}
		for _, res := range rep.Results {
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
			results = append(results, out)
		}
	}
	return results, nil
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
func (c *Client) ReleaseLease(ctx context.Context, leaseID string, opts ...ReleaseOption) (*Lease, error) {
	r := &request{Cmd: cmdRelease, LeaseID: ptr(leaseID), ServiceID: c.service()}
	for _, o := range opts {
		o(r)
	}
	return c.leaseCall(ctx, r)
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
func (c *Client) ListPage(ctx context.Context, filter ListFilter, cursor string) (leases []*Lease, next string, err error) {
	rep, err := c.call(ctx, filter.request(cursor))
	if err != nil {
		return nil, "", err
	}
	if rep.Leases == nil {
		return nil, "", fmt.Errorf("garbagetruck: LIST reply: %w: no leases", ErrProtocol)
	}
	if rep.Cursor != nil {
		next = *rep.Cursor
	}
	return rep.Leases, next, nil
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
// §14.2). A broker without cluster support answers ErrUnsupportedCommand.
func (c *Client) ShardMap(ctx context.Context) (*ShardMap, error) {
	rep, err := c.call(ctx, &request{Cmd: cmdMap})
	if err != nil {
		return nil, err
	}
	return rep.shardMap()
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
