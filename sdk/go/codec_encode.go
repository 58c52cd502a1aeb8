package garbagetruck

import (
	"bytes"
	"slices"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// Encoding: the canonical GTLP/1 bytes (see codec.go).

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

// uints writes an array of unsigned integers.
func (e *encoder) uints(vs []uint64) {
	e.arrayLen(len(vs))
	for _, v := range vs {
		e.uint(v)
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
	if ev.HasShard {
		n++
	}
	if ev.Reason != "" {
		n++
	}
	e.mapLen(n)
	e.str("v")
	e.uint(ProtocolVersion)
	e.str("seq")
	e.uint(ev.Seq)
	if ev.HasShard {
		e.str("shard")
		e.uint(uint64(max(ev.Shard, 0)))
	}
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

// broker writes a BROKER map of a MAP reply (GTLP.md §14.2).
func (e *encoder) broker(b *BrokerInfo) {
	if b.Epochs != nil {
		e.mapLen(5)
	} else {
		e.mapLen(4) // a broker before epochs
	}
	e.str("broker_id")
	e.str(b.BrokerID)
	e.str("endpoint")
	e.str(b.Endpoint)
	e.str("events_endpoint")
	e.str(b.EventsEndpoint)
	e.str("shards")
	e.arrayLen(len(b.Shards))
	for _, sh := range b.Shards {
		e.uint(uint64(max(sh, 0)))
	}
	if b.Epochs != nil {
		e.str("epochs")
		e.uints(b.Epochs)
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
	case "shard":
		return r.Shard != nil
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
	case "shard":
		e.uint(*r.Shard)
	}
}

// envelope writes the map of a request or reply: v, rid, the third fixed
// key (cmd or code) with its value, then each of keys that has reports, in
// that order, written by field.
func (e *encoder) envelope(v, rid uint64, key, value string, keys []string, has func(string) bool,
	field func(string)) {
	n := 3
	for _, k := range keys {
		if has(k) {
			n++
		}
	}
	e.mapLen(n)
	e.str("v")
	e.uint(v)
	e.str("rid")
	e.uint(rid)
	e.str(key)
	e.str(value)
	for _, k := range keys {
		if has(k) {
			field(k)
		}
	}
}

// encodeRequest returns the canonical bytes of a request. Fields that do not
// belong to the command are not written.
func encodeRequest(r *request) ([]byte, error) {
	e := newEncoder()
	e.envelope(r.V, r.RID, "cmd", r.Cmd, requestKeys[r.Cmd], r.has, func(k string) { e.requestField(r, k) })
	return e.bytes()
}

func (r *reply) has(key string) bool {
	switch key {
	case "message":
		return r.Message != nil
	case "versions":
		return r.Versions != nil
	case "shard":
		return r.Shard != nil
	case "owner":
		return r.Owner != nil
	case "retry_ms":
		return r.RetryMS != nil
	case "map_version":
		return r.MapVersion != nil
	case "cluster":
		return r.Cluster != nil
	case "brokers":
		return r.Brokers != nil
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
	case "scanned_seq":
		return r.ScannedSeq != nil
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
		e.uints(r.Versions)
	case "shard":
		e.uint(*r.Shard)
	case "owner":
		e.str(*r.Owner)
	case "retry_ms":
		e.uint(*r.RetryMS)
	case "map_version":
		e.uint(*r.MapVersion)
	case "cluster":
		e.bool(*r.Cluster)
	case "brokers":
		e.arrayLen(len(r.Brokers))
		for i := range r.Brokers {
			e.broker(&r.Brokers[i])
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
	case "scanned_seq":
		e.uint(*r.ScannedSeq)
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
	e.envelope(r.V, r.RID, "code", string(r.Code), replyKeys, r.has, func(k string) { e.replyField(r, k) })
	return e.bytes()
}

// encodeEvent returns the canonical bytes of an event body.
func encodeEvent(ev *Event) ([]byte, error) {
	e := newEncoder()
	e.event(ev)
	return e.bytes()
}
