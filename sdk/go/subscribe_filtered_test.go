package garbagetruck

import (
	"slices"
	"sync"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"
)

// filteringBroker is an in-process stand-in for a broker with CURVE seen
// through one service's key: its REPLAY returns only that service's events
// and examines at most scanMax history records per page (as the real broker
// bounds a page's work), saying how far it read with scanned_seq; its PUB
// socket publishes only that service's events.
type filteringBroker struct {
	service string
	scanMax int

	requests, events string // endpoints

	publish chan Event    // events to add to the history, owned by run
	done    chan struct{} // closed to stop run
	wg      sync.WaitGroup
}

func startFilteringBroker(t *testing.T, service string, scanMax int, history []Event) *filteringBroker {
	t.Helper()
	socks := zmqSockets(t, zmq.ROUTER, zmq.PUB)
	router, pub := socks[0], socks[1]
	for _, s := range socks {
		if err := s.Bind("tcp://127.0.0.1:*"); err != nil {
			t.Fatal(err)
		}
	}
	b := &filteringBroker{service: service, scanMax: scanMax, publish: make(chan Event), done: make(chan struct{})}
	b.requests, _ = router.GetLastEndpoint()
	b.events, _ = pub.GetLastEndpoint()
	b.wg.Add(1)
	go b.run(router, pub, slices.Clone(history))
	t.Cleanup(func() {
		close(b.done)
		b.wg.Wait()
	})
	return b
}

// run owns both sockets: it answers REPLAY and publishes new events.
func (b *filteringBroker) run(router, pub *zmq.Socket, history []Event) {
	defer b.wg.Done()
	poller := zmq.NewPoller()
	poller.Add(router, zmq.POLLIN)
	for {
		select {
		case <-b.done:
			return
		case ev := <-b.publish:
			history = append(history, ev)
			if ev.Lease.ServiceID == b.service {
				body, _ := encodeEvent(&ev)
				pub.SendMessage(ev.Topic(), body)
			}
			continue
		default:
		}
		polled, err := poller.Poll(10 * time.Millisecond)
		if err != nil || len(polled) == 0 {
			continue
		}
		frames, err := router.RecvMessageBytes(0)
		if err != nil || len(frames) != 2 {
			continue
		}
		req, err := decodeRequest(frames[1])
		if err != nil || req.Cmd != cmdReplay || req.AfterSeq == nil {
			continue // the subscriber sends nothing else
		}
		body, _ := encodeReply(b.replay(history, req))
		router.SendMessage(frames[0], body)
	}
}

// replay builds a filtered REPLAY page.
func (b *filteringBroker) replay(history []Event, req *request) *reply {
	limit := 100
	if req.Limit != nil {
		limit = int(*req.Limit)
	}
	last := uint64(0)
	if len(history) > 0 {
		last = history[len(history)-1].Seq
	}
	after := *req.AfterSeq
	scanned := min(after, last)
	events := []Event{}
	examined := 0
	for _, ev := range history {
		if ev.Seq <= after {
			continue
		}
		if len(events) == limit || examined == b.scanMax {
			break
		}
		if ev.Lease.ServiceID == b.service {
			events = append(events, ev)
		}
		scanned = ev.Seq
		examined++
	}
	return &reply{V: ProtocolVersion, RID: req.RID, Code: CodeOK, Events: events, LastSeq: &last, ScannedSeq: &scanned}
}

// filteredEvents makes events from seq first to last, of service "a" at the
// seqs in mine and of "b" otherwise.
func filteredEvents(first, last uint64, mine ...uint64) []Event {
	var out []Event
	for seq := first; seq <= last; seq++ {
		svc := "b"
		if slices.Contains(mine, seq) {
			svc = "a"
		}
		out = append(out, Event{Seq: seq, Kind: EventLeaseCreated, At: time.UnixMilli(int64(seq)).UTC(),
			Lease: Lease{ID: "l", ObjectID: "o", ServiceID: svc, State: LeaseActive, Metadata: map[string]string{}}})
	}
	return out
}

// TestSubscribeFollowsScannedSeq checks the gap filling against a filtering
// broker (GTLP.md §5.9 scanned_seq): pages that hold none of the service's
// events still move the subscription forward, so no event of the service is
// skipped and a live event after many foreign ones is delivered at once.
func TestSubscribeFollowsScannedSeq(t *testing.T) {
	b := startFilteringBroker(t, "a", 4, filteredEvents(1, 30, 3, 10, 11, 25))
	c := dial(t, b.requests, "a")
	ctx := testCtx(t, 20*time.Second)
	from := uint64(1)
	s, err := c.Subscribe(ctx, b.events, SubscribeOptions{FromSeq: &from, CatchUpInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// A subscription that starts live learns the head through REPLAY (a
	// service's key may not read STATS).
	live, err := c.Subscribe(ctx, b.events, SubscribeOptions{CatchUpInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []uint64{3, 10, 11, 25} {
		if ev := next(t, s, 5*time.Second); ev.Seq != want {
			t.Fatalf("history: got seq %d, want %d", ev.Seq, want)
		}
	}
	go func() {
		for _, ev := range filteredEvents(31, 45, 37, 45) {
			select {
			case b.publish <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	for _, sub := range []*Subscription{s, live} {
		for _, want := range []uint64{37, 45} {
			if ev := next(t, sub, 5*time.Second); ev.Seq != want || ev.Lease.ServiceID != "a" {
				t.Fatalf("live: got seq %d of %q, want %d of a", ev.Seq, ev.Lease.ServiceID, want)
			}
		}
	}
	select {
	case ev := <-s.Events():
		t.Fatalf("extra event %d", ev.Seq)
	case ev := <-live.Events():
		t.Fatalf("extra event %d", ev.Seq)
	case <-time.After(200 * time.Millisecond): // a few catch-up rounds
	}
}
