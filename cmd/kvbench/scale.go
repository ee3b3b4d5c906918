package main

// The scale section: each (store, key count) cell runs in a child process,
// the kvbench binary itself re-executed as
//
//	kvbench -child-scale store=otter,keys=1000000,width=7,procs=2,cell=300ms,gc-rounds=3
//
// (-child-scale must be the first argument; it is not among the flags -h
// lists). The child builds and measures that one store
// (workload.MeasureScale), prints one line, childPrefix followed by the
// workload.ScaleResult as JSON, and exits: 0 with a result, 1 with a
// result whose error is set, 2 for a bad spec. The parent reads /proc/loadavg
// before and after each child, its peak RSS from wait4's rusage, derives
// the figures (scaleCellFrom) and starts the next: so each store's heap,
// and the garbage it left, is gone before the next store is built, and a
// 10M-key cell of every peer fits in memory one at a time.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shardkv/shardkv/bench/stores"
	"github.com/shardkv/shardkv/bench/workload"
)

const (
	childFlag   = "-child-scale"
	childPrefix = "kvbench-scale-result "
	noopName    = stores.NoopName
	// childTimeout bounds one child: a store far slower than the rest at
	// 10M keys is reported as an error, not waited for.
	childTimeout = 15 * time.Minute
	// priorBytesPerKey is the peak memory a key is assumed to cost a store
	// with no smaller cell measured yet; headroom multiplies the estimate.
	priorBytesPerKey = 1024
	headroom         = 1.25
)

// childSpec is what one child measures.
type childSpec struct {
	Store    string
	Keys     int
	Width    int
	Procs    int
	Cell     time.Duration
	GCRounds int
}

// String is the argument after -child-scale.
func (c childSpec) String() string {
	return fmt.Sprintf("store=%s,keys=%d,width=%d,procs=%d,cell=%s,gc-rounds=%d", c.Store, c.Keys, c.Width, c.Procs, c.Cell, c.GCRounds)
}

// parseChildSpec reads a childSpec.String(); every field is required.
func parseChildSpec(s string) (childSpec, error) {
	var c childSpec
	seen := map[string]bool{}
	for _, f := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(f, "=")
		if !ok || v == "" {
			return c, fmt.Errorf("bad field %q (want name=value)", f)
		}
		if seen[k] {
			return c, fmt.Errorf("%s given twice", k)
		}
		seen[k] = true
		var err error
		switch k {
		case "store":
			c.Store = v
		case "keys":
			c.Keys, err = strconv.Atoi(v)
		case "width":
			c.Width, err = strconv.Atoi(v)
		case "procs":
			c.Procs, err = strconv.Atoi(v)
		case "gc-rounds":
			c.GCRounds, err = strconv.Atoi(v)
		case "cell":
			c.Cell, err = time.ParseDuration(v)
		default:
			return c, fmt.Errorf("unknown field %q", k)
		}
		if err != nil {
			return c, fmt.Errorf("%s: %v", k, err)
		}
	}
	for _, k := range []string{"store", "keys", "width", "procs", "cell", "gc-rounds"} {
		if !seen[k] {
			return c, fmt.Errorf("%s missing", k)
		}
	}
	if c.Keys <= 0 || c.Width <= 0 || c.Procs <= 0 || c.Cell <= 0 || c.GCRounds <= 0 {
		return c, fmt.Errorf("keys, width, procs, cell and gc-rounds must be positive: %q", s)
	}
	return c, nil
}

// specOf finds a scale store by name: the noop floor or a base row.
func specOf(name string) (stores.Spec, error) {
	if name == noopName {
		return stores.Noop(), nil
	}
	specs, err := stores.Lookup([]string{name})
	if err != nil {
		return stores.Spec{}, err
	}
	if specs[0].IsVariant() {
		return stores.Spec{}, fmt.Errorf("%s shares %s's instance: name the base store", name, specs[0].Group)
	}
	return specs[0], nil
}

