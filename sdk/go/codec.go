package garbagetruck

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

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
	cmdReplay:     {"after_seq", "limit"},
	cmdRetry:      {"lease_id"},
}

// replyKeys is the canonical order of reply fields after v, rid, code. Each
// reply carries one group of them (GTLP.md §5), so one order serves all.
var replyKeys = []string{
	"message", "versions",
	"lease", "results", "leases", "cursor", "stats", "events", "last_seq",
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
	Versions     []uint64 // nil: absent
	Lease        *Lease
	Results      []renewResult // nil: absent
	Leases       []*Lease      // nil: absent
	Cursor       *string
	Stats        map[string]uint64 // nil: absent
	Events       []Event           // nil: absent
	LastSeq      *uint64
	Status       *string
	Version      *string
	Store        *string
	StoreStatus  *string
	UptimeMS     *uint64
	Now          *uint64
	ActiveLeases *uint64
}

// ---------------------------------------------------------------------------
// Encoding

type encoder struct {
	buf bytes.Buffer
	enc *msgpack.Encoder
	err error
}

func newEncoder() *encoder {
	e := &encoder{}
	e.enc = msgpack.NewEncoder(&e.buf)
	return e
}

func (e *encoder) mapLen(n int) {
	if e.err == nil {
		e.err = e.enc.EncodeMapLen(n)
	}
}

func (e *encoder) arrayLen(n int) {
	if e.err == nil {
		e.err = e.enc.EncodeArrayLen(n)
	}
}

func (e *encoder) str(s string) {
	if e.err == nil {
		e.err = e.enc.EncodeString(s)
	}
}

func (e *encoder) uint(n uint64) {
	if e.err == nil {
		e.err = e.enc.EncodeUint(n)
	}
}

func (e *encoder) bool(b bool) {
	if e.err == nil {
		e.err = e.enc.EncodeBool(b)
	}
}

func (e *encoder) bytes() ([]byte, error) {
	if e.err != nil {
		return nil, e.err
	}
	return e.buf.Bytes(), nil
}

// stringMap writes a str→str map with keys in bytewise order.
func (e *encoder) stringMap(m map[string]string) {
	keys := sortedKeys(m)
	e.mapLen(len(keys))
	for _, k := range keys {
		e.str(k)
		e.str(m[k])
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys) // Go compares strings bytewise
	return keys
}

func durationMS(d time.Duration) uint64 {
	if d <= 0 {
		return 0
	}
	return uint64(d / time.Millisecond)
}

func timeMS(t time.Time) uint64 {
	ms := t.UnixMilli()
	if ms < 0 || t.IsZero() {
		return 0
	}
	return uint64(ms)
}

func (e *encoder) cleanup(c *CleanupConfig) {
	n := 1
	if c.Payload != "" {
		n++
	}
	if c.MaxRetries != nil {
		n++
	}
	if c.RetryDelay != nil {
		n++
	}
	e.mapLen(n)
	e.str("url")
	e.str(c.URL)
	if c.Payload != "" {
		e.str("payload")
		e.str(c.Payload)
	}
	if c.MaxRetries != nil {
		e.str("max_retries")
		e.uint(uint64(max(*c.MaxRetries, 0)))
	}
	if c.RetryDelay != nil {
		e.str("retry_delay_ms")
		e.uint(durationMS(*c.RetryDelay))
	}
}

func (e *encoder) lease(l *Lease) {
	n := 12
	if l.Cleanup != nil {
		n++
	}
	if l.CleanupStatus != CleanupNone {
		n += 2
		if l.CleanupError != "" {
			n++
		}
	}
	e.mapLen(n)
	e.str("id")
	e.str(l.ID)
	e.str("object_id")
	e.str(l.ObjectID)
	e.str("object_type")
	e.str(l.ObjectType.String())
	e.str("service_id")
	e.str(l.ServiceID)
	e.str("state")
	e.str(string(l.State))
	e.str("fence")
	e.uint(l.Fence)
	e.str("ttl_ms")
	e.uint(durationMS(l.TTL))
	e.str("created_at")
	e.uint(timeMS(l.CreatedAt))
	e.str("renewed_at")
	e.uint(timeMS(l.RenewedAt))
	e.str("expires_at")
	e.uint(timeMS(l.ExpiresAt))
	e.str("renewals")
	e.uint(l.Renewals)
	e.str("metadata")
	e.stringMap(l.Metadata)
	if l.Cleanup != nil {
		e.str("cleanup")
		e.cleanup(l.Cleanup)
	}
	if l.CleanupStatus != CleanupNone {
		e.str("cleanup_status")
		e.str(string(l.CleanupStatus))
		e.str("cleanup_attempts")
		e.uint(l.CleanupAttempts)
		if l.CleanupError != "" {
			e.str("cleanup_error")
			e.str(l.CleanupError)
		}
	}
}

