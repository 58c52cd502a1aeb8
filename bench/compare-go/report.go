package main

// report: the results file (one JSON object per line) as Markdown tables,
// one per workload, with GarbageTruck's ratio to the best other system.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"
)

// Columns, in order: the others first, then GarbageTruck's stores.
var columns = []struct{ label, title string }{
	{"redis", "Redis"},
	{"etcd", "etcd"},
	{"gt-memory", "GarbageTruck (memory)"},
	{"gt-postgres", "GarbageTruck (PostgreSQL)"},
}

var others = []string{"redis", "etcd"}
var ours = []string{"gt-memory", "gt-postgres"}

type record map[string]any

func (r record) num(key string) (float64, bool) {
	v, ok := r[key].(float64)
	return v, ok && v >= 0
}

type results struct {
	ops    map[string]record         // label -> ops record (each figure's median over its rounds)
	rounds map[string][]record       // label -> its ops records, one a round, in the file's order
	expiry map[string]map[int]record // label -> n -> expiry record
	burst  map[string]record         // label -> burst record
	na     map[string]string         // label -> reason
	sizes  []int                     // expiry sizes, ascending
}

func readResults(path string) (*results, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	res := &results{ops: map[string]record{}, rounds: map[string][]record{},
		expiry: map[string]map[int]record{}, burst: map[string]record{}, na: map[string]string{}}
	sizes := map[int]bool{}
	scanner := bufio.NewScanner(f)
	scanner.Buffer(make([]byte, 1<<20), 1<<20)
	for scanner.Scan() {
		var r record
		if json.Unmarshal(scanner.Bytes(), &r) != nil {
			continue
		}
		label, _ := r["label"].(string)
		switch r["kind"] {
		case "ops":
			res.rounds[label] = append(res.rounds[label], r)
		case "expiry":
			n, _ := r.num("n")
			if res.expiry[label] == nil {
				res.expiry[label] = map[int]record{}
			}
			res.expiry[label][int(n)] = r
			sizes[int(n)] = true
		case "burst":
			res.burst[label] = r
		case "na":
			res.na[label], _ = r["reason"].(string)
		}
	}
	for n := range sizes {
		res.sizes = append(res.sizes, n)
	}
	sort.Ints(res.sizes)
	for label, recs := range res.rounds {
		res.ops[label] = medianRecord(recs)
	}
	return res, scanner.Err()
}

// medianRecord folds the records of one case's rounds into one: each
// number becomes the median of the rounds that measured it (the mean of
// the middle two for an even count), an error count the sum; a negative
// number (a figure a round could not take: no reply in the lock-step
// phase) is no measurement, and a
// figure no round measured keeps such a value, which the tables show as
// missing. Anything else is the first round's. One round is returned as
// it is. The machine's speed drifts over minutes, and rounds that take
// turns between the systems put each system's median on the same
// stretch of it.
func medianRecord(recs []record) record {
	if len(recs) == 1 {
		return recs[0]
	}
	out := record{}
	for _, r := range recs {
		for key, value := range r {
			if _, seen := out[key]; !seen {
				out[key] = value
			}
		}
	}
	for key, value := range out {
		if _, ok := value.(float64); !ok {
			continue
		}
		var all []float64
		for _, r := range recs {
			if v, ok := r[key].(float64); ok && v >= 0 {
				all = append(all, v)
			}
		}
		if len(all) == 0 {
			continue
		}
		if strings.HasSuffix(key, "_errors") {
			sum := 0.0
			for _, v := range all {
				sum += v
			}
			out[key] = sum
			continue
		}
		sort.Float64s(all)
		mid := len(all) / 2
		if len(all)%2 == 1 {
			out[key] = all[mid]
		} else {
			out[key] = (all[mid-1] + all[mid]) / 2
		}
	}
	out["rounds"] = float64(len(recs))
	return out
}

// byRound numbers a label's ops records by their "round" (records
// without one, from before rounds, by their place in the file).
func byRound(recs []record) map[int]record {
	rounds := map[int]record{}
	for k, r := range recs {
		n := k + 1
		if v, ok := r.num("round"); ok && v > 0 {
			n = int(v)
		}
		rounds[n] = r
	}
	return rounds
}

