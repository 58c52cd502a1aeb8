package main

// The report's folding of repeated ops rounds, on records written here.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestMedianRecord(t *testing.T) {
	recs := []record{
		{"label": "gt-memory", "create_rate": 100.0, "create_errors": 1.0, "round": 1.0},
		{"label": "gt-memory", "create_rate": 500.0, "create_errors": 0.0, "round": 2.0},
		{"label": "gt-memory", "create_rate": 300.0, "create_errors": 2.0, "round": 3.0},
	}
	m := medianRecord(recs)
	if v, _ := m.num("create_rate"); v != 300 {
		t.Errorf("median of 100, 500, 300: got %v, want 300", v)
	}
	if v, _ := m.num("create_errors"); v != 3 {
		t.Errorf("errors are summed: got %v, want 3", v)
	}
	if v, _ := m.num("rounds"); v != 3 {
		t.Errorf("rounds: got %v, want 3", v)
	}
	if m["label"] != "gt-memory" {
		t.Errorf("label: got %v", m["label"])
	}
	even := medianRecord([]record{{"renew_rate": 2.0}, {"renew_rate": 4.0}})
	if v, _ := even.num("renew_rate"); v != 3 {
		t.Errorf("median of 2 and 4: got %v, want 3", v)
	}
	//  A figure missing from a round: the median of the rounds that have it,
	//  whichever round comes first
	partial := medianRecord([]record{{}, {"lockstep_us_p50": 10.0}, {"lockstep_us_p50": 30.0}})
	if v, _ := partial.num("lockstep_us_p50"); v != 20 {
		t.Errorf("partial figure: got %v, want 20", v)
	}
	//  A negative figure (no measurement) is left out; none measured stays missing
	sentinel := medianRecord([]record{{"lockstep_us_p99": -1.0}, {"lockstep_us_p99": 80.0}, {"lockstep_us_p99": 90.0}})
	if v, _ := sentinel.num("lockstep_us_p99"); v != 85 {
		t.Errorf("with a -1 round: got %v, want 85", v)
	}
	none := medianRecord([]record{{"lockstep_us_p99": -1.0}, {"lockstep_us_p99": -1.0}})
	if _, ok := none.num("lockstep_us_p99"); ok {
		t.Errorf("no round measured it: got %v, want missing", none["lockstep_us_p99"])
	}
	one := record{"create_rate": 7.0}
	if got := medianRecord([]record{one}); got["rounds"] != nil {
		t.Errorf("one round is returned as it is: got %v", got)
	}
}

// reportOf writes the results lines to a file and returns their report.
func reportOf(t *testing.T, lines []string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "results.jsonl")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := report(path, &out); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func TestReportRounds(t *testing.T) {
	var lines []string
	add := func(r map[string]any) {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, string(b))
	}
	//  Each system's median comes from a different round than its first
	gtRates := []float64{300, 100, 150}
	redisRates := []float64{200, 400, 200}
	for k := 0; k < 3; k++ {
		for _, sys := range []struct {
			label string
			rate  float64
		}{{"redis", redisRates[k]}, {"gt-memory", gtRates[k]}} {
			add(map[string]any{"kind": "ops", "label": sys.label, "round": k + 1, "connections": 4, "depth": 64,
				"create_rate": sys.rate, "renew_rate": sys.rate, "release_rate": sys.rate,
				"create_server_cpu_us": 1.0, "renew_server_cpu_us": 1.0, "release_server_cpu_us": 1.0})
		}
	}
	text := reportOf(t, lines)
	//  Medians: GarbageTruck 150, Redis 200, so 0.75x in the throughput table
	if !strings.Contains(text, "| create | 200 | — | 150 | — | 0.75× | — |") {
		t.Errorf("throughput row of the medians missing:\n%s", text)
	}
	if !strings.Contains(text, "median over the rounds that measured it (3 rounds") {
		t.Errorf("the rounds are not said:\n%s", text)
	}
	for _, row := range []string{"| 1 | 1.50× |", "| 2 | 0.25× |", "| 3 | 0.75× |"} {
		if !strings.Contains(text, row) {
			t.Errorf("round-by-round row %q missing:\n%s", row, text)
		}
	}
}

// A system without a record for some round (its server did not start):
// the rounds are paired by their number, and that round is left out.
func TestReportRoundMissing(t *testing.T) {
	lines := []string{
		`{"kind":"ops","label":"gt-memory","round":1,"create_rate":100}`,
		`{"kind":"ops","label":"redis","round":2,"create_rate":400}`,
		`{"kind":"ops","label":"gt-memory","round":2,"create_rate":200}`,
		`{"kind":"ops","label":"redis","round":3,"create_rate":100}`,
		`{"kind":"ops","label":"gt-memory","round":3,"create_rate":300}`,
	}
	text := reportOf(t, lines)
	for _, row := range []string{"| 2 | 0.50× |", "| 3 | 3.00× |"} {
		if !strings.Contains(text, row) {
			t.Errorf("round-by-round row %q missing:\n%s", row, text)
		}
	}
	if strings.Contains(text, "| 1 | ") {
		t.Errorf("round 1 has no Redis record, yet a row:\n%s", text)
	}
}

// The server's system time gets its own rows, after the totals.
func TestReportKernelTime(t *testing.T) {
	text := reportOf(t, []string{
		`{"kind":"ops","label":"redis","create_server_cpu_us":2.0,"create_server_sys_us":0.5}`,
		`{"kind":"ops","label":"gt-memory","create_server_cpu_us":3.0,"create_server_sys_us":1.5}`,
	})
	if !strings.Contains(text, "| server: create, in the kernel | 0.5 | — | 1.5 | — | 3.00× | — |") {
		t.Errorf("the kernel row is missing or wrong:\n%s", text)
	}
	total, kernel := strings.Index(text, "| server: create |"), strings.Index(text, "| server: create, in the kernel |")
	if total < 0 || kernel < total {
		t.Errorf("the total row is missing, or the kernel row comes before it:\n%s", text)
	}
}

