package garbagetruck

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	zmq "github.com/pebbe/zmq4"
)

// CURVE (ZeroMQ RFC 26): a broker started with a certificate
// (--curve-cert) accepts only the clients whose public keys it trusts
// (--curve-clients), and binds each key to a service and a role. A client
// then needs two settings, named alike in every GarbageTruck SDK and gtctl:
//
//   - the broker's public key: WithServerKey, else GT_SERVER_KEY;
//   - the client's secret certificate file: WithClientCert, else GT_CLIENT_CERT.

// The environment variables Dial reads when the corresponding option is not given.
const (
	// EnvServerKey names the broker's CURVE public key: the 40-character
	// Z85 text, or the path of the broker's certificate file.
	EnvServerKey = "GT_SERVER_KEY"
	// EnvClientCert names the client's secret certificate file.
	EnvClientCert = "GT_CLIENT_CERT"
)

// WithServerKey turns CURVE on with the broker's public key: either the
// 40-character Z85 key or the path of a certificate file of the broker (its
// public-key is used; the public certificate is enough). It needs
// WithClientCert (or GT_CLIENT_CERT) too. Without this option Dial reads
// GT_SERVER_KEY; WithServerKey("") means none, whatever the environment says.
func WithServerKey(keyOrCertPath string) Option {
	return func(o *options) { o.serverKey = &keyOrCertPath }
}

// WithClientCert sets the client's secret certificate file for CURVE (the
// NAME_secret file that `gtctl keygen NAME` writes, or pyzmq's
// NAME.key_secret): its public-key identifies the client to the broker,
// which binds it to a service and a role. It needs WithServerKey (or
// GT_SERVER_KEY) too. Without this option Dial reads GT_CLIENT_CERT;
// WithClientCert("") means none, whatever the environment says.
func WithClientCert(path string) Option {
	return func(o *options) { o.clientCert = &path }
}

// curveKeys are the three Z85 keys a CURVE client socket needs.
type curveKeys struct {
	server, public, secret string
}

// setting returns an option's value, or the environment variable's when the
// option was not given, with the name to report it by.
func setting(opt *string, optName, envVar string) (value, source string) {
	if opt != nil {
		return *opt, optName
	}
	return os.Getenv(envVar), envVar
}

// resolveCurve reads the CURVE settings: nil when CURVE is off, an error when
// only half of them is set or a key or certificate is unusable.
func resolveCurve(o *options) (*curveKeys, error) {
	serverKey, serverSource := setting(o.serverKey, "WithServerKey", EnvServerKey)
	certPath, certSource := setting(o.clientCert, "WithClientCert", EnvClientCert)
	switch {
	case serverKey == "" && certPath == "":
		return nil, nil
	case certPath == "":
		return nil, fmt.Errorf("%w: CURVE: the server key is set (%s) but no client certificate: set WithClientCert or %s too",
			ErrInvalidArgument, serverSource, EnvClientCert)
	case serverKey == "":
		return nil, fmt.Errorf("%w: CURVE: the client certificate is set (%s) but no server key: set WithServerKey or %s too",
			ErrInvalidArgument, certSource, EnvServerKey)
	}
	if !zmq.HasCurve() {
		return nil, errors.New("garbagetruck: CURVE: this libzmq was built without CURVE support")
	}
	keys := &curveKeys{}
	// '/', '.' and '-' are Z85 characters: a 40-character path could pass
	// for a key, so an existing file wins (as in the C and Python SDKs)
	if _, statErr := os.Stat(serverKey); statErr != nil && validZ85Key(serverKey) {
		keys.server = serverKey
	} else {
		cert, err := LoadCertificate(serverKey)
		if err != nil {
			return nil, fmt.Errorf("%w: CURVE: %s is neither a 40-character Z85 key nor a certificate file: %w",
				ErrInvalidArgument, serverSource, err)
		}
		keys.server = cert.PublicKey
	}
	cert, err := LoadCertificate(certPath)
	if err != nil {
		return nil, fmt.Errorf("%w: CURVE: %s: %w", ErrInvalidArgument, certSource, err)
	}
	if cert.SecretKey == "" {
		return nil, fmt.Errorf("%w: CURVE: %s: %s has no secret-key: it is a public certificate; give the secret one (NAME_secret)",
			ErrInvalidArgument, certSource, certPath)
	}
	keys.public, keys.secret = cert.PublicKey, cert.SecretKey
	return keys, nil
}