// childMain is the child process: args are what follows -child-scale.
func childMain(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "kvbench: -child-scale takes one argument: store=...,keys=...,...")
		return 2
	}
	c, err := parseChildSpec(args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, "kvbench: -child-scale:", err)
		return 2
	}
	spec, err := specOf(c.Store)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kvbench: -child-scale:", err)
		return 2
	}
	runtime.GOMAXPROCS(c.Procs)
	res, err := workload.MeasureScale(spec, workload.ScaleConfig{
		Keys: c.Keys, KeyWidth: c.Width, GCRounds: c.GCRounds, Cell: c.Cell, Goroutines: c.Procs,
	})
	code := 0
	if err != nil {
		res.Error, code = err.Error(), 1
	}
	res.PeakRSS = peakRSS()
	b, err := json.Marshal(res)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kvbench: -child-scale:", err)
		return 1
	}
	fmt.Printf("%s%s\n", childPrefix, b)
	return code
}

// parseChildOutput finds the child's result line in its stdout (anything
// else there is ignored; the last result line counts) and decodes it. A
// result whose Error is set is returned with that error.
func parseChildOutput(out []byte) (workload.ScaleResult, error) {
	var res workload.ScaleResult
	var line []byte
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		if rest, ok := bytes.CutPrefix(sc.Bytes(), []byte(childPrefix)); ok {
			line = slices.Clone(rest)
		}
	}
	if err := sc.Err(); err != nil {
		return res, err
	}
	if line == nil {
		return res, errors.New("no result line")
	}
	if err := json.Unmarshal(line, &res); err != nil {
		return res, fmt.Errorf("result line: %w", err)
	}
	if res.Error != "" {
		return res, errors.New(res.Error)
	}
	return res, nil
}

// ScaleCell is one (store, key count) of the scale section, derived from
// its child's raw result (Raw).
type ScaleCell struct {
	Store  string `json:"store"`
	Keys   int    `json:"keys"`
	Status string `json:"status"` // ok, skipped (would not fit in memory), error
	Reason string `json:"reason,omitempty"`
	// Read90Ns and Write100Ns: ns/op of read90 and write100 (wall time
	// over operations, GOMAXPROCS goroutines), on the filled store.
	Read90Ns   float64 `json:"read90_ns_per_op,omitempty"`
	Write100Ns float64 `json:"write100_ns_per_op,omitempty"`
	// HeapPerEntry is (HeapAlloc after the fill and runtime.GC, store live)
	// - (HeapAlloc before the store was built, after runtime.GC), over the
	// keys written: the store's own structures, the keys and values it
	// keeps (its copies, or the caller's key strings and value slices it
	// retains), and capacity it reserved (freecache's ring, bigcache's
	// shards). No key slice is live at either point: the fill makes each
	// key from its index.
	HeapPerEntry float64 `json:"heap_bytes_per_entry,omitempty"`
	ScanPerEntry float64 `json:"gc_scan_bytes_per_entry,omitempty"`
	// GC CPU of one forced runtime.GC (mark and the sweep it finishes),
	// process CPU time (getrusage RUSAGE_SELF, user+system, all threads):
	// with the store live (the median over the rounds), in the same
	// process before the store was built (the least of three times the
	// rounds), and the difference: what the store adds to a cycle. ms.
	GCCPUStoreMs  float64 `json:"gc_cpu_ms_store_live"`
	GCCPUEmptyMs  float64 `json:"gc_cpu_ms_before_store"`
	GCCPUAttribMs float64 `json:"gc_cpu_ms_attributable"`
	GCWallStoreMs float64 `json:"gc_wall_ms_store_live"`
	GCWallEmptyMs float64 `json:"gc_wall_ms_before_store"`
	// Fill*: one goroutine Sets every key once, each Set timed (ns).
	FillSeconds float64 `json:"fill_seconds,omitempty"`
	FillP99     float64 `json:"fill_set_p99_ns,omitempty"`
	FillP9999   float64 `json:"fill_set_p9999_ns,omitempty"`
	FillMax     float64 `json:"fill_set_max_ns,omitempty"`
	// GetP9999 and GetMax: one reader's Get service time while one writer
	// overwrites random keys (workload.RunGetLatency, for the cell time), ns.
	GetP9999 float64 `json:"get_under_writer_p9999_ns,omitempty"`
	GetMax   float64 `json:"get_under_writer_max_ns,omitempty"`
	// The machine's own floor under those four (workload.StallFloor): a
	// spin loop as long as the fill's Sets (or the reader's Gets) were
	// timed, its gap at the p99.99's rank and its longest gap, ns.
	FillFloorP9999 float64 `json:"fill_stall_floor_p9999_ns,omitempty"`
	FillFloorMax   float64 `json:"fill_stall_floor_max_ns,omitempty"`
	GetFloorP9999  float64 `json:"get_stall_floor_p9999_ns,omitempty"`
	GetFloorMax    float64 `json:"get_stall_floor_max_ns,omitempty"`
	Held           int     `json:"held"`
	// The child process: its peak RSS (VmHWM; everything: runtime, store,
	// the lookup keys of read90/write100), wall time, and /proc/loadavg
	// right before it started and right after it ended.
	PeakRSS      uint64                `json:"child_peak_rss_bytes,omitempty"`
	ChildSeconds float64               `json:"child_seconds"`
	LoadBefore   string                `json:"loadavg_before"`
	LoadAfter    string                `json:"loadavg_after"`
	Raw          *workload.ScaleResult `json:"raw,omitempty"`
}

