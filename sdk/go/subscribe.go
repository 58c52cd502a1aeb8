package garbagetruck

import (
	"context"
	"errors"
	"fmt"
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

// Subscription is a live, gap-free view of the broker's event stream.
type Subscription struct {
	c      *Client
	ctx    context.Context
	opts   SubscribeOptions
	events chan Event

	mu  sync.Mutex
	err error

	last     uint64 // newest seq delivered or known to be filtered out
	liveLast uint64 // newest seq received on the SUB socket
}

// Subscribe follows the broker's event stream at eventsEndpoint (for example
// "tcp://127.0.0.1:50052"). Events arrive on Events() in seq order, each
// once; a gap in the sequence (events lost by the transport, or published
// while the subscription was connecting) is filled from the broker's history
// with REPLAY, filtered by the topic prefixes.
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
	sub, err := c.newPeerSocket(zmq.SUB)
	if err == nil {
		err = sub.SetRcvhwm(100000)
	}
	if err == nil {
		err = sub.SetReconnectIvl(c.opts.reconnectIvl)
	}
	if err == nil {
		err = sub.SetReconnectIvlMax(c.opts.reconnectIvlMax)
	}
	topics := opts.Topics
	if len(topics) == 0 {
		topics = []string{""}
	}
	for _, t := range topics {
		if err == nil {
			err = sub.SetSubscribe(t)
		}
	}
	var redial *redialer
	if err == nil {
		redial, err = c.newRedialer(sub, eventsEndpoint)
	}
	if err == nil {
		err = sub.Connect(eventsEndpoint)
	}
	if err != nil {
		redial.Close()
		if sub != nil {
			sub.Close()
		}
		return nil, fmt.Errorf("garbagetruck: subscribe %q: %w", eventsEndpoint, err)
	}
	closeSub := func() {
		redial.Close()
		sub.Close()
	}
	if opts.FromSeq == nil {
		// Start after the newest event now: whatever is published from
		// here on is delivered, live or through the gap filling.
		head, err := c.headSeq(ctx)
		if err != nil {
			closeSub()
			return nil, err
		}
		s.last = head
	}
	wakeRecv, wakeSend, err := c.newWakePair()
	if err != nil {
		closeSub()
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
		defer closeSub()
		s.setErr(s.run(sub, redial, wakeRecv))
	}()
	return s, nil
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

func (s *Subscription) run(sub *zmq.Socket, redial *redialer, wakeRecv *zmq.Socket) error {
	err := s.loop(sub, redial, wakeRecv)
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

func (s *Subscription) loop(sub *zmq.Socket, redial *redialer, wakeRecv *zmq.Socket) error {
	if s.opts.FromSeq != nil {
		after := max(*s.opts.FromSeq, 1) - 1
		s.last = after
		if err := s.fill(0); err != nil {
			return err
		}
	}
	poller := zmq.NewPoller()
	poller.Add(sub, zmq.POLLIN)
	poller.Add(wakeRecv, zmq.POLLIN)
	if redial != nil {
		poller.Add(redial.Monitor(), zmq.POLLIN)
	}
	for {
		wait := redial.Timeout(s.opts.CatchUpInterval)
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
		redial.Tick()
		if len(polled) == 0 && wait < s.opts.CatchUpInterval {
			continue // woken up for the reconnection only
		}
		if len(polled) == 0 {
			// Quiet for a while: ask the history whether we missed the tail.
			if err := s.fill(0); err != nil {
				return err
			}
			continue
		}
		for _, p := range polled {
			if p.Socket == redial.Monitor() {
				redial.Handle()
				continue
			}
			if p.Socket != sub {
				continue // wake-up: the stop check above handles it
			}
			for {
				frames, err := sub.RecvMessageBytes(zmq.DONTWAIT)
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

// live handles one message from the SUB socket.
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
	if s.liveLast != 0 && ev.Seq <= s.liveLast {
		return fmt.Errorf("%w: the broker's event sequence went back from %d to %d (broker restarted?); re-synchronise with ListLeases",
			ErrTooOld, s.liveLast, ev.Seq)
	}
	s.liveLast = ev.Seq
	if ev.Seq <= s.last {
		return nil // delivered already by a replay
	}
	if ev.Seq > s.last+1 {
		if err := s.fill(ev.Seq); err != nil {
			return err
		}
	}
	s.last = ev.Seq
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

// fill delivers the history after s.last: up to (not including) seq upTo,
// or everything the broker has when upTo is 0.
func (s *Subscription) fill(upTo uint64) error {
	backoff := 50 * time.Millisecond
	for upTo == 0 || s.last+1 < upTo {
		page, err := s.c.Replay(s.ctx, s.last, maxPage)
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
			return fmt.Errorf("garbagetruck: subscription: replay after %d: %w", s.last, err)
		}
		if page.LastSeq < s.last {
			return fmt.Errorf("%w: the broker's last seq %d is behind ours %d (broker restarted?); re-synchronise with ListLeases",
				ErrTooOld, page.LastSeq, s.last)
		}
		progressed := false
		for i := range page.Events {
			ev := &page.Events[i]
			if ev.Seq <= s.last {
				continue
			}
			if upTo != 0 && ev.Seq >= upTo {
				break // the live event takes it from here
			}
			s.last = ev.Seq
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
		if readTo > s.last {
			s.last = readTo
			progressed = true
		}
		if !progressed || s.last >= page.LastSeq {
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