// event writes an EVENT map (GTLP.md §6).
func (e *encoder) event(ev *Event) {
	n := 5
	if ev.Reason != "" {
		n++
	}
	e.mapLen(n)
	e.str("v")
	e.uint(ProtocolVersion)
	e.str("seq")
	e.uint(ev.Seq)
	e.str("kind")
	e.str(string(ev.Kind))
	e.str("at")
	e.uint(timeMS(ev.At))
	e.str("lease")
	e.lease(&ev.Lease)
	if ev.Reason != "" {
		e.str("reason")
		e.str(string(ev.Reason))
	}
}

// requestHas reports whether the request carries key.
func (r *request) has(key string) bool {
	switch key {
	case "object_id":
		return r.ObjectID != nil
	case "object_type":
		return r.ObjectType != nil
	case "service_id":
		return r.ServiceID != nil
	case "lease_id":
		return r.LeaseID != nil
	case "ttl_ms":
		return r.TTLms != nil
	case "metadata":
		return r.Metadata != nil
	case "cleanup":
		return r.Cleanup != nil
	case "idempotency_key":
		return r.IdempotencyKey != nil
	case "lease_ids":
		return r.LeaseIDs != nil
	case "retain":
		return r.Retain != nil
	case "state":
		return r.State != nil
	case "cleanup_status":
		return r.CleanupStatus != nil
	case "cursor":
		return r.Cursor != nil
	case "limit":
		return r.Limit != nil
	case "after_seq":
		return r.AfterSeq != nil
	}
	return false
}

func (e *encoder) requestField(r *request, key string) {
	e.str(key)
	switch key {
	case "object_id":
		e.str(*r.ObjectID)
	case "object_type":
		e.str(*r.ObjectType)
	case "service_id":
		e.str(*r.ServiceID)
	case "lease_id":
		e.str(*r.LeaseID)
	case "ttl_ms":
		e.uint(*r.TTLms)
	case "metadata":
		e.stringMap(r.Metadata)
	case "cleanup":
		e.cleanup(r.Cleanup)
	case "idempotency_key":
		e.str(*r.IdempotencyKey)
	case "lease_ids":
		e.arrayLen(len(r.LeaseIDs))
		for _, id := range r.LeaseIDs {
			e.str(id)
		}
	case "retain":
		e.bool(*r.Retain)
	case "state":
		e.str(*r.State)
	case "cleanup_status":
		e.str(*r.CleanupStatus)
	case "cursor":
		e.str(*r.Cursor)
	case "limit":
		e.uint(*r.Limit)
	case "after_seq":
		e.uint(*r.AfterSeq)
	}
}

// encodeRequest returns the canonical bytes of a request. Fields that do not
// belong to the command are not written.
func encodeRequest(r *request) ([]byte, error) {
	e := newEncoder()
	keys := requestKeys[r.Cmd]
	n := 3
	for _, k := range keys {
		if r.has(k) {
			n++
		}
	}
	e.mapLen(n)
	e.str("v")
	e.uint(r.V)
	e.str("rid")
	e.uint(r.RID)
	e.str("cmd")
	e.str(r.Cmd)
	for _, k := range keys {
		if r.has(k) {
			e.requestField(r, k)
		}
	}
	return e.bytes()
}

func (r *reply) has(key string) bool {
	switch key {
	case "message":
		return r.Message != nil
	case "versions":
		return r.Versions != nil
	case "lease":
		return r.Lease != nil
	case "results":
		return r.Results != nil
	case "leases":
		return r.Leases != nil
	case "cursor":
		return r.Cursor != nil
	case "stats":
		return r.Stats != nil
	case "events":
		return r.Events != nil
	case "last_seq":
		return r.LastSeq != nil
	case "status":
		return r.Status != nil
	case "version":
		return r.Version != nil
	case "store":
		return r.Store != nil
	case "store_status":
		return r.StoreStatus != nil
	case "uptime_ms":
		return r.UptimeMS != nil
	case "now":
		return r.Now != nil
	case "active_leases":
		return r.ActiveLeases != nil
	}
	return false
}

