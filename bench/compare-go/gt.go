package main

// GarbageTruck driver: raw ZeroMQ DEALER sockets, requests encoded before a
// timed phase starts (GTLP is pipelined: send D bodies, read D replies).

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	zmq "github.com/pebbe/zmq4"
)

const gtService = "bench-service"

type gtDriver struct {
	endpoint string         // requests (ROUTER)
	events   string         // events (PUB)
	socks    []*batchDealer // one DEALER per connection
	ids      []string       // lease id of item i ("" until created)
	bodies   [][]byte       // the prepared request of item i for the current phase
}

func newGTDriver(endpoint, events string, conns, items int) (*gtDriver, error) {
	d := &gtDriver{endpoint: endpoint, events: events, ids: make([]string, items)}
	for c := 0; c < conns; c++ {
		sock, err := newBatchDealer(endpoint, 15*time.Second)
		if err != nil {
			d.close()
			return nil, err
		}
		d.socks = append(d.socks, sock)
	}
	return d, nil
}

func (d *gtDriver) dial() (*zmq.Socket, error) {
	sock, err := zmq.NewSocket(zmq.DEALER)
	if err != nil {
		return nil, err
	}
	_ = sock.SetLinger(0)
	_ = sock.SetSndhwm(0)
	_ = sock.SetRcvhwm(0)
	_ = sock.SetRcvtimeo(15 * time.Second)
	if err := sock.Connect(d.endpoint); err != nil {
		sock.Close()
		return nil, err
	}
	return sock, nil
}

func (d *gtDriver) close() {
	for _, s := range d.socks {
		s.close()
	}
	d.socks = nil
}

func gtObject(i int) string { return "obj-" + strconv.Itoa(i) }

// prepare encodes every request of the phase, outside the timed part.
func (d *gtDriver) prepare(op opKind, items []int, ttl time.Duration) {
	if d.bodies == nil {
		d.bodies = make([][]byte, len(d.ids))
	}
	enc := newRequestEncoder()
	for _, i := range items {
		rid := uint64(i) + 1
		switch op {
		case opCreate:
			d.bodies[i] = enc.create(rid, gtObject(i), "TEMPORARY_FILE", gtService, uint64(ttl/time.Millisecond))
		case opRenew:
			d.bodies[i] = enc.leaseOp(rid, "RENEW", d.ids[i], gtService)
		case opRelease:
			d.bodies[i] = enc.leaseOp(rid, "RELEASE", d.ids[i], gtService)
		}
	}
}

func (d *gtDriver) created(i int) bool { return d.ids[i] != "" }

// exchange sends the bodies of batch and reads as many replies: done is
// the replies that came (within the socket's receive timeout), errs those
// of them that were not OK.
func (d *gtDriver) exchange(sock *batchDealer, op opKind, batch []int, body func(i int) []byte) (done, errs int) {
	requests := make([][]byte, len(batch))
	for k, i := range batch {
		requests[k] = body(i)
	}
	done, err := sock.exchange(requests, func(reply []byte) {
		info, ok := parseReply(reply, op == opCreate)
		if !ok || !info.ok {
			errs++
			return
		}
		if op == opCreate && info.rid >= 1 && info.rid <= uint64(len(d.ids)) {
			d.ids[info.rid-1] = info.leaseID
		}
	})
	if err != nil {
		return 0, 0
	}
	return done, errs
}

func (d *gtDriver) run(c int, op opKind, items []int, depth int, stop time.Time) (done, errs int) {
	prepared := func(i int) []byte { return d.bodies[i] }
	for off := 0; off < len(items) && time.Now().Before(stop); off += depth {
		n, e := d.exchange(d.socks[c], op, items[off:min(off+depth, len(items))], prepared)
		done += n - e
		errs += e
		if n < min(depth, len(items)-off) {
			break // timeout: the broker stopped answering
		}
	}
	return done, errs
}

