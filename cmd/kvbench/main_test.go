package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shardkv/shardkv/bench/stores"
	"github.com/shardkv/shardkv/bench/workload"
)

// TestMain lets the test binary stand in for kvbench as the scale
// section's child process: runScale re-executes os.Executable(), which in
// a test is this binary, with -child-scale first.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == childFlag {
		os.Exit(childMain(os.Args[2:]))
	}
	os.Exit(m.Run())
}

// TestRun runs a tiny matrix end to end and checks that it writes the
// table, the JSON and the charts, that every store has a row and that
// unsupported workloads are reported as n/a rather than measured.
func TestRun(t *testing.T) {
	specs, err := stores.Lookup([]string{"shardkv", "shardkv-view", "reference", "xsync"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, w := range workload.Standard(workload.Zipf) {
		names = append(names, w.Name)
	}
	scaleSpecs, err := stores.Lookup([]string{"xsync"})
	if err != nil {
		t.Fatal(err)
	}
	o := options{
		workloads:   append(names, wLatency, wScaling, wOps, wScale),
		stores:      specs,
		sizes:       []int{2000},
		scaleSizes:  []int{2000},
		scaleStores: scaleSpecs,
		dists:       []workload.Dist{workload.Zipf},
		cell:        5 * time.Millisecond,
		procs:       []int{2},
		goroutines:  []int{1, 2},
		rate:        20_000,
		latencyDur:  20 * time.Millisecond,
		sampleEvery: 4,
		gcRounds:    1,
		out:         t.TempDir(),
		progress:    "none",
		format:      "svg",
		quiet:       true,
	}
	if err := run(o); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"results.json", "results.md", "throughput.svg", "scaling.svg", "latency.svg", "memory.svg", "scale.svg"} {
		if fi, err := os.Stat(filepath.Join(o.out, f)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	b, err := os.ReadFile(filepath.Join(o.out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Machine.Cores == 0 || rep.Machine.GoVersion == "" || rep.Machine.Date == "" {
		t.Errorf("machine not recorded: %+v", rep.Machine)
	}
	status := map[string]string{}
	for _, c := range rep.Cells {
		status[c.Store+"/"+c.Workload] = c.Status
		if c.Status == "ok" && (c.Ops == 0 || c.OpsPerSec <= 0) {
			t.Errorf("%s/%s: ok without operations", c.Store, c.Workload)
		}
		if c.Status == "error" {
			t.Errorf("%s/%s: %s", c.Store, c.Workload, c.Reason)
		}
		if c.Status == "ok" && strings.HasPrefix(c.Workload, "watch-") &&
			(c.Subscribers == 0 || c.Published != c.Ops || c.EventsPerS <= 0 || c.Delivered <= 0 || c.Delivered > 1 || c.NsPerDelivered <= 0) {
			t.Errorf("%s/%s: watch figures %+v", c.Store, c.Workload, c)
		}
	}
	for cell, want := range map[string]string{
		"shardkv/ttl-churn":          "ok",
		"shardkv/watch-8":            "ok",
		"reference/watch-8":          "ok",
		"xsync/ttl-churn":            "n/a",
		"xsync/watch-1":              "n/a",
		"shardkv-view/write100":      "n/a",
		"shardkv-view/read90":        "ok",
		"xsync/get-half-expired":     "n/a",
		"reference/get-half-expired": "ok",
	} {
		if status[cell] != want {
			t.Errorf("%s: status %q, want %q", cell, status[cell], want)
		}
	}
	// -rate is set: the offered-load rows too, each with the noop floor.
	if len(rep.GetLatency) != len(specs)+1 || len(rep.Memory) != len(specs) || len(rep.Latency) != len(specs)+1 {
		t.Errorf("Get latency rows %d, offered-load rows %d (want %d each, with the noop floor), memory rows %d (want %d)",
			len(rep.GetLatency), len(rep.Latency), len(specs)+1, len(rep.Memory), len(specs))
	}
	for _, l := range rep.GetLatency {
		if l.Gets == 0 || l.Sets == 0 || l.P50 <= 0 || l.Max < l.P9999 || (l.Store != noopName && l.HitRatio != 1) {
			t.Errorf("Get latency of %s: %+v", l.Store, l)
		}
	}
	if len(rep.Scale) != 2 || rep.Scale[0].Store != noopName || rep.Scale[1].Store != "xsync" {
		t.Fatalf("scale cells: %+v", rep.Scale)
	}
	for _, c := range rep.Scale {
		if c.Status != "ok" || c.LoadBefore == "" || c.LoadAfter == "" || c.Raw == nil || c.Raw.Keys != 2000 || c.FillMax <= 0 {
			t.Errorf("scale cell %s: %+v", c.Store, c)
		}
	}
	md, _ := os.ReadFile(filepath.Join(o.out, "results.md"))
	for _, want := range []string{"| workload | store | ops/s | ns/op | allocs/op | p99 | bytes/entry | ×shardkv |", "Machine: ", "| xsync |",
		"| workload | store | delivered events/s | ns/delivered | delivered/op |",
		"### Latency: Get service time under a writer", "| noop (floor) |", "### Latency: read90 at 20.0k ops/s offered", "## Scale: 2k keys", "### Scale: fill: Set p99.99"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("results.md lacks %q", want)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int{"10k": 10_000, "1M": 1_000_000, "10m": 10_000_000, "12345": 12345} {
		if got, err := workload.ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v", in, got, err)
		}
	}
	if _, err := workload.ParseSize("x"); err == nil {
		t.Error("ParseSize(x) succeeded")
	}
}
