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
	"strconv"
	"strings"
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
	if o.round > 0 {
		record["round"] = o.round
	}
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
		serverBefore, clientBefore := cpuTimes(o.pid), clientCPUSeconds()
		switchesBefore, switchesKnown := threadSwitches("/proc", o.pid)
		done, errs, secs := phase(d, op, items, o)
		serverAfter, clientCPU := cpuTimes(o.pid), clientCPUSeconds()-clientBefore
		switchesAfter, switchesStill := threadSwitches("/proc", o.pid)
		mark(name + " end")
		if done > 0 && serverBefore.known && serverAfter.known {
			perOp := 1e6 / float64(done)
			record[name+"_server_cpu_us"] = round((serverAfter.total()-serverBefore.total())*perOp, 2)
			record[name+"_server_sys_us"] = round((serverAfter.system-serverBefore.system)*perOp, 2)
		}
		if done > 0 && switchesKnown && switchesStill {
			record[name+"_server_switches_per_kop"] = round(float64(switchesBetween(switchesBefore, switchesAfter))*1000/float64(done), 2)
		}
		if done > 0 {
			record[name+"_client_cpu_us"] = round(clientCPU*1e6/float64(done), 2)
		}
		record[name+"_ops"] = done
		record[name+"_errors"] = errs
		record[name+"_seconds"] = round(secs, 3)
		record[name+"_rate"] = math.Round(float64(done) / secs)
		fmt.Fprintf(os.Stderr, "  %s %s: %d ops in %.2f s = %.0f/s, %d errors\n",
			o.label, name, done, secs, float64(done)/secs, errs)
	}
	return appendResult(o.results, record)
}

