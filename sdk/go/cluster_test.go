package garbagetruck

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/garbagetruck/garbagetruck/sdk/go/gttest"
)

// The cluster additions of GTLP.md §14: MAP, MOVED, TRY_AGAIN, REPLAY's
// shard and the events' shard. TestVectors checks their bytes both ways;
// these check that the typed values say what the vectors mean.

func vectorBytes(t *testing.T, name string) []byte {
	t.Helper()
	v, ok := loadVectors(t)[name+".json"]
	if !ok {
		t.Fatalf("no vector %s in %s", name, filepath.Clean(vectorsDir()))
	}
	b, err := hex.DecodeString(v.Msgpack)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func vectorReply(t *testing.T, name string) *reply {
	t.Helper()
	r, err := decodeReply(vectorBytes(t, name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return r
}

func TestClusterVectorsMap(t *testing.T) {
	req, err := decodeRequest(vectorBytes(t, "request_map"))
	if err != nil || req.Cmd != cmdMap || req.RID != 18 {
		t.Fatalf("request_map: %+v, %v", req, err)
	}
	// The request Client.ShardMap builds encodes to the vector.
	if b, _ := encodeRequest(&request{V: 1, RID: 18, Cmd: cmdMap}); !bytes.Equal(b, vectorBytes(t, "request_map")) {
		t.Errorf("MAP request %x", b)
	}

	m, err := vectorReply(t, "reply_map_cluster").shardMap()
	if err != nil {
		t.Fatal(err)
	}
	want := &ShardMap{MapVersion: 514, Cluster: true, Brokers: []BrokerInfo{
		{BrokerID: "broker-a", Endpoint: "tcp://10.0.0.1:50051", EventsEndpoint: "tcp://10.0.0.1:50052", Shards: []int{0, 1, 2, 200},
			Epochs: []uint64{1, 1, 3, 300}},
		{BrokerID: "broker-b", Endpoint: "tcp://10.0.0.2:50051", EventsEndpoint: "tcp://10.0.0.2:50052", Shards: []int{4, 255},
			Epochs: []uint64{2, 70000}},
	}}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("cluster map\n got %+v\nwant %+v", m, want)
	}
	if b, ok := m.OwnerOf(200); !ok || b.BrokerID != "broker-a" {
		t.Errorf("OwnerOf(200) = %v, %v", b, ok)
	}
	if b, ok := m.OwnerOf(255); !ok || b.BrokerID != "broker-b" {
		t.Errorf("OwnerOf(255) = %v, %v", b, ok)
	}
	if _, ok := m.OwnerOf(3); ok {
		t.Error("shard 3 has no owner")
	}

	m, err = vectorReply(t, "reply_map_single").shardMap()
	if err != nil {
		t.Fatal(err)
	}
	want = &ShardMap{MapVersion: 0, Cluster: false, Brokers: []BrokerInfo{
		{BrokerID: "vm:50051", Endpoint: "tcp://127.0.0.1:50051", EventsEndpoint: "tcp://127.0.0.1:50052", Shards: []int{},
			Epochs: []uint64{}},
	}}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("single map\n got %+v\nwant %+v", m, want)
	}
	if !m.Brokers[0].HasEpochs() || m.clone().Brokers[0].Epochs == nil {
		t.Error("single map: an empty epochs list is present, not absent")
	}

	// A broker before epochs (GTLP.md §14.2): accepted, Epochs nil, and
	// re-encoded without them.
	m, err = vectorReply(t, "reply_map_without_epochs").shardMap()
	if err != nil {
		t.Fatal(err)
	}
	want = &ShardMap{MapVersion: 3, Cluster: false, Brokers: []BrokerInfo{
		{BrokerID: "old", Endpoint: "tcp://127.0.0.1:50051", EventsEndpoint: "tcp://127.0.0.1:50052", Shards: []int{7}},
	}}
	if !reflect.DeepEqual(m, want) || m.Brokers[0].HasEpochs() || m.clone().Brokers[0].Epochs != nil {
		t.Errorf("map without epochs\n got %+v\nwant %+v", m, want)
	}
	if b, ok := m.OwnerOf(7); !ok || b.BrokerID != "old" {
		t.Errorf("OwnerOf(7) = %v, %v", b, ok)
	}

	// A reply without the MAP fields is a protocol error.
	if _, err := (&reply{Code: CodeOK}).shardMap(); !errors.Is(err, ErrProtocol) {
		t.Errorf("empty MAP reply: %v", err)
	}
}

func TestClusterVectorsErrors(t *testing.T) {
	err := error(vectorReply(t, "reply_error_moved").brokerError())
	var be *BrokerError
	if !errors.Is(err, ErrMoved) || !errors.As(err, &be) {
		t.Fatalf("MOVED: %v", err)
	}
	if be.Code != CodeMoved || be.Shard != 200 || be.Owner != "tcp://10.0.0.2:50051" || be.MapVersion != 514 ||
		be.Message != "shard 200 is owned by broker-b" || !be.Temporary() {
		t.Errorf("MOVED: %+v", be)
	}

	err = vectorReply(t, "reply_error_try_again").brokerError()
	if !errors.Is(err, ErrTryAgain) || !errors.As(err, &be) {
		t.Fatalf("TRY_AGAIN: %v", err)
	}
	if be.Code != CodeTryAgain || be.Shard != 3 || be.RetryAfter != 100*time.Millisecond || be.Owner != "" ||
		!be.Temporary() {
		t.Errorf("TRY_AGAIN: %+v", be)
	}

	// RENEW_BATCH: per-lease MOVED and TRY_AGAIN.
	r := vectorReply(t, "reply_renew_batch_moved")
	codes := []Code{}
	for _, res := range r.Results {
		codes = append(codes, res.Code)
	}
	if !reflect.DeepEqual(codes, []Code{CodeOK, CodeMoved, CodeTryAgain}) || r.Results[1].Message == nil {
		t.Errorf("RENEW_BATCH results %+v", r.Results)
	}
}

func TestClusterVectorsReplayAndEvents(t *testing.T) {
	req, err := decodeRequest(vectorBytes(t, "request_replay_shard"))
	if err != nil || req.Shard == nil || *req.Shard != 200 || *req.AfterSeq != 41 || *req.Limit != 500 {
		t.Fatalf("request_replay_shard: %+v, %v", req, err)
	}
	req, err = decodeRequest(vectorBytes(t, "request_replay"))
	if err != nil || req.Shard != nil {
		t.Fatalf("request_replay: %+v, %v", req, err)
	}

	r := vectorReply(t, "reply_replay_shard")
	if len(r.Events) != 1 || !r.Events[0].HasShard || r.Events[0].Shard != 200 || r.Events[0].Seq != 42 {
		t.Errorf("reply_replay_shard events %+v", r.Events)
	}
	for name, shard := range map[string]int{"event_lease_created_shard": 200, "event_object_reclaimed_shard": 0} {
		ev, err := decodeEvent(vectorBytes(t, name))
		if err != nil || !ev.HasShard || ev.Shard != shard {
			t.Errorf("%s: %+v, %v", name, ev, err)
		}
	}
	ev, err := decodeEvent(vectorBytes(t, "event_lease_created"))
	if err != nil || ev.HasShard || ev.Shard != 0 {
		t.Errorf("single-mode event: %+v, %v", ev, err)
	}
}

func TestClusterDecodeRejectsBadShard(t *testing.T) {
	head := func(n int) *mp { return new(mp).fixmap(n).s("v").raw(1).s("rid").raw(1).s("code").s("MOVED") }
	cases := map[string][]byte{
		"shard 256":       head(4).s("shard").raw(0xcd, 0x01, 0x00).b,
		"shard string":    head(4).s("shard").s("1").b,
		"cluster uint":    head(4).s("cluster").raw(1).b,
		"broker no shard": head(4).s("brokers").raw(0x91).fixmap(1).s("broker_id").s("b").b,
		"broker shard 300": head(4).s("brokers").raw(0x91).fixmap(4).s("broker_id").s("b").s("endpoint").s("e").
			s("events_endpoint").s("p").s("shards").raw(0x91, 0xcd, 0x01, 0x2c).b,
		"broker epochs short": head(4).s("brokers").raw(0x91).fixmap(5).s("broker_id").s("b").s("endpoint").s("e").
			s("events_endpoint").s("p").s("shards").raw(0x92, 1, 2).s("epochs").raw(0x91, 1).b,
		"broker epochs long": head(4).s("brokers").raw(0x91).fixmap(5).s("broker_id").s("b").s("endpoint").s("e").
			s("events_endpoint").s("p").s("shards").raw(0x90).s("epochs").raw(0x91, 1).b,
		"broker epochs negative": head(4).s("brokers").raw(0x91).fixmap(5).s("broker_id").s("b").s("endpoint").s("e").
			s("events_endpoint").s("p").s("shards").raw(0x91, 1).s("epochs").raw(0x91, 0xff).b,
		"broker epochs string": head(4).s("brokers").raw(0x91).fixmap(5).s("broker_id").s("b").s("endpoint").s("e").
			s("events_endpoint").s("p").s("shards").raw(0x91, 1).s("epochs").raw(0x91).s("1").b,
		"broker epochs uint": head(4).s("brokers").raw(0x91).fixmap(5).s("broker_id").s("b").s("endpoint").s("e").
			s("events_endpoint").s("p").s("shards").raw(0x91, 1).s("epochs").raw(1).b,
	}
	for name, body := range cases {
		if _, err := decodeReply(body); !errors.Is(err, ErrProtocol) {
			t.Errorf("%s: err = %v, want ErrProtocol", name, err)
		}
	}
	if _, err := (*Client)(nil).ReplayShard(context.Background(), 256, 0, 1); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("ReplayShard(256): %v", err)
	}
	if _, err := (*Client)(nil).ReplayShard(context.Background(), -1, 0, 1); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("ReplayShard(-1): %v", err)
	}
}

