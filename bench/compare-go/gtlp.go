package main

// The few GTLP/1 messages the load clients need (GTLP.md §3, §5, §6):
// requests are encoded once, canonically, with msgpack/v5; replies and events
// are read with a small zero-allocation MessagePack walker that looks only at
// the keys a benchmark needs and skips everything else.

import (
	"bytes"

	"github.com/vmihailenco/msgpack/v5"
)

// ---------------------------------------------------------------------------
// Requests, canonical key order (GTLP.md §5.1, §5.2, §5.4)

type requestEncoder struct {
	buf bytes.Buffer
	enc *msgpack.Encoder
}

func newRequestEncoder() *requestEncoder {
	e := &requestEncoder{}
	e.enc = msgpack.NewEncoder(&e.buf)
	return e
}

// header starts a request map of fields entries after v, rid, cmd.
func (e *requestEncoder) header(rid uint64, cmd string, fields int) {
	e.buf.Reset()
	_ = e.enc.EncodeMapLen(3 + fields)
	e.str("v")
	_ = e.enc.EncodeUint(1)
	e.str("rid")
	_ = e.enc.EncodeUint(rid)
	e.str("cmd")
	e.str(cmd)
}

func (e *requestEncoder) str(s string) { _ = e.enc.EncodeString(s) }

// done returns a copy of the encoded body.
func (e *requestEncoder) done() []byte { return bytes.Clone(e.buf.Bytes()) }

func (e *requestEncoder) create(rid uint64, objectID, objectType, serviceID string, ttlMS uint64) []byte {
	fields := 3
	if objectType != "" {
		fields++
	}
	e.header(rid, "CREATE", fields)
	e.str("object_id")
	e.str(objectID)
	if objectType != "" {
		e.str("object_type")
		e.str(objectType)
	}
	e.str("service_id")
	e.str(serviceID)
	e.str("ttl_ms")
	_ = e.enc.EncodeUint(ttlMS)
	return e.done()
}

// leaseOp encodes RENEW or RELEASE with only lease_id and service_id.
func (e *requestEncoder) leaseOp(rid uint64, cmd, leaseID, serviceID string) []byte {
	e.header(rid, cmd, 2)
	e.str("lease_id")
	e.str(leaseID)
	e.str("service_id")
	e.str(serviceID)
	return e.done()
}

// ---------------------------------------------------------------------------
// Reading: a bounds-checked MessagePack walker over one body

type mpReader struct {
	b   []byte
	p   int
	bad bool
}

func (r *mpReader) need(n int) bool {
	if r.bad || n < 0 || r.p+n > len(r.b) {
		r.bad = true
		return false
	}
	return true
}

func (r *mpReader) byte1() byte {
	if !r.need(1) {
		return 0
	}
	r.p++
	return r.b[r.p-1]
}

func (r *mpReader) be(n int) uint64 {
	if !r.need(n) {
		return 0
	}
	var v uint64
	for _, c := range r.b[r.p : r.p+n] {
		v = v<<8 | uint64(c)
	}
	r.p += n
	return v
}

// mapLen reads a map header; -1 if the next value is not a map.
func (r *mpReader) mapLen() int {
	switch c := r.byte1(); {
	case c >= 0x80 && c <= 0x8f:
		return int(c & 0x0f)
	case c == 0xde:
		return int(r.be(2))
	case c == 0xdf:
		return int(r.be(4))
	}
	r.bad = true
	return -1
}

// str reads a string and returns a slice into the body (not a copy).
func (r *mpReader) str() []byte {
	var n int
	switch c := r.byte1(); {
	case c >= 0xa0 && c <= 0xbf:
		n = int(c & 0x1f)
	case c == 0xd9:
		n = int(r.be(1))
	case c == 0xda:
		n = int(r.be(2))
	case c == 0xdb:
		n = int(r.be(4))
	default:
		r.bad = true
		return nil
	}
	if !r.need(n) {
		return nil
	}
	r.p += n
	return r.b[r.p-n : r.p]
}

func (r *mpReader) uint() uint64 {
	switch c := r.byte1(); {
	case c <= 0x7f:
		return uint64(c)
	case c == 0xcc:
		return r.be(1)
	case c == 0xcd:
		return r.be(2)
	case c == 0xce:
		return r.be(4)
	case c == 0xcf:
		return r.be(8)
	}
	r.bad = true
	return 0
}

