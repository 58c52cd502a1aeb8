package garbagetruck

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/garbagetruck/garbagetruck/sdk/go/gttest"
)

// The failover of docs/CLUSTER.md through the Go SDK: two brokers on one
// PostgreSQL database (single mode: one owns the shards, the other stands
// by), a client given both endpoints, held leases and a subscriber, and a
// kill -9 of the owner.

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
}

// scratchDatabase creates a database for the test on DATABASE_URL's server
// (with psql) and drops it when the test ends; it returns its URL.
func scratchDatabase(t *testing.T) string {
	t.Helper()
	base := os.Getenv("DATABASE_URL")
	if base == "" {
		t.Skip("DATABASE_URL is not set: the failover test needs PostgreSQL")
	}
	psql, err := exec.LookPath("psql")
	if err != nil {
		t.Skip("psql not found: the failover test creates its database with it")
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("DATABASE_URL: %v", err)
	}
	name := fmt.Sprintf("gt_go_failover_%d_%d", os.Getpid(), time.Now().UnixNano()%1e9)
	run := func(sql string) error {
		out, err := exec.Command(psql, base, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql).CombinedOutput()
		if err != nil {
			return fmt.Errorf("psql %q: %v: %s", sql, err, out)
		}
		return nil
	}
	if err := run("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := run("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
			t.Error(err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

// pgBroker is a broker process on PostgreSQL, started by the test itself:
// a standby prints its ready line only when it takes the shards over.
type pgBroker struct {
	cmd    *exec.Cmd
	ready  chan struct{} // closed at the ready line
	exited chan struct{}
	stderr strings.Builder
	mu     sync.Mutex
}

func startPGBroker(t *testing.T, dbURL, id, port, eventsPort string) *pgBroker {
	t.Helper()
	bin, err := gttest.FindBroker()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--host", "127.0.0.1", "--port", port, "--events-port", eventsPort,
		"--metrics-port", "0", "--min-lease", "1")
	cmd.Env = append(os.Environ(), "GC_STORAGE_BACKEND=postgres", "DATABASE_URL="+dbURL, "GC_BROKER_ID="+id,
		"GC_SHARD_LEASE=1.2", "GC_SHARD_RENEW=0.3")
	b := &pgBroker{cmd: cmd, ready: make(chan struct{}), exited: make(chan struct{})}
	cmd.Stderr = writerFunc(func(p []byte) (int, error) {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.stderr.Write(p)
	})
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		r := bufio.NewReader(stdout)
		for {
			line, err := r.ReadString('\n')
			if strings.HasPrefix(line, "garbagetruck ready ") {
				close(b.ready)
				io.Copy(io.Discard, r)
				return
			}
			if err != nil {
				return
			}
		}
	}()
	go func() {
		cmd.Wait()
		close(b.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-b.exited:
			return
		default:
		}
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-b.exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-b.exited
		}
	})
	return b
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func (b *pgBroker) log() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stderr.String()
}

func (b *pgBroker) waitReady(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-b.ready:
	case <-b.exited:
		t.Fatalf("broker exited before it was ready:\n%s", b.log())
	case <-time.After(d):
		t.Fatalf("broker not ready after %v:\n%s", d, b.log())
	}
}

func TestFailoverKeepAliveAndEvents(t *testing.T) {
	dbURL := scratchDatabase(t)
	port := map[string]string{}
	for _, k := range []string{"a", "a-events", "b", "b-events"} {
		port[k] = freePort(t)
	}
	ep := func(k string) string { return "tcp://127.0.0.1:" + port[k] }
	a := startPGBroker(t, dbURL, "a", port["a"], port["a-events"])
	a.waitReady(t, 15*time.Second)
	b := startPGBroker(t, dbURL, "b", port["b"], port["b-events"])

	c := dial(t, ep("a")+","+ep("b"), "failover-svc")
	ctx := testCtx(t, 60*time.Second)
	// Wait for the standby to appear in the map (it heartbeats the database).
	for deadline := time.Now().Add(10 * time.Second); ; {
		m, err := c.ShardMap(ctx)
		if err == nil && len(m.Brokers) == 2 {
			if owner, ok := m.OwnerOf(0); !ok || owner.Endpoint != ep("a") {
				t.Fatalf("map %+v", m)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the standby is not in the map: %+v, %v", m, err)
		}
		time.Sleep(100 * time.Millisecond) // polling with a deadline
	}

	// The subscriber takes both events endpoints from the map.
	s, err := c.Subscribe(ctx, "", SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.socks) != 2 {
		t.Fatalf("subscribed on %d events endpoints, want 2", len(s.socks))
	}
	var evMu sync.Mutex
	var events []Event
	go func() {
		for ev := range s.Events() {
			evMu.Lock()
			events = append(events, ev)
			evMu.Unlock()
		}
	}()

	const ttl = 3 * time.Second
	var held []*Held
	for i := range 3 {
		h, err := c.Hold(ctx, CreateRequest{ObjectID: fmt.Sprint("failover-object-", i), TTL: ttl})
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, h)
	}
	time.Sleep(1500 * time.Millisecond) // a renewal or so on a
	killed := time.Now()
	if err := a.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-a.exited
	b.waitReady(t, 15*time.Second)
	t.Logf("b took over %v after the kill", time.Since(killed).Round(time.Millisecond))

	// Two TTLs after the kill, every lease is still held...
	time.Sleep(time.Until(killed.Add(2 * ttl)))
	onB := dial(t, ep("b"), "failover-svc")
	for _, h := range held {
		if err := h.Err(); err != nil {
			t.Errorf("lease %s lost: %v", h.ID(), err)
			continue
		}
		// ... and ACTIVE on the second broker, renewed there.
		l, err := onB.GetLease(ctx, h.ID())
		if err != nil {
			t.Errorf("lease %s on b: %v", h.ID(), err)
			continue
		}
		if l.State != LeaseActive || !l.RenewedAt.After(killed) {
			t.Errorf("lease %s on b: %s, renewed at %v (kill at %v)", h.ID(), l.State, l.RenewedAt, killed)
		}
	}

	// The subscriber saw each lease created and renewed after the kill,
	// every seq once and in order.
	want := map[string]bool{}
	for _, h := range held {
		want[h.ID()] = true
	}
	var created, renewedAfter map[string]bool
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		created, renewedAfter = map[string]bool{}, map[string]bool{}
		evMu.Lock()
		var last uint64
		for _, ev := range events {
			if ev.Seq <= last {
				t.Fatalf("seq %d after %d: duplicate or out of order", ev.Seq, last)
			}
			last = ev.Seq
			if !want[ev.Lease.ID] {
				continue
			}
			switch {
			case ev.Kind == EventLeaseCreated:
				created[ev.Lease.ID] = true
			case ev.Kind == EventLeaseRenewed && ev.At.After(killed):
				renewedAfter[ev.Lease.ID] = true
			}
		}
		n := len(events)
		evMu.Unlock()
		if len(created) == 3 && len(renewedAfter) == 3 {
			t.Logf("%d events, last seq %d", n, last)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("events: created %v, renewed after the kill %v (of %d events)", created, renewedAfter, n)
		}
	}
	if err := s.Err(); err != nil {
		t.Errorf("subscription: %v", err)
	}
	for _, h := range held {
		if err := h.Release(ctx); err != nil {
			t.Errorf("release %s: %v", h.ID(), err)
		}
	}
}
