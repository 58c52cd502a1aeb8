// Package gttest runs a real GarbageTruck broker for tests.
//
//	func TestSomething(t *testing.T) {
//		broker := gttest.Start(t, "--min-lease", "0.05")
//		client, err := garbagetruck.Dial(ctx, broker.Endpoint, "my-service")
//		...
//	}
//
// The broker binary is found through the GT_BROKER_BIN environment variable,
// else as "garbagetruck" on PATH, else in <repo>/build/broker/garbagetruck.
//
// StartCurve starts a broker with CURVE authentication: it generates the
// broker's certificates, and Curve adds and removes trusted client keys
// while the broker runs.
package gttest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ReadyTimeout bounds how long Start waits for the broker's ready line.
var ReadyTimeout = 15 * time.Second

// StopTimeout bounds how long Stop waits after SIGTERM before killing.
var StopTimeout = 5 * time.Second

// BindRetry bounds how long a broker started again on its ports (Restart,
// Relaunch, Outage) retries while it cannot bind them yet.
var BindRetry = 10 * time.Second

// Broker is a running broker process.
type Broker struct {
	// Endpoint is the request endpoint, "tcp://127.0.0.1:<port>".
	Endpoint string
	// EventsEndpoint is the event endpoint, "tcp://127.0.0.1:<port>".
	EventsEndpoint string
	// Binary is the path of the broker executable.
	Binary string

	settings []string // extra flags, without --port / --events-port
	port     string   // request port, fixed after the first start
	evPort   string   // events port, fixed after the first start

	mu     sync.Mutex
	cmd    *exec.Cmd
	waited chan struct{} // closed when the process has exited
	err    error         // the exit status
	stderr *lockedBuffer
}

// lockedBuffer collects a process's output for error reports.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// repoRoot is the GarbageTruck checkout this package lives in.
func repoRoot() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return ""
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

// find locates an executable: the environment variable, then PATH, then the
// repository's build directory.
func find(envVar, name, buildPath string) (string, error) {
	if p := os.Getenv(envVar); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("gttest: %s=%s: %w", envVar, p, err)
		}
		return p, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	p := filepath.Join("<repo>", buildPath)
	if root := repoRoot(); root != "" {
		p = filepath.Join(root, buildPath)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("gttest: %s not found: set %s, put it on PATH, or build it as %s", name, envVar, p)
}

// FindBroker returns the path of the broker binary (GT_BROKER_BIN, PATH,
// <repo>/build/broker/garbagetruck).
func FindBroker() (string, error) {
	return find("GT_BROKER_BIN", "garbagetruck", filepath.Join("build", "broker", "garbagetruck"))
}

// FindGtctl returns the path of the C command-line client (GT_GTCTL_BIN,
// PATH, <repo>/build/sdk/c/gtctl).
func FindGtctl() (string, error) {
	return find("GT_GTCTL_BIN", "gtctl", filepath.Join("build", "sdk", "c", "gtctl"))
}

// Start starts a broker on ephemeral loopback ports with the given extra
// flags (for example "--min-lease", "0.05") and stops it when the test ends.
// It fails the test if the broker cannot be started.
func Start(t testing.TB, settings ...string) *Broker {
	t.Helper()
	b, err := Launch(settings...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Stop(); err != nil {
			t.Errorf("gttest: broker: %v\nstderr:\n%s", err, b.Stderr())
		}
	})
	return b
}

// Launch starts a broker like Start, for code without a testing.TB (examples,
// TestMain). The caller must call Stop.
func Launch(settings ...string) (*Broker, error) {
	bin, err := FindBroker()
	if err != nil {
		return nil, err
	}
	b := &Broker{Binary: bin, port: "0", evPort: "0"}
	for i := 0; i < len(settings); i++ {
		switch settings[i] {
		case "--port", "--events-port":
			if i+1 < len(settings) {
				if settings[i] == "--port" {
					b.port = settings[i+1]
				} else {
					b.evPort = settings[i+1]
				}
				i++
				continue
			}
		}
		b.settings = append(b.settings, settings[i])
	}
	if err := b.start(); err != nil {
		return nil, err
	}
	return b, nil
}

func (b *Broker) start() error {
	args := append([]string{"--host", "127.0.0.1", "--port", b.port, "--events-port", b.evPort}, b.settings...)
	cmd := exec.Command(b.Binary, args...)
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("gttest: start %s: %w", b.Binary, err)
	}
	ready := make(chan string, 1)
	go func() {
		r := bufio.NewReader(stdout)
		for {
			line, err := r.ReadString('\n')
			if strings.HasPrefix(line, "garbagetruck ready ") {
				ready <- strings.TrimSpace(line)
				break
			}
			if err != nil {
				close(ready)
				return
			}
		}
		io.Copy(io.Discard, r) // keep the pipe drained
	}()
	waited := make(chan struct{})
	b.mu.Lock()
	b.cmd, b.waited, b.stderr, b.err = cmd, waited, stderr, nil
	b.mu.Unlock()
	go func() {
		err := cmd.Wait()
		b.mu.Lock()
		b.err = err
		b.mu.Unlock()
		close(waited)
	}()
	timer := time.NewTimer(ReadyTimeout)
	defer timer.Stop()
	select {
	case line, ok := <-ready:
		if ok && b.parseReady(line) {
			return nil
		}
		b.Stop()
		if !ok {
			return fmt.Errorf("gttest: %s %s exited before it was ready: %v\nstderr:\n%s",
				b.Binary, strings.Join(args, " "), b.exitErr(), stderr.String())
		}
		return fmt.Errorf("gttest: malformed ready line %q", line)
	case <-timer.C:
		b.Stop()
		return fmt.Errorf("gttest: %s not ready after %v\nstderr:\n%s", b.Binary, ReadyTimeout, stderr.String())
	}
}

