package garbagetruck

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// The shard vectors, as the broker computes them (proto-spec/vectors/shards).
func TestShardVectors(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(vectorsDir(), "shards", "shards.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		ShardCount int `json:"shard_count"`
		Cases      []struct {
			ObjectID string `json:"object_id"`
			FNV      string `json:"fnv1a_64"`
			Shard    int    `json:"shard"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.ShardCount != ShardCount || len(doc.Cases) < 5 {
		t.Fatalf("shard_count %d, %d cases", doc.ShardCount, len(doc.Cases))
	}
	for _, c := range doc.Cases {
		if got := fmt.Sprintf("%016x", FNV1a64([]byte(c.ObjectID))); got != c.FNV {
			t.Errorf("fnv1a_64(%q) = %s, want %s", c.ObjectID, got, c.FNV)
		}
		if got := ShardOf(c.ObjectID); got != c.Shard {
			t.Errorf("ShardOf(%q) = %d, want %d", c.ObjectID, got, c.Shard)
		}
	}
	if shard, err := LeaseIDShard("ff000000000000000000000000000000"); err != nil || shard != 255 {
		t.Errorf("LeaseIDShard = %d, %v", shard, err)
	}
	if _, err := LeaseIDShard("zz000000000000000000000000000000"); err == nil {
		t.Error("LeaseIDShard accepted a bad id")
	}
}