func (d *gtDriver) lockstep(items []int, count int, stop time.Time) []float64 {
	d.prepare(opRenew, items, 0)
	var lat []float64
	for k := 0; k < count && time.Now().Before(stop); k++ {
		i := items[k%len(items)]
		start := time.Now()
		if n, e := d.exchange(d.socks[0], opRenew, []int{i}, func(i int) []byte { return d.bodies[i] }); n != 1 || e != 0 {
			continue
		}
		lat = append(lat, float64(time.Since(start).Nanoseconds())/1e3)
	}
	return lat
}

// load creates items whose deadline (wall ms) is deadline(i): the TTL is
// computed at send time. The broker reports the exact deadline in the event.
func (d *gtDriver) load(c int, items []int, depth int, stop time.Time, deadline func(i int) int64) int {
	enc := newRequestEncoder()
	body := func(i int) []byte {
		ttl := deadline(i) - time.Now().UnixMilli()
		return enc.create(uint64(i)+1, gtObject(i), "TEMPORARY_FILE", gtService, uint64(max(ttl, 1000)))
	}
	done := 0
	for off := 0; off < len(items) && time.Now().Before(stop); off += depth {
		batch := items[off:min(off+depth, len(items))]
		n, e := d.exchange(d.socks[c], opCreate, batch, body)
		done += n - e
		if n < len(batch) {
			break
		}
	}
	return done
}

// subscribe connects a SUB socket to gtService's expiries (topics are
// service "\x1f" verb "." type, GTLP.md §6) and returns once it is
// known to receive: a probe lease's created event has arrived.
func (d *gtDriver) subscribe(ctx context.Context, deliver func(i int, deadlineMS float64, recvUS int64)) error {
	const probeTopic = "compare-probe\x1fcreated.CUSTOM"
	expiredTopic := gtService + "\x1fexpired."
	sub, err := newEventSub(d.events, []string{expiredTopic, probeTopic})
	if err != nil {
		return err
	}
	if err := d.probe(sub); err != nil {
		sub.close()
		return err
	}
	if err := sub.unsubscribe(probeTopic); err != nil {
		sub.close()
		return err
	}
	go func() {
		defer sub.close()
		each := func(topic, body []byte) {
			recv := time.Now().UnixMicro()
			if !bytes.HasPrefix(topic, []byte(expiredTopic)) {
				return
			}
			ev, ok := parseExpired(body)
			if !ok {
				return
			}
			i, err := strconv.Atoi(strings.TrimPrefix(string(ev.objectID), "obj-"))
			if err != nil {
				return
			}
			deliver(i, float64(ev.deadlineMS), recv)
		}
		for ctx.Err() == nil {
			if _, err := sub.drain(100*time.Millisecond, each); err != nil {
				return
			}
		}
	}()
	return nil
}

// probe creates a lease on the probe topic until its event reaches sub
// (ZeroMQ subscriptions take effect asynchronously); bounded to 10 s.
func (d *gtDriver) probe(sub *eventSub) error {
	dealer, err := d.dial()
	if err != nil {
		return err
	}
	defer dealer.Close()
	enc := newRequestEncoder()
	for attempt := 1; attempt <= 50; attempt++ {
		body := enc.create(uint64(attempt), "probe-"+strconv.Itoa(attempt), "CUSTOM", "compare-probe", 3600000)
		if _, err := dealer.SendBytes(body, 0); err != nil {
			return err
		}
		if reply, err := dealer.RecvBytes(0); err != nil {
			return fmt.Errorf("probe: no reply from %s: %w", d.endpoint, err)
		} else if info, ok := parseReply(reply, false); !ok || !info.ok {
			return fmt.Errorf("probe: CREATE refused")
		}
		if got, err := sub.drain(200*time.Millisecond, func(topic, body []byte) {}); err != nil {
			return err
		} else if got > 0 {
			return nil
		}
	}
	return fmt.Errorf("probe: no event from %s within 10 s", d.events)
}
