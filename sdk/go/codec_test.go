package garbagetruck

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// vectorsDir is the shared GTLP test vectors directory (GT_VECTORS_DIR
// overrides it).
func vectorsDir() string {
	if d := os.Getenv("GT_VECTORS_DIR"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "proto-spec", "vectors")
}

type vector struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Kind        string          `json:"kind"`
	Topic       string          `json:"topic"`
	Value       json.RawMessage `json:"value"`
	Msgpack     string          `json:"msgpack"`
}

func loadVectors(t *testing.T) map[string]vector {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(vectorsDir(), "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no test vectors in %s (set GT_VECTORS_DIR)", vectorsDir())
	}
	out := map[string]vector{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var v vector
		if err := json.Unmarshal(data, &v); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[filepath.Base(f)] = v
	}
	return out
}

// TestVectors checks every shared vector byte for byte both ways: bytes ->
// typed value -> bytes; bytes -> generic map == the vector's value; and the
// vector's value, encoded in its key order, == its bytes.
func TestVectors(t *testing.T) {
	for file, v := range loadVectors(t) {
		t.Run(file, func(t *testing.T) {
			want, err := hex.DecodeString(v.Msgpack)
			if err != nil {
				t.Fatalf("msgpack hex: %v", err)
			}
			if v.Msgpack != strings.ToLower(v.Msgpack) {
				t.Errorf("msgpack hex is not lowercase")
			}

			// bytes -> typed -> bytes
			var got []byte
			switch v.Kind {
			case "request":
				r, err := decodeRequest(want)
				if err != nil {
					t.Fatalf("decode request: %v", err)
				}
				got, err = encodeRequest(r)
				if err != nil {
					t.Fatal(err)
				}
			case "reply":
				r, err := decodeReply(want)
				if err != nil {
					t.Fatalf("decode reply: %v", err)
				}
				got, err = encodeReply(r)
				if err != nil {
					t.Fatal(err)
				}
			case "event":
				ev, err := decodeEvent(want)
				if err != nil {
					t.Fatalf("decode event: %v", err)
				}
				got, err = encodeEvent(ev)
				if err != nil {
					t.Fatal(err)
				}
				if ev.Topic() != v.Topic {
					t.Errorf("topic = %q, vector says %q", ev.Topic(), v.Topic)
				}
			default:
				t.Fatalf("unknown kind %q", v.Kind)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("typed round trip differs\n got %x\nwant %x", got, want)
			}

			// bytes -> generic map == value
			generic, err := decodeGeneric(want)
			if err != nil {
				t.Fatalf("generic decode: %v", err)
			}
			dec := json.NewDecoder(bytes.NewReader(v.Value))
			dec.UseNumber()
			var value any
			if err := dec.Decode(&value); err != nil {
				t.Fatalf("value: %v", err)
			}
			if g, w := normalize(generic), normalize(value); !reflect.DeepEqual(g, w) {
				t.Errorf("generic decode differs from value\n got %#v\nwant %#v", g, w)
			}

			// value (in its key order) -> bytes
			fromJSON, err := encodeOrderedJSON(v.Value)
			if err != nil {
				t.Fatalf("encode value: %v", err)
			}
			if !bytes.Equal(fromJSON, want) {
				t.Errorf("value encodes differently\n got %x\nwant %x", fromJSON, want)
			}
		})
	}
}

// normalize maps JSON numbers and msgpack integers to the same type.
func normalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			out[k] = normalize(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalize(e)
		}
		return out
	case json.Number:
		return string(x)
	case uint64:
		return strconv.FormatUint(x, 10)
	}
	return v
}

// encodeOrderedJSON encodes a JSON document as canonical msgpack, keeping the
// document's key order (the vectors list keys in canonical order).
func encodeOrderedJSON(doc []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	e := newEncoder()
	var walk func() error
	walk = func() error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch x := tok.(type) {
		case json.Delim:
			var items []json.RawMessage
			var keys []string
			closing := json.Delim('}')
			if x == '[' {
				closing = ']'
			}
			for dec.More() {
				if x == '{' {
					k, err := dec.Token()
					if err != nil {
						return err
					}
					keys = append(keys, k.(string))
				}
				var raw json.RawMessage
				if err := dec.Decode(&raw); err != nil {
					return err
				}
				items = append(items, raw)
			}
			if end, err := dec.Token(); err != nil || end != closing {
				return fmt.Errorf("unbalanced JSON")
			}
			if x == '{' {
				e.mapLen(len(items))
			} else {
				e.arrayLen(len(items))
			}
			for i, raw := range items {
				if x == '{' {
					e.str(keys[i])
				}
				b, err := encodeOrderedJSON(raw)
				if err != nil {
					return err
				}
				e.buf.Write(b)
			}
		case string:
			e.str(x)
		case bool:
			e.bool(x)
		case json.Number:
			n, err := strconv.ParseUint(string(x), 10, 64)
			if err != nil {
				return fmt.Errorf("number %s is not a uint", x)
			}
			e.uint(n)
		default:
			return fmt.Errorf("unexpected JSON token %v", tok)
		}
		return nil
	}
	if err := walk(); err != nil {
		return nil, err
	}
	return e.bytes()
}

