package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shardkv/shardkv/bench/stores"
	"github.com/shardkv/shardkv/bench/workload"
)

// TestChildSpec checks the child's argument: what String writes, parse
// reads back, and a malformed one is refused rather than half read.
func TestChildSpec(t *testing.T) {
	c := childSpec{Store: "otter", Keys: 1_000_000, Width: 7, Procs: 2, Cell: 300 * time.Millisecond, GCRounds: 3}
	if got := c.String(); got != "store=otter,keys=1000000,width=7,procs=2,cell=300ms,gc-rounds=3" {
		t.Fatalf("String() = %q", got)
	}
	back, err := parseChildSpec(c.String())
	if err != nil || back != c {
		t.Fatalf("parse(String()) = %+v, %v; want %+v", back, err, c)
	}
	for _, bad := range []string{
		"",
		"store=otter,keys=10,width=7,procs=2,cell=1s",                         // gc-rounds missing
		"store=otter,keys=10,width=7,procs=2,cell=1s,gc-rounds=3,extra=1",     // unknown field
		"store=otter,keys=10,keys=20,width=7,procs=2,cell=1s,gc-rounds=3",     // twice
		"store=otter,keys=ten,width=7,procs=2,cell=1s,gc-rounds=3",            // not a number
		"store=otter,keys=10,width=7,procs=2,cell=soon,gc-rounds=3",           // not a duration
		"store=otter,keys=0,width=7,procs=2,cell=1s,gc-rounds=3",              // not positive
		"store=otter,keys=10,width=7,procs=2,cell=-1s,gc-rounds=3",            // not positive
		"store=,keys=10,width=7,procs=2,cell=1s,gc-rounds=3",                  // empty
		"store=otter;keys=10,width=7,procs=2,cell=1s,gc-rounds=3",             // not name=value
		"store=otter,keys=10,width=7,procs=2,cell=1s,gc-rounds=3,store=xsync", // twice
	} {
		if c, err := parseChildSpec(bad); err == nil {
			t.Errorf("parseChildSpec(%q) = %+v, want an error", bad, c)
		}
	}
	if _, err := specOf("shardkv-view"); err == nil {
		t.Error("specOf accepts a variant")
	}
	if s, err := specOf(noopName); err != nil || s.Name != noopName {
		t.Errorf("specOf(noop) = %v, %v", s.Name, err)
	}
}

