package garbagetruck

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	zmq "github.com/pebbe/zmq4"
)

// Option configures a Client.
type Option func(*options)

type options struct {
	timeout         time.Duration // per-call timeout when ctx has none; 0 = none
	reconnectIvl    time.Duration // first reconnection delay
	reconnectIvlMax time.Duration // reconnection backoff ceiling
	serverKey       *string       // WithServerKey; nil: GT_SERVER_KEY
	clientCert      *string       // WithClientCert; nil: GT_CLIENT_CERT
	endpoints       []string      // WithEndpoints
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

// WithEndpoints adds broker endpoints to those given to Dial (several
// brokers sharing one database, docs/CLUSTER.md): the client then routes
// each request to the owner of its shard. Dial's endpoint may be "" when
// this option names them all.
func WithEndpoints(endpoints ...string) Option {
	return func(o *options) { o.endpoints = append(o.endpoints, endpoints...) }
}

// Client is a connection to a GarbageTruck broker, or to the brokers of a
// cluster, on behalf of one service. It is safe for concurrent use by many
// goroutines: one goroutine owns the ZeroMQ sockets (one DEALER per broker)
// and matches replies to calls by request id, so any number of calls can be
// in flight at once.
//
// The connections are made in the background and remade after a broker
// restarts; with one endpoint, calls made while the broker is away wait for
// it until their context ends. With several endpoints (or after a broker
// redirected a request), the client follows the shard map: see Dial.
type Client struct {
	endpoints []string // the endpoints given to Dial, in order
	serviceID string
	opts      options
	curve     *curveKeys // nil: plaintext
	zctx      *zmq.Context

	nextRID atomic.Uint64 // last request id used

	mu      sync.Mutex
	pending map[uint64]*waiter // calls waiting for a reply, by request id
	outbox  []outgoing         // requests not yet handed to the socket owner
	closed  bool               // Close was called
	upCh    chan struct{}      // closed (and replaced) when a connection comes up

	wake      chan struct{} // a request was queued (capacity 1: signals coalesce)
	closing   chan struct{} // closed by Close
	closeOnce sync.Once
	wg        sync.WaitGroup // socket owner, waker, keeper, subscriptions

	keeperOnce sync.Once
	keeper     *keeper

	rt router // the shard map and where requests go (route.go)
}

// outgoing is a request waiting to be sent to an endpoint.
type outgoing struct {
	rid  uint64
	ep   string
	body []byte
}

// waiter is a call waiting for the reply to one request id.
type waiter struct {
	ch       chan attemptResult // capacity 1: one result per request id
	ep       string             // where the request goes
	failFast bool               // routed: give up as soon as the endpoint is unreachable
	sent     bool               // handed to ZeroMQ (it may have reached the broker)
}

// attemptResult is the reply body of an attempt, or why it has none.
type attemptResult struct {
	body []byte
	err  error
}

// Why an attempt of a routed call ended without a reply.
var (
	// errNotSent: the endpoint refused the connection; the request never left.
	errNotSent = errors.New("garbagetruck: broker unreachable")
	// errNoReply: the connection went down after the request was sent.
	errNoReply = errors.New("garbagetruck: connection lost before the reply")
)

var clientSeq atomic.Uint64 // names the inproc wake-up endpoints

// splitEndpoints returns the endpoints of a comma-separated list, trimmed,
// without empty items or repeats.
func splitEndpoints(lists ...string) []string {
	var out []string
	for _, list := range lists {
		for _, ep := range strings.Split(list, ",") {
			ep = strings.TrimSpace(ep)
			if ep != "" && !slices.Contains(out, ep) {
				out = append(out, ep)
			}
		}
	}
	return out
}

// Dial returns a Client for the broker's request endpoint (for example
// "tcp://127.0.0.1:50051") acting as serviceID. It does not wait for the
// broker: the connection is made in the background. ctx only bounds Dial
// itself.
//
// endpoint may name several brokers that share one database, separated by
// commas ("tcp://a:50051,tcp://b:50051"; WithEndpoints adds more). The client
// then follows the cluster's shard map (docs/CLUSTER.md, "Client routing"):
// it asks the brokers for the MAP before its first request, sends each
// request to the owner of its shard, waits at most 1 s for each attempt, and
// retries on MOVED, TRY_AGAIN, UNAVAILABLE or a lost attempt (backing off
// from 100 ms to 1 s) until the call's timeout — an attempt without a reply
// only for the requests that are safe to repeat. Such a client adds an
// idempotency key to a CreateLease that has none. With one endpoint nothing
// of this happens unless a broker answers MOVED or TRY_AGAIN.
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
	endpoints := splitEndpoints(append([]string{endpoint}, o.endpoints...)...)
	if len(endpoints) == 0 {
		return nil, fmt.Errorf("%w: no broker endpoint", ErrInvalidArgument)
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
		endpoints: endpoints,
		serviceID: serviceID,
		opts:      o,
		curve:     curve,
		pending:   map[uint64]*waiter{},
		upCh:      make(chan struct{}),
		wake:      make(chan struct{}, 1),
		closing:   make(chan struct{}),
	}
	c.rt.init(endpoints)
	zctx, err := zmq.NewContext()
	if err != nil {
		return nil, fmt.Errorf("garbagetruck: zeromq context: %w", err)
	}
	c.zctx = zctx
	// The first endpoint is connected at once (it is the first one used);
	// the others when a request first goes there.
	first, err := c.openPeer(endpoints[0])
	if err != nil {
		zctx.Term()
		return nil, err
	}
	wakeRecv, wakeSend, err := c.newWakePair()
	if err != nil {
		first.close()
		zctx.Term()
		return nil, err
	}
	c.wg.Add(2)
	go c.runSocket(first, wakeRecv)
	go c.runWaker(wakeSend)
	return c, nil
}