// skip passes over one value of any type; depth bounds nesting.
func (r *mpReader) skip(depth int) {
	if depth > 16 {
		r.bad = true
		return
	}
	c := r.byte1()
	switch {
	case r.bad:
	case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
	case c >= 0x80 && c <= 0x8f:
		r.skipN(2*int(c&0x0f), depth)
	case c >= 0x90 && c <= 0x9f:
		r.skipN(int(c&0x0f), depth)
	case c >= 0xa0 && c <= 0xbf:
		r.advance(int(c & 0x1f))
	default:
		switch c {
		case 0xc4, 0xd9:
			r.advance(int(r.be(1)))
		case 0xc5, 0xda:
			r.advance(int(r.be(2)))
		case 0xc6, 0xdb:
			r.advance(int(r.be(4)))
		case 0xc7:
			r.advance(int(r.be(1)) + 1)
		case 0xc8:
			r.advance(int(r.be(2)) + 1)
		case 0xc9:
			r.advance(int(r.be(4)) + 1)
		case 0xca:
			r.advance(4)
		case 0xcb:
			r.advance(8)
		case 0xcc, 0xd0:
			r.advance(1)
		case 0xcd, 0xd1:
			r.advance(2)
		case 0xce, 0xd2:
			r.advance(4)
		case 0xcf, 0xd3:
			r.advance(8)
		case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8:
			r.advance(1<<(c-0xd4) + 1)
		case 0xdc:
			r.skipN(int(r.be(2)), depth)
		case 0xdd:
			r.skipN(int(r.be(4)), depth)
		case 0xde:
			r.skipN(2*int(r.be(2)), depth)
		case 0xdf:
			r.skipN(2*int(r.be(4)), depth)
		default:
			r.bad = true
		}
	}
}

func (r *mpReader) skipN(n, depth int) {
	for i := 0; i < n && !r.bad; i++ {
		r.skip(depth + 1)
	}
}

func (r *mpReader) advance(n int) {
	if r.need(n) {
		r.p += n
	}
}

// replyInfo is what a benchmark reads from a reply.
type replyInfo struct {
	rid     uint64
	ok      bool   // code == "OK"
	leaseID string // lease.id, when the reply has a lease and wantID
}

var keyCode, keyRID, keyLease, keyID = []byte("code"), []byte("rid"), []byte("lease"), []byte("id")

// parseReply reads rid, code and (with wantID) lease.id; false if malformed.
func parseReply(body []byte, wantID bool) (replyInfo, bool) {
	var info replyInfo
	r := mpReader{b: body}
	n := r.mapLen()
	for i := 0; i < n && !r.bad; i++ {
		key := r.str()
		switch {
		case bytes.Equal(key, keyRID):
			info.rid = r.uint()
		case bytes.Equal(key, keyCode):
			info.ok = string(r.str()) == "OK"
		case wantID && bytes.Equal(key, keyLease):
			m := r.mapLen()
			for j := 0; j < m && !r.bad; j++ {
				if bytes.Equal(r.str(), keyID) {
					info.leaseID = string(r.str())
				} else {
					r.skip(1)
				}
			}
		default:
			r.skip(0)
		}
	}
	return info, !r.bad
}

// expiredEvent is what the expiry benchmark reads from a lease.expired event.
type expiredEvent struct {
	objectID   []byte // slice into the body
	deadlineMS uint64 // renewed_at + ttl_ms: the deadline on the broker's wall clock
}

var keyObjectID, keyTTL, keyRenewedAt = []byte("object_id"), []byte("ttl_ms"), []byte("renewed_at")

func parseExpired(body []byte) (expiredEvent, bool) {
	var ev expiredEvent
	var ttl, renewed uint64
	found := 0
	r := mpReader{b: body}
	n := r.mapLen()
	for i := 0; i < n && !r.bad; i++ {
		if !bytes.Equal(r.str(), keyLease) {
			r.skip(0)
			continue
		}
		m := r.mapLen()
		for j := 0; j < m && !r.bad; j++ {
			key := r.str()
			switch {
			case bytes.Equal(key, keyObjectID):
				ev.objectID = r.str()
				found++
			case bytes.Equal(key, keyTTL):
				ttl = r.uint()
				found++
			case bytes.Equal(key, keyRenewedAt):
				renewed = r.uint()
				found++
			default:
				r.skip(1)
			}
		}
	}
	ev.deadlineMS = renewed + ttl
	return ev, !r.bad && found == 3
}