// TestParseChildOutput checks how the parent reads a child's stdout: the
// result line among other output (the last one counts), and each way a
// child can fail to deliver one.
func TestParseChildOutput(t *testing.T) {
	res := workload.ScaleResult{Store: "xsync", Keys: 1000, HeapBefore: 10, HeapAfter: 20, GCCPUStore: []int64{3, 1, 2}}
	line, _ := json.Marshal(res)
	good := "some library's chatter\n" + childPrefix + `{"store":"old"}` + "\n" + childPrefix + string(line) + "\nmore chatter\n"
	got, err := parseChildOutput([]byte(good))
	if err != nil || got.Store != "xsync" || got.Keys != 1000 || len(got.GCCPUStore) != 3 {
		t.Fatalf("parseChildOutput = %+v, %v", got, err)
	}
	for name, out := range map[string]string{
		"empty":     "",
		"no prefix": string(line) + "\n",
		"bad JSON":  childPrefix + "{not json\n",
		"truncated": childPrefix + string(line[:len(line)/2]) + "\n",
	} {
		if _, err := parseChildOutput([]byte(out)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	res.Error = "xsync: the fill's Set refused 3 writes"
	line, _ = json.Marshal(res)
	got, err = parseChildOutput([]byte(childPrefix + string(line) + "\n"))
	if err == nil || err.Error() != res.Error || got.Error != res.Error {
		t.Fatalf("a child's error: %+v, %v", got, err)
	}
}

// TestGCAttribution checks the GC CPU arithmetic and the per-entry
// figures derived from a child's raw result.
func TestGCAttribution(t *testing.T) {
	for _, c := range []struct {
		xs   []int64
		want float64
	}{{nil, 0}, {[]int64{5}, 5}, {[]int64{9, 1, 5}, 5}, {[]int64{4, 1, 3, 2}, 2.5}} {
		if got := median(c.xs); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.xs, got, c.want)
		}
	}
	xs := []int64{3, 1, 2}
	median(xs)
	if xs[0] != 3 {
		t.Error("median sorted its argument")
	}
	// The store's cycles take 40-60 ms of CPU, the empty heap's 2-4: the
	// store adds its median less the baseline's least, 50 - 2.
	with, without, attr := gcAttribution([]int64{60e6, 40e6, 50e6}, []int64{4e6, 2e6, 3e6})
	if with != 50e6 || without != 2e6 || attr != 48e6 {
		t.Errorf("gcAttribution = %v, %v, %v", with, without, attr)
	}
	// Below the baseline: reported as it is (the table shows ≈ 0).
	if _, _, attr := gcAttribution([]int64{2e6}, []int64{3e6}); attr != -1e6 {
		t.Errorf("below the baseline: %v", attr)
	}
	if scaleGCRounds(1) != 3 || scaleGCRounds(5) != 5 {
		t.Error("scaleGCRounds")
	}

	c := scaleCellFrom(workload.ScaleResult{
		Store: "otter", Keys: 1000, Held: 1000,
		HeapBefore: 1 << 20, HeapAfter: 1<<20 + 150_000, ScanBefore: 1000, ScanAfter: 51_000,
		GCCPUStore: []int64{60e6, 40e6, 50e6}, GCCPUEmpty: []int64{4e6, 2e6, 3e6},
		GCWallStore: []int64{30e6}, GCWallEmpty: []int64{1e6},
		FillP99: 900, FillP9999: 20_000, FillMax: 3_000_000, FillSeconds: 0.5,
		Read90: workload.CellResult{NsPerOp: 120}, Write100: workload.CellResult{NsPerOp: 340},
		GetUnderWriter: workload.GetLatency{P9999: 25_000, Max: 700_000},
	})
	if c.Status != "ok" || c.HeapPerEntry != 150 || c.ScanPerEntry != 50 || c.GCCPUStoreMs != 50 || c.GCCPUEmptyMs != 2 ||
		c.GCCPUAttribMs != 48 || c.GCWallStoreMs != 30 || c.GCWallEmptyMs != 1 || c.FillP9999 != 20_000 || c.FillMax != 3e6 ||
		c.Read90Ns != 120 || c.Write100Ns != 340 || c.Raw == nil || c.Held != 1000 || c.GetP9999 != 25_000 || c.GetMax != 7e5 {
		t.Errorf("scaleCellFrom = %+v", c)
	}
	// A heap that shrank (the GC freed more than the store holds) stays
	// negative rather than wrapping around.
	if c := scaleCellFrom(workload.ScaleResult{Keys: 10, HeapBefore: 1000, HeapAfter: 900}); c.HeapPerEntry != -10 {
		t.Errorf("shrunk heap: %v B/entry", c.HeapPerEntry)
	}
}

