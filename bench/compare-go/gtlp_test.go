package main

// The benchmark's GTLP encoder and reader against the shared test vectors.

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

type vector struct {
	Value   map[string]any `json:"value"`
	Msgpack string         `json:"msgpack"`
}

func loadVector(t *testing.T, name string) ([]byte, map[string]any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "proto-spec", "vectors", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var v vector
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	body, err := hex.DecodeString(v.Msgpack)
	if err != nil {
		t.Fatal(err)
	}
	return body, v.Value
}

func TestEncoderMatchesVectors(t *testing.T) {
	enc := newRequestEncoder()
	body, _ := loadVector(t, "request_create_minimal")
	// request_create_minimal has no ttl_ms: check the prefix up to it, then
	// the full form with a TTL against a hand-built expectation.
	got := enc.create(1, "obj-1", "", "svc-a", 300000)
	if string(got[1:len(body)]) != string(body[1:]) {
		t.Errorf("CREATE prefix\n got %x\nwant %x", got, body)
	}
	if want := "ce000493e0"; hex.EncodeToString(got[len(got)-5:]) != want {
		t.Errorf("CREATE ttl_ms: got %x", got[len(got)-5:])
	}
	for name, cmd := range map[string]string{"request_renew_minimal": "RENEW", "request_release": "RELEASE"} {
		body, value := loadVector(t, name)
		got := enc.leaseOp(uint64(value["rid"].(float64)), cmd, value["lease_id"].(string), value["service_id"].(string))
		if string(got) != string(body) {
			t.Errorf("%s\n got %x\nwant %x", name, got, body)
		}
	}
}

func TestReaderOnVectors(t *testing.T) {
	body, _ := loadVector(t, "reply_create_ok")
	info, ok := parseReply(body, true)
	if !ok || !info.ok || info.rid != 1 || info.leaseID != "0123456789abcdef0123456789abcdef" {
		t.Errorf("reply_create_ok: %+v %v", info, ok)
	}
	body, _ = loadVector(t, "reply_error_not_found")
	if info, ok := parseReply(body, false); !ok || info.ok {
		t.Errorf("reply_error_not_found: %+v %v", info, ok)
	}
	body, value := loadVector(t, "event_lease_expired")
	ev, ok := parseExpired(body)
	lease := value["lease"].(map[string]any)
	want := uint64(lease["renewed_at"].(float64) + lease["ttl_ms"].(float64))
	if !ok || string(ev.objectID) != lease["object_id"] || ev.deadlineMS != want {
		t.Errorf("event_lease_expired: %+v %v, want deadline %d", ev, ok, want)
	}
	if _, ok := parseReply(body[:len(body)-3], false); ok {
		t.Error("a truncated body was accepted")
	}
}