func (e *encoder) replyField(r *reply, key string) {
	e.str(key)
	switch key {
	case "message":
		e.str(*r.Message)
	case "versions":
		e.arrayLen(len(r.Versions))
		for _, v := range r.Versions {
			e.uint(v)
		}
	case "lease":
		e.lease(r.Lease)
	case "results":
		e.arrayLen(len(r.Results))
		for i := range r.Results {
			res := &r.Results[i]
			n := 2
			if res.ExpiresAt != nil {
				n++
			}
			if res.Message != nil {
				n++
			}
			e.mapLen(n)
			e.str("lease_id")
			e.str(res.LeaseID)
			e.str("code")
			e.str(string(res.Code))
			if res.ExpiresAt != nil {
				e.str("expires_at")
				e.uint(*res.ExpiresAt)
			}
			if res.Message != nil {
				e.str("message")
				e.str(*res.Message)
			}
		}
	case "leases":
		e.arrayLen(len(r.Leases))
		for _, l := range r.Leases {
			e.lease(l)
		}
	case "cursor":
		e.str(*r.Cursor)
	case "stats":
		keys := sortedKeys(r.Stats)
		e.mapLen(len(keys))
		for _, k := range keys {
			e.str(k)
			e.uint(r.Stats[k])
		}
	case "events":
		e.arrayLen(len(r.Events))
		for i := range r.Events {
			e.event(&r.Events[i])
		}
	case "last_seq":
		e.uint(*r.LastSeq)
	case "status":
		e.str(*r.Status)
	case "version":
		e.str(*r.Version)
	case "store":
		e.str(*r.Store)
	case "store_status":
		e.str(*r.StoreStatus)
	case "uptime_ms":
		e.uint(*r.UptimeMS)
	case "now":
		e.uint(*r.Now)
	case "active_leases":
		e.uint(*r.ActiveLeases)
	}
}

// encodeReply returns the canonical bytes of a reply (used by tests and tools).
func encodeReply(r *reply) ([]byte, error) {
	e := newEncoder()
	n := 3
	for _, k := range replyKeys {
		if r.has(k) {
			n++
		}
	}
	e.mapLen(n)
	e.str("v")
	e.uint(r.V)
	e.str("rid")
	e.uint(r.RID)
	e.str("code")
	e.str(string(r.Code))
	for _, k := range replyKeys {
		if r.has(k) {
			e.replyField(r, k)
		}
	}
	return e.bytes()
}

// encodeEvent returns the canonical bytes of an event body.
func encodeEvent(ev *Event) ([]byte, error) {
	e := newEncoder()
	e.event(ev)
	return e.bytes()
}

// ---------------------------------------------------------------------------
// Decoding

// decoder reads one GTLP body strictly.
type decoder struct {
	r   *bytes.Reader
	dec *msgpack.Decoder
}

func newDecoder(body []byte) *decoder {
	r := bytes.NewReader(body)
	return &decoder{r: r, dec: msgpack.NewDecoder(r)}
}

// decodeError is a malformed body: the key path and what was wrong.
func decodeError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrProtocol, fmt.Sprintf(format, args...))
}

func (d *decoder) peek(what string) (byte, error) {
	c, err := d.dec.PeekCode()
	if err != nil {
		return 0, decodeError("%s: truncated body", what)
	}
	return c, nil
}

// uint reads any MessagePack integer whose value is non-negative.
func (d *decoder) uint(what string) (uint64, error) {
	c, err := d.peek(what)
	if err != nil {
		return 0, err
	}
	switch {
	case c <= msgpcode.PosFixedNumHigh, c == msgpcode.Uint8, c == msgpcode.Uint16,
		c == msgpcode.Uint32, c == msgpcode.Uint64:
		n, err := d.dec.DecodeUint64()
		if err != nil {
			return 0, decodeError("%s: %v", what, err)
		}
		return n, nil
	case c >= msgpcode.NegFixedNumLow, c == msgpcode.Int8, c == msgpcode.Int16,
		c == msgpcode.Int32, c == msgpcode.Int64:
		n, err := d.dec.DecodeInt64()
		if err != nil {
			return 0, decodeError("%s: %v", what, err)
		}
		if n < 0 {
			return 0, decodeError("%s: negative integer %d", what, n)
		}
		return uint64(n), nil
	}
	return 0, decodeError("%s: expected an unsigned integer, got code 0x%02x", what, c)
}