// median of ns figures, as float64 ns; 0 for none.
func median(xs []int64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return float64(s[m])
	}
	return (float64(s[m-1]) + float64(s[m])) / 2
}

// gcAttribution is the GC CPU arithmetic: the median CPU of a forced cycle
// with the store live, the least with nothing live, and their difference,
// what the store adds to a cycle (negative: within the noise). The
// baseline is the least, not the median, because what the machine adds to
// an empty heap's cycle is noise only (in one 10M-key run all three of a
// child's baseline cycles took 4 ms, where 0.5-1.5 ms is usual, and halved
// the store's figure); the least makes the figure, if anything, too high.
// ns.
func gcAttribution(store, empty []int64) (withStore, withoutStore, attributable float64) {
	withStore, withoutStore = median(store), least(empty)
	return withStore, withoutStore, withStore - withoutStore
}

// least of ns figures, as float64 ns; 0 for none.
func least(xs []int64) float64 {
	if len(xs) == 0 {
		return 0
	}
	return float64(slices.Min(xs))
}

// scaleGCRounds is the forced cycles timed each side of a scale cell: at
// least 3, so that the median means something.
func scaleGCRounds(rounds int) int { return max(rounds, 3) }

// scaleCellFrom derives a cell's figures from its child's result.
func scaleCellFrom(res workload.ScaleResult) ScaleCell {
	c := ScaleCell{Store: res.Store, Keys: res.Keys, Status: "ok", Held: res.Held, Raw: &res}
	n := float64(max(res.Keys, 1))
	c.HeapPerEntry = (float64(res.HeapAfter) - float64(res.HeapBefore)) / n
	c.ScanPerEntry = (float64(res.ScanAfter) - float64(res.ScanBefore)) / n
	s, e, a := gcAttribution(res.GCCPUStore, res.GCCPUEmpty)
	c.GCCPUStoreMs, c.GCCPUEmptyMs, c.GCCPUAttribMs = s/1e6, e/1e6, a/1e6
	c.GCWallStoreMs, c.GCWallEmptyMs = median(res.GCWallStore)/1e6, least(res.GCWallEmpty)/1e6
	c.Read90Ns, c.Write100Ns = res.Read90.NsPerOp, res.Write100.NsPerOp
	c.FillSeconds = res.FillSeconds
	c.FillP99, c.FillP9999, c.FillMax = float64(res.FillP99), float64(res.FillP9999), float64(res.FillMax)
	c.GetP9999, c.GetMax = float64(res.GetUnderWriter.P9999), float64(res.GetUnderWriter.Max)
	c.FillFloorP9999, c.FillFloorMax = float64(res.FillFloor.P9999), float64(res.FillFloor.Max)
	c.GetFloorP9999, c.GetFloorMax = float64(res.GetFloor.P9999), float64(res.GetFloor.Max)
	return c
}