// TestFloor checks the noop floor logic: a figure under floorFactor× the
// floor's at the same percentile is bracketed, the floor row itself never
// is, and without a floor nothing is.
func TestFloor(t *testing.T) {
	for _, c := range []struct {
		v, floor float64
		above    bool
	}{{100, 0, true}, {100, 50, true}, {99, 50, false}, {50, 50, false}, {10, 50, false}, {1e6, 1e3, true}} {
		if got := aboveFloor(c.v, c.floor); got != c.above {
			t.Errorf("aboveFloor(%v, %v) = %v", c.v, c.floor, got)
		}
	}
	if got := fmtFloored(3e6, 2e6); got != "(3.0 ms)" {
		t.Errorf("fmtFloored under the floor: %q", got)
	}
	if got := fmtFloored(5e6, 2e6); got != "5.0 ms" {
		t.Errorf("fmtFloored above the floor: %q", got)
	}
	rep := &Report{GetLatency: []GetLatencyCell{
		{Key: Key{2, 1000, noopName}, P50: 40, P99: 70, P999: 120, P9999: 800, Max: 8e6},
		{Key: Key{2, 1000, "shardkv"}, P50: 180, P99: 900, P999: 3000, P9999: 1e5, Max: 5e6},
		{Key: Key{2, 5000, "shardkv"}, P50: 30, P99: 60, P999: 90, P9999: 100, Max: 200}, // no floor at 5000
	}}
	ix := rep.index()
	for i, want := range []string{"180 ns", "900 ns", "3000 ns", "100.0 µs", "(5.0 ms)"} {
		if got := ix.getPercentile(Key{2, 1000, "shardkv"}, i); got != want {
			t.Errorf("shardkv %s = %q, want %q", percentileNames[i], got, want)
		}
	}
	if got := ix.getPercentile(Key{2, 1000, noopName}, 4); got != "8.0 ms" {
		t.Errorf("the floor row: %q", got)
	}
	if got := ix.getPercentile(Key{2, 5000, "shardkv"}, 0); got != "30 ns" {
		t.Errorf("without a floor: %q", got)
	}
	if got := ix.getPercentile(Key{2, 1000, "otter"}, 0); got != "—" {
		t.Errorf("not measured: %q", got)
	}

	// The scale section's fill figures, against the noop's fill.
	rep = &Report{Scale: []ScaleCell{
		{Store: noopName, Keys: 1000, Status: "ok", FillP9999: 1000, FillMax: 2e6, Read90Ns: 10},
		{Store: "otter", Keys: 1000, Status: "ok", FillP9999: 50_000, FillMax: 3e6, Read90Ns: 15, GCCPUAttribMs: -0.5},
		{Store: "bigcache", Keys: 1000, Status: "skipped", Reason: "would not fit"},
		// Above the noop's, but within 2x of its own stall floor.
		{Store: "shardkv", Keys: 1000, Status: "ok", FillP9999: 50_000, FillFloorP9999: 30_000, FillMax: 5e6, FillFloorMax: 2e6},
	}}
	var p9999, fmax, read90, gc scaleMetric
	for _, m := range scaleMetrics {
		switch m.title {
		case "fill: Set p99.99":
			p9999 = m
		case "fill: Set max":
			fmax = m
		case "read90 ns/op":
			read90 = m
		case "GC CPU per forced cycle attributable to the store":
			gc = m
		}
	}
	for _, c := range []struct {
		m           scaleMetric
		store, want string
	}{
		{p9999, "otter", "50.0 µs"}, {fmax, "otter", "(3.0 ms)"}, {fmax, noopName, "2.0 ms"},
		{read90, "otter", "15 ns"}, // ns/op is not floored: the noop row is the harness's cost, shown beside it
		{gc, "otter", "≈ 0"}, {fmax, "bigcache", "skipped"}, {fmax, "xsync", "—"},
		{p9999, "shardkv", "(50.0 µs)"}, {fmax, "shardkv", "5.0 ms"},
	} {
		if got := rep.fmtScale(c.m, c.store, 1000); got != c.want {
			t.Errorf("%s of %s = %q, want %q", c.m.title, c.store, got, c.want)
		}
	}
}

