package garbagetruck

import (
	"maps"
	"slices"
	"time"
)

// ProtocolVersion is the GTLP version this SDK speaks.
const ProtocolVersion = 1

// ObjectType says what kind of object a lease protects. The zero value means
// UNKNOWN. Values this SDK does not know (sent by a newer broker) are kept as
// they are.
type ObjectType string

// The object types of GTLP/1.
const (
	ObjectTypeUnknown          ObjectType = "UNKNOWN"
	ObjectTypeDatabaseRow      ObjectType = "DATABASE_ROW"
	ObjectTypeBlobStorage      ObjectType = "BLOB_STORAGE"
	ObjectTypeTemporaryFile    ObjectType = "TEMPORARY_FILE"
	ObjectTypeWebSocketSession ObjectType = "WEBSOCKET_SESSION"
	ObjectTypeCacheEntry       ObjectType = "CACHE_ENTRY"
	ObjectTypeCustom           ObjectType = "CUSTOM"
)

// String returns the wire name of the object type ("UNKNOWN" for the zero value).
func (t ObjectType) String() string {
	if t == "" {
		return string(ObjectTypeUnknown)
	}
	return string(t)
}

// LeaseState is the state of a lease.
type LeaseState string

// The lease states of GTLP/1.
const (
	LeaseActive   LeaseState = "ACTIVE"
	LeaseReleased LeaseState = "RELEASED"
	LeaseExpired  LeaseState = "EXPIRED"
)

// String returns the wire name of the state.
func (s LeaseState) String() string { return string(s) }

// EventKind says what an event reports.
type EventKind string

// The event kinds of GTLP/1.
const (
	EventLeaseCreated    EventKind = "lease.created"
	EventLeaseRenewed    EventKind = "lease.renewed"
	EventLeaseReleased   EventKind = "lease.released"
	EventLeaseExpired    EventKind = "lease.expired"
	EventObjectReclaimed EventKind = "object.reclaimed"
)

// String returns the wire name of the kind ("lease.created", ...).
func (k EventKind) String() string { return string(k) }

// Verb returns the first part of the event's topic: "created", "renewed",
// "released", "expired" or "reclaimed" ("" for an unknown kind).
func (k EventKind) Verb() string {
	switch k {
	case EventLeaseCreated:
		return "created"
	case EventLeaseRenewed:
		return "renewed"
	case EventLeaseReleased:
		return "released"
	case EventLeaseExpired:
		return "expired"
	case EventObjectReclaimed:
		return "reclaimed"
	}
	return ""
}

// ReclaimReason says why an object was reclaimed: its last lease expired or
// was released.
type ReclaimReason string

// The reclaim reasons of GTLP/1.
const (
	ReasonExpired  ReclaimReason = "expired"
	ReasonReleased ReclaimReason = "released"
)

// String returns the wire name of the reason.
func (r ReclaimReason) String() string { return string(r) }

// CleanupStatus is the state of a lease's cleanup callback, set once the
// object was reclaimed and the lease's cleanup URL called. The zero value
// means none (the key is absent).
type CleanupStatus string

// The cleanup callback states of GTLP/1.
const (
	CleanupNone      CleanupStatus = ""
	CleanupPending   CleanupStatus = "PENDING"
	CleanupDelivered CleanupStatus = "DELIVERED"
	CleanupDead      CleanupStatus = "DEAD"
)

// String returns the wire name of the status ("" for none).
func (s CleanupStatus) String() string { return string(s) }

// CleanupConfig tells the broker how to clean an object up once it is
// reclaimed: it POSTs a signed JSON callback to URL.
type CleanupConfig struct {
	// URL is the http:// or https:// endpoint that receives the callback.
	URL string
	// Payload is opaque text passed to the endpoint; empty means none.
	Payload string
	// MaxRetries is the number of retries after the first attempt; nil
	// leaves the broker's default. Always set in a lease returned by the broker.
	MaxRetries *int
	// RetryDelay is the base of the exponential backoff between attempts
	// (millisecond resolution); nil leaves the broker's default. Always set
	// in a lease returned by the broker.
	RetryDelay *time.Duration
}