// estimateNeed is the memory a cell of keys keys is expected to need: the
// store's peak RSS at its largest smaller cell (prevKeys, prevRSS) scaled
// by the keys, or priorBytesPerKey a key without one, times headroom.
func estimateNeed(prevKeys int, prevRSS uint64, keys int) uint64 {
	per := float64(priorBytesPerKey)
	if prevKeys > 0 && prevRSS > 0 {
		per = float64(prevRSS) / float64(prevKeys)
	}
	return uint64(per * float64(keys) * headroom)
}

// fits reports whether need bytes fit in avail (0: unknown, so yes).
func fits(need, avail uint64) bool { return avail == 0 || need <= avail }

// availableMemory is what a child may use: memAvailable (a test replaces it).
var availableMemory = memAvailable

// memAvailable is /proc/meminfo's MemAvailable in bytes, 0 where unknown.
func memAvailable() uint64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	return parseKB(b, "MemAvailable:")
}

// parseKB finds the line starting with field in a /proc file of
// "Field:   123 kB" lines and returns its value in bytes; 0 if absent.
func parseKB(b []byte, field string) uint64 {
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				return 0
			}
			kb, err := strconv.ParseUint(f[0], 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

// peakRSS is this process's peak resident set, VmHWM of /proc/self/status
// (Linux), in bytes; 0 where unknown. The child reads its own: wait4's
// ru_maxrss would do for the parent, but on Linux a child started with
// vfork semantics (as os/exec starts one) inherits the parent's peak at
// exec, so it would report the larger of the two.
func peakRSS() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	return parseKB(b, "VmHWM:")
}