// mp builds msgpack bytes by hand for the strictness tests.
type mp struct{ b []byte }

func (m *mp) raw(b ...byte) *mp { m.b = append(m.b, b...); return m }
func (m *mp) fixmap(n int) *mp  { return m.raw(0x80 | byte(n)) }
func (m *mp) s(s string) *mp {
	m.raw(0xa0 | byte(len(s)))
	m.b = append(m.b, s...)
	return m
}

func TestEncodeCanonical(t *testing.T) {
	// Shortest integer forms at every boundary.
	cases := map[uint64]string{
		0: "00", 127: "7f", 128: "cc80", 255: "ccff", 256: "cd0100", 65535: "cdffff",
		65536: "ce00010000", 1<<32 - 1: "ceffffffff", 1 << 32: "cf0000000100000000",
	}
	for n, want := range cases {
		e := newEncoder()
		e.uint(n)
		b, _ := e.bytes()
		if hex.EncodeToString(b) != want {
			t.Errorf("uint %d -> %x, want %s", n, b, want)
		}
	}
	// Strings: fixstr up to 31 bytes, then str8, str16.
	for n, prefix := range map[int]string{31: "bf", 32: "d920", 255: "d9ff", 256: "da0100"} {
		e := newEncoder()
		e.str(strings.Repeat("x", n))
		b, _ := e.bytes()
		if !strings.HasPrefix(hex.EncodeToString(b), prefix) {
			t.Errorf("str of %d bytes starts %x, want %s", n, b[:3], prefix)
		}
	}
	// Key order per table, optional keys omitted, metadata sorted.
	req := &request{V: 1, RID: 7, Cmd: cmdCreate, ObjectID: ptr("o"), ServiceID: ptr("s"),
		Metadata: map[string]string{"b": "2", "a": "1", "B": "3"}, IdempotencyKey: ptr("k")}
	b, err := encodeRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	want := new(mp).fixmap(7).s("v").raw(1).s("rid").raw(7).s("cmd").s("CREATE").
		s("object_id").s("o").s("service_id").s("s").
		s("metadata").fixmap(3).s("B").s("3").s("a").s("1").s("b").s("2").
		s("idempotency_key").s("k").b
	if !bytes.Equal(b, want) {
		t.Errorf("CREATE\n got %x\nwant %x", b, want)
	}
	// LIST puts service_id before object_id; fields of other commands are not written.
	req = &request{V: 1, RID: 1, Cmd: cmdList, ObjectID: ptr("o"), ServiceID: ptr("s"), Retain: ptr(true)}
	b, _ = encodeRequest(req)
	want = new(mp).fixmap(5).s("v").raw(1).s("rid").raw(1).s("cmd").s("LIST").
		s("service_id").s("s").s("object_id").s("o").b
	if !bytes.Equal(b, want) {
		t.Errorf("LIST\n got %x\nwant %x", b, want)
	}
}

func TestDecodeAcceptsAnyIntWidthAndUnknownKeys(t *testing.T) {
	body := new(mp).fixmap(6).
		s("v").raw(0xcf, 0, 0, 0, 0, 0, 0, 0, 1).     // uint64 1
		s("future").fixmap(1).s("x").raw(0x91, 0x01). // unknown, nested
		s("rid").raw(0xd0, 0x05).                     // int8 5
		s("code").s("OK").
		s("last_seq").raw(0xd3, 0, 0, 0, 0, 0, 0, 1, 0). // int64 256
		s("events").raw(0x90).b
	r, err := decodeReply(body)
	if err != nil {
		t.Fatal(err)
	}
	if r.V != 1 || r.RID != 5 || r.Code != CodeOK || *r.LastSeq != 256 || r.Events == nil {
		t.Errorf("decoded %+v", r)
	}
	if rid := replyRID(body); rid != 5 {
		t.Errorf("replyRID = %d", rid)
	}
}