func (c *CleanupConfig) clone() *CleanupConfig {
	if c == nil {
		return nil
	}
	out := *c
	if c.MaxRetries != nil {
		n := *c.MaxRetries
		out.MaxRetries = &n
	}
	if c.RetryDelay != nil {
		d := *c.RetryDelay
		out.RetryDelay = &d
	}
	return &out
}

// Lease is the broker's full record of a lease.
type Lease struct {
	// ID is the lease id: 32 lowercase hex characters.
	ID string
	// ObjectID is the leased object.
	ObjectID string
	// ObjectType is the kind of object.
	ObjectType ObjectType
	// ServiceID is the owner: only it may renew or release the lease.
	ServiceID string
	// State is ACTIVE, RELEASED or EXPIRED.
	State LeaseState
	// Fence is the fencing token of the object's current life.
	Fence uint64
	// TTL is the lease's own time to live, used by renewals without a TTL.
	TTL time.Duration
	// CreatedAt is when the lease was created.
	CreatedAt time.Time
	// RenewedAt is when the lease was last renewed (CreatedAt until then).
	RenewedAt time.Time
	// ExpiresAt is the deadline; for an ended lease, the moment it ended.
	ExpiresAt time.Time
	// Renewals counts the successful renewals.
	Renewals uint64
	// Metadata is the lease's string map; never nil in a decoded lease.
	Metadata map[string]string
	// Cleanup is the registered cleanup, or nil.
	Cleanup *CleanupConfig
	// CleanupStatus is the state of this lease's cleanup callback:
	// PENDING, DELIVERED or DEAD (a dead letter: Client.RetryCleanup);
	// CleanupNone while the lease's URL has not been called.
	CleanupStatus CleanupStatus
	// CleanupAttempts counts the callback's HTTP attempts (with CleanupStatus).
	CleanupAttempts uint64
	// CleanupError is the last attempt's error, e.g. "HTTP 503"; "" if none.
	CleanupError string
}

// Clone returns a deep copy of the lease.
func (l *Lease) Clone() *Lease {
	if l == nil {
		return nil
	}
	out := *l
	out.Metadata = maps.Clone(l.Metadata)
	out.Cleanup = l.Cleanup.clone()
	return &out
}

// Event is one entry of the broker's event stream.
type Event struct {
	// Seq is the event's sequence number: strictly increasing from 1 (in
	// cluster mode, within its shard).
	Seq uint64
	// HasShard is true when the event carries its shard: in cluster mode
	// (GTLP.md §14.4), where Seq counts within that shard. In single mode it
	// is false and Shard is 0.
	HasShard bool
	// Shard is the shard of the event's lease (0..255) when HasShard is true.
	Shard int
	// Kind says what happened.
	Kind EventKind
	// At is when it happened.
	At time.Time
	// Lease is the lease after the change; for object.reclaimed, the lease
	// that ended last.
	Lease Lease
	// Reason is set for object.reclaimed only.
	Reason ReclaimReason
}

// TopicSeparator ends the service id at the start of every event topic:
// U+001F (unit separator), a control character no service id may contain.
const TopicSeparator = "\x1f"

// Topic returns the event's ZeroMQ topic: service_id, U+001F, verb "."
// OBJECT_TYPE, for example "upload-service\x1fexpired.TEMPORARY_FILE".
func (e *Event) Topic() string {
	return ServicePrefix(e.Lease.ServiceID) + e.Kind.Verb() + "." + e.Lease.ObjectType.String()
}

// ServicePrefix returns the topic prefix of one service's events:
// serviceID + U+001F. It reaches that service only: ServicePrefix("upload")
// does not match the events of "upload-service". Append a verb and an object
// type to narrow it, for example
//
//	garbagetruck.ServicePrefix("upload-service") + "reclaimed.TEMPORARY_FILE"
func ServicePrefix(serviceID string) string {
	return serviceID + TopicSeparator
}