// secure makes s a CURVE client of the broker (before it connects).
func (k *curveKeys) secure(s *zmq.Socket) error {
	if k == nil {
		return nil
	}
	err := s.SetCurveServerkey(k.server)
	if err == nil {
		err = s.SetCurvePublickey(k.public)
	}
	if err == nil {
		err = s.SetCurveSecretkey(k.secret)
	}
	if err != nil {
		return fmt.Errorf("CURVE: %w", err)
	}
	return nil
}

// Certificate is a CURVE certificate in CZMQ's text format (ZPL), as
// `gtctl keygen`, CZMQ's zcert_save and pyzmq's
// zmq.auth.create_certificates write it:
//
//	metadata
//	    service = "upload"
//	    role = "service"
//	curve
//	    public-key = "<40 Z85 characters>"
//	    secret-key = "<40 Z85 characters>"
//
// The public file lacks secret-key.
type Certificate struct {
	// PublicKey is the Z85 public key.
	PublicKey string
	// SecretKey is the Z85 secret key; "" in a public certificate.
	SecretKey string
	// Metadata are the entries of the metadata section (for GarbageTruck:
	// service, role, callback-allow, callback-secret); never nil.
	Metadata map[string]string
}

// LoadCertificate reads a certificate file (see Certificate).
func LoadCertificate(path string) (*Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	cert, err := ParseCertificate(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cert, nil
}

// ParseCertificate reads a certificate in ZPL text. It requires a valid
// curve/public-key; a secret-key, when present, must be valid and belong to
// the public key.
func ParseCertificate(data []byte) (*Certificate, error) {
	entries, err := parseZPL(string(data))
	if err != nil {
		return nil, err
	}
	cert := &Certificate{Metadata: map[string]string{}}
	for _, e := range entries {
		if len(e.path) != 2 || !e.hasValue {
			continue
		}
		switch e.path[0] {
		case "curve":
			switch e.path[1] {
			case "public-key":
				cert.PublicKey = e.value
			case "secret-key":
				cert.SecretKey = e.value
			}
		case "metadata":
			cert.Metadata[e.path[1]] = e.value
		}
	}
	if cert.PublicKey == "" {
		return nil, errors.New("certificate has no curve/public-key")
	}
	if !validZ85Key(cert.PublicKey) {
		return nil, errors.New("curve/public-key is not a 40-character Z85 key")
	}
	if cert.SecretKey != "" {
		if !validZ85Key(cert.SecretKey) {
			return nil, errors.New("curve/secret-key is not a 40-character Z85 key")
		}
		if public, err := zmq.AuthCurvePublic(cert.SecretKey); err == nil && public != cert.PublicKey {
			return nil, errors.New("curve/secret-key does not belong to curve/public-key")
		}
	}
	return cert, nil
}

// zplEntry is one name of a ZPL document: its path from the root, and its
// value if it has one.
type zplEntry struct {
	path     []string
	value    string
	hasValue bool
}

// parseZPL reads ZeroMQ Property Language text (rfc.zeromq.org/spec/4):
// one name per line, indented by 4 spaces per level below its parent,
// optionally "= value" (quoted with " or ', or bare up to a comment), and
// "#" comments. It returns every name in document order.
func parseZPL(text string) ([]zplEntry, error) {
	var entries []zplEntry
	var stack []string // the path of the previous line
	for n, line := range strings.Split(text, "\n") {
		lineNo := n + 1
		line = strings.TrimRight(line, " \r")
		body := strings.TrimLeft(line, " ")
		if body == "" || body[0] == '#' {
			continue
		}
		indent := len(line) - len(body)
		if strings.HasPrefix(body, "\t") || indent%4 != 0 {
			return nil, fmt.Errorf("line %d: indent by multiples of 4 spaces", lineNo)
		}
		level := indent / 4
		if level > len(stack) {
			return nil, fmt.Errorf("line %d: indented more than one level below its parent", lineNo)
		}
		end := strings.IndexFunc(body, func(r rune) bool { return !isZPLNameChar(r) })
		if end < 0 {
			end = len(body)
		}
		name, rest := body[:end], strings.TrimLeft(body[end:], " ")
		if name == "" {
			return nil, fmt.Errorf("line %d: expected a name", lineNo)
		}
		entry := zplEntry{path: append(append([]string{}, stack[:level]...), name)}
		switch {
		case rest == "" || rest[0] == '#':
		case rest[0] == '=':
			value, err := zplValue(strings.TrimLeft(rest[1:], " "))
			if err != nil {
				return nil, fmt.Errorf("line %d: %s: %w", lineNo, name, err)
			}
			entry.value, entry.hasValue = value, true
		default:
			return nil, fmt.Errorf("line %d: unexpected %q after %s", lineNo, rest, name)
		}
		for _, e := range entries {
			if e.hasValue && entry.hasValue && slices.Equal(e.path, entry.path) {
				return nil, fmt.Errorf("line %d: %s is set twice", lineNo, strings.Join(entry.path, "/"))
			}
		}
		entries = append(entries, entry)
		stack = entry.path
	}
	return entries, nil
}

// zplValue reads the value after "=": quoted, or bare up to a comment.
func zplValue(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	if q := s[0]; q == '"' || q == '\'' {
		end := strings.IndexByte(s[1:], q)
		if end < 0 {
			return "", errors.New("unterminated quoted value")
		}
		value, rest := s[1:1+end], strings.TrimLeft(s[2+end:], " ")
		if rest != "" && rest[0] != '#' {
			return "", fmt.Errorf("unexpected %q after the value", rest)
		}
		return value, nil
	}
	if i := strings.IndexByte(s, '#'); i >= 0 {
		s = s[:i]
	}
	return strings.TrimRight(s, " "), nil
}

// isZPLNameChar reports whether r may appear in a ZPL name.
func isZPLNameChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
		strings.ContainsRune("$-_@.&+/", r)
}

