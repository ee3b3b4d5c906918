package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"time"
)

// Report is everything one run measured; results.json is this, encoded.
type Report struct {
	Machine   Machine        `json:"machine"`
	Config    RunConfig      `json:"config"`
	Started   time.Time      `json:"started"`
	Seconds   float64        `json:"seconds"`
	MaxLoad1  float64        `json:"max_load1"`
	Busy      bool           `json:"busy"` // the 1-minute load average exceeded the core count during the run
	Warnings  []string       `json:"warnings,omitempty"`
	Stores    []StoreInfo    `json:"stores"`
	Workloads []WorkloadInfo `json:"workloads"`
	Cells     []Cell         `json:"cells"`
	Scaling   []Cell         `json:"scaling,omitempty"`
	// GetLatency is the latency section: Get service time under a
	// writer, the noop floor among the rows.
	GetLatency []GetLatencyCell `json:"get_latency,omitempty"`
	// Latency is read90 at a fixed offered load (-rate > 0 only; older
	// runs always had it).
	Latency []LatencyCell `json:"latency,omitempty"`
	Memory  []MemoryCell  `json:"memory,omitempty"`
	Ops     []OpCell      `json:"ops,omitempty"`
	// Scale is the scale section: one cell a (store, key count), each
	// measured in its own child process.
	Scale []ScaleCell `json:"scale,omitempty"`
}

// RunConfig is the flags of the run.
type RunConfig struct {
	Workloads       []string `json:"workloads"`
	Stores          []string `json:"stores"`
	Keys            []int    `json:"keys"`
	Dists           []string `json:"dists"`
	CellSeconds     float64  `json:"cell_seconds"`
	Procs           []int    `json:"gomaxprocs"`
	Goroutines      []int    `json:"scaling_goroutines"`
	Rate            float64  `json:"latency_offered_ops_per_sec"` // 0: no offered-load run
	LatencySeconds  float64  `json:"latency_seconds"`
	LatencySampling int      `json:"latency_sample_every"`
	LatencyReaders  int      `json:"latency_readers,omitempty"` // reader goroutines of the Get latency run (one writer besides)
	GCRounds        int      `json:"gc_rounds,omitempty"`
	ScaleKeys       []int    `json:"scale_keys,omitempty"`
	ScaleStores     []string `json:"scale_stores,omitempty"`
	ScaleProcs      int      `json:"scale_gomaxprocs,omitempty"`
	ScaleGCRounds   int      `json:"scale_gc_rounds,omitempty"`
	ScaleKeyBytes   int      `json:"scale_key_bytes,omitempty"`
}

// StoreInfo describes a row.
type StoreInfo struct {
	Name  string `json:"name"`
	Group string `json:"group"`
	Caps  string `json:"caps"`
	Note  string `json:"note"`
}

// WorkloadInfo describes a workload.
type WorkloadInfo struct {
	Name string `json:"name"`
	Doc  string `json:"doc"`
}

// Key identifies a cell's configuration.
type Key struct {
	Procs int    `json:"gomaxprocs"`
	Keys  int    `json:"keys"`
	Store string `json:"store"`
}

// Cell is one workload on one store.
type Cell struct {
	Key
	Workload    string  `json:"workload"`
	Status      string  `json:"status"` // ok, n/a, error
	Reason      string  `json:"reason,omitempty"`
	Goroutines  int     `json:"goroutines,omitempty"`
	Ops         int64   `json:"ops,omitempty"`
	Seconds     float64 `json:"seconds,omitempty"`
	OpsPerSec   float64 `json:"ops_per_sec,omitempty"`
	NsPerOp     float64 `json:"ns_per_op,omitempty"`
	AllocsPerOp float64 `json:"allocs_per_op"`
	HitRatio    float64 `json:"hit_ratio,omitempty"`     // -1: no reads
	DropRatio   float64 `json:"dropped_ratio,omitempty"` // dropped writes / writes
	CASFails    float64 `json:"cas_fails_per_op,omitempty"`
	Errors      int64   `json:"errors,omitempty"`
	// Watch cells. The cell's time includes the wait for every subscriber
	// to catch up; events are counted as delivered to subscribers, not as
	// published, so a store that drops events scores worse.
	Subscribers    int     `json:"subscribers,omitempty"`
	Published      int64   `json:"published_events,omitempty"`       // one per Set the store took
	EventsPerS     float64 `json:"events_per_sec,omitempty"`         // events delivered per second, all subscribers together
	NsPerDelivered float64 `json:"ns_per_delivered_event,omitempty"` // the cell's time over the events delivered
	Delivered      float64 `json:"delivered_ratio,omitempty"`        // delivered per subscriber per published event; 1: none lost
	Missed         int64   `json:"missed_events,omitempty"`          // published to subscribers, not delivered
	Listed         float64 `json:"keys_per_list,omitempty"`
	Load1          float64 `json:"load1"`
}