// parseReady reads "garbagetruck ready requests=EP events=EP".
func (b *Broker) parseReady(line string) bool {
	for _, field := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(field, "requests="); ok {
			b.Endpoint = v
		} else if v, ok := strings.CutPrefix(field, "events="); ok {
			b.EventsEndpoint = v
		}
	}
	if b.Endpoint == "" || b.EventsEndpoint == "" {
		return false
	}
	b.port = b.Endpoint[strings.LastIndex(b.Endpoint, ":")+1:]
	b.evPort = b.EventsEndpoint[strings.LastIndex(b.EventsEndpoint, ":")+1:]
	return true
}

func (b *Broker) exitErr() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// Stderr returns what the broker has written to stderr so far.
func (b *Broker) Stderr() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stderr == nil {
		return ""
	}
	return b.stderr.String()
}

// Stop stops the broker: SIGTERM, then SIGKILL if it has not exited within
// StopTimeout. It returns an error if the broker did not exit cleanly with
// status 0. Stopping a stopped broker does nothing.
func (b *Broker) Stop() error {
	b.mu.Lock()
	cmd, waited := b.cmd, b.waited
	b.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-waited:
	default:
		cmd.Process.Signal(syscall.SIGTERM)
		timer := time.NewTimer(StopTimeout)
		defer timer.Stop()
		select {
		case <-waited:
		case <-timer.C:
			cmd.Process.Kill()
			<-waited
			b.mu.Lock()
			b.cmd = nil
			b.mu.Unlock()
			return errors.New("gttest: broker did not stop within " + StopTimeout.String() + " of SIGTERM; killed")
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cmd = nil
	if b.err != nil {
		return fmt.Errorf("gttest: broker exited: %w", b.err)
	}
	return nil
}

// Restart stops the broker and starts it again on the same ports with the
// same flags (with the memory store, its state is lost). The ports are those
// of the first start (the kernel's choice unless --port / --events-port were
// given), bound again at once. To keep clients without a broker for a while,
// use Outage: a port merely left free may be taken by any other process.
func (b *Broker) Restart() error {
	if err := b.Stop(); err != nil {
		return err
	}
	return b.startOnSamePorts()
}

// Outage stops the broker and holds its two ports with listening sockets that
// never accept, until resume is called: clients connect but get no reply, and
// no other process can take the ports meanwhile. resume releases the ports and
// starts the broker on them again, like Restart; later calls return the first
// call's result. Call resume, or the ports stay held until the process exits.
func (b *Broker) Outage() (resume func() error, err error) {
	if err := b.Stop(); err != nil {
		return nil, err
	}
	var holders []net.Listener
	release := func() {
		for _, l := range holders {
			l.Close()
		}
	}
	for _, port := range []string{b.port, b.evPort} {
		l, err := holdPort(port)
		if err != nil {
			release()
			return nil, fmt.Errorf("gttest: hold port %s: %w", port, err)
		}
		holders = append(holders, l)
	}
	var once sync.Once
	var resumed error
	return func() error {
		once.Do(func() {
			release()
			resumed = b.startOnSamePorts()
		})
		return resumed
	}, nil
}

// SilentEndpoint returns "tcp://127.0.0.1:<port>" of a listening socket that
// never accepts, closed when the test ends: the kernel makes connections but
// nothing answers them, and no other process can take the port meanwhile (as
// it could take a port merely found free).
func SilentEndpoint(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return "tcp://" + l.Addr().String()
}

// holdPort listens on a loopback port without ever accepting, retrying for up
// to BindRetry while something else still holds the port. (Go listeners set
// SO_REUSEADDR: the stopped broker's connections in TIME_WAIT do not block it.)
func holdPort(port string) (net.Listener, error) {
	deadline := time.Now().Add(BindRetry)
	for {
		l, err := net.Listen("tcp", "127.0.0.1:"+port)
		if err == nil || !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			return l, err
		}
		time.Sleep(50 * time.Millisecond) // pacing between attempts
	}
}

// startOnSamePorts starts the stopped broker again on its ports, retrying for
// up to BindRetry while it cannot bind them (still held elsewhere).
func (b *Broker) startOnSamePorts() error {
	deadline := time.Now().Add(BindRetry)
	for {
		err := b.start()
		if err == nil || !strings.Contains(err.Error(), "cannot bind") || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond) // pacing between attempts
	}
}

// Relaunch starts a broker stopped with Stop again, on the same ports with
// the same flags. It does nothing if the broker is running.
func (b *Broker) Relaunch() error {
	b.mu.Lock()
	running := b.cmd != nil
	b.mu.Unlock()
	if running {
		return nil
	}
	return b.startOnSamePorts()
}