// z85Alphabet is the Z85 encoding's alphabet (ZeroMQ RFC 32), in digit order.
const z85Alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"

// validZ85Key reports whether s is a CURVE key in Z85: 40 characters of the
// alphabet, each group of 5 encoding a 32-bit value.
func validZ85Key(s string) bool {
	if len(s) != 40 {
		return false
	}
	for g := 0; g < len(s); g += 5 {
		var v uint64
		for _, c := range []byte(s[g : g+5]) {
			d := strings.IndexByte(z85Alphabet, c)
			if d < 0 {
				return false
			}
			v = v*85 + uint64(d)
		}
		if v > 0xffffffff {
			return false
		}
	}
	return true
}

// redialer watches a socket's connection to one endpoint through a ZeroMQ
// socket monitor. It has two jobs:
//
//   - With CURVE, it connects again after the broker refused the handshake.
//     libzmq (4.3) gives up on a connection whose handshake failed (for
//     example an unknown key) and never retries it, but the broker trusts a
//     key as soon as it appears in its clients directory: without a new
//     connection, a client started a moment before its key was deployed
//     would wait forever. It reconnects after a backoff (the client's
//     reconnection interval, doubling up to its maximum).
//   - For a request socket (track), it follows the connection's state: up
//     (handshake done), or refused (the last attempt to connect failed), so
//     that a client with several endpoints does not wait for a broker that
//     is not there (docs/CLUSTER.md, "Client routing").
//
// The socket's owner goroutine polls Monitor and calls Handle and Tick;
// Timeout shortens its poll to the next reconnection.
type redialer struct {
	sock     *zmq.Socket
	monitor  *zmq.Socket // PAIR receiving sock's events
	endpoint string
	curve    bool          // reconnect after a refused handshake
	first    time.Duration // CURVE reconnection backoff
	max      time.Duration
	next     time.Duration // backoff of the next refusal
	due      time.Time     // when to reconnect; zero: no reconnection pending

	up      bool // track: the connection is up (handshake done)
	refused bool // track: the last connection attempt failed, none is up
}

// connChange is what one Handle call saw happen to the connection.
type connChange struct {
	up      bool // a connection came up
	down    bool // a connection went down: requests sent on it get no reply
	refused bool // an attempt to connect failed
}

