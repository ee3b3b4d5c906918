// Command kvbench measures shardkv against the reference design and the Go
// caches people choose instead, in one process (the scale section: one
// child process a store and key count), and reports the results as a
// Markdown table (stdout and results.md), results.json and SVG charts.
//
//	go run ./cmd/kvbench                 # the default run: 1M keys, zipf, every store, scale 100k,1M
//	go run ./cmd/kvbench -quick          # a tiny run (CI): 10k keys, 50 ms cells, scale 10k,30k
//	go run ./cmd/kvbench -scale-keys 100k,1M,10M -workloads scale   # the scale section alone, up to 10M
//	go run ./cmd/kvbench -h              # every flag
//
// The scale section runs each (store, key count) in a child process: the
// binary re-executes itself with the hidden first argument -child-scale
// (see scale.go), so that each store's heap is gone before the next.
//
// The workloads, stores and runners are those of the bench module's
// go test benchmarks (github.com/shardkv/shardkv/bench).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/shardkv/shardkv/bench/stores"
	"github.com/shardkv/shardkv/bench/workload"
)

// Special workloads, beyond workload.Standard.
const (
	wLatency = "latency" // Get service time under a concurrent writer, next to the noop floor
	wScaling = "scaling" // read90 against the number of goroutines
	wOps     = "ops"     // allocations and time of each operation on one goroutine
	wScale   = "scale"   // each store alone in a child process at -scale-keys keys
)

type options struct {
	workloads   []string
	stores      []stores.Spec
	sizes       []int
	scaleSizes  []int
	scaleStores []stores.Spec // base stores, without the noop floor (always added)
	dists       []workload.Dist
	cell        time.Duration
	procs       []int
	goroutines  []int
	rate        float64
	latencyDur  time.Duration
	sampleEvery int
	gcRounds    int
	out         string
	cpuprofile  string
	progress    string
	format      string
	render      string
	quiet       bool
}

func usage() {
	w := flag.CommandLine.Output()
	fmt.Fprintf(w, `kvbench runs shardkv and its peers through the same workloads (in one
process; the scale section in one child process a store and key count) and
reports ops/s, ns/op, allocations, latency percentiles and bytes per entry,
as a Markdown table (stdout and OUT/results.md), OUT/results.json
and charts (OUT/throughput.svg, scaling.svg, latency.svg, memory.svg, scale.svg;
or .png).

Usage: go run ./cmd/kvbench [flags]

The default run (1M keys, zipf, every store, GOMAXPROCS = the CPU count,
and the scale section at 100k and 1M keys) takes about 3 minutes on 2
cores. 10M keys: -scale-keys 100k,1M,10M for the scale section (one child
process a store, each alone in memory: several minutes, a few GiB at a
time), or -keys 10M for the whole matrix in one process (minutes per
store, several GiB). A CI-sized run: -quick.

Workloads (-workloads): %s,
  %s (Get service time of every call while a writer overwrites keys, with the
  noop store's as the floor; -rate adds read90 at a fixed offered load),
  %s (read90 against -goroutines), %s (allocations of each operation on one
  goroutine), %s (each store in its own child process at each -scale-keys key
  count: read90 and write100 ns/op, heap bytes per entry, GC CPU per forced
  cycle attributable to the store, Set p99.99 and max of a one-writer fill).
  Stores (-stores): %s.

Flags:
`, strings.Join(workloadNames(), ", "), wLatency, wScaling, wOps, wScale, strings.Join(stores.Names(), ", "))
	flag.PrintDefaults()
}

