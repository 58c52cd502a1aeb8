// goclient: the Go SDK's side of tests/cluster/test_sdk_failover.py.
//
// It dials every endpoint given (the SDK routes by the shard map), subscribes
// (the SDK takes the events endpoints from the map), holds one lease per
// object with the SDK's keep-alive, and prints one JSON line per thing it
// saw, for the test to check against the database:
//
//	{"type":"subscribed"}
//	{"type":"held","id":…,"object_id":…,"renewals":0,"renewed_at":MS,"expires_at":MS}
//	{"type":"renewed","id":…,"renewals":N,"renewed_at":MS,"expires_at":MS}  (a renewal the keeper acknowledged)
//	{"type":"lost","id":…,"error":…}                                        (the SDK reported the lease lost)
//	{"type":"event","shard":S,"has_shard":true,"seq":N,"kind":…,"at":MS,"lease":…}
//	{"type":"final","leases":{ID: "" or the error},"subscription":"" or the error}
//
// It runs until its standard input closes or it gets SIGTERM/SIGINT, then
// prints the final line and exits 0 (2 on a setup error). Times are wall
// milliseconds since the epoch.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	gt "github.com/garbagetruck/garbagetruck/sdk/go"
)

var (
	outMu sync.Mutex
	out   = json.NewEncoder(os.Stdout)
)

func emit(line map[string]any) {
	outMu.Lock()
	defer outMu.Unlock()
	out.Encode(line)
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "goclient: "+format+"\n", args...)
	os.Exit(2)
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func main() {
	endpoints := flag.String("endpoints", "", "request endpoints, separated by commas")
	service := flag.String("service", "go-svc", "service id")
	objects := flag.String("objects", "", "object ids to hold, separated by commas")
	ttl := flag.Duration("ttl", 3*time.Second, "TTL of the held leases")
	from := flag.Uint64("from", 1, "subscribe from this seq of each shard (0: from now)")
	flag.Parse()
	if *endpoints == "" || *objects == "" {
		fail("usage: goclient -endpoints A,B -objects O1,O2,... [-service S] [-ttl D] [-from N]")
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := make(chan struct{})
	var stopOnce sync.Once
	halt := func() { stopOnce.Do(func() { close(stop) }) }
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-signals
		halt()
	}()
	go func() {
		io.Copy(io.Discard, os.Stdin)
		halt()
	}()

	client, err := gt.Dial(ctx, *endpoints, *service)
	if err != nil {
		fail("dial: %v", err)
	}
	setup, setupCancel := context.WithTimeout(ctx, 30*time.Second)
	defer setupCancel()

	opts := gt.SubscribeOptions{Buffer: 4096}
	if *from > 0 {
		opts.FromSeq = from
	}
	sub, err := client.Subscribe(ctx, "", opts)
	if err != nil {
		fail("subscribe: %v", err)
	}
	emit(map[string]any{"type": "subscribed"})
	eventsDone := make(chan struct{})
	go func() {
		defer close(eventsDone)
		for ev := range sub.Events() {
			emit(map[string]any{"type": "event", "shard": ev.Shard, "has_shard": ev.HasShard, "seq": ev.Seq,
				"kind": string(ev.Kind), "at": ms(ev.At), "lease": ev.Lease.ID})
		}
	}()

	var held []*gt.Held
	for _, object := range strings.Split(*objects, ",") {
		h, err := client.Hold(setup, gt.CreateRequest{ObjectID: object, TTL: *ttl})
		if err != nil {
			fail("hold %s: %v", object, err)
		}
		l := h.Lease()
		emit(map[string]any{"type": "held", "id": h.ID(), "object_id": object, "renewals": l.Renewals,
			"renewed_at": ms(l.RenewedAt), "expires_at": ms(l.ExpiresAt)})
		held = append(held, h)
	}

	// Follow the keeper: a renewal it acknowledged shows in Lease(); a loss in Done().
	renewals := map[string]uint64{}
	lost := map[string]bool{}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
watching:
	for {
		for _, h := range held {
			if lost[h.ID()] {
				continue
			}
			select {
			case <-h.Done():
				lost[h.ID()] = true
				emit(map[string]any{"type": "lost", "id": h.ID(), "error": errText(h.Err())})
				continue
			default:
			}
			if l := h.Lease(); l.Renewals != renewals[h.ID()] {
				renewals[h.ID()] = l.Renewals
				emit(map[string]any{"type": "renewed", "id": h.ID(), "renewals": l.Renewals,
					"renewed_at": ms(l.RenewedAt), "expires_at": ms(l.ExpiresAt)})
			}
		}
		select {
		case <-stop:
			break watching
		case <-tick.C:
		}
	}

	final := map[string]string{}
	for _, h := range held {
		final[h.ID()] = errText(h.Err())
	}
	subErr := errText(sub.Err())
	select {
	case <-eventsDone:
		if subErr == "" {
			subErr = "the events channel closed"
		}
	default:
	}
	emit(map[string]any{"type": "final", "leases": final, "subscription": subErr})
	cancel()
	client.Close()
}