var monitorSeq atomic.Uint64 // names the inproc monitor endpoints

// newRedialer watches a SUB socket (not yet connected to endpoint) for
// refused CURVE handshakes; nil without CURVE.
func (c *Client) newRedialer(sock *zmq.Socket, endpoint string) (*redialer, error) {
	if c.curve == nil {
		return nil, nil
	}
	return c.newWatch(sock, endpoint, false)
}

// newWatch watches sock (not yet connected to endpoint): its handshakes
// with CURVE, and its connection's state when track is set.
func (c *Client) newWatch(sock *zmq.Socket, endpoint string, track bool) (*redialer, error) {
	addr := fmt.Sprintf("inproc://garbagetruck-monitor-%d", monitorSeq.Add(1))
	events := zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_AUTH |
		zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
	if track {
		events |= zmq.EVENT_DISCONNECTED | zmq.EVENT_CONNECT_RETRIED
	}
	if err := sock.Monitor(addr, events); err != nil {
		return nil, fmt.Errorf("garbagetruck: socket monitor: %w", err)
	}
	monitor, err := c.newSocket(zmq.PAIR)
	if err == nil {
		if err = monitor.Connect(addr); err != nil {
			monitor.Close()
		}
	}
	if err != nil {
		sock.Monitor("", 0)
		return nil, fmt.Errorf("garbagetruck: socket monitor: %w", err)
	}
	return &redialer{sock: sock, monitor: monitor, endpoint: endpoint, curve: c.curve != nil,
		first: c.opts.reconnectIvl, max: c.opts.reconnectIvlMax, next: c.opts.reconnectIvl}, nil
}

// Monitor returns the socket to poll for events (nil for a nil redialer,
// which the methods below accept).
func (r *redialer) Monitor() *zmq.Socket {
	if r == nil {
		return nil
	}
	return r.monitor
}

// Handle reads the pending events: a refused CURVE handshake schedules a
// reconnection, a success resets the backoff. It reports what happened to
// the connection.
func (r *redialer) Handle() connChange {
	var ch connChange
	if r == nil {
		return ch
	}
	for {
		event, _, _, err := r.monitor.RecvEvent(zmq.DONTWAIT)
		if err != nil {
			return ch
		}
		switch event {
		case zmq.EVENT_HANDSHAKE_SUCCEEDED:
			r.next, r.due = r.first, time.Time{}
			r.up, r.refused = true, false
			ch.up = true
		case zmq.EVENT_DISCONNECTED:
			if r.up {
				ch.down = true
			}
			r.up = false
		case zmq.EVENT_CONNECT_RETRIED:
			if !r.up {
				r.refused = true
				ch.refused = true
			}
		default: // a failed handshake
			r.up, r.refused = false, true
			ch.refused = true
			if r.curve && r.due.IsZero() {
				r.due = time.Now().Add(r.next)
				r.next = min(2*r.next, max(r.max, r.first))
			}
		}
	}
}

// Timeout shortens a poll timeout (negative: none) to the pending
// reconnection.
func (r *redialer) Timeout(timeout time.Duration) time.Duration {
	if r == nil || r.due.IsZero() {
		return timeout
	}
	wait := max(time.Until(r.due), 0)
	if timeout < 0 || wait < timeout {
		return wait
	}
	return timeout
}

// Tick reconnects when a reconnection is due.
func (r *redialer) Tick() {
	if r == nil || r.due.IsZero() || time.Now().Before(r.due) {
		return
	}
	r.due = time.Time{}
	if !r.Reconnect() {
		r.due = time.Now().Add(r.next) // try again later
	}
}

// Reconnect drops the socket's connection to the endpoint (or its pending
// attempt) and connects again at once; false if that failed.
func (r *redialer) Reconnect() bool {
	r.sock.Disconnect(r.endpoint) // fails when libzmq dropped it already
	if err := r.sock.Connect(r.endpoint); err != nil {
		return false
	}
	r.refused = false
	return true
}

// Close stops watching (before the socket is closed).
func (r *redialer) Close() {
	if r == nil {
		return
	}
	r.sock.Monitor("", 0)
	r.monitor.Close()
}