// loadavg is /proc/loadavg without its newline, "" where absent.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// parseScaleSizes reads -scale-keys: ascending, duplicates dropped;
// "none" or "" for no scale section.
func parseScaleSizes(s string) ([]int, error) {
	if s = strings.TrimSpace(s); s == "" || s == "none" {
		return nil, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := workload.ParseSize(f)
		if err != nil {
			return nil, err
		}
		if n < workload.HotKeys+2 {
			return nil, fmt.Errorf("%d is too few (at least %d)", n, workload.HotKeys+2)
		}
		if len(workload.Key(n-1, workload.ScaleKeyWidth)) > len(workload.Key(0, workload.ScaleKeyWidth)) {
			return nil, fmt.Errorf("%d keys do not fit in %d-byte keys", n, len(workload.Key(0, workload.ScaleKeyWidth)))
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// scaleSpecs reads -scale-stores; "" is the base rows of -stores less the
// reference, whose Get sweeps every entry (a 10M-entry sweep a read).
func scaleSpecs(s string, rows []stores.Spec) ([]stores.Spec, error) {
	if strings.TrimSpace(s) == "" {
		var out []stores.Spec
		for _, r := range rows {
			if !r.IsVariant() && r.Group != "reference" {
				out = append(out, r)
			}
		}
		return out, nil
	}
	if s == "none" {
		return nil, nil
	}
	var names []string
	for _, n := range strings.Split(s, ",") {
		if n = strings.TrimSpace(n); n != "" && n != noopName {
			names = append(names, n)
		}
	}
	specs, err := stores.Lookup(names)
	if err != nil {
		return nil, err
	}
	for _, sp := range specs {
		if sp.IsVariant() {
			return nil, fmt.Errorf("%s shares %s's instance: name the base store", sp.Name, sp.Group)
		}
	}
	return specs, nil
}

// tailBuffer keeps the last limit bytes written to it.
type tailBuffer struct {
	b     []byte
	limit int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if over := len(t.b) - t.limit; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

// runScale runs the scale section: key counts ascending, the noop floor
// then each store, one child process at a time.
func (r *runner) runScale() error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("scale: cannot re-execute kvbench: %w", err)
	}
	cfg := r.rep.Config
	type last struct {
		keys int
		rss  uint64
	}
	prev := map[string]last{}
	for _, n := range cfg.ScaleKeys {
		for _, name := range cfg.ScaleStores {
			spec := childSpec{Store: name, Keys: n, Width: workload.ScaleKeyWidth, Procs: cfg.ScaleProcs,
				Cell: r.o.cell, GCRounds: cfg.ScaleGCRounds}
			what := fmt.Sprintf("scale %s %s", name, sizeLabel(n))
			p := prev[name]
			need, avail := estimateNeed(p.keys, p.rss, n), availableMemory()
			if !fits(need, avail) {
				c := ScaleCell{Store: name, Keys: n, Status: "skipped", LoadBefore: loadavg(),
					Reason: fmt.Sprintf("would not fit in memory: needs about %s (%s), %s available",
						fmtBytes(need), needBasis(p.keys, p.rss), fmtBytes(avail))}
				r.prog.step(what + ": skipped, " + c.Reason)
				r.rep.Scale = append(r.rep.Scale, c)
				continue
			}
			before := loadavg()
			r.prog.step(fmt.Sprintf("%s: child process (loadavg %s)", what, before))
			r.watchLoad(what)
			c := r.runChild(exe, spec)
			c.LoadBefore, c.LoadAfter = before, loadavg()
			if c.Status == "ok" && c.PeakRSS > 0 {
				prev[name] = last{n, c.PeakRSS}
			}
			msg := fmt.Sprintf("%s: %s in %.1f s, peak RSS %s, loadavg after %s", what, c.Status, c.ChildSeconds, fmtBytes(c.PeakRSS), c.LoadAfter)
			if c.Status != "ok" {
				msg += ": " + c.Reason
			}
			r.prog.describe(msg)
			r.rep.Scale = append(r.rep.Scale, c)
		}
	}
	return nil
}

func needBasis(prevKeys int, prevRSS uint64) string {
	if prevKeys > 0 && prevRSS > 0 {
		return fmt.Sprintf("%s peak RSS at %s keys, scaled, ×%.2f", fmtBytes(prevRSS), sizeLabel(prevKeys), headroom)
	}
	return fmt.Sprintf("%d B a key assumed, ×%.2f", priorBytesPerKey, headroom)
}

// runChild runs one child and turns what it printed into a cell.
func (r *runner) runChild(exe string, spec childSpec) ScaleCell {
	ctx, cancel := context.WithTimeout(context.Background(), childTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, childFlag, spec.String())
	var stdout bytes.Buffer
	stderr := &tailBuffer{limit: 2048}
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	t := time.Now()
	runErr := cmd.Run()
	el := time.Since(t)
	res, perr := parseChildOutput(stdout.Bytes())
	var c ScaleCell
	switch {
	case perr == nil:
		c = scaleCellFrom(res)
	case res.Error != "":
		c = ScaleCell{Store: spec.Store, Keys: spec.Keys, Status: "error", Reason: res.Error}
	default:
		why := "no result"
		if runErr != nil {
			why = runErr.Error()
			if ctx.Err() != nil {
				why = fmt.Sprintf("killed after %s", childTimeout)
			} else if strings.Contains(why, "killed") {
				why += " (out of memory?)"
			}
		}
		if tail := strings.TrimSpace(string(stderr.b)); tail != "" {
			why += "; stderr: " + lastLines(tail, 3)
		}
		c = ScaleCell{Store: spec.Store, Keys: spec.Keys, Status: "error", Reason: why + " (" + perr.Error() + ")"}
	}
	c.ChildSeconds = el.Seconds()
	c.PeakRSS = res.PeakRSS
	return c
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " / ")
}

func fmtBytes(b uint64) string {
	switch {
	case b == 0:
		return "?"
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20))
	}
	return fmt.Sprintf("%.0f KiB", float64(b)/(1<<10))
}