func workloadNames() []string {
	var names []string
	for _, w := range workload.Standard(workload.Zipf, workload.Uniform) {
		names = append(names, w.Name)
	}
	return names
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("bad number %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func parseFlags() (options, error) {
	var o options
	fs := flag.CommandLine
	fs.Usage = usage
	workloads := fs.String("workloads", "all", "comma-separated workloads to run, or \"all\"")
	storeList := fs.String("stores", "all", "comma-separated stores to run, or \"all\"")
	keys := fs.String("keys", "1M", "comma-separated store sizes (keys) of the main matrix, all stores in this process: e.g. 10k,1M,10M")
	scaleKeys := fs.String("scale-keys", "100k,1M", "comma-separated key counts of the scale section, one child process per store and count; 10M is opt-in: 100k,1M,10M; none: no scale section")
	scaleStores := fs.String("scale-stores", "", "comma-separated stores of the scale section (base rows only; the noop floor is always added); default: the base rows of -stores, less the reference (its Get sweeps every entry)")
	dist := fs.String("dist", "zipf", "key choice of the read/write mixes: zipf, uniform or zipf,uniform")
	fs.DurationVar(&o.cell, "duration", 300*time.Millisecond, "how long each throughput cell runs")
	procs := fs.String("procs", strconv.Itoa(runtime.NumCPU()), "comma-separated GOMAXPROCS values; each runs the whole matrix")
	gor := fs.String("goroutines", "1,2,4,8", "goroutine counts of the scaling workload (read90)")
	fs.Float64Var(&o.rate, "rate", 0, "if > 0, the latency workload also offers read90 this load (ops/s over all goroutines), timed from each operation's schedule; off by default: on a few cores it measures the load generator's own stalls")
	fs.DurationVar(&o.latencyDur, "latency-duration", time.Second, "how long each latency run lasts")
	fs.IntVar(&o.sampleEvery, "sample", 8, "offered-load latency (-rate): time one operation in this many")
	fs.IntVar(&o.gcRounds, "gc-rounds", 3, "forced GC cycles timed per store (median reported; the scale section times at least 3 each side)")
	fs.StringVar(&o.out, "out", "results", "output folder for results.md, results.json and the charts")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	fs.StringVar(&o.progress, "progress", "auto", "progress on stderr: bar, lines, none, or auto (a bar on a terminal, else lines)")
	fs.StringVar(&o.render, "render", "", "measure nothing: redraw the table and charts of this results.json into -out")
	fs.StringVar(&o.format, "chart-format", "svg", "chart file format: svg or png")
	fs.BoolVar(&o.quiet, "q", false, "do not print the Markdown report on stdout")
	quick := fs.Bool("quick", false, "a tiny run for CI: -keys 10k -scale-keys 10k,30k -duration 50ms -latency-duration 200ms -goroutines 1,2 -gc-rounds 1 (explicit flags still win)")
	flag.Parse()
	if flag.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %v", flag.Args())
	}
	if *quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		def := func(name, v string) {
			if !set[name] {
				fs.Set(name, v)
			}
		}
		def("keys", "10k")
		def("scale-keys", "10k,30k")
		def("duration", "50ms")
		def("latency-duration", "200ms")
		def("goroutines", "1,2")
		def("gc-rounds", "1")
	}
	var err error
	for _, f := range strings.Split(*keys, ",") {
		n, err := workload.ParseSize(f)
		if err != nil {
			return o, fmt.Errorf("-keys: %v", err)
		}
		if n < workload.HotKeys+2 {
			return o, fmt.Errorf("-keys: %d is too few (at least %d)", n, workload.HotKeys+2)
		}
		o.sizes = append(o.sizes, n)
	}
	if o.scaleSizes, err = parseScaleSizes(*scaleKeys); err != nil {
		return o, fmt.Errorf("-scale-keys: %v", err)
	}
	for _, d := range strings.Split(*dist, ",") {
		switch workload.Dist(strings.TrimSpace(d)) {
		case workload.Zipf:
			o.dists = append(o.dists, workload.Zipf)
		case workload.Uniform:
			o.dists = append(o.dists, workload.Uniform)
		default:
			return o, fmt.Errorf("-dist: unknown distribution %q", d)
		}
	}
	if o.procs, err = parseInts(*procs); err != nil || len(o.procs) == 0 {
		return o, fmt.Errorf("-procs: %v", err)
	}
	if *gor != "" && *gor != "none" {
		if o.goroutines, err = parseInts(*gor); err != nil {
			return o, fmt.Errorf("-goroutines: %v", err)
		}
	}
	if o.stores, err = stores.Lookup(strings.Split(*storeList, ",")); err != nil {
		return o, fmt.Errorf("-stores: %v", err)
	}
	if o.scaleStores, err = scaleSpecs(*scaleStores, o.stores); err != nil {
		return o, fmt.Errorf("-scale-stores: %v", err)
	}
	known := append(workloadNames(), wLatency, wScaling, wOps, wScale)
	if *workloads == "all" {
		o.workloads = known
	} else {
		for _, w := range strings.Split(*workloads, ",") {
			w = strings.TrimSpace(w)
			if !slices.Contains(known, w) {
				return o, fmt.Errorf("-workloads: unknown workload %q (known: %s)", w, strings.Join(known, ", "))
			}
			o.workloads = append(o.workloads, w)
		}
	}
	// Naming a uniform mix asks for uniform keys.
	for _, w := range o.workloads {
		if strings.HasSuffix(w, "-uniform") && !slices.Contains(o.dists, workload.Uniform) && *workloads != "all" {
			o.dists = append(o.dists, workload.Uniform)
		}
	}
	if o.format != "svg" && o.format != "png" {
		return o, fmt.Errorf("-chart-format: %q is neither svg nor png", o.format)
	}
	if o.cell <= 0 || o.latencyDur <= 0 || o.rate < 0 || o.sampleEvery < 1 || o.gcRounds < 1 {
		return o, fmt.Errorf("-duration, -latency-duration, -sample and -gc-rounds must be positive, -rate not negative")
	}
	return o, nil
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == childFlag {
		os.Exit(childMain(os.Args[2:]))
	}
	o, err := parseFlags()
	if err != nil {
		fmt.Fprintln(os.Stderr, "kvbench:", err)
		os.Exit(2)
	}
	run := run
	if o.render != "" {
		run = render
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "kvbench:", err)
		os.Exit(1)
	}
}

