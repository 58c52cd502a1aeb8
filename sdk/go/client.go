package garbagetruck

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	zmq "github.com/pebbe/zmq4"
)

// DefaultTimeout is the per-call timeout used when neither the call's context
// nor WithTimeout sets one.
const DefaultTimeout = 10 * time.Second

// Option configures a Client.
type Option func(*options)

type options struct {
	timeout         time.Duration // per-call timeout when ctx has none; 0 = none
	reconnectIvl    time.Duration // first reconnection delay
	reconnectIvlMax time.Duration // reconnection backoff ceiling
	serverKey       *string       // WithServerKey; nil: GT_SERVER_KEY
	clientCert      *string       // WithClientCert; nil: GT_CLIENT_CERT
}

// WithTimeout sets the per-call timeout applied when a call's context has no
// deadline (default DefaultTimeout; 0 disables it).
func WithTimeout(d time.Duration) Option {
	return func(o *options) { o.timeout = d }
}

// WithReconnectInterval sets how soon the connection is retried after the
// broker goes away (default 100 ms), backing off up to max (default 1 s).
func WithReconnectInterval(initial, max time.Duration) Option {
	return func(o *options) {
		o.reconnectIvl = initial
		o.reconnectIvlMax = max
	}
}

// Client is a connection to a GarbageTruck broker on behalf of one service.
// It is safe for concurrent use by many goroutines: one goroutine owns the
// ZeroMQ socket and matches replies to calls by request id, so any number of
// calls can be in flight at once.
//
// The connection is made in the background and remade after the broker
// restarts; calls made while the broker is away wait for it until their
// context ends.
type Client struct {
	endpoint  string
	serviceID string
	opts      options
	curve     *curveKeys // nil: plaintext
	zctx      *zmq.Context

	nextRID atomic.Uint64 // last request id used

	mu      sync.Mutex
	pending map[uint64]chan []byte // calls waiting for a reply, by request id
	outbox  []outgoing             // requests not yet handed to the socket owner
	closed  bool                   // Close was called

	wake      chan struct{} // a request was queued (capacity 1: signals coalesce)
	closing   chan struct{} // closed by Close
	closeOnce sync.Once
	wg        sync.WaitGroup // socket owner, waker, keeper, subscriptions

	keeperOnce sync.Once
	keeper     *keeper
}

// outgoing is a request waiting to be sent.
type outgoing struct {
	rid  uint64
	body []byte
}

var clientSeq atomic.Uint64 // names the inproc wake-up endpoints

// Dial returns a Client for the broker's request endpoint (for example
// "tcp://127.0.0.1:50051") acting as serviceID. It does not wait for the
// broker: the connection is made in the background. ctx only bounds Dial
// itself.
//
// With CURVE (WithServerKey and WithClientCert, or GT_SERVER_KEY and
// GT_CLIENT_CERT) the broker binds the client's key to a service: serviceID
// may then be "" to act as that service (the client's changes name no
// service_id); a serviceID naming another service is refused by the broker
// (ErrPermissionDenied) unless the key has the admin role. Without CURVE,
// serviceID is required.
func Dial(ctx context.Context, endpoint, serviceID string, opts ...Option) (*Client, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	o := options{
		timeout:         DefaultTimeout,
		reconnectIvl:    100 * time.Millisecond,
		reconnectIvlMax: time.Second,
	}
	for _, opt := range opts {
		opt(&o)
	}
	curve, err := resolveCurve(&o)
	if err != nil {
		return nil, err
	}
	switch {
	case len(serviceID) > maxServiceID:
		return nil, fmt.Errorf("%w: service id must be 1..%d bytes", ErrInvalidArgument, maxServiceID)
	case serviceID == "" && curve == nil:
		return nil, fmt.Errorf("%w: service id must be 1..%d bytes (it may be empty only with CURVE, whose key names the service)",
			ErrInvalidArgument, maxServiceID)
	case hasControl(serviceID):
		return nil, fmt.Errorf("%w: service id contains a control character", ErrInvalidArgument)
	}
	c := &Client{
		endpoint:  endpoint,
		serviceID: serviceID,
		opts:      o,
		curve:     curve,
		pending:   map[uint64]chan []byte{},
		wake:      make(chan struct{}, 1),
		closing:   make(chan struct{}),
	}
	zctx, err := zmq.NewContext()
	if err != nil {
		return nil, fmt.Errorf("garbagetruck: zeromq context: %w", err)
	}
	c.zctx = zctx
	dealer, err := c.newPeerSocket(zmq.DEALER)
	if err == nil {
		err = dealer.SetImmediate(true) // queue in the SDK, not on a dead pipe
	}
	if err == nil {
		err = dealer.SetReconnectIvl(c.opts.reconnectIvl)
	}
	if err == nil {
		err = dealer.SetReconnectIvlMax(c.opts.reconnectIvlMax)
	}
	var redial *redialer
	if err == nil {
		redial, err = c.newRedialer(dealer, endpoint)
	}
	if err == nil {
		if err = dealer.Connect(endpoint); err != nil {
			redial.Close()
		}
	}
	if err != nil {
		if dealer != nil {
			dealer.Close()
		}
		zctx.Term()
		return nil, fmt.Errorf("garbagetruck: connect %q: %w", endpoint, err)
	}
	wakeRecv, wakeSend, err := c.newWakePair()
	if err != nil {
		redial.Close()
		dealer.Close()
		zctx.Term()
		return nil, err
	}
	c.wg.Add(2)
	go c.runSocket(dealer, redial, wakeRecv)
	go c.runWaker(wakeSend)
	return c, nil
}