// cpuTimes reads this process's user and system time apart, as getrusage
// gives them, and knows when there is no such process.
func TestCPUTimes(t *testing.T) {
	//  Some of each, bounded, and more user time than system time so that
	//  the two cannot be mistaken for each other: system calls first, then
	//  a spin in user space
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) && cpuTimes(os.Getpid()).system < 0.15 {
		for i := 0; i < 1000; i++ {
			_ = syscall.Getppid()
		}
	}
	deadline = time.Now().Add(3 * time.Second)
	spin := uint64(1)
	for time.Now().Before(deadline) {
		for i := 0; i < 5_000_000; i++ { // about 5 ms, no system call
			spin = spin*6364136223846793005 + 1442695040888963407
		}
		if own := cpuTimes(os.Getpid()); own.user >= own.system+0.2 {
			break
		}
	}
	if spin == 0 {
		t.Log("(the spin's value, so that it is not optimised away)")
	}
	own := cpuTimes(os.Getpid())
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		t.Fatal(err)
	}
	user, system := float64(usage.Utime.Nano())/1e9, float64(usage.Stime.Nano())/1e9
	//  /proc counts in ticks of 10 ms, and the second read comes a little later
	const slack = 0.05
	if !own.known || own.user < 0.1 || own.system < 0.1 || own.user < own.system+0.1 ||
		math.Abs(own.user-user) > slack || math.Abs(own.system-system) > slack {
		t.Errorf("cpuTimes %+v, getrusage user %.3f s, system %.3f s", own, user, system)
	}
	if own.total() != own.user+own.system {
		t.Errorf("total %v is not user + system %+v", own.total(), own)
	}
	if gone := cpuTimes(0); gone.known {
		t.Errorf("pid 0 read as known: %+v", gone)
	}
}

// A status file's two context switch counts are added; without both, unknown.
func TestSwitchesInStatus(t *testing.T) {
	status := "Name:\tgarbagetruck\nState:\tS (sleeping)\nvoluntary_ctxt_switches:\t120\nnonvoluntary_ctxt_switches:\t7\n"
	if n, ok := switchesInStatus(status); !ok || n != 127 {
		t.Errorf("got %d, %v; want 127, true", n, ok)
	}
	if _, ok := switchesInStatus("Name:\tx\nvoluntary_ctxt_switches:\t3\n"); ok {
		t.Error("one count of two read as known")
	}
	if _, ok := switchesInStatus("voluntary_ctxt_switches:\tlots\nnonvoluntary_ctxt_switches:\t1\n"); ok {
		t.Error("a count that is no number read as known")
	}
}

// Every thread's switches count, read per thread: one that starts between
// two reads counts whole, and one that ends takes only its own with it.
func TestThreadSwitches(t *testing.T) {
	proc := t.TempDir()
	write := func(tid string, voluntary, involuntary int) {
		dir := filepath.Join(proc, "42", "task", tid)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		status := fmt.Sprintf("Name:\tt\nvoluntary_ctxt_switches:\t%d\nnonvoluntary_ctxt_switches:\t%d\n", voluntary, involuntary)
		if err := os.WriteFile(filepath.Join(dir, "status"), []byte(status), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("42", 100, 1) // the main thread
	write("43", 500, 0) // a worker that will end
	before, ok := threadSwitches(proc, 42)
	if !ok || before["42"] != 101 || before["43"] != 500 {
		t.Fatalf("before: %v, %v", before, ok)
	}
	write("42", 130, 2)
	if err := os.RemoveAll(filepath.Join(proc, "42", "task", "43")); err != nil {
		t.Fatal(err)
	}
	write("44", 7, 0) // started in between
	after, ok := threadSwitches(proc, 42)
	if !ok {
		t.Fatal("after: unknown")
	}
	if got := switchesBetween(before, after); got != 31+7 {
		t.Errorf("switches between: got %d, want 38 (the main thread's 31, the new thread's 7)", got)
	}
	if _, ok := threadSwitches(proc, 7); ok {
		t.Error("a pid with no /proc entry read as known")
	}
	write("45", 0, 0)
	if err := os.WriteFile(filepath.Join(proc, "42", "task", "45", "status"), []byte("Name:\tt\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok := threadSwitches(proc, 42); ok {
		t.Error("a thread without counts read as known")
	}
	//  The real /proc: this process's threads switch when they sleep
	first, ok := threadSwitches("/proc", os.Getpid())
	if !ok {
		t.Fatal("own context switches unknown")
	}
	var grown int64
	for deadline := time.Now().Add(2 * time.Second); grown == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
		now, _ := threadSwitches("/proc", os.Getpid())
		grown = switchesBetween(first, now)
	}
	if grown <= 0 {
		t.Errorf("no context switch counted while sleeping")
	}
}

// The switches get their own table.
func TestReportSwitches(t *testing.T) {
	text := reportOf(t, []string{
		`{"kind":"ops","label":"redis","renew_server_switches_per_kop":3.0}`,
		`{"kind":"ops","label":"gt-memory","renew_server_switches_per_kop":43.0}`,
	})
	if !strings.Contains(text, "| renew | 3.0 | — | 43.0 | — | 14.33× | — |") {
		t.Errorf("the switches row is missing or wrong:\n%s", text)
	}
}