// progress shows what runs and what remains on stderr.
type progress struct {
	bar   *progressbar.ProgressBar
	lines bool
	total int
	done  int
	start time.Time
}

func newProgress(mode string, total int) *progress {
	p := &progress{total: total, start: time.Now()}
	if mode == "auto" {
		mode = "lines"
		if term.IsTerminal(int(os.Stderr.Fd())) {
			mode = "bar"
		}
	}
	switch mode {
	case "bar":
		p.bar = progressbar.NewOptions(total,
			progressbar.OptionSetWriter(os.Stderr),
			progressbar.OptionSetWidth(30),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionShowElapsedTimeOnFinish(),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(os.Stderr) }),
		)
	case "lines":
		p.lines = true
	}
	return p
}

// step announces the next task.
func (p *progress) step(what string) {
	p.done++
	switch {
	case p.bar != nil:
		p.bar.Describe(fmt.Sprintf("%-44s", what))
		p.bar.Add(1)
	case p.lines:
		fmt.Fprintf(os.Stderr, "kvbench [%d/%d %5.1fs] %s\n", p.done, p.total, time.Since(p.start).Seconds(), what)
	}
}

// describe says what runs without counting a task.
func (p *progress) describe(what string) {
	switch {
	case p.bar != nil:
		p.bar.Describe(fmt.Sprintf("%-44s", what))
	case p.lines:
		fmt.Fprintf(os.Stderr, "kvbench [%d/%d %5.1fs] %s\n", p.done, p.total, time.Since(p.start).Seconds(), what)
	}
}

func (p *progress) finish() {
	if p.bar != nil {
		p.bar.Finish()
	}
}

// runner carries the run's state.
type runner struct {
	o        options
	rep      *Report
	prog     *progress
	warnedAt float64
}

func (r *runner) wants(w string) bool { return slices.Contains(r.o.workloads, w) }

// watchLoad samples the load average and warns when it exceeds the cores.
func (r *runner) watchLoad(what string) float64 {
	l := load1()
	if l > r.rep.MaxLoad1 {
		r.rep.MaxLoad1 = l
	}
	if cores := float64(runtime.NumCPU()); l > cores {
		r.rep.Busy = true
		if l > r.warnedAt+0.5 {
			r.warnedAt = l
			msg := fmt.Sprintf("the machine is busy: 1-minute load average %.2f > %d cores (at %s); numbers are noisy", l, runtime.NumCPU(), what)
			r.rep.Warnings = append(r.rep.Warnings, msg)
			if r.prog.bar != nil {
				r.prog.bar.Clear()
			}
			fmt.Fprintln(os.Stderr, "kvbench: warning:", msg)
		}
	}
	return l
}