// TestMemoryFit checks the estimate that decides whether a cell is
// skipped, and the /proc parsing it rests on.
func TestMemoryFit(t *testing.T) {
	// 1M keys peaked at 400 MiB: 10M are expected at 4 GiB, ×1.25.
	need := estimateNeed(1_000_000, 400<<20, 10_000_000)
	if want := uint64(float64(400<<20) * 10 * headroom); need != want {
		t.Errorf("estimateNeed = %d, want %d", need, want)
	}
	if got := estimateNeed(0, 0, 1000); got != uint64(1000*priorBytesPerKey*headroom) {
		t.Errorf("without a smaller cell: %d", got)
	}
	if !fits(need, 0) || !fits(need, need) || fits(need, need-1) {
		t.Error("fits")
	}
	status := []byte("Name:\tkvbench\nVmPeak:\t  2000 kB\nVmHWM:\t   1234 kB\nVmRSS:\t  1000 kB\n")
	if got := parseKB(status, "VmHWM:"); got != 1234<<10 {
		t.Errorf("VmHWM = %d", got)
	}
	if got := parseKB([]byte("MemTotal: 10 kB\nMemAvailable:   22000000 kB\n"), "MemAvailable:"); got != 22000000<<10 {
		t.Errorf("MemAvailable = %d", got)
	}
	if parseKB(status, "MemAvailable:") != 0 || parseKB([]byte("VmHWM: lots\n"), "VmHWM:") != 0 {
		t.Error("a missing or bad field is not 0")
	}
}

// TestScaleFlags checks -scale-keys and -scale-stores.
func TestScaleFlags(t *testing.T) {
	got, err := parseScaleSizes("1M, 100k,1M,10M")
	if err != nil || len(got) != 3 || got[0] != 100_000 || got[2] != 10_000_000 {
		t.Errorf("parseScaleSizes = %v, %v", got, err)
	}
	for _, none := range []string{"", "none"} {
		if got, err := parseScaleSizes(none); err != nil || got != nil {
			t.Errorf("parseScaleSizes(%q) = %v, %v", none, got, err)
		}
	}
	for _, bad := range []string{"x", "10", "100M"} { // 100M keys need 9 digits
		if _, err := parseScaleSizes(bad); err == nil {
			t.Errorf("parseScaleSizes(%q) succeeded", bad)
		}
	}
	all := stores.All()
	def, err := scaleSpecs("", all)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range def {
		if s.IsVariant() || s.Group == "reference" {
			t.Errorf("default scale stores include %s", s.Name)
		}
	}
	if len(def) < 6 {
		t.Errorf("default scale stores: %d", len(def))
	}
	if got, err := scaleSpecs("noop,xsync,shardkv", all); err != nil || len(got) != 2 || got[0].Name != "shardkv" {
		t.Errorf("scaleSpecs = %v, %v", got, err)
	}
	if _, err := scaleSpecs("shardkv-view", all); err == nil {
		t.Error("a variant accepted")
	}
	if _, err := scaleSpecs("nope", all); err == nil {
		t.Error("an unknown store accepted")
	}
}