func TestDecodeRejects(t *testing.T) {
	head := func() *mp { return new(mp).fixmap(4).s("v").raw(1).s("rid").raw(1).s("code").s("OK") }
	deep := new(mp).fixmap(4).s("v").raw(1).s("rid").raw(1).s("code").s("OK").s("x")
	for i := 0; i < 9; i++ {
		deep.raw(0x91)
	}
	deep.raw(0x01)
	cases := map[string][]byte{
		"not a map":        new(mp).raw(0x93, 1, 2, 3).b,
		"nil":              head().s("cursor").raw(0xc0).b,
		"bin string":       head().s("cursor").raw(0xc4, 1, 'x').b,
		"negative int":     head().s("last_seq").raw(0xff).b,
		"negative int16":   head().s("last_seq").raw(0xd1, 0xff, 0x00).b,
		"float":            head().s("last_seq").raw(0xca, 0, 0, 0, 0).b,
		"string for uint":  head().s("last_seq").s("1").b,
		"invalid utf-8":    head().s("cursor").raw(0xa2, 0xc3, 0x28).b,
		"trailing bytes":   append(head().s("cursor").s("c").b, 0x00),
		"truncated":        head().s("cursor").raw(0xa5, 'a').b,
		"non-string key":   head().raw(0x01).s("c").b,
		"too deep":         deep.b,
		"missing rid":      new(mp).fixmap(2).s("v").raw(1).s("code").s("OK").b,
		"lease wrong type": head().s("lease").s("x").b,
		"bool for string":  head().s("cursor").raw(0xc3).b,
	}
	for name, body := range cases {
		if _, err := decodeReply(body); !errors.Is(err, ErrProtocol) {
			t.Errorf("%s: err = %v, want ErrProtocol", name, err)
		}
	}
}

func TestLeaseRoundTrip(t *testing.T) {
	at := time.UnixMilli(1700000000123).UTC()
	lease := &Lease{
		ID: strings.Repeat("ab", 16), ObjectID: "/tmp/x", ObjectType: ObjectTypeTemporaryFile,
		ServiceID: "svc", State: LeaseActive, Fence: 3, TTL: 1500 * time.Millisecond,
		CreatedAt: at, RenewedAt: at, ExpiresAt: at.Add(1500 * time.Millisecond), Renewals: 0,
		Metadata: map[string]string{"path": "/tmp/x"},
		Cleanup:  &CleanupConfig{URL: "http://h/c", Payload: "p", MaxRetries: ptr(3), RetryDelay: ptr(2 * time.Second)},
	}
	ev := &Event{Seq: 9, Kind: EventObjectReclaimed, At: at, Lease: *lease, Reason: ReasonReleased}
	b, err := encodeEvent(ev)
	if err != nil {
		t.Fatal(err)
	}
	back, err := decodeEvent(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, ev) {
		t.Errorf("round trip\n got %+v\nwant %+v", back, ev)
	}
	if ev.Topic() != "svc\x1freclaimed.TEMPORARY_FILE" {
		t.Errorf("topic %q", ev.Topic())
	}
	// Cross-check with an independent generic decoder.
	var generic map[string]any
	if err := msgpack.Unmarshal(b, &generic); err != nil {
		t.Fatal(err)
	}
	if generic["kind"] != "object.reclaimed" || generic["reason"] != "released" {
		t.Errorf("generic %v", generic)
	}
}

func TestEnumStrings(t *testing.T) {
	if ObjectType("").String() != "UNKNOWN" || ObjectTypeBlobStorage.String() != "BLOB_STORAGE" {
		t.Error("ObjectType.String")
	}
	if LeaseExpired.String() != "EXPIRED" || EventLeaseRenewed.String() != "lease.renewed" {
		t.Error("LeaseState/EventKind.String")
	}
	verbs := map[EventKind]string{EventLeaseCreated: "created", EventLeaseRenewed: "renewed",
		EventLeaseReleased: "released", EventLeaseExpired: "expired", EventObjectReclaimed: "reclaimed"}
	for k, v := range verbs {
		if k.Verb() != v {
			t.Errorf("%s.Verb() = %q", k, k.Verb())
		}
	}
}