func run(o options) error {
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	start := time.Now()
	std := workload.Standard(o.dists...)
	var ws []workload.Workload
	for _, w := range std {
		if slices.Contains(o.workloads, w.Name) {
			ws = append(ws, w)
		}
	}
	// The main matrix: every store in this process, size by size. It is
	// skipped when only the scale section is asked for.
	matrix := len(ws) > 0 || slices.ContainsFunc(o.workloads, func(w string) bool { return w == wLatency || w == wScaling || w == wOps })
	sizes := o.sizes
	if !matrix {
		sizes = nil
	}
	scale := slices.Contains(o.workloads, wScale) && len(o.scaleSizes) > 0 && len(o.scaleStores) > 0
	rep := &Report{
		Machine: machine(o.procs, start),
		Started: start.UTC(),
		Config: RunConfig{
			Workloads: o.workloads, Keys: sizes, CellSeconds: o.cell.Seconds(), Procs: o.procs,
			Goroutines: o.goroutines, Rate: o.rate, LatencySeconds: o.latencyDur.Seconds(), LatencySampling: o.sampleEvery,
			GCRounds: o.gcRounds,
		},
	}
	if slices.Contains(o.workloads, wLatency) {
		rep.Config.LatencyReaders = latencyReaders(o.procs[0])
	}
	if scale {
		rep.Config.ScaleKeys = o.scaleSizes
		rep.Config.ScaleProcs = o.procs[0]
		rep.Config.ScaleGCRounds = scaleGCRounds(o.gcRounds)
		rep.Config.ScaleKeyBytes = len(workload.Key(0, workload.ScaleKeyWidth))
		rep.Config.ScaleStores = []string{stores.NoopName}
		for _, s := range o.scaleStores {
			rep.Config.ScaleStores = append(rep.Config.ScaleStores, s.Name)
		}
	}
	for _, d := range o.dists {
		rep.Config.Dists = append(rep.Config.Dists, string(d))
	}
	for _, s := range o.stores {
		rep.Config.Stores = append(rep.Config.Stores, s.Name)
		rep.Stores = append(rep.Stores, StoreInfo{Name: s.Name, Group: s.Group, Caps: s.Caps.String(), Note: s.Note})
	}
	for _, w := range ws {
		rep.Workloads = append(rep.Workloads, WorkloadInfo{w.Name, w.Doc})
	}
	r := &runner{o: o, rep: rep}
	tasks := len(o.procs) * len(sizes) * r.tasksPerSize(ws)
	if scale {
		tasks += len(rep.Config.ScaleKeys) * len(rep.Config.ScaleStores)
	}
	r.prog = newProgress(o.progress, tasks)
	r.watchLoad("start")

	prev := runtime.GOMAXPROCS(0)
	for _, p := range o.procs {
		runtime.GOMAXPROCS(p)
		for _, n := range sizes {
			if err := r.runSize(p, n, ws); err != nil {
				r.prog.finish()
				return err
			}
		}
	}
	runtime.GOMAXPROCS(prev)
	if scale {
		// Give the matrix's memory back first: the children need it.
		debug.FreeOSMemory()
		if err := r.runScale(); err != nil {
			r.prog.finish()
			return err
		}
	}
	r.prog.finish()
	r.watchLoad("end")
	rep.Seconds = time.Since(start).Seconds()
	return write(rep, o)
}

