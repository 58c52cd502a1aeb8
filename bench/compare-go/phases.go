package main

// The workloads: pipelined throughput, lock-step latency, expiry lateness
// with memory per live lease, and the expiry burst.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// phase runs op over items on C connections (contiguous chunks), D deep,
// until the items are done or stop; returns completed ops, errors, seconds.
func phase(d driver, op opKind, items []int, o options) (done, errs int, seconds float64) {
	stop := time.Now().Add(o.phaseLimit)
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for c := 0; c < o.conns; c++ {
		chunk := items[len(items)*c/o.conns : len(items)*(c+1)/o.conns]
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, e := d.run(c, op, chunk, o.depth, stop)
			mu.Lock()
			done, errs = done+n, errs+e
			mu.Unlock()
		}()
	}
	wg.Wait()
	return done, errs, time.Since(start).Seconds()
}

func runOps(o options) error {
	d, err := newDriver(o, o.ops)
	if err != nil {
		return err
	}
	defer d.close()
	record := map[string]any{"kind": "ops", "label": o.label, "system": o.system,
		"connections": o.conns, "depth": o.depth}
	items := make([]int, o.ops)
	for i := range items {
		items[i] = i
	}
	for _, op := range []opKind{opCreate, opRenew, opRelease} {
		if op != opCreate { // only what was created can be renewed or released
			items = items[:0:0]
			for i := 0; i < o.ops; i++ {
				if d.created(i) {
					items = append(items, i)
				}
			}
			if len(items) == 0 {
				return fmt.Errorf("%s: no lease was created", o.label)
			}
		}
		if op == opRelease {
			lat := d.lockstep(items, o.lockOps, time.Now().Add(o.lockLimit))
			addPercentiles(record, "lockstep_us", lat)
		}
		d.prepare(op, items, createTTL)
		name := opNames[op]
		mark(name + " start")
		done, errs, secs := phase(d, op, items, o)
		mark(name + " end")
		record[name+"_ops"] = done
		record[name+"_errors"] = errs
		record[name+"_seconds"] = round(secs, 3)
		record[name+"_rate"] = math.Round(float64(done) / secs)
		fmt.Fprintf(os.Stderr, "  %s %s: %d ops in %.2f s = %.0f/s, %d errors\n",
			o.label, name, done, secs, float64(done)/secs, errs)
	}
	return appendResult(o.results, record)
}

// addPercentiles stores count, p50, p99, p999 and max of values under prefix.
func addPercentiles(record map[string]any, prefix string, values []float64) {
	sort.Float64s(values)
	record[prefix+"_count"] = len(values)
	for _, p := range []struct {
		name string
		q    float64
	}{{"p50", 0.50}, {"p99", 0.99}, {"p999", 0.999}, {"max", 1}} {
		record[prefix+"_"+p.name] = round(percentile(values, p.q), 2)
	}
}

func percentile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	rank := int(math.Ceil(q*float64(len(sorted)))) - 1 // nearest rank
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

func round(x float64, digits int) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return -1
	}
	scale := math.Pow(10, float64(digits))
	return math.Round(x*scale) / scale
}

// createRate reads this label's create rate from an earlier ops record.
func createRate(path, label string) float64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	rate := 0.0
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		var r map[string]any
		if json.Unmarshal(scanner.Bytes(), &r) == nil && r["kind"] == "ops" && r["label"] == label {
			rate, _ = r["create_rate"].(float64)
		}
	}
	return rate
}

