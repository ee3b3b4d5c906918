package main

import (
	"fmt"
	"io"
	"math"
	"slices"
)

// scaleMetric is one figure of the scale section: a table and a chart panel.
type scaleMetric struct {
	title string // table heading and panel title
	unit  string // the panel's y label
	// value is the figure of an ok cell; ok false where there is none.
	value func(c ScaleCell) (v float64, ok bool)
	// stall, for a tail figure, is the cell's own stall floor: a figure
	// less than floorFactor× the larger of it and the noop row's figure
	// is bracketed. nil: the figure is not floored.
	stall func(c ScaleCell) float64
	// logY: the panel's y axis is logarithmic (only positive values drawn).
	logY bool
	// ns: the values are nanoseconds (formatted as durations).
	ns bool
	// noFloorRow: the noop row is left out of the table and the panel.
	noFloorRow bool
}

var scaleMetrics = []scaleMetric{
	{title: "read90 ns/op", unit: "ns/op (log)", ns: true, logY: true,
		value: func(c ScaleCell) (float64, bool) { return c.Read90Ns, c.Read90Ns > 0 }},
	{title: "write100 ns/op", unit: "ns/op (log)", ns: true, logY: true,
		value: func(c ScaleCell) (float64, bool) { return c.Write100Ns, c.Write100Ns > 0 }},
	{title: "heap bytes per entry", unit: "bytes per entry", noFloorRow: true,
		value: func(c ScaleCell) (float64, bool) { return c.HeapPerEntry, true }},
	{title: "GC CPU per forced cycle attributable to the store", unit: "CPU per cycle (log)", ns: true, logY: true, noFloorRow: true,
		value: func(c ScaleCell) (float64, bool) { return c.GCCPUAttribMs * 1e6, true }},
	{title: "fill: Set p99.99", unit: "latency (log)", ns: true, logY: true,
		value: func(c ScaleCell) (float64, bool) { return c.FillP9999, c.FillP9999 > 0 },
		stall: func(c ScaleCell) float64 { return c.FillFloorP9999 }},
	{title: "fill: Set max", unit: "latency (log)", ns: true, logY: true,
		value: func(c ScaleCell) (float64, bool) { return c.FillMax, c.FillMax > 0 },
		stall: func(c ScaleCell) float64 { return c.FillFloorMax }},
	{title: "Get p99.99 under a writer", unit: "latency (log)", ns: true, logY: true,
		value: func(c ScaleCell) (float64, bool) { return c.GetP9999, c.GetP9999 > 0 },
		stall: func(c ScaleCell) float64 { return c.GetFloorP9999 }},
	{title: "Get max under a writer", unit: "latency (log)", ns: true, logY: true,
		value: func(c ScaleCell) (float64, bool) { return c.GetMax, c.GetMax > 0 },
		stall: func(c ScaleCell) float64 { return c.GetFloorMax }},
}

// scaleRows are the scale section's stores: the noop floor first.
func (r *Report) scaleRows() []string {
	var rows []string
	for _, name := range r.Config.ScaleStores {
		if !slices.Contains(rows, name) {
			rows = append(rows, name)
		}
	}
	for _, c := range r.Scale {
		if !slices.Contains(rows, c.Store) {
			rows = append(rows, c.Store)
		}
	}
	return rows
}

// scaleKeys are the key counts measured, ascending.
func (r *Report) scaleKeys() []int {
	keys := slices.Clone(r.Config.ScaleKeys)
	for _, c := range r.Scale {
		if !slices.Contains(keys, c.Keys) {
			keys = append(keys, c.Keys)
		}
	}
	slices.Sort(keys)
	return keys
}

func (r *Report) scaleCell(store string, keys int) (ScaleCell, bool) {
	for _, c := range r.Scale {
		if c.Store == store && c.Keys == keys {
			return c, true
		}
	}
	return ScaleCell{}, false
}

// fmtScale is one table entry of metric m.
func (r *Report) fmtScale(m scaleMetric, store string, keys int) string {
	c, ok := r.scaleCell(store, keys)
	switch {
	case !ok:
		return "—"
	case c.Status != "ok":
		return c.Status
	}
	v, ok := m.value(c)
	if !ok {
		return "—"
	}
	if !m.ns {
		return fmt.Sprintf("%.0f", v)
	}
	if v <= 0 {
		return "≈ 0"
	}
	if m.stall != nil && store != noopName {
		floor := m.stall(c)
		if f, ok := r.scaleCell(noopName, keys); ok && f.Status == "ok" {
			fv, _ := m.value(f)
			floor = max(floor, fv)
		}
		return fmtFloored(v, floor)
	}
	return fmtNs(v)
}