// peer is the DEALER socket of one endpoint, owned by the socket owner.
type peer struct {
	ep       string
	sock     *zmq.Socket
	watch    *redialer  // its connection's state (and CURVE reconnection)
	queue    []outgoing // taken from the outbox, not yet accepted by ZeroMQ
	forcedAt time.Time  // last reconnection forced by a routed request
}

// openPeer creates and connects the DEALER of an endpoint.
func (c *Client) openPeer(endpoint string) (*peer, error) {
	dealer, watch, err := c.dialPeer(zmq.DEALER, endpoint,
		func(dealer *zmq.Socket) error {
			return dealer.SetImmediate(true) // queue in the SDK, not on a dead pipe
		},
		func(dealer *zmq.Socket) (*redialer, error) { return c.newWatch(dealer, endpoint, true) })
	if err != nil {
		return nil, fmt.Errorf("garbagetruck: connect %q: %w", endpoint, err)
	}
	return &peer{ep: endpoint, sock: dealer, watch: watch}, nil
}

// dialPeer makes a peer socket of type t connected to endpoint: setup sets
// the options of its kind, then the reconnection intervals, then watch
// starts its watch before the connection. On an error nothing is left open.
func (c *Client) dialPeer(t zmq.Type, endpoint string, setup func(*zmq.Socket) error,
	watch func(*zmq.Socket) (*redialer, error)) (*zmq.Socket, *redialer, error) {
	sock, err := c.newPeerSocket(t)
	if err != nil {
		return nil, nil, err
	}
	err = setup(sock)
	if err == nil {
		err = sock.SetReconnectIvl(c.opts.reconnectIvl)
	}
	if err == nil {
		err = sock.SetReconnectIvlMax(c.opts.reconnectIvlMax)
	}
	var w *redialer
	if err == nil {
		w, err = watch(sock)
	}
	if err == nil {
		if err = sock.Connect(endpoint); err != nil {
			w.Close()
		}
	}
	if err != nil {
		sock.Close()
		return nil, nil, err
	}
	return sock, w, nil
}