// newSocket creates a socket with linger 0: nothing is worth waiting for at
// close time.
func (c *Client) newSocket(t zmq.Type) (*zmq.Socket, error) {
	s, err := c.zctx.NewSocket(t)
	if err != nil {
		return nil, err
	}
	if err := s.SetLinger(0); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// newPeerSocket creates a socket that talks to the broker: like newSocket,
// and a CURVE client when the client has keys.
func (c *Client) newPeerSocket(t zmq.Type) (*zmq.Socket, error) {
	s, err := c.newSocket(t)
	if err != nil {
		return nil, err
	}
	if err := c.curve.secure(s); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// newWakePair returns the two ends of an inproc PAIR: a goroutine that owns
// send wakes up the goroutine polling recv (ZeroMQ sockets are not
// thread-safe, so each end has exactly one owner).
func (c *Client) newWakePair() (recv, send *zmq.Socket, err error) {
	name := fmt.Sprintf("inproc://garbagetruck-wake-%d", clientSeq.Add(1))
	recv, err = c.newSocket(zmq.PAIR)
	if err == nil {
		err = recv.Bind(name)
		if err == nil {
			send, err = c.newSocket(zmq.PAIR)
			if err == nil {
				err = send.Connect(name)
				if err != nil {
					send.Close()
				}
			}
		}
		if err != nil {
			recv.Close()
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("garbagetruck: wake-up socket: %w", err)
	}
	return recv, send, nil
}

// ServiceID returns the service the client acts for ("" when it was dialled
// without one, to act as its CURVE key's service).
func (c *Client) ServiceID() string { return c.serviceID }

// Endpoint returns the broker endpoint the client connects to.
func (c *Client) Endpoint() string { return c.endpoint }

// Close ends the client: calls in flight fail with ErrClosed, held leases
// stop being renewed (their Done channels close with ErrClosed) and
// subscriptions end. Close waits for the client's goroutines and is safe to
// call more than once.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		close(c.closing)
		c.wg.Wait()
		c.zctx.Term()
	})
	return nil
}

// runWaker turns wake signals (and Close) into messages on the inproc PAIR
// the socket owner polls.
func (c *Client) runWaker(send *zmq.Socket) {
	defer c.wg.Done()
	defer send.Close()
	for {
		select {
		case <-c.wake:
			// A full pipe means the owner has wake-ups pending already.
			send.Send("", zmq.DONTWAIT)
		case <-c.closing:
			send.Send("$TERM", 0)
			return
		}
	}
}

// runSocket owns the DEALER socket (and its CURVE redialer, nil without
// CURVE): it sends queued requests and dispatches replies to the calls
// waiting for them.
func (c *Client) runSocket(dealer *zmq.Socket, redial *redialer, wakeRecv *zmq.Socket) {
	defer c.wg.Done()
	defer dealer.Close()
	defer redial.Close()
	defer wakeRecv.Close()
	poller := zmq.NewPoller()
	dealerID := poller.Add(dealer, zmq.POLLIN)
	poller.Add(wakeRecv, zmq.POLLIN)
	if redial != nil {
		poller.Add(redial.Monitor(), zmq.POLLIN)
	}
	var queue []outgoing // taken from the outbox, not yet accepted by ZeroMQ
	for {
		timeout := time.Duration(-1)
		events := zmq.POLLIN
		if len(queue) > 0 {
			events |= zmq.POLLOUT
			timeout = 100 * time.Millisecond // to drop requests whose callers gave up
		}
		poller.Update(dealerID, events)
		polled, err := poller.Poll(redial.Timeout(timeout))
		if err != nil {
			if zmq.AsErrno(err) == zmq.Errno(syscall.EINTR) {
				continue
			}
			return // context terminated: nothing more to do
		}
		for _, p := range polled {
			switch p.Socket {
			case wakeRecv:
				for {
					msg, err := wakeRecv.Recv(zmq.DONTWAIT)
					if err != nil {
						break
					}
					if msg == "$TERM" {
						return
					}
				}
			case dealer:
				if p.Events&zmq.POLLIN != 0 {
					c.receive(dealer)
				}
			case redial.Monitor():
				redial.Handle()
			}
		}
		redial.Tick()
		c.mu.Lock()
		queue = append(queue, c.outbox...)
		c.outbox = c.outbox[:0]
		c.mu.Unlock()
		queue = c.send(dealer, queue)
	}
}