func (d *decoder) str(what string) (string, error) {
	c, err := d.peek(what)
	if err != nil {
		return "", err
	}
	if !msgpcode.IsString(c) {
		return "", decodeError("%s: expected a string, got code 0x%02x", what, c)
	}
	s, err := d.dec.DecodeString()
	if err != nil {
		return "", decodeError("%s: %v", what, err)
	}
	if !utf8.ValidString(s) {
		return "", decodeError("%s: string is not valid UTF-8", what)
	}
	return s, nil
}

func (d *decoder) bool(what string) (bool, error) {
	c, err := d.peek(what)
	if err != nil {
		return false, err
	}
	if c != msgpcode.True && c != msgpcode.False {
		return false, decodeError("%s: expected a boolean, got code 0x%02x", what, c)
	}
	b, err := d.dec.DecodeBool()
	if err != nil {
		return false, decodeError("%s: %v", what, err)
	}
	return b, nil
}

func (d *decoder) mapLen(what string, depth int) (int, error) {
	if depth > maxDepth {
		return 0, decodeError("%s: nested deeper than %d", what, maxDepth)
	}
	c, err := d.peek(what)
	if err != nil {
		return 0, err
	}
	if !msgpcode.IsFixedMap(c) && c != msgpcode.Map16 && c != msgpcode.Map32 {
		return 0, decodeError("%s: expected a map, got code 0x%02x", what, c)
	}
	n, err := d.dec.DecodeMapLen()
	if err != nil {
		return 0, decodeError("%s: %v", what, err)
	}
	return n, nil
}

func (d *decoder) arrayLen(what string, depth int) (int, error) {
	if depth > maxDepth {
		return 0, decodeError("%s: nested deeper than %d", what, maxDepth)
	}
	c, err := d.peek(what)
	if err != nil {
		return 0, err
	}
	if !msgpcode.IsFixedArray(c) && c != msgpcode.Array16 && c != msgpcode.Array32 {
		return 0, decodeError("%s: expected an array, got code 0x%02x", what, c)
	}
	n, err := d.dec.DecodeArrayLen()
	if err != nil {
		return 0, decodeError("%s: %v", what, err)
	}
	return n, nil
}

// capHint bounds a preallocation by what the remaining bytes could hold.
func (d *decoder) capHint(n int) int {
	return min(n, d.r.Len())
}

// skip consumes a value of an unknown key; it must still be GTLP data
// (map, array, str, uint, bool) within the depth limit.
func (d *decoder) skip(what string, depth int) error {
	_, err := d.value(what, depth)
	return err
}