// roundByRound prints GarbageTruck's (memory) throughput and server CPU
// as ratios to Redis's, round by round: each round of one against the same
// round of the other, which ran within minutes of it. A round one of them
// lacks (its server did not start, its client failed) is left out.
func (res *results) roundByRound(w io.Writer) {
	gt, redis := byRound(res.rounds["gt-memory"]), byRound(res.rounds["redis"])
	var common []int
	for n := range gt {
		if _, ok := redis[n]; ok {
			common = append(common, n)
		}
	}
	if len(res.rounds["gt-memory"]) < 2 || len(common) == 0 {
		return
	}
	sort.Ints(common)
	fmt.Fprintln(w, "### Round by round (GarbageTruck memory ÷ Redis, each round's own figures)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Throughput: higher is better; server CPU an operation: lower is better.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| round | create | renew | release | server CPU: create | renew | release |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|")
	cell := func(g, r record, key string) string {
		a, okA := g.num(key)
		b, okB := r.num(key)
		if !okA || !okB || b == 0 {
			return "—"
		}
		return ratio(a/b) + "×"
	}
	for _, k := range common {
		fmt.Fprintf(w, "| %d |", k)
		for _, op := range []string{"create", "renew", "release"} {
			fmt.Fprintf(w, " %s |", cell(gt[k], redis[k], op+"_rate"))
		}
		for _, op := range []string{"create", "renew", "release"} {
			fmt.Fprintf(w, " %s |", cell(gt[k], redis[k], op+"_server_cpu_us"))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
}

// row is one table row: a value per label (absent: no figure) and how to
// show it.
type row struct {
	name   string
	values map[string]float64
	text   map[string]string // overrides the formatted value
	format func(float64) string
	higher bool // higher is better (ratios then say how many times better)
}

func (res *results) table(w io.Writer, header string, rows []row) {
	fmt.Fprintf(w, "| %s |", header)
	for _, c := range columns {
		fmt.Fprintf(w, " %s |", c.title)
	}
	fmt.Fprintf(w, " GT memory ÷ best other | GT PostgreSQL ÷ best other |\n|---|")
	for range columns {
		fmt.Fprint(w, "---:|")
	}
	fmt.Fprintln(w, "---:|---:|")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s |", r.name)
		for _, c := range columns {
			fmt.Fprintf(w, " %s |", res.cell(r, c.label))
		}
		best, found := bestOther(r)
		for _, label := range ours {
			v, ok := r.values[label]
			switch {
			case !found || !ok || best == 0 || r.format == nil:
				fmt.Fprint(w, " — |")
			default:
				fmt.Fprintf(w, " %s× |", ratio(v/best))
			}
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
}

func (res *results) cell(r row, label string) string {
	if reason, na := res.na[label]; na {
		return "n/a (" + reason + ")"
	}
	if t, ok := r.text[label]; ok {
		return t
	}
	if v, ok := r.values[label]; ok && r.format != nil {
		return r.format(v)
	}
	return "—"
}

func bestOther(r row) (float64, bool) {
	best, found := 0.0, false
	for _, label := range others {
		v, ok := r.values[label]
		if !ok {
			continue
		}
		if !found || (r.higher && v > best) || (!r.higher && v < best) {
			best, found = v, true
		}
	}
	return best, found
}

func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	var b strings.Builder
	for i, ch := range s {
		if i > 0 && (len(s)-i)%3 == 0 && s[0] != '-' {
			b.WriteByte(',')
		}
		b.WriteRune(ch)
	}
	return b.String()
}

// ratio shows two significant digits below 1 (0.00012), two decimals above.
func ratio(r float64) string {
	if r >= 0.995 || r <= 0 {
		return fmt.Sprintf("%.2f", r)
	}
	decimals := int(math.Ceil(-math.Log10(r))) + 1
	return fmt.Sprintf("%.*f", decimals, r)
}

func fixed1(v float64) string { return fmt.Sprintf("%.1f", v) }

// values collects key from one record per label.
func values(get func(label string) record, key string) map[string]float64 {
	out := map[string]float64{}
	for _, c := range columns {
		if r := get(c.label); r != nil {
			if v, ok := r.num(key); ok {
				out[c.label] = v
			}
		}
	}
	return out
}

// section writes a heading and a table of one row a name, each row the
// figure key(name) of every column (one decimal).
func (res *results) section(w io.Writer, heading, header string, get func(label string) record,
	names []string, key func(name string) string) {
	fmt.Fprintln(w, heading)
	fmt.Fprintln(w)
	var rows []row
	for _, name := range names {
		rows = append(rows, row{name: name, values: values(get, key(name)), format: fixed1})
	}
	res.table(w, header, rows)
}

func report(path string, w io.Writer) error {
	res, err := readResults(path)
	if err != nil {
		return err
	}
	ops := func(label string) record { return res.ops[label] }
	conns, depth := 0.0, 0.0
	for _, r := range res.ops {
		conns, _ = r.num("connections")
		depth, _ = r.num("depth")
	}

	fmt.Fprintf(w, "### Throughput (operations/s, %.0f connections, %.0f requests in flight per connection; higher is better)\n\n", conns, depth)
	var rows []row
	for _, op := range []string{"create", "renew", "release"} {
		r := row{name: op, values: values(ops, op+"_rate"), text: map[string]string{}, format: thousands, higher: true}
		for label, rec := range res.ops {
			if e, _ := rec.num(op + "_errors"); e > 0 {
				r.text[label] = fmt.Sprintf("%s (%.0f errors)", thousands(r.values[label]), e)
			}
		}
		rows = append(rows, r)
	}
	res.table(w, "operation", rows)

	fmt.Fprintln(w, "### CPU time per operation (µs, during the throughput phases; lower is better)")
	fmt.Fprintln(w)
	rows = nil
	for _, who := range []string{"server", "client"} {
		for _, op := range []string{"create", "renew", "release"} {
			rows = append(rows, row{name: who + ": " + op, values: values(ops, op+"_"+who+"_cpu_us"), format: fixed1})
		}
		if who == "server" {
			for _, op := range []string{"create", "renew", "release"} {
				rows = append(rows, row{name: "server: " + op + ", in the kernel", values: values(ops, op+"_server_sys_us"), format: fixed1})
			}
		}
	}
	res.table(w, "process: operation", rows)
	fmt.Fprintln(w, "Server: the server process, all threads (from /proc; GarbageTruck with PostgreSQL: the broker only); \"in the kernel\" is the part of it that was system time (system calls and what the kernel does in them: on loopback, much of both ends' TCP). Client: the load client, all threads (libzmq's I/O thread included for GarbageTruck). Both run on the same machine, so they share its cores.")
	fmt.Fprintln(w)

	res.section(w, "### Server context switches (per 1,000 operations, during the throughput phases; lower is better)",
		"operation", ops, []string{"create", "renew", "release"}, func(op string) string { return op + "_server_switches_per_kop" })
	fmt.Fprintln(w, "Every thread of the server process (GarbageTruck with PostgreSQL: the broker only), from /proc/<pid>/task/*/status: a thread that waited (voluntary) or was preempted (involuntary). GarbageTruck's libzmq I/O thread and the broker's thread hand every batch to each other; Redis serves its connections from one thread (its background threads, such as the AOF fsync once a second, count too).")
	fmt.Fprintln(w)

	res.section(w, "### Lock-step renew round trip (µs, one request in flight, one connection; lower is better)",
		"percentile", ops, []string{"p50", "p99", "p999"}, func(p string) string { return "lockstep_us_" + p })
	if r := res.ops["gt-memory"]; r != nil {
		if n, _ := r.num("rounds"); n > 1 {
			fmt.Fprintf(w, "The four tables above give each figure's median over the rounds that measured it (%.0f rounds, the systems taking turns in each; error counts are summed).\n\n", n)
		}
	}
	res.roundByRound(w)

	fmt.Fprintln(w, "### Expiry notification lateness (ms after the deadline, at the subscriber; lower is better)")
	fmt.Fprintln(w)
	rows = nil
	capped := false
	for _, n := range res.sizes {
		exp := func(label string) record { return res.expiry[label][n] }
		for _, p := range []string{"p50", "p99", "max"} {
			rows = append(rows, row{name: fmt.Sprintf("%s live: %s", thousands(float64(n)), p),
				values: values(exp, "late_ms_"+p), text: missingText(exp, "late_ms_"+p), format: fixed1})
		}
		got := row{name: fmt.Sprintf("%s live: events received / leases due", thousands(float64(n))), text: map[string]string{}}
		for label, byN := range res.expiry {
			if r := byN[n]; r != nil {
				got.text[label] = receivedText(r, &capped)
			}
		}
		rows = append(rows, got)
	}
	res.table(w, "live leases: figure", rows)
	var bound, window, due float64
	for _, byN := range res.expiry {
		for _, r := range byN {
			bound, _ = r.num("bound_s")
			window, _ = r.num("window_ms")
			due, _ = r.num("due")
		}
	}
	fmt.Fprintf(w, "Of the N live leases, %s (loaded last) fall due uniformly over %.0f s after the load; the others stay live. "+
		"Events are counted until %.0f s after the last deadline.", thousands(due), window/1000, bound)
	if capped {
		fmt.Fprint(w, " \\* the system could not load all N leases within its load bound: the row is for the number it reached.")
	}
	fmt.Fprint(w, "\n\n")

	fmt.Fprintln(w, "### Memory per live lease (bytes of server RSS after loading N leases, minus before; lower is better)")
	fmt.Fprintln(w)
	rows = nil
	for _, n := range res.sizes {
		exp := func(label string) record { return res.expiry[label][n] }
		r := row{name: thousands(float64(n)), values: values(exp, "bytes_per_lease"), format: thousands, text: map[string]string{}}
		for label, byN := range res.expiry {
			if rec := byN[n]; rec != nil && rec["capped"] == true {
				if v, ok := r.values[label]; ok {
					loaded, _ := rec.num("loaded")
					r.text[label] = fmt.Sprintf("%s (at %s)", thousands(v), thousands(loaded))
				}
			}
		}
		rows = append(rows, r)
	}
	res.table(w, "live leases", rows)
	fmt.Fprintln(w, "GarbageTruck's figure includes its REPLAY history (by default the last 100,000 events, each with the full lease), which weighs most at the smaller N.")
	fmt.Fprintln(w)

	if len(res.burst) > 0 {
		n := 0.0
		for _, r := range res.burst {
			n, _ = r.num("n")
		}
		burst := func(label string) record { return res.burst[label] }
		fmt.Fprintf(w, "### Burst: %s leases due in the same second (ms after the start of that second; lower is better)\n\n", thousands(n))
		got := row{name: "events received / leases due", text: map[string]string{}}
		for label, r := range res.burst {
			got.text[label] = receivedText(r, &capped)
		}
		rows = []row{
			{name: "first expiry event", values: values(burst, "first_after_t0_ms"), format: fixed1},
			{name: "last expiry event", values: values(burst, "last_after_t0_ms"), format: fixed1},
			{name: "lateness p99", values: values(burst, "late_ms_p99"), text: missingText(burst, "late_ms_p99"), format: fixed1},
			got,
		}
		res.table(w, "figure", rows)
		fmt.Fprintln(w, "Redis and GarbageTruck get one deadline (the same millisecond) for all leases; etcd's TTLs are whole seconds, so its deadlines spread over that second.")
		fmt.Fprintln(w)
	}
	res.targets(w)
	return nil
}

// receivedText: events received / leases due that were loaded, and how
// many leases were loaded in all when that is more.
// missingText marks the percentiles that fall among events never received.
func missingText(get func(label string) record, key string) map[string]string {
	text := map[string]string{}
	for _, c := range columns {
		if r := get(c.label); r != nil && r[key] == "missing" {
			text[c.label] = "not received"
		}
	}
	return text
}

func receivedText(r record, capped *bool) string {
	got, _ := r.num("received")
	due, _ := r.num("due_loaded")
	loaded, _ := r.num("loaded")
	text := fmt.Sprintf("%s / %s", thousands(got), thousands(due))
	if loaded > due {
		text += fmt.Sprintf(" (of %s live)", thousands(loaded))
	}
	if r["capped"] == true {
		*capped = true
		text += " \\*"
	}
	return text
}

// targets checks the goals of issue 8 in this run's figures.
func (res *results) targets(w io.Writer) {
	gt, redis, etcd := res.ops["gt-memory"], res.ops["redis"], res.ops["etcd"]
	if gt == nil {
		return
	}
	fmt.Fprintln(w, "### Targets (GarbageTruck memory store, this run)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| target | figure | met |\n|---|---|---|")
	mark := func(ok bool) string {
		if ok {
			return "yes"
		}
		return "**no**"
	}
	for _, op := range []string{"create", "renew", "release"} {
		g, _ := gt.num(op + "_rate")
		if r, ok := redis.num(op + "_rate"); ok && redis != nil {
			fmt.Fprintf(w, "| %s ≥ Redis | %.2f× Redis | %s |\n", op, g/r, mark(g >= r))
		}
		if e, ok := etcd.num(op + "_rate"); ok && etcd != nil && e > 0 {
			fmt.Fprintf(w, "| %s ≥ 5× etcd | %.1f× etcd | %s |\n", op, g/e, mark(g >= 5*e))
		}
	}
	if len(res.sizes) > 0 {
		top := res.sizes[len(res.sizes)-1]
		if r := res.expiry["gt-memory"][top]; r != nil {
			p99, _ := r.num("late_ms_p99")
			got, _ := r.num("received")
			due, _ := r.num("due_loaded")
			loaded, _ := r.num("loaded")
			fmt.Fprintf(w, "| expiry lateness p99 ≤ 1 ms tick + 5 ms at %s live | %.1f ms (%s / %s events) | %s |\n",
				thousands(float64(top)), p99, thousands(got), thousands(due), mark(p99 <= 6 && got == due && loaded == float64(top)))
		}
		for _, n := range res.sizes {
			g, okG := res.expiry["gt-memory"][n].num("bytes_per_lease")
			e, okE := res.expiry["etcd"][n].num("bytes_per_lease")
			if okG && okE && e > 0 {
				fmt.Fprintf(w, "| memory per lease ≤ ½ etcd at %s | %s vs %s bytes (%.2f×) | %s |\n",
					thousands(float64(n)), thousands(g), thousands(e), g/e, mark(g <= e/2))
			}
		}
	}
	fmt.Fprintln(w)
}