// TestClusterCallsSingleBroker runs the new calls against one broker: MAP is
// answered (single mode) or refused as UNSUPPORTED_COMMAND by a broker
// without it; REPLAY's shard is ignored in single mode.
func TestClusterCallsSingleBroker(t *testing.T) {
	b := gttest.Start(t)
	c := dial(t, b.Endpoint, "svc")
	ctx := testCtx(t, 20*time.Second)
	m, err := c.ShardMap(ctx)
	switch {
	case errors.Is(err, ErrUnsupportedCommand):
		t.Log("this broker does not know MAP yet")
	case err != nil:
		t.Fatal(err)
	default:
		t.Logf("MAP: version %d, cluster %v, %d broker(s)", m.MapVersion, m.Cluster, len(m.Brokers))
	}
	if err == nil && m.Cluster {
		t.Errorf("a single broker says cluster: %+v", m)
	}
	if err == nil {
		for _, br := range m.Brokers { // epochs, one per shard, or none (a broker before them)
			if br.HasEpochs() && len(br.Epochs) != len(br.Shards) {
				t.Errorf("broker %s: %d epochs for %d shards", br.BrokerID, len(br.Epochs), len(br.Shards))
			}
		}
	}
	if _, err := c.CreateLease(ctx, CreateRequest{ObjectID: "o", TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	page, err := c.ReplayShard(ctx, ShardOf("o"), 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 1 || page.Events[0].HasShard {
		t.Errorf("single-mode replay %+v", page.Events)
	}
}