// value decodes any GTLP value into Go's generic types: map[string]any,
// []any, string, uint64, bool.
func (d *decoder) value(what string, depth int) (any, error) {
	c, err := d.peek(what)
	if err != nil {
		return nil, err
	}
	switch {
	case msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32:
		return d.genericMap(what, depth)
	case msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32:
		n, err := d.arrayLen(what, depth)
		if err != nil {
			return nil, err
		}
		out := make([]any, 0, d.capHint(n))
		for i := 0; i < n; i++ {
			v, err := d.value(fmt.Sprintf("%s[%d]", what, i), depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case msgpcode.IsString(c):
		return d.str(what)
	case c == msgpcode.True || c == msgpcode.False:
		return d.bool(what)
	default:
		return d.uint(what)
	}
}

func (d *decoder) genericMap(what string, depth int) (map[string]any, error) {
	n, err := d.mapLen(what, depth)
	if err != nil {
		return nil, err
	}
	out := make(map[string]any, d.capHint(n))
	for i := 0; i < n; i++ {
		k, err := d.str(what + " key")
		if err != nil {
			return nil, err
		}
		v, err := d.value(what+"."+k, depth+1)
		if err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, nil
}

// eachKey walks a map, calling fn for each key; fn must consume the value
// (or call d.skip) and returns an error to stop.
func (d *decoder) eachKey(what string, depth int, fn func(key string) error) error {
	n, err := d.mapLen(what, depth)
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		k, err := d.str(what + " key")
		if err != nil {
			return err
		}
		if err := fn(k); err != nil {
			return err
		}
	}
	return nil
}

// finish checks that the whole body was consumed.
func (d *decoder) finish() error {
	if n := d.r.Len(); n > 0 {
		return decodeError("%d trailing bytes after the body", n)
	}
	return nil
}

func (d *decoder) stringMap(what string, depth int) (map[string]string, error) {
	out := map[string]string{}
	err := d.eachKey(what, depth, func(k string) error {
		v, err := d.str(what + "." + k)
		out[k] = v
		return err
	})
	return out, err
}

func (d *decoder) ptrStr(what string) (*string, error) {
	s, err := d.str(what)
	if err != nil {
		return nil, err
	}
	return &s, nil
}

func (d *decoder) ptrUint(what string) (*uint64, error) {
	n, err := d.uint(what)
	if err != nil {
		return nil, err
	}
	return &n, nil
}

func (d *decoder) timestamp(what string) (time.Time, error) {
	ms, err := d.uint(what)
	if err != nil {
		return time.Time{}, err
	}
	if ms > math.MaxInt64 {
		return time.Time{}, decodeError("%s: timestamp out of range", what)
	}
	return time.UnixMilli(int64(ms)).UTC(), nil
}

func (d *decoder) duration(what string) (time.Duration, error) {
	ms, err := d.uint(what)
	if err != nil {
		return 0, err
	}
	if ms > uint64(math.MaxInt64/int64(time.Millisecond)) {
		return 0, decodeError("%s: duration out of range", what)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

func (d *decoder) cleanup(what string, depth int) (*CleanupConfig, error) {
	c := &CleanupConfig{}
	hasURL := false
	err := d.eachKey(what, depth, func(k string) error {
		var err error
		switch k {
		case "url":
			c.URL, err = d.str(what + ".url")
			hasURL = true
		case "payload":
			c.Payload, err = d.str(what + ".payload")
		case "max_retries":
			var n uint64
			n, err = d.uint(what + ".max_retries")
			if err == nil && n > math.MaxInt32 {
				err = decodeError("%s.max_retries out of range", what)
			}
			m := int(n)
			c.MaxRetries = &m
		case "retry_delay_ms":
			var dd time.Duration
			dd, err = d.duration(what + ".retry_delay_ms")
			c.RetryDelay = &dd
		default:
			err = d.skip(what+"."+k, depth+1)
		}
		return err
	})
	if err == nil && !hasURL {
		err = decodeError("%s: missing url", what)
	}
	return c, err
}

var leaseRequired = []string{"id", "object_id", "object_type", "service_id", "state", "fence",
	"ttl_ms", "created_at", "renewed_at", "expires_at", "renewals", "metadata"}

func (d *decoder) lease(what string, depth int) (*Lease, error) {
	l := &Lease{}
	seen := map[string]bool{}
	err := d.eachKey(what, depth, func(k string) error {
		var err error
		p := what + "." + k
		seen[k] = true
		switch k {
		case "id":
			l.ID, err = d.str(p)
		case "object_id":
			l.ObjectID, err = d.str(p)
		case "object_type":
			var s string
			s, err = d.str(p)
			l.ObjectType = ObjectType(s)
		case "service_id":
			l.ServiceID, err = d.str(p)
		case "state":
			var s string
			s, err = d.str(p)
			l.State = LeaseState(s)
		case "fence":
			l.Fence, err = d.uint(p)
		case "ttl_ms":
			l.TTL, err = d.duration(p)
		case "created_at":
			l.CreatedAt, err = d.timestamp(p)
		case "renewed_at":
			l.RenewedAt, err = d.timestamp(p)
		case "expires_at":
			l.ExpiresAt, err = d.timestamp(p)
		case "renewals":
			l.Renewals, err = d.uint(p)
		case "metadata":
			l.Metadata, err = d.stringMap(p, depth+1)
		case "cleanup":
			l.Cleanup, err = d.cleanup(p, depth+1)
		case "cleanup_status":
			var s string
			s, err = d.str(p)
			l.CleanupStatus = CleanupStatus(s)
		case "cleanup_attempts":
			l.CleanupAttempts, err = d.uint(p)
		case "cleanup_error":
			l.CleanupError, err = d.str(p)
		default:
			err = d.skip(p, depth+1)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, k := range leaseRequired {
		if !seen[k] {
			return nil, decodeError("%s: missing %s", what, k)
		}
	}
	return l, nil
}

func (d *decoder) event(what string, depth int) (*Event, error) {
	ev := &Event{}
	seen := map[string]bool{}
	err := d.eachKey(what, depth, func(k string) error {
		var err error
		p := what + "." + k
		seen[k] = true
		switch k {
		case "v":
			_, err = d.uint(p)
		case "seq":
			ev.Seq, err = d.uint(p)
		case "kind":
			var s string
			s, err = d.str(p)
			ev.Kind = EventKind(s)
		case "at":
			ev.At, err = d.timestamp(p)
		case "lease":
			var l *Lease
			l, err = d.lease(p, depth+1)
			if l != nil {
				ev.Lease = *l
			}
		case "reason":
			var s string
			s, err = d.str(p)
			ev.Reason = ReclaimReason(s)
		default:
			err = d.skip(p, depth+1)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, k := range []string{"v", "seq", "kind", "at", "lease"} {
		if !seen[k] {
			return nil, decodeError("%s: missing %s", what, k)
		}
	}
	return ev, nil
}

// decodeEvent decodes an event body.
func decodeEvent(body []byte) (*Event, error) {
	d := newDecoder(body)
	ev, err := d.event("event", 1)
	if err != nil {
		return nil, err
	}
	return ev, d.finish()
}

// decodeReply decodes a reply body.
func decodeReply(body []byte) (*reply, error) {
	d := newDecoder(body)
	r := &reply{}
	seen := map[string]bool{}
	const depth = 1
	err := d.eachKey("reply", depth, func(k string) error {
		var err error
		seen[k] = true
		switch k {
		case "v":
			r.V, err = d.uint(k)
		case "rid":
			r.RID, err = d.uint(k)
		case "code":
			var s string
			s, err = d.str(k)
			r.Code = Code(s)
		case "message":
			r.Message, err = d.ptrStr(k)
		case "versions":
			var n int
			if n, err = d.arrayLen(k, depth+1); err == nil {
				r.Versions = make([]uint64, 0, d.capHint(n))
				for i := 0; i < n && err == nil; i++ {
					var v uint64
					v, err = d.uint(k)
					r.Versions = append(r.Versions, v)
				}
			}
		case "lease":
			r.Lease, err = d.lease(k, depth+1)
		case "results":
			var n int
			if n, err = d.arrayLen(k, depth+1); err == nil {
				r.Results = make([]renewResult, 0, d.capHint(n))
				for i := 0; i < n && err == nil; i++ {
					var res renewResult
					res, err = d.renewResult(fmt.Sprintf("results[%d]", i), depth+2)
					r.Results = append(r.Results, res)
				}
			}
		case "leases":
			var n int
			if n, err = d.arrayLen(k, depth+1); err == nil {
				r.Leases = make([]*Lease, 0, d.capHint(n))
				for i := 0; i < n && err == nil; i++ {
					var l *Lease
					l, err = d.lease(fmt.Sprintf("leases[%d]", i), depth+2)
					r.Leases = append(r.Leases, l)
				}
			}
		case "cursor":
			r.Cursor, err = d.ptrStr(k)
		case "stats":
			r.Stats = map[string]uint64{}
			err = d.eachKey(k, depth+1, func(name string) error {
				v, err := d.uint("stats." + name)
				r.Stats[name] = v
				return err
			})
		case "events":
			var n int
			if n, err = d.arrayLen(k, depth+1); err == nil {
				r.Events = make([]Event, 0, d.capHint(n))
				for i := 0; i < n && err == nil; i++ {
					var ev *Event
					ev, err = d.event(fmt.Sprintf("events[%d]", i), depth+2)
					if ev != nil {
						r.Events = append(r.Events, *ev)
					}
				}
			}
		case "last_seq":
			r.LastSeq, err = d.ptrUint(k)
		case "status":
			r.Status, err = d.ptrStr(k)
		case "version":
			r.Version, err = d.ptrStr(k)
		case "store":
			r.Store, err = d.ptrStr(k)
		case "store_status":
			r.StoreStatus, err = d.ptrStr(k)
		case "uptime_ms":
			r.UptimeMS, err = d.ptrUint(k)
		case "now":
			r.Now, err = d.ptrUint(k)
		case "active_leases":
			r.ActiveLeases, err = d.ptrUint(k)
		default:
			err = d.skip(k, depth+1)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, k := range []string{"v", "rid", "code"} {
		if !seen[k] {
			return nil, decodeError("reply: missing %s", k)
		}
	}
	return r, d.finish()
}

func (d *decoder) renewResult(what string, depth int) (renewResult, error) {
	var res renewResult
	seen := map[string]bool{}
	err := d.eachKey(what, depth, func(k string) error {
		var err error
		p := what + "." + k
		seen[k] = true
		switch k {
		case "lease_id":
			res.LeaseID, err = d.str(p)
		case "code":
			var s string
			s, err = d.str(p)
			res.Code = Code(s)
		case "expires_at":
			res.ExpiresAt, err = d.ptrUint(p)
		case "message":
			res.Message, err = d.ptrStr(p)
		default:
			err = d.skip(p, depth+1)
		}
		return err
	})
	if err == nil && (!seen["lease_id"] || !seen["code"]) {
		err = decodeError("%s: missing lease_id or code", what)
	}
	return res, err
}

// decodeRequest decodes a request body (used by tests and tools; the broker
// has its own decoder).
func decodeRequest(body []byte) (*request, error) {
	d := newDecoder(body)
	r := &request{}
	seen := map[string]bool{}
	const depth = 1
	err := d.eachKey("request", depth, func(k string) error {
		var err error
		seen[k] = true
		switch k {
		case "v":
			r.V, err = d.uint(k)
		case "rid":
			r.RID, err = d.uint(k)
		case "cmd":
			r.Cmd, err = d.str(k)
		case "object_id":
			r.ObjectID, err = d.ptrStr(k)
		case "object_type":
			r.ObjectType, err = d.ptrStr(k)
		case "service_id":
			r.ServiceID, err = d.ptrStr(k)
		case "lease_id":
			r.LeaseID, err = d.ptrStr(k)
		case "ttl_ms":
			r.TTLms, err = d.ptrUint(k)
		case "metadata":
			r.Metadata, err = d.stringMap(k, depth+1)
		case "cleanup":
			r.Cleanup, err = d.cleanup(k, depth+1)
		case "idempotency_key":
			r.IdempotencyKey, err = d.ptrStr(k)
		case "lease_ids":
			var n int
			if n, err = d.arrayLen(k, depth+1); err == nil {
				r.LeaseIDs = make([]string, 0, d.capHint(n))
				for i := 0; i < n && err == nil; i++ {
					var s string
					s, err = d.str(fmt.Sprintf("lease_ids[%d]", i))
					r.LeaseIDs = append(r.LeaseIDs, s)
				}
			}
		case "retain":
			var b bool
			b, err = d.bool(k)
			r.Retain = &b
		case "state":
			r.State, err = d.ptrStr(k)
		case "cleanup_status":
			r.CleanupStatus, err = d.ptrStr(k)
		case "cursor":
			r.Cursor, err = d.ptrStr(k)
		case "limit":
			r.Limit, err = d.ptrUint(k)
		case "after_seq":
			r.AfterSeq, err = d.ptrUint(k)
		default:
			err = d.skip(k, depth+1)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, k := range []string{"v", "rid", "cmd"} {
		if !seen[k] {
			return nil, decodeError("request: missing %s", k)
		}
	}
	return r, d.finish()
}

// decodeGeneric decodes any GTLP body into map[string]any (strict types).
func decodeGeneric(body []byte) (map[string]any, error) {
	d := newDecoder(body)
	m, err := d.genericMap("body", 1)
	if err != nil {
		return nil, err
	}
	return m, d.finish()
}

// replyRID reads only the request id of a reply, for dispatching; 0 if it
// cannot be read.
func replyRID(body []byte) uint64 {
	d := newDecoder(body)
	n, err := d.mapLen("reply", 1)
	if err != nil {
		return 0
	}
	for i := 0; i < n; i++ {
		k, err := d.str("key")
		if err != nil {
			return 0
		}
		if k == "rid" {
			rid, err := d.uint("rid")
			if err != nil {
				return 0
			}
			return rid
		}
		if err := d.skip(k, 2); err != nil {
			return 0
		}
	}
	return 0
}
