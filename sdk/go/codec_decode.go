package garbagetruck

import (
	"bytes"
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// Decoding: strict GTLP/1 reading (see codec.go).

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
	isMap := func(c byte) bool { return msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32 }
	return d.containerLen(what, depth, "a map", isMap, d.dec.DecodeMapLen)
}

func (d *decoder) arrayLen(what string, depth int) (int, error) {
	isArray := func(c byte) bool { return msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32 }
	return d.containerLen(what, depth, "an array", isArray, d.dec.DecodeArrayLen)
}

// containerLen checks depth and type of the next map or array and reads its length.
func (d *decoder) containerLen(what string, depth int, kind string, isKind func(byte) bool,
	decodeLen func() (int, error)) (int, error) {
	if depth > maxDepth {
		return 0, decodeError("%s: nested deeper than %d", what, maxDepth)
	}
	c, err := d.peek(what)
	if err != nil {
		return 0, err
	}
	if !isKind(c) {
		return 0, decodeError("%s: expected %s, got code 0x%02x", what, kind, c)
	}
	n, err := decodeLen()
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
		return decodeArray(d, what, depth, func(i int) (any, error) {
			return d.value(fmt.Sprintf("%s[%d]", what, i), depth+1)
		})
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

// fields walks a map like eachKey, passing fn each key and its path
// (what.key), then reports the first of required that the map lacked.
func (d *decoder) fields(what string, depth int, required []string, fn func(k, p string) error) error {
	seen := map[string]bool{}
	err := d.eachKey(what, depth, func(k string) error {
		seen[k] = true
		return fn(k, what+"."+k)
	})
	if err != nil {
		return err
	}
	return requireKeys(seen, what, required...)
}

// decodeArray reads an array at depth, each element with elem (given its
// index); the slice is non-nil even when empty.
func decodeArray[T any](d *decoder, what string, depth int, elem func(i int) (T, error)) ([]T, error) {
	n, err := d.arrayLen(what, depth)
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, d.capHint(n))
	for i := 0; i < n; i++ {
		v, err := elem(i)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
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

// shard reads a shard number: 0 .. ShardCount-1 (GTLP.md §14.1).
func (d *decoder) shard(what string) (int, error) {
	n, err := d.uint(what)
	if err != nil {
		return 0, err
	}
	if n > maxShard {
		return 0, decodeError("%s: shard %d out of range", what, n)
	}
	return int(n), nil
}

func (d *decoder) ptrShard(what string) (*uint64, error) {
	n, err := d.shard(what)
	if err != nil {
		return nil, err
	}
	u := uint64(n)
	return &u, nil
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
	err := d.fields(what, depth, leaseRequired, func(k, p string) error {
		var err error
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
	return l, nil
}

func (d *decoder) event(what string, depth int) (*Event, error) {
	ev := &Event{}
	required := []string{"v", "seq", "kind", "at", "lease"}
	err := d.fields(what, depth, required, func(k, p string) error {
		var err error
		switch k {
		case "v":
			_, err = d.uint(p)
		case "seq":
			ev.Seq, err = d.uint(p)
		case "shard":
			ev.Shard, err = d.shard(p)
			ev.HasShard = true
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
	const depth = 1
	err := d.fields("reply", depth, []string{"v", "rid", "code"}, func(k, _ string) error {
		var err error
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
			r.Versions, err = decodeArray(d, k, depth+1, func(int) (uint64, error) { return d.uint(k) })
		case "shard":
			r.Shard, err = d.ptrShard(k)
		case "owner":
			r.Owner, err = d.ptrStr(k)
		case "retry_ms":
			r.RetryMS, err = d.ptrUint(k)
		case "map_version":
			r.MapVersion, err = d.ptrUint(k)
		case "cluster":
			var b bool
			b, err = d.bool(k)
			r.Cluster = &b
		case "brokers":
			r.Brokers, err = decodeArray(d, k, depth+1, func(i int) (BrokerInfo, error) {
				return d.broker(fmt.Sprintf("brokers[%d]", i), depth+2)
			})
		case "lease":
			r.Lease, err = d.lease(k, depth+1)
		case "results":
			r.Results, err = decodeArray(d, k, depth+1, func(i int) (renewResult, error) {
				return d.renewResult(fmt.Sprintf("results[%d]", i), depth+2)
			})
		case "leases":
			r.Leases, err = decodeArray(d, k, depth+1, func(i int) (*Lease, error) {
				return d.lease(fmt.Sprintf("leases[%d]", i), depth+2)
			})
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
			r.Events, err = decodeArray(d, k, depth+1, func(i int) (Event, error) {
				ev, err := d.event(fmt.Sprintf("events[%d]", i), depth+2)
				if err != nil {
					return Event{}, err
				}
				return *ev, nil
			})
		case "last_seq":
			r.LastSeq, err = d.ptrUint(k)
		case "scanned_seq":
			r.ScannedSeq, err = d.ptrUint(k) // optional: older brokers omit it
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
	return r, d.finish()
}

// broker reads a BROKER map of a MAP reply (GTLP.md §14.2).
func (d *decoder) broker(what string, depth int) (BrokerInfo, error) {
	var b BrokerInfo
	required := []string{"broker_id", "endpoint", "events_endpoint", "shards"}
	err := d.fields(what, depth, required, func(k, p string) error {
		var err error
		switch k {
		case "broker_id":
			b.BrokerID, err = d.str(p)
		case "endpoint":
			b.Endpoint, err = d.str(p)
		case "events_endpoint":
			b.EventsEndpoint, err = d.str(p)
		case "shards":
			b.Shards, err = decodeArray(d, p, depth+1, func(i int) (int, error) {
				return d.shard(fmt.Sprintf("%s[%d]", p, i))
			})
		case "epochs": // absent from brokers before it: Epochs stays nil
			b.Epochs, err = decodeArray(d, p, depth+1, func(i int) (uint64, error) {
				return d.uint(fmt.Sprintf("%s[%d]", p, i))
			})
		default:
			err = d.skip(p, depth+1)
		}
		return err
	})
	if err == nil && b.Epochs != nil && len(b.Epochs) != len(b.Shards) {
		err = decodeError("%s.epochs: %d entries, expected %d (one per shard)", what, len(b.Epochs), len(b.Shards))
	}
	return b, err
}

func (d *decoder) renewResult(what string, depth int) (renewResult, error) {
	var res renewResult
	seen := map[string]bool{}
	err := d.fields(what, depth, nil, func(k, p string) error {
		var err error
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
// has its own decoder). A malformed body is an ErrProtocol error; a
// service_id with a control character is refused with ErrInvalidArgument,
// as the broker refuses it.
func decodeRequest(body []byte) (*request, error) {
	d := newDecoder(body)
	r := &request{}
	const depth = 1
	err := d.fields("request", depth, []string{"v", "rid", "cmd"}, func(k, _ string) error {
		var err error
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
			// Optional (with CURVE the broker takes it from the key); its
			// events' topics end it with U+001F, so no control character
			// may hide in it.
			if r.ServiceID, err = d.ptrStr(k); err == nil && hasControl(*r.ServiceID) {
				err = fmt.Errorf("%w: service_id: contains a control character", ErrInvalidArgument)
			}
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
			r.LeaseIDs, err = decodeArray(d, k, depth+1, func(i int) (string, error) {
				return d.str(fmt.Sprintf("lease_ids[%d]", i))
			})
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
		case "shard":
			r.Shard, err = d.ptrShard(k)
		default:
			err = d.skip(k, depth+1)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return r, d.finish()
}

// hasControl reports whether s contains a control character (U+0000 to
// U+001F, or U+007F).
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
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

// requireKeys reports the first of keys that the map being decoded lacked.
func requireKeys(seen map[string]bool, what string, keys ...string) error {
	for _, k := range keys {
		if !seen[k] {
			return decodeError("%s: missing %s", what, k)
		}
	}
	return nil
}