// Health is the broker's HEALTH reply.
type Health struct {
	// Status is SERVING or DEGRADED.
	Status string
	// Version is the broker's software version.
	Version string
	// Store is the storage backend: memory or postgres.
	Store string
	// StoreStatus is OK or DEGRADED.
	StoreStatus string
	// Uptime is how long the broker has been running.
	Uptime time.Duration
	// Now is the broker's wall clock.
	Now time.Time
	// ActiveLeases is the number of active leases.
	ActiveLeases uint64
}

// Stats are the broker's named counters and gauges (STATS); see GTLP.md §5.8
// for the names every broker reports.
type Stats map[string]uint64

// RenewResult is the outcome of one lease of a batch renewal.
type RenewResult struct {
	// LeaseID is the lease.
	LeaseID string
	// ExpiresAt is the new deadline when Err is nil.
	ExpiresAt time.Time
	// Err is nil on success, else a *BrokerError (for example ErrLeaseEnded).
	Err error
}

// ReplayPage is one page of the broker's event history.
type ReplayPage struct {
	// Events are the events, in seq order.
	Events []Event
	// LastSeq is the newest sequence number the broker has published.
	LastSeq uint64
	// ScannedSeq is how far the broker read: every event the caller may see
	// with afterSeq < seq <= ScannedSeq is in Events (ScannedSeq <= LastSeq).
	// A broker that filters REPLAY (with CURVE, a service's key sees only its
	// own events) may return fewer events than the limit while more remain:
	// ask again with afterSeq = ScannedSeq until it reaches LastSeq. From a
	// broker that does not report it (older versions, which never filter) it
	// is the seq of the last event of Events, or afterSeq (at most LastSeq)
	// when there is none.
	ScannedSeq uint64
}

// BrokerInfo is one live broker of a ShardMap (GTLP.md §14.2).
type BrokerInfo struct {
	// BrokerID names the broker.
	BrokerID string
	// Endpoint is where it takes requests.
	Endpoint string
	// EventsEndpoint is where it publishes events.
	EventsEndpoint string
	// Shards are the shards it owns, ascending; may be empty.
	Shards []int
	// Epochs are the epochs at which it holds each of Shards (same length,
	// same order), for operators; routing uses Shards. Nil when the broker
	// sent none (brokers before epochs were added to MAP); non-nil, and
	// empty, when it sent an empty list.
	Epochs []uint64
}

// HasEpochs reports whether the broker sent epochs (brokers before them
// send none: Epochs is then nil).
func (b *BrokerInfo) HasEpochs() bool { return b.Epochs != nil }

// ShardMap says which broker owns which shard (MAP, GTLP.md §14.2), as the
// answering broker sees it.
type ShardMap struct {
	// MapVersion grows whenever a shard changes owner.
	MapVersion uint64
	// Cluster is true in cluster mode; false in single mode, where one
	// broker serves every shard.
	Cluster bool
	// Brokers are the live brokers, in BrokerID order.
	Brokers []BrokerInfo
}

// clone returns a deep copy of the map.
func (m *ShardMap) clone() *ShardMap {
	out := *m
	out.Brokers = slices.Clone(m.Brokers)
	for i := range out.Brokers {
		out.Brokers[i].Shards = slices.Clone(m.Brokers[i].Shards)
		out.Brokers[i].Epochs = slices.Clone(m.Brokers[i].Epochs) // nil stays nil
	}
	return &out
}

// OwnerOf returns the broker that owns shard, and false when no broker owns
// it at the moment (being handed over, or its owner died).
func (m *ShardMap) OwnerOf(shard int) (BrokerInfo, bool) {
	for _, b := range m.Brokers {
		if slices.Contains(b.Shards, shard) {
			return b, true
		}
	}
	return BrokerInfo{}, false
}