// receive dispatches every reply waiting on the socket.
func (c *Client) receive(dealer *zmq.Socket) {
	for {
		frames, err := dealer.RecvMessageBytes(zmq.DONTWAIT)
		if err != nil {
			return
		}
		if len(frames) == 0 {
			continue
		}
		body := frames[len(frames)-1] // the body is the last frame; the rest is envelope
		rid := replyRID(body)
		c.mu.Lock()
		ch := c.pending[rid]
		delete(c.pending, rid)
		c.mu.Unlock()
		if ch != nil {
			ch <- body // capacity 1, one reply per request id: never blocks
		}
	}
}

// send hands queued requests to ZeroMQ until it would block, dropping those
// whose callers have given up; it returns what is left.
func (c *Client) send(dealer *zmq.Socket, queue []outgoing) []outgoing {
	for len(queue) > 0 {
		c.mu.Lock()
		_, waiting := c.pending[queue[0].rid]
		c.mu.Unlock()
		if waiting {
			if _, err := dealer.SendBytes(queue[0].body, zmq.DONTWAIT); err != nil {
				break // no connection, or high-water mark: wait for POLLOUT
			}
		}
		queue[0] = outgoing{}
		queue = queue[1:]
	}
	if len(queue) == 0 {
		return nil
	}
	return queue
}

// call sends a request and waits for its reply. The reply's code is checked:
// an error reply becomes a *BrokerError.
func (c *Client) call(ctx context.Context, req *request) (*reply, error) {
	body, err := c.roundTrip(ctx, req)
	if err != nil {
		return nil, err
	}
	rep, err := decodeReply(body)
	if err != nil {
		return nil, fmt.Errorf("garbagetruck: %s reply: %w", req.Cmd, err)
	}
	if rep.Code != CodeOK {
		return nil, rep.brokerError()
	}
	return rep, nil
}

// brokerError returns the *BrokerError of an error reply.
func (r *reply) brokerError() *BrokerError {
	be := &BrokerError{Code: r.Code, Versions: r.Versions}
	if r.Message != nil {
		be.Message = *r.Message
	}
	if r.Shard != nil {
		be.Shard = int(*r.Shard)
	}
	if r.Owner != nil {
		be.Owner = *r.Owner
	}
	if r.MapVersion != nil {
		be.MapVersion = *r.MapVersion
	}
	if r.RetryMS != nil {
		be.RetryAfter = time.Duration(min(*r.RetryMS, 1<<40)) * time.Millisecond
	}
	return be
}

// roundTrip sends an encoded request and returns the raw reply body.
func (c *Client) roundTrip(ctx context.Context, req *request) ([]byte, error) {
	if _, ok := ctx.Deadline(); !ok && c.opts.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.timeout)
		defer cancel()
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("garbagetruck: %s: %w", req.Cmd, err)
	}
	rid := c.nextRID.Add(1)
	if req.V == 0 {
		req.V = ProtocolVersion
	}
	req.RID = rid
	body, err := encodeRequest(req)
	if err != nil {
		return nil, fmt.Errorf("garbagetruck: encode %s: %w", req.Cmd, err)
	}
	ch := make(chan []byte, 1)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	c.pending[rid] = ch
	c.outbox = append(c.outbox, outgoing{rid: rid, body: body})
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default: // a wake-up is pending already
	}
	select {
	case rep := <-ch:
		return rep, nil
	case <-ctx.Done():
		c.forget(rid)
		return nil, fmt.Errorf("garbagetruck: %s: %w", req.Cmd, ctx.Err())
	case <-c.closing:
		c.forget(rid)
		return nil, ErrClosed
	}
}

// forget drops a call that stopped waiting; its late reply is discarded.
func (c *Client) forget(rid uint64) {
	c.mu.Lock()
	delete(c.pending, rid)
	c.mu.Unlock()
}

// isTransient reports whether an error of a call may go away by itself: a
// timeout, or a broker error that says "later".
func isTransient(err error) bool {
	var be *BrokerError
	if errors.As(err, &be) {
		return be.Temporary()
	}
	return errors.Is(err, context.DeadlineExceeded)
}