func (p *peer) close() {
	p.watch.Close()
	p.sock.Close()
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

// Endpoint returns the broker endpoints the client was given, separated by
// commas (one endpoint: that endpoint).
func (c *Client) Endpoint() string { return strings.Join(c.endpoints, ",") }

// Endpoints returns the broker endpoints the client was given, in order
// (the brokers it learns of from the shard map are not included).
func (c *Client) Endpoints() []string { return slices.Clone(c.endpoints) }

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

// runSocket owns the DEALER sockets, one per endpoint (opened when a
// request first goes there), with their watches: it sends queued requests
// and dispatches replies to the calls waiting for them.
func (c *Client) runSocket(first *peer, wakeRecv *zmq.Socket) {
	defer c.wg.Done()
	peers := []*peer{first}
	byEP := map[string]*peer{first.ep: first}
	defer func() {
		for _, p := range peers {
			p.close()
		}
	}()
	defer wakeRecv.Close()
	var poller *zmq.Poller
	var ids []int // poller id of each peer's socket
	for {
		if poller == nil || len(ids) != len(peers) {
			poller = zmq.NewPoller()
			poller.Add(wakeRecv, zmq.POLLIN)
			ids = ids[:0]
			for _, p := range peers {
				ids = append(ids, poller.Add(p.sock, zmq.POLLIN))
				poller.Add(p.watch.Monitor(), zmq.POLLIN)
			}
		}
		timeout := time.Duration(-1)
		for i, p := range peers {
			events := zmq.POLLIN
			if len(p.queue) > 0 {
				events |= zmq.POLLOUT
				timeout = 100 * time.Millisecond // to drop requests whose callers gave up
			}
			poller.Update(ids[i], events)
			timeout = p.watch.Timeout(timeout)
		}
		polled, err := poller.Poll(timeout)
		if err != nil {
			if zmq.AsErrno(err) == zmq.Errno(syscall.EINTR) {
				continue
			}
			return // context terminated: nothing more to do
		}
		for _, ps := range polled {
			if ps.Socket == wakeRecv {
				for {
					msg, err := wakeRecv.Recv(zmq.DONTWAIT)
					if err != nil {
						break
					}
					if msg == "$TERM" {
						return
					}
				}
			}
		}
		// Replies first, then the connections' news: a reply that arrived
		// before its connection went down is not lost.
		for _, p := range peers {
			c.receive(p.sock)
		}
		for _, p := range peers {
			ch := p.watch.Handle()
			if ch.up {
				c.signalUp()
			}
			if ch.down {
				c.failSent(p.ep)
			}
			p.watch.Tick()
		}
		c.mu.Lock()
		out := c.outbox
		c.outbox = nil
		c.mu.Unlock()
		for _, o := range out {
			p := byEP[o.ep]
			if p == nil {
				var err error
				if p, err = c.openPeer(o.ep); err != nil {
					c.fail(o.rid, err)
					continue
				}
				peers = append(peers, p)
				byEP[o.ep] = p
			}
			p.queue = append(p.queue, o)
		}
		for _, p := range peers {
			c.send(p)
		}
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
		c.deliver(replyRID(body), attemptResult{body: body})
	}
}

// deliver hands a result to the call waiting for rid, if any.
func (c *Client) deliver(rid uint64, res attemptResult) {
	c.mu.Lock()
	w := c.pending[rid]
	delete(c.pending, rid)
	c.mu.Unlock()
	if w != nil {
		w.ch <- res // capacity 1, one result per request id: never blocks
	}
}

// fail ends the attempt rid with err.
func (c *Client) fail(rid uint64, err error) { c.deliver(rid, attemptResult{err: err}) }

// failSent ends the routed attempts sent to ep, whose connection went down:
// their replies will never come.
func (c *Client) failSent(ep string) {
	c.mu.Lock()
	var lost []*waiter
	for rid, w := range c.pending {
		if w.failFast && w.sent && w.ep == ep {
			delete(c.pending, rid)
			lost = append(lost, w)
		}
	}
	c.mu.Unlock()
	for _, w := range lost {
		w.ch <- attemptResult{err: errNoReply}
	}
}

// signalUp wakes the calls waiting to retry: a broker became reachable.
func (c *Client) signalUp() {
	c.mu.Lock()
	close(c.upCh)
	c.upCh = make(chan struct{})
	c.mu.Unlock()
}

// upSignal returns the channel closed when a connection next comes up.
func (c *Client) upSignal() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.upCh
}

