package garbagetruck

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	zmq "github.com/pebbe/zmq4"
)

// SubscribeOptions configures a subscription.
type SubscribeOptions struct {
	// Topics are topic prefixes; none means every event (that the client may
	// see: with CURVE, a service's key receives only its own service's
	// events, whatever it subscribes to). A topic is service_id, U+001F,
	// verb "." OBJECT_TYPE (GTLP.md §6), so prefixes select a service
	// first: ServicePrefix("upload-service") for all its events,
	// ServicePrefix("upload-service") + "expired." for its expiries,
	// ServicePrefix("upload-service") + "reclaimed.TEMPORARY_FILE" for its
	// reclaimed temporary files. To follow one kind of event across every
	// service, subscribe to everything and filter on Event.Kind.
	Topics []string
	// FromSeq, if set, delivers the history from this sequence number
	// (inclusive) before the live events, without gaps or duplicates. When
	// nil, the subscription starts with the events published after
	// Subscribe returns.
	FromSeq *uint64
	// Buffer is the capacity of the Events channel (default 256).
	Buffer int
	// CatchUpInterval is how long the subscription waits without live events
	// before asking the broker's history whether it missed any (a lost tail
	// is otherwise only noticed at the next event). Default 1 s.
	CatchUpInterval time.Duration

	// dropLive, when set by in-package tests, discards live events as if the
	// network had lost them (fault injection for the gap detection tests).
	dropLive func(seq uint64) bool
}

// Subscription is a live, gap-free view of the broker's event stream (or
// the brokers' streams, with several brokers).
type Subscription struct {
	c      *Client
	ctx    context.Context
	opts   SubscribeOptions
	events chan Event

	mu  sync.Mutex
	err error

	// Owned by the subscription's goroutine (Subscribe's until it starts it).
	routed  bool         // follows the shard map: every broker's events endpoint
	socks   []*subSocket // one SUB per events endpoint
	mapGen  uint64       // generation of the map whose endpoints are connected
	mapAt   time.Time    // when the subscription last asked for the map
	cluster bool         // events carry their shard: one sequence per shard
	single  stream       // the sequence of single mode
	shards  [ShardCount]stream
}

// subSocket is the SUB socket of one events endpoint.
type subSocket struct {
	ep     string
	sock   *zmq.Socket
	redial *redialer
}

func (ss *subSocket) close() {
	ss.redial.Close()
	ss.sock.Close()
}

// stream is one event sequence: the broker's (single mode) or a shard's.
type stream struct {
	shard    int    // -1: the single sequence
	known    bool   // last is set (a shard's is learnt from its head or first event)
	last     uint64 // newest seq delivered or known to be filtered out
	liveLast uint64 // newest seq received on the SUB sockets
}