func (r *Report) writeScale(w io.Writer) {
	if len(r.Scale) == 0 {
		return
	}
	c := r.Config
	keys := r.scaleKeys()
	fmt.Fprintf(w, "## Scale: %s keys\n\n", joinSizes(keys))
	fmt.Fprintf(w, "Each cell is one store at one key count in its own child process (kvbench re-executed), so no other store's heap "+
		"or garbage is in its figures; GOMAXPROCS %d; keys of %d bytes (\"user:0000123\"), 64-byte values. "+
		"Every child ran on: %s. The load average before and after each child is in the last table.\n\n",
		c.ScaleProcs, c.ScaleKeyBytes, r.Machine.Line())
	fmt.Fprintf(w, "In order, each child: forces %d GC cycles with no store built; fills the store from one goroutine, every key once, "+
		"a fresh key string and a fresh value slice for each Set, timing each Set call alone (the clock read right before and after it; "+
		"what a GC assist or pause costs that Set is in its time); forces 2 GCs and reads the heap; forces %d timed GC cycles with the "+
		"store live; then builds the lookup keys and runs read90 and write100 (%s each, as in the main matrix), and last times every Get "+
		"of one reader for %s while one writer overwrites random keys flat out.\n\n",
		c.ScaleGCRounds, c.ScaleGCRounds, fmtDur(c.CellSeconds), fmtDur(c.CellSeconds))
	fmt.Fprintf(w, "- **read90, write100 ns/op**: wall time over operations, %d goroutines (the noop row: the harness alone).\n"+
		"- **heap bytes per entry**: runtime HeapAlloc after the fill and runtime.GC, minus HeapAlloc after runtime.GC before the store was built, "+
		"over the keys written. It counts the store's structures, the keys and values it holds (its own copies, or the caller's strings and slices it keeps) "+
		"and capacity it reserved up front (freecache's ring, bigcache's shards); no key slice is live at either point (the fill makes each key from its index); "+
		"memory outside the Go heap is not counted.\n"+
		"- **GC CPU per forced cycle attributable to the store**: process CPU time (getrusage RUSAGE_SELF, user+system, every thread) of one runtime.GC "+
		"(mark, and the sweep it completes) with the store live, median of %d, minus the least of three times as many with nothing built, measured first in the same process; "+
		"≈ 0: no more than that baseline.\n"+
		"- **fill: Set p99.99, max**: over the single-writer fill's Sets (HDR histogram, 3 significant digits). "+
		"In brackets: less than %.0f× the floor, so not the store's own. The floor is the larger of the noop row's (the same loop, a Set that does nothing) "+
		"and the cell's own stall floor: the machine's. On a shared VM a thread that only reads the clock loses the CPU now and then, at a rate per second, "+
		"so a long fill (12 s for 10M keys) holds many more such stalls than the noop's short one; after the fill, with nothing running, the child spins "+
		"reading the clock for as long as its Sets were timed (at most 15 s, the count then scaled) and takes the gap that as many gaps exceed as Sets exceed "+
		"the p99.99, and the longest gap (the last table has them).\n"+
		"- **Get p99.99, max under a writer**: over that reader's Gets, each timed alone (zipf keys; the writer's are uniform, each Set a fresh 64-byte value); "+
		"brackets as above (the stall floor: a spin as long as the reader ran, right after it).\n\n",
		c.ScaleProcs, c.ScaleGCRounds, floorFactor)
	rows := r.scaleRows()
	for _, m := range scaleMetrics {
		fmt.Fprintf(w, "### Scale: %s\n\n| store |", m.title)
		for _, n := range keys {
			fmt.Fprintf(w, " %s |", sizeLabel(n))
		}
		fmt.Fprintf(w, "\n|---|")
		for range keys {
			fmt.Fprintf(w, "---:|")
		}
		fmt.Fprintln(w)
		for _, name := range rows {
			if m.noFloorRow && name == noopName {
				continue
			}
			label := name
			if name == noopName {
				label = "noop (floor)"
			}
			fmt.Fprintf(w, "| %s |", label)
			for _, n := range keys {
				fmt.Fprintf(w, " %s |", r.fmtScale(m, name, n))
			}
			fmt.Fprintln(w)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "### Scale: the cells\n\n"+
		"GC CPU is the median per forced cycle with the store live / the least with nothing built; peak RSS is the child's own "+
		"(VmHWM), everything in it: the runtime, the store, the lookup keys of read90 and write100; child is its wall time, start to exit.\n\n"+
		"| keys | store | status | held | fill | stall floor: fill p99.99 / max | stall floor: Get p99.99 / max | GC CPU live / empty | GC wall live / empty | peak RSS | child | loadavg before | loadavg after |\n"+
		"|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|\n")
	for _, n := range keys {
		for _, name := range rows {
			c, ok := r.scaleCell(name, n)
			if !ok {
				continue
			}
			if c.Status != "ok" {
				fmt.Fprintf(w, "| %s | %s | %s: %s | | | | | | | %s | %.1f s | %s | %s |\n", sizeLabel(n), name, c.Status, c.Reason,
					fmtBytes(c.PeakRSS), c.ChildSeconds, c.LoadBefore, c.LoadAfter)
				continue
			}
			fmt.Fprintf(w, "| %s | %s | ok | %d | %.2f s | %s / %s | %s / %s | %s / %s | %s / %s | %s | %.1f s | %s | %s |\n", sizeLabel(n), name, c.Held,
				c.FillSeconds, fmtFloorNs(c.FillFloorP9999), fmtFloorNs(c.FillFloorMax), fmtFloorNs(c.GetFloorP9999), fmtFloorNs(c.GetFloorMax), fmtMs(c.GCCPUStoreMs), fmtMs(c.GCCPUEmptyMs), fmtMs(c.GCWallStoreMs), fmtMs(c.GCWallEmptyMs),
				fmtBytes(c.PeakRSS), c.ChildSeconds, c.LoadBefore, c.LoadAfter)
		}
	}
	fmt.Fprintln(w)
}

func fmtMs(ms float64) string {
	if math.IsNaN(ms) || ms <= 0 {
		return "0"
	}
	return fmtNs(ms * 1e6)
}

// fmtFloorNs is a stall floor figure: "< 1µs" for 0 (fewer gaps of a
// microsecond than the rank).
func fmtFloorNs(ns float64) string {
	if ns <= 0 {
		return "< 1µs"
	}
	return fmtNs(ns)
}