func TestBrokerErrorMatchesSentinels(t *testing.T) {
	for code, sentinel := range sentinels {
		err := fmt.Errorf("wrapped: %w", &BrokerError{Code: code, Message: "m"})
		if !errors.Is(err, sentinel) {
			t.Errorf("%s does not match its sentinel", code)
		}
		var be *BrokerError
		if !errors.As(err, &be) || be.Message != "m" || be.Error() != string(code)+": m" {
			t.Errorf("%s: As/Error broken: %v", code, err)
		}
		for other, s := range sentinels {
			if other != code && errors.Is(err, s) {
				t.Errorf("%s matches %s", code, other)
			}
		}
	}
}

func TestServicePrefix(t *testing.T) {
	ev := &Event{Kind: EventLeaseExpired, Lease: Lease{ServiceID: "upload-service", ObjectType: ObjectTypeTemporaryFile}}
	if got := ev.Topic(); got != "upload-service\x1fexpired.TEMPORARY_FILE" {
		t.Fatalf("topic %q", got)
	}
	if !strings.HasPrefix(ev.Topic(), ServicePrefix("upload-service")) {
		t.Error("a service's prefix misses its own event")
	}
	// A service's prefix reaches no other service, even one whose name
	// it starts.
	if strings.HasPrefix(ev.Topic(), ServicePrefix("upload")) {
		t.Error(`ServicePrefix("upload") matches upload-service's event`)
	}
	if (&Event{}).Topic() != "\x1f.UNKNOWN" {
		t.Errorf("zero event topic %q", (&Event{}).Topic())
	}
}

func TestRequestServiceIDOptional(t *testing.T) {
	// Left out when empty (CURVE: the broker takes it from the key), for
	// each command that carries it.
	for _, cmd := range []string{cmdCreate, cmdRenew, cmdRenewBatch, cmdRelease} {
		req := &request{V: 1, RID: 3, Cmd: cmd, ObjectID: ptr("o"), LeaseID: ptr(strings.Repeat("0", 32)),
			LeaseIDs: []string{strings.Repeat("1", 32)}}
		b, err := encodeRequest(req)
		if err != nil {
			t.Fatal(err)
		}
		back, err := decodeRequest(b)
		if err != nil {
			t.Fatalf("%s without service_id: %v", cmd, err)
		}
		if back.ServiceID != nil {
			t.Errorf("%s: service_id appeared: %q", cmd, *back.ServiceID)
		}
		if again, _ := encodeRequest(back); !bytes.Equal(again, b) {
			t.Errorf("%s: round trip\n got %x\nwant %x", cmd, again, b)
		}
	}
	// A control character in a request's service_id is refused, as the
	// broker refuses it.
	for _, bad := range []string{"a\x1fb", "a\nb", "\x00", "svc\x7f"} {
		body := new(mp).fixmap(5).s("v").raw(1).s("rid").raw(1).s("cmd").s("CREATE").
			s("object_id").s("o").s("service_id").s(bad).b
		_, err := decodeRequest(body)
		if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "service_id: contains a control character") {
			t.Errorf("service_id %q: err = %v", bad, err)
		}
	}
	body := new(mp).fixmap(5).s("v").raw(1).s("rid").raw(1).s("cmd").s("CREATE").
		s("object_id").s("o").s("service_id").s("ünïcode ok").b
	if _, err := decodeRequest(body); err != nil {
		t.Errorf("printable service_id refused: %v", err)
	}
}

func TestReplyScannedSeqOptional(t *testing.T) {
	// Older brokers leave scanned_seq out; it stays out on re-encoding.
	body := new(mp).fixmap(5).s("v").raw(1).s("rid").raw(2).s("code").s("OK").
		s("events").raw(0x90).s("last_seq").raw(7).b
	r, err := decodeReply(body)
	if err != nil {
		t.Fatal(err)
	}
	if r.ScannedSeq != nil || *r.LastSeq != 7 {
		t.Fatalf("decoded %+v", r)
	}
	if again, _ := encodeReply(r); !bytes.Equal(again, body) {
		t.Errorf("round trip\n got %x\nwant %x", again, body)
	}
	// When present it follows last_seq.
	r.ScannedSeq = ptr(uint64(5))
	b, _ := encodeReply(r)
	want := new(mp).fixmap(6).s("v").raw(1).s("rid").raw(2).s("code").s("OK").
		s("events").raw(0x90).s("last_seq").raw(7).s("scanned_seq").raw(5).b
	if !bytes.Equal(b, want) {
		t.Errorf("with scanned_seq\n got %x\nwant %x", b, want)
	}
}
