package garbagetruck

// The GTLP/1 codec (GTLP.md §3-§6). Encoding is canonical: keys in the order
// of the spec's tables, optional keys omitted, metadata and stats sorted,
// shortest integer and string forms. Maps are written by hand with the
// msgpack Encoder so that the bytes are exact. Decoding is strict about types
// (no nil, no bin, no negative or float numbers, valid UTF-8, no trailing
// bytes, nesting depth 8) and ignores unknown keys.

// maxDepth is the deepest nesting a GTLP body may have (GTLP.md §8).
const maxDepth = 8

// Wire limits the SDK checks before sending (GTLP.md §8).
const (
	maxObjectID       = 512
	maxServiceID      = 128
	maxIdempotencyKey = 128
	maxBatch          = 10000
	maxPage           = 1000
	maxShard          = ShardCount - 1
)

// Commands of GTLP/1.
const (
	cmdCreate     = "CREATE"
	cmdRenew      = "RENEW"
	cmdRenewBatch = "RENEW_BATCH"
	cmdRelease    = "RELEASE"
	cmdGet        = "GET"
	cmdList       = "LIST"
	cmdHealth     = "HEALTH"
	cmdStats      = "STATS"
	cmdReplay     = "REPLAY"
	cmdRetry      = "RETRY"
	cmdMap        = "MAP" // cluster (GTLP.md §14.2)
)

// requestKeys is the canonical key order of each command's fields, after
// v, rid, cmd (GTLP.md §5).
var requestKeys = map[string][]string{
	cmdCreate:     {"object_id", "object_type", "service_id", "ttl_ms", "metadata", "cleanup", "idempotency_key"},
	cmdRenew:      {"lease_id", "service_id", "ttl_ms"},
	cmdRenewBatch: {"service_id", "lease_ids", "ttl_ms"},
	cmdRelease:    {"lease_id", "service_id", "retain"},
	cmdGet:        {"lease_id"},
	cmdList:       {"service_id", "object_id", "object_type", "state", "cleanup_status", "cursor", "limit"},
	cmdHealth:     {},
	cmdStats:      {},
	cmdReplay:     {"after_seq", "limit", "shard"},
	cmdRetry:      {"lease_id"},
	cmdMap:        {},
}

// replyKeys is the canonical order of reply fields after v, rid, code. Each
// reply carries one group of them (GTLP.md §5), so one order serves all:
// MOVED carries shard, owner, map_version; TRY_AGAIN shard, retry_ms; MAP
// map_version, cluster, brokers (GTLP.md §14).
var replyKeys = []string{
	"message", "versions", "shard", "owner", "retry_ms", "map_version", "cluster", "brokers",
	"lease", "results", "leases", "cursor", "stats", "events", "last_seq", "scanned_seq",
	"status", "version", "store", "store_status", "uptime_ms", "now", "active_leases",
}

// request is a GTLP request map; optional fields are nil when absent.
type request struct {
	V              uint64
	RID            uint64
	Cmd            string
	ObjectID       *string
	ObjectType     *string
	ServiceID      *string
	LeaseID        *string
	TTLms          *uint64
	Metadata       map[string]string // nil: absent
	Cleanup        *CleanupConfig
	IdempotencyKey *string
	LeaseIDs       []string // nil: absent
	Retain         *bool
	State          *string
	CleanupStatus  *string
	Cursor         *string
	Limit          *uint64
	AfterSeq       *uint64
	Shard          *uint64 // REPLAY (cluster)
}

// renewResult is one RESULT map of a RENEW_BATCH reply.
type renewResult struct {
	LeaseID   string
	Code      Code
	ExpiresAt *uint64
	Message   *string
}

// reply is a GTLP reply map; optional fields are nil when absent.
type reply struct {
	V            uint64
	RID          uint64
	Code         Code
	Message      *string
	Versions     []uint64     // nil: absent
	Shard        *uint64      // MOVED, TRY_AGAIN
	Owner        *string      // MOVED
	RetryMS      *uint64      // TRY_AGAIN
	MapVersion   *uint64      // MOVED, MAP
	Cluster      *bool        // MAP
	Brokers      []BrokerInfo // MAP; nil: absent
	Lease        *Lease
	Results      []renewResult // nil: absent
	Leases       []*Lease      // nil: absent
	Cursor       *string
	Stats        map[string]uint64 // nil: absent
	Events       []Event           // nil: absent
	LastSeq      *uint64
	ScannedSeq   *uint64
	Status       *string
	Version      *string
	Store        *string
	StoreStatus  *string
	UptimeMS     *uint64
	Now          *uint64
	ActiveLeases *uint64
}