// TestScaleChild runs the scale section alone through real child
// processes (this test binary re-executed; see TestMain): one cell a
// (store, keys), the noop floor first, the main matrix skipped, and a
// child that fails reported as an error cell rather than ending the run.
func TestScaleChild(t *testing.T) {
	specs, err := stores.Lookup([]string{"shardkv", "freecache"})
	if err != nil {
		t.Fatal(err)
	}
	o := options{
		workloads: []string{wScale}, stores: specs, sizes: []int{1000}, scaleSizes: []int{2000, 3000}, scaleStores: specs,
		dists: []workload.Dist{workload.Zipf}, cell: 5 * time.Millisecond, procs: []int{2}, latencyDur: time.Millisecond,
		sampleEvery: 1, gcRounds: 1, out: t.TempDir(), progress: "none", format: "svg", quiet: true,
	}
	if err := run(o); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(o.out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Cells) != 0 || len(rep.Memory) != 0 || len(rep.Config.Keys) != 0 {
		t.Errorf("the main matrix ran: %d cells, %d memory rows, keys %v", len(rep.Cells), len(rep.Memory), rep.Config.Keys)
	}
	var order []string
	for _, c := range rep.Scale {
		order = append(order, c.Store+"/"+sizeLabel(c.Keys))
		if c.Status != "ok" {
			t.Errorf("%s %d: %s: %s", c.Store, c.Keys, c.Status, c.Reason)
			continue
		}
		if c.Raw.Procs != 2 || c.Raw.KeyBytes != 12 || len(c.Raw.GCCPUStore) != 3 || c.Raw.FillSets != int64(c.Keys) ||
			c.ChildSeconds <= 0 || math.IsNaN(c.HeapPerEntry) {
			t.Errorf("%s %d: %+v", c.Store, c.Keys, c.Raw)
		}
		// freecache may evict a few: its ring is 128 bytes a key, split
		// into 256 segments.
		if c.Store != noopName && (c.Held < c.Keys*99/100 || c.HeapPerEntry < 76 || c.Read90Ns <= 0 || c.Write100Ns <= 0) {
			t.Errorf("%s %d: held %d, %.0f B/entry, read90 %.0f ns, write100 %.0f ns", c.Store, c.Keys, c.Held, c.HeapPerEntry, c.Read90Ns, c.Write100Ns)
		}
		if f := c.Raw.FillFloor; f.Ops != int64(c.Keys) || f.SpinSeconds <= 0 || f.Rank <= 0 || c.Raw.FillTimedNs <= 0 ||
			c.Raw.GetFloor.Ops != c.Raw.GetUnderWriter.Gets || c.Raw.GetFloor.SpinSeconds <= 0 {
			t.Errorf("%s %d: stall floors not measured: fill %+v, get %+v", c.Store, c.Keys, f, c.Raw.GetFloor)
		}
		if c.Store == noopName && c.Held != 0 {
			t.Errorf("noop holds %d", c.Held)
		}
	}
	if want := "noop/2k shardkv/2k freecache/2k noop/3k shardkv/3k freecache/3k"; strings.Join(order, " ") != want {
		t.Errorf("cells %s, want %s", strings.Join(order, " "), want)
	}
	for _, f := range []string{"results.md", "scale.svg"} {
		if fi, err := os.Stat(filepath.Join(o.out, f)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(o.out, "throughput.svg")); err == nil {
		t.Error("throughput.svg written without a main matrix")
	}
	md, _ := os.ReadFile(filepath.Join(o.out, "results.md"))
	for _, want := range []string{"## Scale: 2k, 3k keys", "### Scale: heap bytes per entry", "| noop (floor) |", "| 3k | shardkv | ok | 3000 |", "Every child ran on: "} {
		if !strings.Contains(string(md), want) {
			t.Errorf("results.md lacks %q", want)
		}
	}

	// A child that cannot run its spec: an error cell with what it said.
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	r := &runner{o: o, rep: &Report{}}
	c := r.runChild(exe, childSpec{Store: "nope", Keys: 100, Width: 7, Procs: 1, Cell: time.Millisecond, GCRounds: 1})
	if c.Status != "error" || !strings.Contains(c.Reason, "exit status 2") || !strings.Contains(c.Reason, "unknown store") {
		t.Errorf("failed child: %+v", c)
	}

	// A machine without the memory: every cell skipped, and said so,
	// without starting a child.
	defer func(f func() uint64) { availableMemory = f }(availableMemory)
	availableMemory = func() uint64 { return 1 << 20 }
	o.out, o.scaleSizes = t.TempDir(), []int{2000}
	if err := run(o); err != nil {
		t.Fatal(err)
	}
	md, _ = os.ReadFile(filepath.Join(o.out, "results.md"))
	for _, want := range []string{"| 2k | shardkv | skipped: would not fit in memory: needs about 2 MiB (1024 B a key assumed, ×1.25), 1 MiB available |",
		"| noop (floor) | skipped |"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("results.md lacks %q", want)
		}
	}
}