// render redraws a saved run.
func render(o options) error {
	b, err := os.ReadFile(o.render)
	if err != nil {
		return err
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return fmt.Errorf("%s: %w", o.render, err)
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	return write(&rep, o)
}

// write saves results.json, results.md (also on stdout unless -q) and the
// charts into o.out.
func write(rep *Report, o options) error {
	files := []string{filepath.Join(o.out, "results.json"), filepath.Join(o.out, "results.md")}
	if err := rep.writeJSON(files[0]); err != nil {
		return err
	}
	md, err := os.Create(files[1])
	if err != nil {
		return err
	}
	out := io.Writer(md)
	if !o.quiet {
		out = io.MultiWriter(md, os.Stdout)
	}
	rep.writeMarkdown(out)
	if err := md.Close(); err != nil {
		return err
	}
	charts, err := rep.writeCharts(o.out, o.format)
	if err != nil {
		return err
	}
	files = append(files, charts...)
	for _, w := range rep.Warnings {
		fmt.Fprintln(os.Stderr, "kvbench: warning:", w)
	}
	fmt.Fprintf(os.Stderr, "kvbench: %.0f s of measuring; wrote %s\n", rep.Seconds, strings.Join(files, ", "))
	return nil
}

// tasksPerSize counts the progress steps of one size, for the bar.
func (r *runner) tasksPerSize(ws []workload.Workload) int {
	t := 0
	groups := map[string]bool{}
	for _, spec := range r.o.stores {
		groups[spec.Group] = true
		for _, w := range ws {
			if w.Applies(spec) {
				t++
			}
		}
		if r.wants(wLatency) {
			t++
		}
		if r.wants(wScaling) && len(r.o.goroutines) > 0 {
			t++
		}
		if r.wants(wOps) {
			t++
		}
	}
	if r.wants(wLatency) {
		t++ // the noop floor
	}
	return t + len(groups) // one prefill a group
}

func (r *runner) runSize(procs, n int, ws []workload.Workload) error {
	r.prog.describe(fmt.Sprintf("keys %s: building the keys and key orders", sizeLabel(n)))
	ks := workload.NewKeyspace(n)
	if r.wants(wLatency) {
		// The floor first: the same keyspace, no store.
		noop, _ := stores.Noop().New(stores.Config{Keys: n, ValueSize: workload.ValueSize})
		r.runLatency(procs, &workload.Env{Keyspace: ks, Store: noop}, stores.Noop())
	}
	var groups []string
	for _, s := range r.o.stores {
		if !slices.Contains(groups, s.Group) {
			groups = append(groups, s.Group)
		}
	}
	for _, g := range groups {
		if err := r.runGroup(procs, ks, g, ws); err != nil {
			return err
		}
	}
	return nil
}

func (r *runner) runGroup(procs int, ks *workload.Keyspace, group string, ws []workload.Workload) error {
	var members []stores.Spec
	for _, s := range r.o.stores {
		if s.Group == group {
			members = append(members, s)
		}
	}
	base, _ := stores.Base(group)
	r.prog.step(fmt.Sprintf("%s %s: prefill, memory, GC", base.Name, sizeLabel(ks.N)))
	inst, mem, err := workload.Build(base, ks, r.o.gcRounds)
	if err != nil {
		return err
	}
	defer func() {
		inst.Close()
		runtime.GC()
	}()
	for _, spec := range members {
		mc := MemoryCell{
			Key:     Key{procs, ks.N, spec.Name},
			Entries: mem.Entries, Held: mem.Held,
			HeapPerEntry: mem.HeapBytesPerEntry, ScanPerEntry: mem.ScanBytesPerEntry,
			GCWallMs: ms(mem.GCWall), GCCPUMs: ms(mem.GCCPU), GCEmptyWallMs: ms(mem.GCBaseWall), GCEmptyCPUMs: ms(mem.GCBaseCPU),
			PrefillSeconds: mem.Prefill.Seconds(), PrefillsDropped: mem.Dropped,
		}
		if spec.IsVariant() {
			mc.SharedWith = base.Name
		}
		r.rep.Memory = append(r.rep.Memory, mc)
	}
	envOf := func(spec stores.Spec) *workload.Env {
		s := inst
		if spec.IsVariant() {
			s = spec.Wrap(inst)
		}
		return &workload.Env{Keyspace: ks, Store: s}
	}
	for _, spec := range members {
		env := envOf(spec)
		for _, w := range ws {
			if !w.Destructive {
				r.runCell(procs, env, spec, w)
			}
		}
		if r.wants(wLatency) {
			r.runLatency(procs, env, spec)
		}
		if r.wants(wScaling) && len(r.o.goroutines) > 0 {
			r.runScaling(procs, env, spec)
		}
	}
	// The single-operation measurements write (some with a TTL), so they
	// come after every row's reads.
	if r.wants(wOps) {
		for _, spec := range members {
			r.runOps(procs, envOf(spec), spec)
		}
	}
	// Destructive workloads last, after every row of the group.
	for _, w := range ws {
		if !w.Destructive {
			continue
		}
		for _, spec := range members {
			r.runCell(procs, envOf(spec), spec, w)
		}
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

func (r *runner) runCell(procs int, env *workload.Env, spec stores.Spec, w workload.Workload) {
	c := Cell{Key: Key{procs, env.N, spec.Name}, Workload: w.Name}
	if !w.Applies(spec) {
		c.Status = "n/a"
		switch {
		case spec.ReadOnlyVariant:
			c.Reason = "reads only: same writes as " + baseline
		default:
			c.Reason = "needs " + (w.Needs &^ spec.Caps).String()
		}
		r.rep.Cells = append(r.rep.Cells, c)
		return
	}
	r.prog.step(fmt.Sprintf("%s %s: %s", spec.Name, sizeLabel(env.N), w.Name))
	c.Load1 = r.watchLoad(spec.Name + " " + w.Name)
	cell, err := w.Start(env)
	if err != nil {
		c.Status, c.Reason = "error", err.Error()
		r.rep.Cells = append(r.rep.Cells, c)
		return
	}
	res := workload.RunFor(cell, procs, r.o.cell)
	fill(&c, res)
	r.rep.Cells = append(r.rep.Cells, c)
}

func fill(c *Cell, res workload.Result) {
	m := res.Metrics
	c.Status = "ok"
	c.Goroutines = res.Goroutines
	c.Ops = res.Ops
	c.Seconds = res.Elapsed.Seconds()
	c.OpsPerSec = res.OpsPerSec()
	c.NsPerOp = res.NsPerOp()
	c.AllocsPerOp = res.AllocsPerOp()
	c.HitRatio = m.HitRatio()
	if m.Listed > 0 {
		c.HitRatio = 0
		c.Listed = float64(m.Listed) / float64(max(m.Hits, 1))
	}
	c.DropRatio = max(m.DropRatio(), 0)
	if res.Ops > 0 {
		c.CASFails = float64(m.Fails) / float64(res.Ops)
	}
	c.Errors = m.Errors
	if m.Subscribers > 0 {
		c.Subscribers = m.Subscribers
		c.Published = m.Published
		c.Delivered = max(m.DeliveredRatio(), 0)
		c.Missed = m.Missed
		if res.Elapsed > 0 {
			c.EventsPerS = float64(m.Events) / res.Elapsed.Seconds()
		}
		c.NsPerDelivered = float64(res.Elapsed.Nanoseconds()) / float64(max(m.Events, 1))
	}
}

// latencyReaders is the reader goroutines of the latency workload: one
// processor each, and one left for the writer.
func latencyReaders(procs int) int { return max(procs-1, 1) }

// runLatency measures Get's service time under a writer (and, with -rate,
// read90 at the offered load).
func (r *runner) runLatency(procs int, env *workload.Env, spec stores.Spec) {
	r.prog.step(fmt.Sprintf("%s %s: Get latency under a writer", spec.Name, sizeLabel(env.N)))
	l1 := r.watchLoad(spec.Name + " latency")
	g := workload.RunGetLatency(env, workload.GetLatencyConfig{Readers: latencyReaders(procs), Duration: r.o.latencyDur})
	r.rep.GetLatency = append(r.rep.GetLatency, GetLatencyCell{
		Key:     Key{procs, env.N, spec.Name},
		Readers: g.Readers, Gets: g.Gets, Sets: g.Sets, Seconds: g.Elapsed.Seconds(),
		HitRatio: float64(g.Hits) / float64(max(g.Gets, 1)),
		P50:      float64(g.P50), P99: float64(g.P99), P999: float64(g.P999), P9999: float64(g.P9999), Max: float64(g.Max),
		Load1: l1,
	})
	if r.o.rate <= 0 {
		return
	}
	cell, err := workload.Read90().Start(env)
	if err != nil {
		return
	}
	l := workload.RunLatency(cell, workload.LatencyConfig{
		Goroutines: procs, Rate: r.o.rate, Duration: r.o.latencyDur, SampleEvery: r.o.sampleEvery,
	})
	r.rep.Latency = append(r.rep.Latency, LatencyCell{
		Key:     Key{procs, env.N, spec.Name},
		Offered: l.Offered, Achieved: l.Achieved, Samples: l.Samples,
		P50: float64(l.P50), P99: float64(l.P99), P999: float64(l.P999), Max: float64(l.Max),
		SvcP50: float64(l.ServiceP50), SvcP99: float64(l.ServiceP99), SvcP999: float64(l.ServiceP999), SvcMax: float64(l.ServiceMax),
		Saturated: l.Saturated, Load1: l1,
	})
}

func (r *runner) runScaling(procs int, env *workload.Env, spec stores.Spec) {
	r.prog.step(fmt.Sprintf("%s %s: read90 × goroutines %v", spec.Name, sizeLabel(env.N), r.o.goroutines))
	for _, g := range r.o.goroutines {
		c := Cell{Key: Key{procs, env.N, spec.Name}, Workload: "read90"}
		c.Load1 = r.watchLoad(spec.Name + " scaling")
		cell, err := workload.Read90().Start(env)
		if err != nil {
			continue
		}
		fill(&c, workload.RunFor(cell, g, r.o.cell))
		r.rep.Scaling = append(r.rep.Scaling, c)
	}
}

func (r *runner) runOps(procs int, env *workload.Env, spec stores.Spec) {
	r.prog.step(fmt.Sprintf("%s %s: allocations per operation", spec.Name, sizeLabel(env.N)))
	for _, op := range workload.Ops() {
		if !op.Applies(spec) {
			continue
		}
		oc := workload.MeasureOp(env, op, 20*time.Millisecond)
		r.rep.Ops = append(r.rep.Ops, OpCell{Key: Key{procs, env.N, spec.Name}, Op: oc.Op, Allocs: oc.Allocs, Ns: oc.Ns})
	}
}

func sizeLabel(n int) string { return workload.SizeLabel(n) }