// GetLatencyCell is the service time of Get, every call timed around the
// call, on Readers goroutines while one writer goroutine overwrites random
// keys flat out (a fresh 64-byte value each Set). ns.
type GetLatencyCell struct {
	Key
	Readers  int     `json:"readers"`
	Gets     int64   `json:"gets"`
	Sets     int64   `json:"writer_sets"`
	Seconds  float64 `json:"seconds"`
	HitRatio float64 `json:"hit_ratio"`
	P50      float64 `json:"p50_ns"`
	P99      float64 `json:"p99_ns"`
	P999     float64 `json:"p999_ns"`
	P9999    float64 `json:"p9999_ns"`
	Max      float64 `json:"max_ns"`
	Load1    float64 `json:"load1"`
}

// percentiles are the figures of a GetLatencyCell in table order.
func (l GetLatencyCell) percentiles() []float64 {
	return []float64{l.P50, l.P99, l.P999, l.P9999, l.Max}
}

var percentileNames = []string{"p50", "p99", "p99.9", "p99.99", "max"}

// LatencyCell is read90 at a fixed offered load.
type LatencyCell struct {
	Key
	Offered  float64 `json:"offered_ops_per_sec"`
	Achieved float64 `json:"achieved_ops_per_sec"`
	Samples  int64   `json:"samples"`
	P50      float64 `json:"p50_ns"`
	P99      float64 `json:"p99_ns"`
	P999     float64 `json:"p999_ns"`
	Max      float64 `json:"max_ns"`
	// Service percentiles: from each sampled operation's actual start,
	// without the wait behind earlier ones.
	SvcP50    float64 `json:"service_p50_ns"`
	SvcP99    float64 `json:"service_p99_ns"`
	SvcP999   float64 `json:"service_p999_ns"`
	SvcMax    float64 `json:"service_max_ns"`
	Saturated bool    `json:"saturated"`
	Load1     float64 `json:"load1"`
}

// MemoryCell is what a store's prefilled entries cost.
type MemoryCell struct {
	Key
	SharedWith      string  `json:"shared_with,omitempty"` // a variant: the row whose instance it reads
	Entries         int     `json:"entries"`
	Held            int     `json:"held"`
	HeapPerEntry    float64 `json:"heap_bytes_per_entry"`
	ScanPerEntry    float64 `json:"gc_scan_bytes_per_entry"`
	GCWallMs        float64 `json:"gc_cycle_wall_ms"`
	GCCPUMs         float64 `json:"gc_cycle_cpu_ms"`
	GCEmptyWallMs   float64 `json:"gc_cycle_wall_ms_before_store"`
	GCEmptyCPUMs    float64 `json:"gc_cycle_cpu_ms_before_store"`
	PrefillSeconds  float64 `json:"prefill_seconds"`
	PrefillsDropped int64   `json:"prefill_dropped"`
}

// OpCell is one operation's cost on one goroutine.
type OpCell struct {
	Key
	Op     string  `json:"op"`
	Allocs float64 `json:"allocs_per_op"`
	Ns     float64 `json:"ns_per_op"`
}

func (r *Report) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// ---- Markdown ----

