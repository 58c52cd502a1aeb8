package main

// The report's folding of repeated ops rounds, on records written here.

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	//  A figure missing from a round is the first round's, not a median of fewer
	partial := medianRecord([]record{{"lockstep_us_p50": 10.0}, {}, {"lockstep_us_p50": 30.0}})
	if v, _ := partial.num("lockstep_us_p50"); v != 10 {
		t.Errorf("partial figure: got %v, want the first round's 10", v)
	}
	one := record{"create_rate": 7.0}
	if got := medianRecord([]record{one}); got["rounds"] != nil {
		t.Errorf("one round is returned as it is: got %v", got)
	}
}

func TestReportRounds(t *testing.T) {
	path := filepath.Join(t.TempDir(), "results.jsonl")
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
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := report(path, &out); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	//  Medians: GarbageTruck 150, Redis 200, so 0.75x in the throughput table
	if !strings.Contains(text, "| create | 200 | — | 150 | — | 0.75× | — |") {
		t.Errorf("throughput row of the medians missing:\n%s", text)
	}
	if !strings.Contains(text, "median over 3 rounds") {
		t.Errorf("the rounds are not said:\n%s", text)
	}
	for _, row := range []string{"| 1 | 1.50× |", "| 2 | 0.25× |", "| 3 | 0.75× |"} {
		if !strings.Contains(text, row) {
			t.Errorf("round-by-round row %q missing:\n%s", row, text)
		}
	}
}