// Subscribe follows the broker's event stream at eventsEndpoint (for example
// "tcp://127.0.0.1:50052"). Events arrive on Events() in seq order, each
// once; a gap in the sequence (events lost by the transport, or published
// while the subscription was connecting) is filled from the broker's history
// with REPLAY, filtered by the topic prefixes.
//
// With several brokers (a client with several endpoints, or eventsEndpoint
// ""), the subscription takes the events endpoints from the shard map: it
// subscribes on every broker's, and on new ones as the map changes (asking
// for it every second while no event comes, and after a gap), and drops
// events it has already delivered. In single mode the sequence is one; in
// cluster mode (events with a shard, Event.HasShard) each shard has its
// own, and a gap is filled from that shard's owner (ReplayShard).
// eventsEndpoint may also list endpoints separated by commas.
//
// The SUB socket uses the client's CURVE keys, if any: a broker with CURVE
// sends a service's key only that service's events, whatever the topics.
//
// The Events channel is closed when ctx ends, when the Client is closed, or on
// a fatal error reported by Err (ErrTooOld when the history needed to fill a
// gap is gone).
func (c *Client) Subscribe(ctx context.Context, eventsEndpoint string, opts SubscribeOptions) (*Subscription, error) {
	if opts.Buffer <= 0 {
		opts.Buffer = 256
	}
	if opts.CatchUpInterval <= 0 {
		opts.CatchUpInterval = time.Second
	}
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	s := &Subscription{c: c, ctx: ctx, opts: opts, events: make(chan Event, opts.Buffer)}
	s.single.shard = -1
	for i := range s.shards {
		s.shards[i].shard = i
	}
	endpoints := splitEndpoints(eventsEndpoint)
	s.routed = c.routing() || len(endpoints) == 0
	if s.routed {
		mctx, cancel := c.withTimeout(ctx)
		c.ensureMap(mctx, time.Now())
		cancel()
		m, gen := c.rt.current()
		s.mapGen = gen
		s.cluster = m != nil && m.Cluster
		endpoints = splitEndpoints(append(endpoints, c.rt.eventsEndpoints()...)...)
		if len(endpoints) == 0 {
			return nil, fmt.Errorf("%w: no events endpoint given, and no shard map names one", ErrInvalidArgument)
		}
	}
	closeSocks := func() {
		for _, ss := range s.socks {
			ss.close()
		}
	}
	for _, ep := range endpoints {
		if err := s.connect(ep); err != nil {
			closeSocks()
			return nil, err
		}
	}
	if opts.FromSeq == nil {
		// Start after the newest event now: whatever is published from
		// here on is delivered, live or through the gap filling.
		if err := s.heads(); err != nil {
			closeSocks()
			return nil, err
		}
	}
	wakeRecv, wakeSend, err := c.newWakePair()
	if err != nil {
		closeSocks()
		return nil, err
	}
	stopped := make(chan struct{})
	c.wg.Add(2)
	go func() {
		defer c.wg.Done()
		defer wakeSend.Close()
		select {
		case <-ctx.Done():
		case <-c.closing:
		case <-stopped:
		}
		wakeSend.Send("$TERM", zmq.DONTWAIT)
	}()
	go func() {
		defer c.wg.Done()
		defer close(stopped)
		defer close(s.events)
		defer wakeRecv.Close()
		defer closeSocks()
		s.setErr(s.run(wakeRecv))
	}()
	return s, nil
}

// connect opens the SUB socket of an events endpoint.
func (s *Subscription) connect(ep string) error {
	c := s.c
	topics := s.opts.Topics
	if len(topics) == 0 {
		topics = []string{""}
	}
	sub, redial, err := c.dialPeer(zmq.SUB, ep,
		func(sub *zmq.Socket) error {
			err := sub.SetRcvhwm(100000)
			for _, t := range topics {
				if err == nil {
					err = sub.SetSubscribe(t)
				}
			}
			return err
		},
		func(sub *zmq.Socket) (*redialer, error) { return c.newRedialer(sub, ep) })
	if err != nil {
		return fmt.Errorf("garbagetruck: subscribe %q: %w", ep, err)
	}
	s.socks = append(s.socks, &subSocket{ep: ep, sock: sub, redial: redial})
	return nil
}

// followMap asks for the map again and subscribes on the events endpoints
// it names that are new.
func (s *Subscription) followMap() {
	if !s.routed {
		return
	}
	s.mapAt = time.Now()
	ctx, cancel := s.c.withTimeout(s.ctx)
	s.c.refreshMap(ctx, time.Now())
	cancel()
	m, gen := s.c.rt.current()
	if gen == s.mapGen {
		return
	}
	s.mapGen = gen
	if m != nil && m.Cluster {
		s.cluster = true
	}
	for _, ep := range s.c.rt.eventsEndpoints() {
		if !slices.ContainsFunc(s.socks, func(ss *subSocket) bool { return ss.ep == ep }) {
			s.connect(ep) // a bad endpoint in the map: the others still serve
		}
	}
}