func fmtRate(v float64) string {
	switch {
	case v <= 0:
		return "0"
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	case v >= 10:
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func fmtNs(ns float64) string {
	switch {
	case math.IsInf(ns, 0) || math.IsNaN(ns):
		return "—"
	case ns >= 1e9:
		return fmt.Sprintf("%.2f s", ns/1e9)
	case ns >= 1e6:
		return fmt.Sprintf("%.1f ms", ns/1e6)
	case ns >= 1e4:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	}
	return fmt.Sprintf("%.0f ns", ns)
}

func fmtRatio(v float64) string {
	switch {
	case v <= 0 || math.IsNaN(v) || math.IsInf(v, 0):
		return "—"
	case v >= 100:
		return fmt.Sprintf("%.0f×", v)
	case v >= 0.1:
		return fmt.Sprintf("%.2f×", v)
	}
	return fmt.Sprintf("%.2g×", v)
}

func fmtAllocs(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// notes are the custom metrics of a cell, in words.
func (c Cell) notes() string {
	var n []string
	if c.HitRatio > 0 && c.HitRatio < 0.9995 {
		n = append(n, fmt.Sprintf("hit %.1f%%", 100*c.HitRatio))
	}
	if c.DropRatio > 0 {
		n = append(n, fmt.Sprintf("dropped %.1f%% of writes", 100*c.DropRatio))
	}
	if c.CASFails > 0 {
		n = append(n, fmt.Sprintf("%.2f lost CAS rounds/op", c.CASFails))
	}
	if c.Errors > 0 {
		n = append(n, fmt.Sprintf("%d errors", c.Errors))
	}
	if c.Subscribers > 0 {
		n = append(n, fmt.Sprintf("%d subscribers; %s events/s delivered, %.3f of each subscriber's, %d not delivered",
			c.Subscribers, fmtRate(c.EventsPerS), c.Delivered, c.Missed))
	}
	if c.Listed > 0 {
		n = append(n, fmt.Sprintf("%.0f keys a call", c.Listed))
	}
	return strings.Join(n, "; ")
}

// index finds cells by configuration.
type index struct {
	cells   map[string]Cell
	get     map[Key]GetLatencyCell
	latency map[Key]LatencyCell
	memory  map[Key]MemoryCell
	ops     map[string]OpCell
}

func (r *Report) index() index {
	ix := index{cells: map[string]Cell{}, get: map[Key]GetLatencyCell{}, latency: map[Key]LatencyCell{}, memory: map[Key]MemoryCell{}, ops: map[string]OpCell{}}
	for _, c := range r.Cells {
		ix.cells[fmt.Sprint(c.Key, c.Workload)] = c
	}
	for _, l := range r.GetLatency {
		ix.get[l.Key] = l
	}
	for _, l := range r.Latency {
		ix.latency[l.Key] = l
	}
	for _, m := range r.Memory {
		ix.memory[m.Key] = m
	}
	for _, o := range r.Ops {
		ix.ops[fmt.Sprint(o.Key, o.Op)] = o
	}
	return ix
}

func (ix index) cell(k Key, w string) (Cell, bool) {
	c, ok := ix.cells[fmt.Sprint(k, w)]
	return c, ok
}

// baseline is the row the ratios divide by.
const baseline = "shardkv"

func (r *Report) writeMarkdown(w io.Writer) {
	ix := r.index()
	fmt.Fprintf(w, "# kvbench results\n\n")
	fmt.Fprintf(w, "Machine: %s.\n\n", r.Machine.Line())
	c := r.Config
	lat := fmt.Sprintf("Get latency under a writer for %s", fmtDur(c.LatencySeconds))
	if c.Rate > 0 {
		lat += fmt.Sprintf(", read90 at %s ops/s offered", fmtRate(c.Rate))
	}
	scale := ""
	if len(c.ScaleKeys) > 0 {
		scale = fmt.Sprintf("; scale section at %s keys, one child process a cell", joinSizes(c.ScaleKeys))
	}
	keys := "no main matrix"
	if len(c.Keys) > 0 {
		keys = joinSizes(c.Keys) + " keys"
	}
	fmt.Fprintf(w, "Run: %s, %s key choice, %s a cell, %s%s; %.0f s in all; 1-minute load average up to %.2f.\n\n",
		keys, strings.Join(c.Dists, "+"), fmtDur(c.CellSeconds), lat, scale, r.Seconds, r.MaxLoad1)
	if r.Busy {
		fmt.Fprintf(w, "> **Warning: the machine was busy** (load average above %d cores) during part of the run: treat these numbers as noisy.\n\n", r.Machine.Cores)
	}
	for _, procs := range c.Procs {
		for _, n := range c.Keys {
			r.writeSection(w, ix, procs, n)
		}
	}
	r.writeScale(w)
	fmt.Fprintf(w, "## Stores\n\n| store | can | configuration |\n|---|---|---|\n")
	for _, s := range r.Stores {
		fmt.Fprintf(w, "| %s | %s | %s |\n", s.Name, s.Caps, s.Note)
	}
	fmt.Fprintf(w, "\n## Workloads\n\n| workload | what each operation is |\n|---|---|\n")
	for _, wl := range r.Workloads {
		fmt.Fprintf(w, "| %s | %s |\n", wl.Name, wl.Doc)
	}
	fmt.Fprintln(w, `
Reading the tables: ops/s is operations over wall time with GOMAXPROCS goroutines (ns/op is its inverse,
as b.RunParallel reports it); ×shardkv is the row's ops/s over shardkv's in the same workload, the same
number as shardkv's time over the row's (below 1: the row is slower than shardkv); in the watch table it
is the row's delivered events/s over shardkv's; allocs/op counts every heap allocation in the process
during the cell, over its operations; p99 (on the read90 row) and Get p99.9 are Get's service time under a
concurrent writer, from the latency table, in brackets where less than 2× the noop floor's; bytes/entry is
the live heap the store added per key, its keys and values included. n/a: the store cannot do what the
workload needs.`)
}

func fmtDur(sec float64) string {
	return time.Duration(sec * float64(time.Second)).String()
}

func joinSizes(ns []int) string {
	var s []string
	for _, n := range ns {
		s = append(s, sizeLabel(n))
	}
	return strings.Join(s, ", ")
}

func (r *Report) storeNames() []string {
	var names []string
	for _, s := range r.Stores {
		names = append(names, s.Name)
	}
	return names
}

func (r *Report) workloadNames() []string {
	var names []string
	for _, w := range r.Workloads {
		names = append(names, w.Name)
	}
	return names
}

// summaryWorkloads are the headline columns, where measured.
var summaryWorkloads = []string{"read100", "read90", "read50", "write100", "ttl-churn", "incr-hot", "cas"}

func (r *Report) writeSection(w io.Writer, ix index, procs, n int) {
	fmt.Fprintf(w, "## %s keys, GOMAXPROCS %d\n\n", sizeLabel(n), procs)
	names := r.storeNames()
	var cols []string
	for _, wl := range summaryWorkloads {
		if slices.Contains(r.workloadNames(), wl) {
			cols = append(cols, wl)
		}
	}
	base := Key{procs, n, baseline}

	// The summary: throughput (and ×shardkv) of the main mixes, read90's
	// p99 and bytes per entry, one row a store.
	fmt.Fprintf(w, "### Summary (ops/s, ×shardkv)\n\n| store |")
	for _, col := range cols {
		fmt.Fprintf(w, " %s |", col)
	}
	fmt.Fprintf(w, " Get p99.9 | heap B/entry |\n|---|")
	for range cols {
		fmt.Fprintf(w, "---:|")
	}
	fmt.Fprintf(w, "---:|---:|\n")
	for _, name := range names {
		k := Key{procs, n, name}
		fmt.Fprintf(w, "| %s |", name)
		for _, col := range cols {
			fmt.Fprintf(w, " %s |", ix.summaryCell(k, base, col))
		}
		fmt.Fprintf(w, " %s | %s |\n", ix.getPercentile(k, 2), ix.bytesPerEntry(k))
	}
	fmt.Fprintln(w)

	// The detail table, grouped by workload.
	fmt.Fprintf(w, "### Throughput\n\n| workload | store | ops/s | ns/op | allocs/op | p99 | bytes/entry | ×shardkv | notes |\n|---|---|---:|---:|---:|---:|---:|---:|---|\n")
	for _, wl := range r.workloadNames() {
		if isWatch(wl) {
			continue // in the watch table, ranked by events delivered
		}
		bc, hasBase := ix.cell(base, wl)
		for _, name := range names {
			k := Key{procs, n, name}
			c, ok := ix.cell(k, wl)
			if !ok {
				continue
			}
			if c.Status != "ok" {
				fmt.Fprintf(w, "| %s | %s | %s | | | | | | %s |\n", wl, name, c.Status, c.Reason)
				continue
			}
			ratio := "—"
			if hasBase && bc.Status == "ok" {
				ratio = fmtRatio(c.OpsPerSec / bc.OpsPerSec)
			}
			p99 := "—"
			if wl == "read90" {
				p99 = ix.getPercentile(k, 1)
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
				wl, name, fmtRate(c.OpsPerSec), fmtNs(c.NsPerOp), fmtAllocs(c.AllocsPerOp), p99,
				ix.bytesPerEntry(k), ratio, c.notes())
		}
	}
	fmt.Fprintln(w)

	r.writeWatch(w, ix, procs, n)

	r.writeGetLatency(w, ix, procs, n)

	if r.hasLatency(procs, n) {
		fmt.Fprintf(w, "### Latency: read90 at %s ops/s offered\n\n"+
			"p50 ... max are measured from each operation's scheduled start, so waiting behind a slow operation counts (no coordinated omission); "+
			"on a busy machine that includes the load generator being descheduled. Service time is from the operation's actual start. "+
			"One operation in %d is timed. On a few cores the scheduled figures are mostly the load generator's own stalls: compare the noop row (a store that does nothing), where there is one.\n\n"+
			"| store | p50 | p99 | p99.9 | max | service p50 | service p99 | service p99.9 | achieved ops/s | samples |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
			fmtRate(r.Config.Rate), r.Config.LatencySampling)
		for _, name := range r.latencyRows() {
			l, ok := ix.latency[Key{procs, n, name}]
			if !ok {
				continue
			}
			sat := ""
			if l.Saturated {
				sat = " (saturated)"
			}
			label := name
			if name == noopName {
				label = "noop (floor)"
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s%s | %d |\n", label, fmtNs(l.P50), fmtNs(l.P99), fmtNs(l.P999), fmtNs(l.Max),
				fmtNs(l.SvcP50), fmtNs(l.SvcP99), fmtNs(l.SvcP999), fmtRate(l.Achieved), sat, l.Samples)
		}
		fmt.Fprintln(w)
	}

	if r.hasMemory(procs, n) {
		bm := ix.memory[base]
		fmt.Fprintf(w, "### Memory and GC: %s entries\n\n| store | heap B/entry | GC-scan B/entry | ×shardkv heap | GC cycle (wall) | GC cycle (CPU) | empty-heap GC (wall) | held | prefill |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n", sizeLabel(n))
		for _, name := range names {
			m, ok := ix.memory[Key{procs, n, name}]
			if !ok || m.SharedWith != "" {
				continue
			}
			ratio := "—"
			if bm.HeapPerEntry > 0 {
				ratio = fmtRatio(m.HeapPerEntry / bm.HeapPerEntry)
			}
			fmt.Fprintf(w, "| %s | %.0f | %.0f | %s | %.1f ms | %.1f ms | %.1f ms | %.1f%% | %.2f s |\n", name, m.HeapPerEntry, m.ScanPerEntry, ratio,
				m.GCWallMs, m.GCCPUMs, m.GCEmptyWallMs, 100*float64(m.Held)/float64(max(m.Entries, 1)), m.PrefillSeconds)
		}
		fmt.Fprintln(w)
	}

	if ops := r.opNames(procs, n); len(ops) > 0 {
		fmt.Fprintf(w, "### Allocations per operation (one goroutine; ns/op in brackets)\n\n| store |")
		for _, op := range ops {
			fmt.Fprintf(w, " %s |", op)
		}
		fmt.Fprintf(w, "\n|---|")
		for range ops {
			fmt.Fprintf(w, "---:|")
		}
		fmt.Fprintln(w)
		for _, name := range names {
			fmt.Fprintf(w, "| %s |", name)
			for _, op := range ops {
				if o, ok := ix.ops[fmt.Sprint(Key{procs, n, name}, op)]; ok {
					fmt.Fprintf(w, " %s (%s) |", fmtAllocs(o.Allocs), fmtNs(o.Ns))
				} else {
					fmt.Fprintf(w, " n/a |")
				}
			}
			fmt.Fprintln(w)
		}
		fmt.Fprintln(w)
	}

	if gs := r.scalingGoroutines(procs, n); len(gs) > 0 {
		fmt.Fprintf(w, "### read90 ops/s against goroutines\n\n| store |")
		for _, g := range gs {
			fmt.Fprintf(w, " %d |", g)
		}
		fmt.Fprintf(w, "\n|---|")
		for range gs {
			fmt.Fprintf(w, "---:|")
		}
		fmt.Fprintln(w)
		for _, name := range names {
			row := map[int]Cell{}
			for _, c := range r.Scaling {
				if c.Key == (Key{procs, n, name}) {
					row[c.Goroutines] = c
				}
			}
			if len(row) == 0 {
				continue
			}
			fmt.Fprintf(w, "| %s |", name)
			for _, g := range gs {
				fmt.Fprintf(w, " %s |", fmtRate(row[g].OpsPerSec))
			}
			fmt.Fprintln(w)
		}
		fmt.Fprintln(w)
	}
}

// isWatch reports whether wl is a watch workload (watch-1, watch-8, ...).
func isWatch(wl string) bool { return strings.HasPrefix(wl, "watch-") }

// writeWatch is the watch cells' table: events delivered to subscribers,
// not Sets, so that a store that drops events ranks lower.
func (r *Report) writeWatch(w io.Writer, ix index, procs, n int) {
	var wls []string
	for _, wl := range r.workloadNames() {
		if isWatch(wl) {
			wls = append(wls, wl)
		}
	}
	if len(wls) == 0 {
		return
	}
	base := Key{procs, n, baseline}
	fmt.Fprintf(w, "### Watch: events delivered to subscribers\n\n"+
		"Every goroutine Sets (zipf) while the subscribers receive; the cell's time runs until every subscriber has "+
		"received or been told it lost every event. delivered events/s counts all subscribers together; "+
		"ns/delivered is the cell's time over them; delivered/op is per subscriber per Set (1: nothing lost); "+
		"×shardkv is the row's delivered events/s over shardkv's.\n\n"+
		"| workload | store | delivered events/s | ns/delivered | delivered/op | not delivered | Sets/s | allocs/Set | ×shardkv |\n"+
		"|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
	var na []string
	for _, wl := range wls {
		bc, hasBase := ix.cell(base, wl)
		for _, name := range r.storeNames() {
			c, ok := ix.cell(Key{procs, n, name}, wl)
			if !ok {
				continue
			}
			if c.Status == "n/a" {
				if !slices.Contains(na, name) {
					na = append(na, name)
				}
				continue
			}
			if c.Status != "ok" {
				fmt.Fprintf(w, "| %s | %s | %s | | | | | | %s |\n", wl, name, c.Status, c.Reason)
				continue
			}
			ratio := "—"
			if hasBase && bc.Status == "ok" && bc.EventsPerS > 0 {
				ratio = fmtRatio(c.EventsPerS / bc.EventsPerS)
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %.3f | %d | %s | %s | %s |\n", wl, name, fmtRate(c.EventsPerS),
				fmtNs(c.NsPerDelivered), c.Delivered, c.Missed, fmtRate(c.OpsPerSec), fmtAllocs(c.AllocsPerOp), ratio)
		}
	}
	if len(na) > 0 {
		fmt.Fprintf(w, "\nn/a (no watch, or reads only): %s.\n", strings.Join(na, ", "))
	}
	fmt.Fprintln(w)
}

func (ix index) summaryCell(k, base Key, wl string) string {
	c, ok := ix.cell(k, wl)
	if !ok {
		return "—"
	}
	if c.Status != "ok" {
		return c.Status
	}
	s := fmtRate(c.OpsPerSec)
	if b, ok := ix.cell(base, wl); ok && b.Status == "ok" && k.Store != base.Store {
		s += " (" + fmtRatio(c.OpsPerSec/b.OpsPerSec) + ")"
	}
	return s
}

func (ix index) bytesPerEntry(k Key) string {
	if m, ok := ix.memory[k]; ok {
		return fmt.Sprintf("%.0f", m.HeapPerEntry)
	}
	return "—"
}

func (r *Report) hasLatency(procs, n int) bool {
	return slices.ContainsFunc(r.Latency, func(l LatencyCell) bool { return l.Procs == procs && l.Keys == n })
}

func (r *Report) hasMemory(procs, n int) bool {
	return slices.ContainsFunc(r.Memory, func(m MemoryCell) bool { return m.Procs == procs && m.Keys == n })
}

func (r *Report) opNames(procs, n int) []string {
	var ops []string
	for _, o := range r.Ops {
		if o.Procs == procs && o.Keys == n && !slices.Contains(ops, o.Op) {
			ops = append(ops, o.Op)
		}
	}
	return ops
}

func (r *Report) scalingGoroutines(procs, n int) []int {
	var gs []int
	for _, c := range r.Scaling {
		if c.Procs == procs && c.Keys == n && !slices.Contains(gs, c.Goroutines) {
			gs = append(gs, c.Goroutines)
		}
	}
	slices.Sort(gs)
	return gs
}

// ---- the latency section: Get under a writer, against the noop floor ----

// floorFactor: a figure less than this many times the noop floor's at the
// same percentile is not the store's own (it is within what the harness
// and the machine cost with no store at all) and is shown in brackets.
const floorFactor = 2.0

// aboveFloor reports whether v is the store's own: no floor was measured,
// or v is at least floorFactor times the floor.
func aboveFloor(v, floor float64) bool { return floor <= 0 || v >= floorFactor*floor }

// fmtFloored formats a latency, in brackets when it is not above floor.
func fmtFloored(v, floor float64) string {
	if aboveFloor(v, floor) {
		return fmtNs(v)
	}
	return "(" + fmtNs(v) + ")"
}

// floorKey is the noop row of k's configuration.
func floorKey(k Key) Key { return Key{k.Procs, k.Keys, noopName} }

// getPercentile is percentile i (0 p50 ... 4 max) of k's Get latency,
// marked against the floor; "—" where not measured.
func (ix index) getPercentile(k Key, i int) string {
	l, ok := ix.get[k]
	if !ok {
		return "—"
	}
	v := l.percentiles()[i]
	if k.Store == noopName {
		return fmtNs(v)
	}
	var floor float64
	if f, ok := ix.get[floorKey(k)]; ok {
		floor = f.percentiles()[i]
	}
	return fmtFloored(v, floor)
}

func (r *Report) hasGetLatency(procs, n int) bool {
	return slices.ContainsFunc(r.GetLatency, func(l GetLatencyCell) bool { return l.Procs == procs && l.Keys == n })
}

// latencyRows are the rows of the latency section: the noop floor first,
// then the stores in report order.
func (r *Report) latencyRows() []string {
	return append([]string{noopName}, r.storeNames()...)
}

func (r *Report) writeGetLatency(w io.Writer, ix index, procs, n int) {
	if !r.hasGetLatency(procs, n) {
		return
	}
	readers := r.Config.LatencyReaders
	for _, l := range r.GetLatency {
		if l.Procs == procs && l.Keys == n {
			readers = l.Readers
		}
	}
	fmt.Fprintf(w, "### Latency: Get service time under a writer\n\n"+
		"%d reader goroutine(s) Get zipf keys as fast as they can for %s, the clock read right before and right after every call "+
		"(every Get timed; no schedule, so no queueing); meanwhile one writer goroutine overwrites uniformly random keys flat out, "+
		"a fresh 64-byte value each Set. The noop row is the floor: the same harness on a store that does nothing, so its figures are "+
		"the clock, the call, the writer's garbage and the machine (GC pauses, the scheduler, other processes). "+
		"A figure in brackets is less than %.0f× the floor's at the same percentile: not the store's own.\n\n"+
		"| store | p50 | p99 | p99.9 | p99.99 | max | Gets/s | writer Sets/s | hit | load |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
		readers, fmtDur(r.Config.LatencySeconds), floorFactor)
	for _, name := range r.latencyRows() {
		k := Key{procs, n, name}
		l, ok := ix.get[k]
		if !ok {
			continue
		}
		label := name
		if name == noopName {
			label = "noop (floor)"
		}
		fmt.Fprintf(w, "| %s |", label)
		for i := range percentileNames {
			fmt.Fprintf(w, " %s |", ix.getPercentile(k, i))
		}
		hit := "—"
		if name != noopName {
			hit = fmt.Sprintf("%.0f%%", 100*l.HitRatio)
		}
		fmt.Fprintf(w, " %s | %s | %s | %.2f |\n", fmtRate(float64(l.Gets)/max(l.Seconds, 1e-9)), fmtRate(float64(l.Sets)/max(l.Seconds, 1e-9)), hit, l.Load1)
	}
	fmt.Fprintln(w)
}