// runExpiry loads N leases, measures the server's RSS before and after the
// load, and how late expiry events reach a subscriber. Of the N leases, `due`
// (evenly spread over the load order) fall due uniformly over a window that
// starts once the load is done (window 0: all at the same instant); the
// others stay live until long after the run, so the population is N while
// the expiries are measured. due 0 or >= N: every lease falls due.
func runExpiry(o options) error {
	n := o.n
	due := o.due
	if due <= 0 || due > n {
		due = n
	}
	d, err := newDriver(o, n)
	if err != nil {
		return err
	}
	defer d.close()
	if e, isEtcd := d.(*etcdDriver); isEtcd {
		e.deadlines = make([]atomic.Int64, n)
	}
	planned := make([]int64, n) // wall ms
	stride := n / due           // lease i is due when i % stride == 0 (the first `due` of them)
	isDue := func(i int) bool { return i%stride == 0 && i/stride < due }

	var mu sync.Mutex
	seen := make([]bool, n)
	lateness := make([]float64, 0, due)
	var firstUS, lastUS int64
	var dumped [][2]float64
	unexpected := 0
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	deliver := func(i int, deadlineMS float64, recvUS int64) {
		if i < 0 || i >= n {
			return
		}
		if deadlineMS < 0 {
			deadlineMS = float64(planned[i])
		}
		mu.Lock()
		defer mu.Unlock()
		if seen[i] {
			return
		}
		seen[i] = true
		if !isDue(i) {
			unexpected++ // a lease that was not due yet: would be a server bug
			return
		}
		lateness = append(lateness, float64(recvUS)/1e3-deadlineMS)
		if o.dump != "" {
			dumped = append(dumped, [2]float64{deadlineMS, float64(recvUS)/1e3 - deadlineMS})
		}
		if firstUS == 0 {
			firstUS = recvUS
		}
		lastUS = recvUS
	}
	if err := d.subscribe(ctx, deliver); err != nil {
		return fmt.Errorf("%s: subscribe: %w", o.label, err)
	}
	rssBefore := rssKB(o.pid)

	// Plan: the load should end before the first deadline T0; a load that
	// has not ended 1 s before T0 is cut there (the row is then marked).
	rate := createRate(o.results, o.label)
	if rate <= 0 {
		rate = 10000
	}
	start := time.Now()
	estimate := time.Duration(float64(n) / (0.6 * rate) * float64(time.Second))
	estimate = min(max(estimate, 300*time.Millisecond), o.loadCap)
	t0 := start.Add(estimate + 1500*time.Millisecond).UnixMilli()
	later := t0 + (30 * time.Minute).Milliseconds() // the deadline of the leases that stay live
	for i := range planned {
		planned[i] = later
		if isDue(i) {
			planned[i] = t0 + int64(float64(i/stride)*float64(o.window.Milliseconds())/float64(due))
		}
	}
	stopLoad := time.UnixMilli(t0).Add(-time.Second)
	loaded := 0
	var wg sync.WaitGroup
	items := make([]int, n)
	for i := range items {
		items[i] = i
	}
	for c := 0; c < o.conns; c++ {
		chunk := items[n*c/o.conns : n*(c+1)/o.conns]
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := d.load(c, chunk, o.depth, stopLoad, func(i int) int64 { return planned[i] })
			mu.Lock()
			loaded += k
			mu.Unlock()
		}()
	}
	wg.Wait()
	loadSeconds := time.Since(start).Seconds()
	rssAfter := rssKB(o.pid)
	dueLoaded := 0
	for i := 0; i < n; i += stride {
		if isDue(i) && d.created(i) {
			dueLoaded++
		}
	}
	fmt.Fprintf(os.Stderr, "  %s %s n=%d: loaded %d (%d due) in %.1f s, RSS %d -> %d kB\n",
		o.label, o.tag, n, loaded, dueLoaded, loadSeconds, rssBefore, rssAfter)

	// Wait for the events: all of them, or until the bound after the last deadline.
	last := time.UnixMilli(t0).Add(o.window).Add(o.bound)
	for time.Now().Before(last) {
		mu.Lock()
		got := len(lateness)
		mu.Unlock()
		if got >= dueLoaded {
			break
		}
		time.Sleep(10 * time.Millisecond) // polling a counter, bounded by `last`
	}
	cancel()
	mu.Lock()
	defer mu.Unlock()
	record := map[string]any{"kind": o.tag, "label": o.label, "system": o.system, "n": n,
		"due": due, "loaded": loaded, "due_loaded": dueLoaded, "load_seconds": round(loadSeconds, 2),
		"window_ms": o.window.Milliseconds(), "bound_s": o.bound.Seconds(), "received": len(lateness),
		"unexpected": unexpected, "capped": loaded < n, "rss_before_kb": rssBefore, "rss_after_kb": rssAfter}
	if loaded > 0 && rssBefore > 0 && rssAfter > 0 {
		record["bytes_per_lease"] = math.Round(float64(rssAfter-rssBefore) * 1024 / float64(loaded))
	}
	if o.dump != "" {
		writeDump(o.dump, dumped)
	}
	sorted := append([]float64(nil), lateness...)
	addPercentiles(record, "late_ms", sorted)
	if len(sorted) > 0 {
		record["late_ms_min"] = round(sorted[0], 2)
		record["first_after_t0_ms"] = round(float64(firstUS)/1e3-float64(t0), 1)
		record["last_after_t0_ms"] = round(float64(lastUS)/1e3-float64(t0), 1)
	}
	fmt.Fprintf(os.Stderr, "  %s %s n=%d: %d/%d events, lateness p50 %.1f p99 %.1f max %.1f ms\n",
		o.label, o.tag, n, len(lateness), dueLoaded, record["late_ms_p50"], record["late_ms_p99"], record["late_ms_max"])
	return appendResult(o.results, record)
}

func writeDump(path string, points [][2]float64) {
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	defer w.Flush()
	for _, p := range points {
		fmt.Fprintf(w, "%.0f %.2f\n", p[0], p[1])
	}
}

// mark prints the CLOCK_MONOTONIC time of a phase boundary when
// GTCOMPARE_MARKS is set, to cut a `perf record -k CLOCK_MONOTONIC` profile
// of the server into phases (perf report --time START,END).
func mark(what string) {
	if os.Getenv("GTCOMPARE_MARKS") == "" {
		return
	}
	var ts syscall.Timespec
	_, _, _ = syscall.RawSyscall(syscall.SYS_CLOCK_GETTIME, 1, uintptr(unsafe.Pointer(&ts)), 0)
	fmt.Fprintf(os.Stderr, "mark %s %d.%06d\n", what, ts.Sec, ts.Nsec/1000)
}