// heads sets the start of each sequence to its newest event: the broker's
// (single mode), or each shard's (cluster mode; a shard whose head cannot
// be read starts at its first event seen).
func (s *Subscription) heads() error {
	if !s.cluster {
		head, err := s.c.headSeq(s.ctx)
		if err != nil {
			return err
		}
		s.single.last, s.single.known = head, true
		return nil
	}
	var wg sync.WaitGroup
	next := make(chan int)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for sh := range next {
				page, err := s.c.ReplayShard(s.ctx, sh, math.MaxUint64, 1)
				if err == nil {
					s.shards[sh].last, s.shards[sh].known = page.LastSeq, true
				}
			}
		}()
	}
	for sh := range ShardCount {
		next <- sh
	}
	close(next)
	wg.Wait()
	return s.stopped()
}

// Events returns the channel the events arrive on.
func (s *Subscription) Events() <-chan Event { return s.events }

// Err returns why the subscription ended once Events is closed: nil when its
// context ended, ErrClosed when the Client was closed, ErrTooOld (or another
// error) when it could not continue without losing events.
func (s *Subscription) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *Subscription) setErr(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

// errStopped ends the loop quietly (context ended).
var errStopped = errors.New("stopped")

func (s *Subscription) run(wakeRecv *zmq.Socket) error {
	err := s.loop(wakeRecv)
	switch {
	case errors.Is(err, errStopped):
		select {
		case <-s.c.closing:
			if s.ctx.Err() == nil {
				return ErrClosed
			}
		default:
		}
		return nil
	}
	return err
}

func (s *Subscription) stopped() error {
	if s.ctx.Err() != nil {
		return errStopped
	}
	select {
	case <-s.c.closing:
		return errStopped
	default:
	}
	return nil
}

func (s *Subscription) loop(wakeRecv *zmq.Socket) error {
	if s.opts.FromSeq != nil {
		after := max(*s.opts.FromSeq, 1) - 1
		if s.cluster {
			for sh := range s.shards {
				st := &s.shards[sh]
				st.last, st.known = after, true
				if err := s.fill(st, 0); err != nil {
					return err
				}
			}
		} else {
			s.single.last, s.single.known = after, true
			if err := s.fill(&s.single, 0); err != nil {
				return err
			}
		}
	}
	var poller *zmq.Poller
	polledSocks := 0
	for {
		if poller == nil || polledSocks != len(s.socks) {
			poller = zmq.NewPoller()
			poller.Add(wakeRecv, zmq.POLLIN)
			for _, ss := range s.socks {
				poller.Add(ss.sock, zmq.POLLIN)
				if ss.redial != nil {
					poller.Add(ss.redial.Monitor(), zmq.POLLIN)
				}
			}
			polledSocks = len(s.socks)
		}
		wait := s.opts.CatchUpInterval
		for _, ss := range s.socks {
			wait = ss.redial.Timeout(wait)
		}
		polled, err := poller.Poll(wait)
		if err != nil {
			if zmq.AsErrno(err) == zmq.Errno(syscall.EINTR) {
				continue
			}
			return errStopped
		}
		if err := s.stopped(); err != nil {
			return err
		}
		for _, ss := range s.socks {
			ss.redial.Tick()
		}
		if len(polled) == 0 && wait < s.opts.CatchUpInterval {
			continue // woken up for the reconnection only
		}
		if len(polled) == 0 {
			// Quiet for a while: look for new brokers, and ask the history
			// whether we missed the tail (single mode).
			s.followMap()
			if !s.cluster && s.single.known {
				if err := s.fill(&s.single, 0); err != nil {
					return err
				}
			}
			continue
		}
		for _, p := range polled {
			for _, ss := range s.socks[:polledSocks] {
				switch p.Socket {
				case ss.redial.Monitor():
					ss.redial.Handle()
				case ss.sock:
					for {
						frames, err := ss.sock.RecvMessageBytes(zmq.DONTWAIT)
						if err != nil {
							break
						}
						if err := s.live(frames); err != nil {
							return err
						}
					}
				}
			}
		}
	}
}

// live handles one message from a SUB socket.
func (s *Subscription) live(frames [][]byte) error {
	if len(frames) != 2 {
		return nil // not a GTLP event
	}
	ev, err := decodeEvent(frames[1])
	if err != nil {
		return nil // undecodable: the gap it leaves is filled from the history
	}
	if s.opts.dropLive != nil && s.opts.dropLive(ev.Seq) {
		return nil
	}
	st := &s.single
	if ev.HasShard {
		s.cluster = true
		st = &s.shards[ev.Shard]
		if !st.known {
			st.last, st.known = ev.Seq-1, true
		}
	}
	if !s.routed {
		if st.liveLast != 0 && ev.Seq <= st.liveLast {
			return fmt.Errorf("%w: the broker's event sequence went back from %d to %d (broker restarted?); re-synchronise with ListLeases",
				ErrTooOld, st.liveLast, ev.Seq)
		}
		st.liveLast = ev.Seq
	}
	if ev.Seq <= st.last {
		return nil // delivered already (by a replay, or by another broker)
	}
	if ev.Seq > st.last+1 {
		// The gap may come from a change of owner. (With topics, most gaps
		// are other topics' events: the map is asked at most once per
		// CatchUpInterval for them.)
		if time.Since(s.mapAt) >= s.opts.CatchUpInterval {
			s.followMap()
		}
		if err := s.fill(st, ev.Seq); err != nil {
			return err
		}
	}
	if ev.Seq <= st.last {
		return nil // the replay reached it
	}
	st.last = ev.Seq
	return s.deliver(*ev)
}

// matches reports whether an event's topic has one of the prefixes.
func (s *Subscription) matches(ev *Event) bool {
	if len(s.opts.Topics) == 0 {
		return true
	}
	topic := ev.Topic()
	for _, p := range s.opts.Topics {
		if strings.HasPrefix(topic, p) {
			return true
		}
	}
	return false
}

// fill delivers the history of a sequence after st.last: up to (not
// including) seq upTo, or everything the broker has when upTo is 0. A
// shard's history comes from its owner.
func (s *Subscription) fill(st *stream, upTo uint64) error {
	backoff := 50 * time.Millisecond
	for upTo == 0 || st.last+1 < upTo {
		var page *ReplayPage
		var err error
		if st.shard < 0 {
			page, err = s.c.Replay(s.ctx, st.last, maxPage)
		} else {
			page, err = s.c.ReplayShard(s.ctx, st.shard, st.last, maxPage)
		}
		if err != nil {
			if stop := s.stopped(); stop != nil {
				return stop
			}
			if isTransient(err) {
				select { // the broker may be restarting: try again
				case <-time.After(backoff):
					backoff = min(2*backoff, 2*time.Second)
					continue
				case <-s.ctx.Done():
					return errStopped
				case <-s.c.closing:
					return errStopped
				}
			}
			return fmt.Errorf("garbagetruck: subscription: replay after %d: %w", st.last, err)
		}
		if page.LastSeq < st.last {
			return fmt.Errorf("%w: the broker's last seq %d is behind ours %d (broker restarted?); re-synchronise with ListLeases",
				ErrTooOld, page.LastSeq, st.last)
		}
		progressed := false
		for i := range page.Events {
			ev := &page.Events[i]
			if ev.Seq <= st.last {
				continue
			}
			if upTo != 0 && ev.Seq >= upTo {
				break // the live event takes it from here
			}
			st.last = ev.Seq
			progressed = true
			if s.matches(ev) {
				if err := s.deliver(*ev); err != nil {
					return err
				}
			}
		}
		// A broker that filters REPLAY (CURVE, a service's key) says how far
		// it read: none of our events lies between, so that counts as
		// progress too.
		readTo := page.ScannedSeq
		if upTo != 0 {
			readTo = min(readTo, upTo-1)
		}
		if readTo > st.last {
			st.last = readTo
			progressed = true
		}
		if !progressed || st.last >= page.LastSeq {
			return nil // caught up (or nothing more to get)
		}
	}
	return nil
}

// deliver hands an event to the consumer, waiting for room.
func (s *Subscription) deliver(ev Event) error {
	select {
	case s.events <- ev:
		return nil
	case <-s.ctx.Done():
		return errStopped
	case <-s.c.closing:
		return errStopped
	}
}
