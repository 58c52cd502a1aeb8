// gtcompare: the load clients of bench/compare. Each invocation measures one
// system (Redis, etcd or GarbageTruck) that bench/compare started, and
// appends one JSON line to the results file; `report` turns the file into
// Markdown tables. Every loop is bounded in count and time.
//
//	gtcompare freeport N
//	gtcompare wait    --system S --endpoint E [--timeout D]
//	gtcompare ops     --system S --label L --endpoint E [--events E] --results F [...]
//	gtcompare expiry  --system S --label L --endpoint E [--events E] --pid P --n N --window D --results F [...]
//	gtcompare na      --label L --reason TEXT --results F
//	gtcompare report  --results F
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

type opKind int

const (
	opCreate opKind = iota
	opRenew
	opRelease
)

var opNames = []string{"create", "renew", "release"}

// createTTL is the TTL of throughput-phase leases: long enough never to
// expire during the run, not whole seconds so that Redis gets SET .. PX.
const createTTL = 600*time.Second + 500*time.Millisecond

// driver is one system under test.
type driver interface {
	prepare(op opKind, items []int, ttl time.Duration) // untimed: encode requests if the client can
	run(c int, op opKind, items []int, depth int, stop time.Time) (done, errs int)
	created(i int) bool
	lockstep(items []int, count int, stop time.Time) []float64 // microseconds
	load(c int, items []int, depth int, stop time.Time, deadline func(i int) int64) int
	subscribe(ctx context.Context, deliver func(i int, deadlineMS float64, recvUS int64)) error
	close()
}

type options struct {
	system, label, endpoint, events, results, tag, dump string
	pid, conns, depth, ops, lockOps, n, due, round      int
	phaseLimit, lockLimit, window, bound, loadCap       time.Duration
	timeout                                             time.Duration
	reason                                              string
}

func parseFlags(args []string) options {
	var o options
	fs := flag.NewFlagSet("gtcompare", flag.ExitOnError)
	fs.StringVar(&o.system, "system", "", "redis | etcd | gt")
	fs.StringVar(&o.label, "label", "", "column name in the tables (default: system)")
	fs.StringVar(&o.endpoint, "endpoint", "", "redis host:port | etcd http://host:port | gt tcp://host:port")
	fs.StringVar(&o.events, "events", "", "gt: events endpoint")
	fs.StringVar(&o.results, "results", "", "JSON lines file to append to (and read the create rate from)")
	fs.StringVar(&o.tag, "tag", "expiry", "expiry | burst")
	fs.StringVar(&o.dump, "dump", "", "expiry: write \"deadline_ms lateness_ms\" per event to this file (for analysis)")
	fs.StringVar(&o.reason, "reason", "", "na: why the system has no figures")
	fs.IntVar(&o.pid, "pid", 0, "server process (for RSS)")
	fs.IntVar(&o.conns, "connections", 4, "connections C")
	fs.IntVar(&o.depth, "depth", 64, "requests in flight per connection D")
	fs.IntVar(&o.ops, "ops", 200000, "operations per throughput phase")
	fs.IntVar(&o.lockOps, "lockstep-ops", 10000, "operations in the lock-step latency phase")
	fs.IntVar(&o.n, "n", 10000, "expiry: live leases")
	fs.IntVar(&o.due, "due", 0, "expiry: how many of them fall due in the window (0: all)")
	fs.IntVar(&o.round, "round", 0, "ops: which round of a repeated case this is (recorded; the report takes each figure's median)")
	fs.DurationVar(&o.phaseLimit, "phase-limit", 10*time.Second, "time bound of one throughput phase")
	fs.DurationVar(&o.lockLimit, "lockstep-limit", 5*time.Second, "time bound of the lock-step phase")
	fs.DurationVar(&o.window, "window", 5*time.Second, "expiry: deadlines spread over this window (0: all at once)")
	fs.DurationVar(&o.bound, "bound", 30*time.Second, "expiry: wait this long after the last deadline")
	fs.DurationVar(&o.loadCap, "load-cap", 120*time.Second, "expiry: longest load")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "wait: how long")
	_ = fs.Parse(args)
	if o.label == "" {
		o.label = o.system
	}
	return o
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: gtcompare freeport|wait|ops|expiry|na|report [flags]")
		os.Exit(2)
	}
	cmd, o := os.Args[1], parseFlags(os.Args[2:])
	var err error
	switch cmd {
	case "freeport":
		err = freePorts(os.Args[2:])
	case "wait":
		err = waitReady(o)
	case "ops":
		err = runOps(o)
	case "expiry":
		err = runExpiry(o)
	case "na":
		err = appendResult(o.results, map[string]any{"kind": "na", "label": o.label, "reason": o.reason})
	case "report":
		err = report(o.results, os.Stdout)
	default:
		err = fmt.Errorf("unknown command %q", cmd)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "gtcompare %s: %v\n", cmd, err)
		os.Exit(1)
	}
}

// freePorts prints N free loopback TCP ports (held together while chosen so
// they differ).
func freePorts(args []string) error {
	n := 1
	if len(args) > 0 {
		n, _ = strconv.Atoi(args[0])
	}
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	for k := 0; k < n; k++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		held = append(held, l)
		fmt.Println(l.Addr().(*net.TCPAddr).Port)
	}
	return nil
}

// waitReady polls a Redis or etcd server until it answers (bounded).
func waitReady(o options) error {
	deadline := time.Now().Add(o.timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		var err error
		switch o.system {
		case "redis":
			client := redis.NewClient(&redis.Options{Addr: o.endpoint, DisableIdentity: true, Protocol: 2})
			err = client.Ping(ctx).Err()
			client.Close()
		case "etcd":
			var client *clientv3.Client
			client, err = clientv3.New(clientv3.Config{Endpoints: []string{o.endpoint}, DialTimeout: time.Second, Logger: zap.NewNop()})
			if err == nil {
				_, err = client.Get(ctx, "health")
				client.Close()
			}
		default:
			err = fmt.Errorf("wait: unknown system %q", o.system)
		}
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s at %s not ready after %s: %w", o.system, o.endpoint, o.timeout, err)
		}
		time.Sleep(100 * time.Millisecond) // polling a starting server, bounded above
	}
}

func newDriver(o options, items int) (driver, error) {
	switch o.system {
	case "redis":
		return newRedisDriver(o.endpoint, o.conns, items), nil
	case "etcd":
		return newEtcdDriver(o.endpoint, o.conns, items)
	case "gt":
		return newGTDriver(o.endpoint, o.events, o.conns, items)
	}
	return nil, fmt.Errorf("unknown system %q", o.system)
}

func appendResult(path string, record map[string]any) error {
	line, err := json.Marshal(record)
	if err != nil {
		return err
	}
	fmt.Println(string(line))
	if path == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.Write(append(line, '\n'))
	return err
}

// rssKB reads VmRSS of a process from /proc/<pid>/status; -1 if unknown.
func rssKB(pid int) int64 {
	if pid <= 0 {
		return -1
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	var kb int64 = -1
	for _, line := range strings.Split(string(data), "\n") {
		if len(line) > 6 && line[:6] == "VmRSS:" {
			fmt.Sscanf(line[6:], "%d", &kb)
		}
	}
	return kb
}