// addPercentiles stores count, p50, p99, p999 and max of values under
// prefix. missing values count as later than every received one: a
// percentile that falls among them is stored as "missing".
func addPercentiles(record map[string]any, prefix string, values []float64, missing ...int) {
	sort.Float64s(values)
	total := len(values)
	if len(missing) > 0 {
		total += missing[0]
	}
	record[prefix+"_count"] = len(values)
	for _, p := range []struct {
		name string
		q    float64
	}{{"p50", 0.50}, {"p99", 0.99}, {"p999", 0.999}, {"max", 1}} {
		rank := int(math.Ceil(p.q*float64(total))) - 1 // nearest rank
		switch {
		case total == 0:
			record[prefix+"_"+p.name] = -1
		case rank >= len(values):
			record[prefix+"_"+p.name] = "missing"
		default:
			record[prefix+"_"+p.name] = round(values[max(rank, 0)], 2)
		}
	}
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
// load, and how late expiry events reach a subscriber. N - due leases are
// loaded first with a deadline long after the run (they stay live); then the
// `due` leases, with deadlines spread uniformly over a window that starts
// once they are loaded (window 0: all at the same instant). So the population
// is N while the expiries are measured. due 0 or >= N: every lease is due.
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
	isDue := func(i int) bool { return i >= n-due }

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

	// The live population first, bounded by the load cap; its rate tells how
	// long the due leases will take to load: their first deadline T0 falls
	// after that (a load not done 1 s before T0 is cut there, and marked).
	start := time.Now()
	later := start.Add(o.loadCap + 30*time.Minute).UnixMilli()
	for i := range planned {
		planned[i] = later
	}
	live := loadItems(d, o, 0, n-due, start.Add(o.loadCap), planned)
	rate, margin := float64(live)/time.Since(start).Seconds(), 0.5
	if live < 10000 { // too few to tell: the throughput phase's rate, with more margin
		rate, margin = createRate(o.results, o.label), 0.4
	}
	if rate <= 0 {
		rate = 10000
	}
	estimate := time.Duration(float64(due) / (margin * rate) * float64(time.Second))
	estimate = min(max(estimate, 300*time.Millisecond), o.loadCap)
	t0 := time.Now().Add(estimate + 1500*time.Millisecond).UnixMilli()
	for i := n - due; i < n; i++ {
		planned[i] = t0 + int64(float64(i-(n-due))*float64(o.window.Milliseconds())/float64(due))
	}
	dueLoaded := loadItems(d, o, n-due, n, time.UnixMilli(t0).Add(-time.Second), planned)
	loaded := live + dueLoaded
	loadSeconds := time.Since(start).Seconds()
	rssAfter := rssKB(o.pid)
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
	addPercentiles(record, "late_ms", sorted, max(dueLoaded-len(sorted), 0))
	if len(sorted) > 0 {
		record["late_ms_min"] = round(sorted[0], 2)
		record["first_after_t0_ms"] = round(float64(firstUS)/1e3-float64(t0), 1)
		record["last_after_t0_ms"] = round(float64(lastUS)/1e3-float64(t0), 1)
	}
	fmt.Fprintf(os.Stderr, "  %s %s n=%d: %d/%d events, lateness p50 %v p99 %v max %v ms\n",
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

// loadItems loads leases lo..hi-1 with the given deadlines on C
// connections, D deep, until stop; returns how many were created.
func loadItems(d driver, o options, lo, hi int, stop time.Time, planned []int64) int {
	if hi <= lo {
		return 0
	}
	items := make([]int, hi-lo)
	for k := range items {
		items[k] = lo + k
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	loaded := 0
	for c := 0; c < o.conns; c++ {
		chunk := items[len(items)*c/o.conns : len(items)*(c+1)/o.conns]
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := d.load(c, chunk, o.depth, stop, func(i int) int64 { return planned[i] })
			mu.Lock()
			loaded += k
			mu.Unlock()
		}()
	}
	wg.Wait()
	return loaded
}

// cpuTime is a process's CPU time so far, all its threads, in seconds:
// in user space and in the kernel on its behalf (system calls, and what
// the kernel does in them: on loopback, much of both ends' TCP).
type cpuTime struct {
	user, system float64
	known        bool // false: no such process (or no /proc)
}

func (t cpuTime) total() float64 { return t.user + t.system }

// cpuTimes reads /proc/<pid>/stat fields 14 and 15 (utime, stime), in
// USER_HZ = 100 ticks per second.
func cpuTimes(pid int) cpuTime {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if pid <= 0 || err != nil {
		return cpuTime{}
	}
	text := string(data)
	fields := strings.Fields(text[strings.LastIndexByte(text, ')')+1:]) // after "(comm)"
	if len(fields) < 13 {
		return cpuTime{}
	}
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	return cpuTime{user: utime / 100, system: stime / 100, known: true}
}

// threadSwitches is how many times each thread of a process was switched
// out so far, voluntarily (to wait) or not (preempted), by thread id, from
// <proc>/<pid>/task/*/status; false if the process or any count of a
// thread is unknown. A server whose threads hand work to each other
// (libzmq's I/O thread and the socket's owner) switches at every handover,
// and each switch costs kernel time.
func threadSwitches(proc string, pid int) (map[string]int64, bool) {
	if pid <= 0 {
		return nil, false
	}
	tasks, err := os.ReadDir(fmt.Sprintf("%s/%d/task", proc, pid))
	if err != nil || len(tasks) == 0 {
		return nil, false
	}
	counts := map[string]int64{}
	for _, task := range tasks {
		data, err := os.ReadFile(fmt.Sprintf("%s/%d/task/%s/status", proc, pid, task.Name()))
		if err != nil {
			continue // a thread that ended meanwhile
		}
		n, ok := switchesInStatus(string(data))
		if !ok {
			return nil, false
		}
		counts[task.Name()] = n
	}
	return counts, len(counts) > 0
}

// switchesBetween is the switches of two reads of threadSwitches apart:
// each thread's growth, a thread started in between counted whole; a thread
// that ended in between takes its last switches with it.
func switchesBetween(before, after map[string]int64) int64 {
	var total int64
	for tid, n := range after {
		total += n - before[tid]
	}
	return total
}

// switchesInStatus adds up the two context switch counts of a status file.
func switchesInStatus(status string) (int64, bool) {
	var total int64
	found := 0
	for _, line := range strings.Split(status, "\n") {
		key, value, ok := strings.Cut(line, ":")
		if !ok || (key != "voluntary_ctxt_switches" && key != "nonvoluntary_ctxt_switches") {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(value), 10, 64)
		if err != nil {
			return 0, false
		}
		total += n
		found++
	}
	return total, found == 2
}

// clientCPUSeconds is this process's CPU time (every thread, libzmq's too).
func clientCPUSeconds() float64 {
	var usage syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &usage) != nil {
		return 0
	}
	return float64(usage.Utime.Nano()+usage.Stime.Nano()) / 1e9
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