// send hands a peer's queued requests to ZeroMQ until it would block,
// dropping those whose callers have given up. A routed request for an
// endpoint that refuses connections forces a new attempt to connect (at
// most once per reconnection interval), and fails if that is refused too.
func (c *Client) send(p *peer) {
	for len(p.queue) > 0 {
		o := p.queue[0]
		c.mu.Lock()
		w := c.pending[o.rid]
		c.mu.Unlock()
		if w != nil && w.failFast && p.watch.refused {
			if time.Since(p.forcedAt) < c.opts.reconnectIvl || !p.watch.Reconnect() {
				c.fail(o.rid, errNotSent)
				w = nil
			} else {
				p.forcedAt = time.Now()
			}
		}
		if w != nil {
			c.mu.Lock()
			w.sent = true // before it may leave: a caller giving up meanwhile assumes it did
			c.mu.Unlock()
			if _, err := p.sock.SendBytes(o.body, zmq.DONTWAIT); err != nil {
				c.mu.Lock()
				w.sent = false
				c.mu.Unlock()
				break // no connection, or high-water mark: wait for POLLOUT
			}
		}
		p.queue[0] = outgoing{}
		p.queue = p.queue[1:]
	}
	if len(p.queue) == 0 {
		p.queue = nil
	}
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

// withTimeout applies the client's timeout to a context without a deadline.
func (c *Client) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); !ok && c.opts.timeout > 0 {
		return context.WithTimeout(ctx, c.opts.timeout)
	}
	return ctx, func() {}
}

// attempt sends req (with a new request id) to ep and waits for its reply
// until ctx ends. failFast (routed calls) ends it early when ep refuses
// connections (errNotSent) or the connection goes down (errNoReply). sent
// says whether the request may have reached the broker.
func (c *Client) attempt(ctx context.Context, ep string, req *request, failFast bool) (body []byte, sent bool, err error) {
	if err := ctx.Err(); err != nil {
		return nil, false, fmt.Errorf("garbagetruck: %s: %w", req.Cmd, err)
	}
	rid := c.nextRID.Add(1)
	if req.V == 0 {
		req.V = ProtocolVersion
	}
	req.RID = rid
	body, err = encodeRequest(req)
	if err != nil {
		return nil, false, fmt.Errorf("garbagetruck: encode %s: %w", req.Cmd, err)
	}
	w := &waiter{ch: make(chan attemptResult, 1), ep: ep, failFast: failFast}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, false, ErrClosed
	}
	c.pending[rid] = w
	c.outbox = append(c.outbox, outgoing{rid: rid, ep: ep, body: body})
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default: // a wake-up is pending already
	}
	select {
	case res := <-w.ch:
		return res.body, res.err == nil || res.err == errNoReply, res.err
	case <-ctx.Done():
		return nil, c.forget(rid), fmt.Errorf("garbagetruck: %s: %w", req.Cmd, ctx.Err())
	case <-c.closing:
		c.forget(rid)
		return nil, false, ErrClosed
	}
}

// forget drops a call that stopped waiting; its late reply is discarded. It
// returns whether the request was handed to ZeroMQ (or its result is in).
func (c *Client) forget(rid uint64) (sent bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.pending[rid]
	delete(c.pending, rid)
	return w == nil || w.sent
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
