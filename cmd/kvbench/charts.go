package main

import (
	"fmt"
	"image/color"
	"math"
	"path/filepath"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// palette gives each store its colour in every chart.
var palette = []color.RGBA{
	{0x1f, 0x77, 0xb4, 0xff}, {0x6b, 0xae, 0xd6, 0xff}, {0x9e, 0xca, 0xe1, 0xff}, // shardkv and variants: blues
	{0xd6, 0x27, 0x28, 0xff}, {0xff, 0x98, 0x96, 0xff}, // reference: reds
	{0x2c, 0xa0, 0x2c, 0xff}, {0xff, 0x7f, 0x0e, 0xff}, {0x94, 0x67, 0xbd, 0xff}, {0x8c, 0x56, 0x4b, 0xff},
	{0xe3, 0x77, 0xc2, 0xff}, {0xbc, 0xbd, 0x22, 0xff}, {0x7f, 0x7f, 0x7f, 0xff}, {0x17, 0xbe, 0xcf, 0xff},
}

func storeColor(i int) color.Color { return palette[i%len(palette)] }

// writeCharts draws the charts of the first GOMAXPROCS value and size into
// dir, with stable names: throughput.svg, scaling.svg, latency.svg,
// memory.svg (or .png, by format). It returns the files written.
func (r *Report) writeCharts(dir, format string) ([]string, error) {
	if len(r.Config.Procs) == 0 || len(r.Config.Keys) == 0 {
		return nil, nil
	}
	procs, n := r.Config.Procs[0], r.Config.Keys[0]
	title := fmt.Sprintf("%s keys, GOMAXPROCS %d, %s", sizeLabel(n), procs, r.Machine.CPU)
	var files []string
	for _, ch := range []struct {
		name string
		draw func(string, int, int) (*plot.Plot, vg.Length, vg.Length, error)
	}{
		{"throughput", r.throughputChart},
		{"scaling", r.scalingChart},
		{"latency", r.latencyChart},
		{"memory", r.memoryChart},
	} {
		p, w, h, err := ch.draw(title, procs, n)
		if err != nil {
			return files, fmt.Errorf("%s: %w", ch.name, err)
		}
		if p == nil {
			continue
		}
		path := filepath.Join(dir, ch.name+"."+format)
		if err := p.Save(w, h, path); err != nil {
			return files, fmt.Errorf("%s: %w", ch.name, err)
		}
		files = append(files, path)
	}
	return files, nil
}

func newPlot(title, ylabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = ylabel
	p.Legend.Top = true
	p.Legend.Left = false
	p.Y.Tick.Marker = plot.DefaultTicks{}
	return p
}

// groupedBars draws, for each series (a store), one bar per category,
// sized for a chart width wide, leaving room on the right for the legend.
func groupedBars(p *plot.Plot, wide vg.Length, categories []string, series []string, value func(s, c int) float64) error {
	const legendRoom = 2.2 // categories' worth of empty space for the legend
	spacing := (wide - 2*vg.Centimeter) / vg.Length(float64(len(categories))+legendRoom)
	w := 0.8 * spacing / vg.Length(len(series))
	for si, s := range series {
		vals := make(plotter.Values, len(categories))
		for ci := range categories {
			vals[ci] = value(si, ci)
		}
		bars, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return err
		}
		bars.LineStyle.Width = 0
		bars.Color = storeColor(si)
		bars.Offset = w * vg.Length(float64(si)-float64(len(series)-1)/2)
		p.Add(bars)
		p.Legend.Add(s, bars)
	}
	p.NominalX(categories...)
	p.X.Min = -0.6
	p.X.Max = float64(len(categories)) - 0.4 + legendRoom
	return nil
}

// throughputChart: ops/s of the main mixes, one bar a store.
func (r *Report) throughputChart(title string, procs, n int) (*plot.Plot, vg.Length, vg.Length, error) {
	ix := r.index()
	var cats []string
	for _, wl := range r.workloadNames() {
		if slices.Contains(summaryWorkloads, wl) || wl == "read90-uniform" || wl == "get-half-expired" {
			cats = append(cats, wl)
		}
	}
	names := r.storeNames()
	if len(cats) == 0 {
		return nil, 0, 0, nil
	}
	p := newPlot("Throughput, "+title, "million ops/s (higher is better)")
	wide := 26 * vg.Centimeter
	err := groupedBars(p, wide, cats, names, func(s, c int) float64 {
		if cell, ok := ix.cell(Key{procs, n, names[s]}, cats[c]); ok && cell.Status == "ok" {
			return cell.OpsPerSec / 1e6
		}
		return 0
	})
	return p, wide, 13 * vg.Centimeter, err
}

// scalingChart: read90 ops/s against goroutines, one line a store.
func (r *Report) scalingChart(title string, procs, n int) (*plot.Plot, vg.Length, vg.Length, error) {
	if len(r.scalingGoroutines(procs, n)) == 0 {
		return nil, 0, 0, nil
	}
	p := newPlot("read90 throughput against goroutines, "+title, "million ops/s")
	p.X.Label.Text = "goroutines"
	p.X.Scale = plot.LogScale{}
	gs := r.scalingGoroutines(procs, n)
	var ticks []plot.Tick
	for _, g := range gs {
		ticks = append(ticks, plot.Tick{Value: float64(g), Label: fmt.Sprint(g)})
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.X.Min = float64(gs[0]) / 1.2
	p.X.Max = float64(gs[len(gs)-1]) * 4 // room for the legend
	p.Y.Min = 0
	for si, name := range r.storeNames() {
		var pts plotter.XYs
		for _, c := range r.Scaling {
			if c.Key == (Key{procs, n, name}) && c.Status == "ok" {
				pts = append(pts, plotter.XY{X: float64(c.Goroutines), Y: c.OpsPerSec / 1e6})
			}
		}
		if len(pts) == 0 {
			continue
		}
		slices.SortFunc(pts, func(a, b plotter.XY) int { return int(a.X - b.X) })
		line, points, err := plotter.NewLinePoints(pts)
		if err != nil {
			return nil, 0, 0, err
		}
		line.Color = storeColor(si)
		points.Color = storeColor(si)
		points.Shape = draw.CircleGlyph{}
		p.Add(line, points)
		p.Legend.Add(name, line, points)
	}
	return p, 20 * vg.Centimeter, 12 * vg.Centimeter, nil
}

// latencyChart: read90 percentiles at the fixed load, log scale, one line
// a store.
func (r *Report) latencyChart(title string, procs, n int) (*plot.Plot, vg.Length, vg.Length, error) {
	if !r.hasLatency(procs, n) {
		return nil, 0, 0, nil
	}
	p := newPlot(fmt.Sprintf("read90 latency at %s ops/s offered, %s", fmtRate(r.Config.Rate), title), "latency (log scale; lower is better)")
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = durationTicks{}
	p.NominalX("p50", "p99", "p99.9", "max")
	p.X.Min = -0.3
	p.X.Max = 5.2 // room for the legend
	for si, name := range r.storeNames() {
		for _, l := range r.Latency {
			if l.Key != (Key{procs, n, name}) {
				continue
			}
			pts := plotter.XYs{{X: 0, Y: l.P50}, {X: 1, Y: l.P99}, {X: 2, Y: l.P999}, {X: 3, Y: l.Max}}
			for i := range pts {
				pts[i].Y = math.Max(pts[i].Y, 1)
			}
			line, points, err := plotter.NewLinePoints(pts)
			if err != nil {
				return nil, 0, 0, err
			}
			line.Color = storeColor(si)
			points.Color = storeColor(si)
			points.Shape = draw.CircleGlyph{}
			p.Add(line, points)
			p.Legend.Add(name, line, points)
		}
	}
	return p, 20 * vg.Centimeter, 12 * vg.Centimeter, nil
}

// durationTicks marks powers of ten of nanoseconds as 100 ns, 1 µs, ...
type durationTicks struct{}

func (durationTicks) Ticks(lo, hi float64) []plot.Tick {
	var ticks []plot.Tick
	for v := math.Pow(10, math.Floor(math.Log10(math.Max(lo, 1)))); v <= hi*1.0001; v *= 10 {
		ticks = append(ticks, plot.Tick{Value: v, Label: strings.ReplaceAll(fmtNs(v), ".0 ", " ")})
	}
	return ticks
}

// memoryChart: heap and GC-scannable bytes per entry, one pair of bars a
// store.
func (r *Report) memoryChart(title string, procs, n int) (*plot.Plot, vg.Length, vg.Length, error) {
	var names []string
	var heap, scan plotter.Values
	for _, m := range r.Memory {
		if m.Procs == procs && m.Keys == n && m.SharedWith == "" {
			names = append(names, m.Store)
			heap = append(heap, m.HeapPerEntry)
			scan = append(scan, m.ScanPerEntry)
		}
	}
	if len(names) == 0 {
		return nil, 0, 0, nil
	}
	p := newPlot("Bytes per entry, "+title, "bytes per entry (lower is better)")
	w := vg.Points(14)
	hb, err := plotter.NewBarChart(heap, w)
	if err != nil {
		return nil, 0, 0, err
	}
	hb.Color = color.RGBA{0x1f, 0x77, 0xb4, 0xff}
	hb.LineStyle.Width = 0
	hb.Offset = -w / 2
	sb, err := plotter.NewBarChart(scan, w)
	if err != nil {
		return nil, 0, 0, err
	}
	sb.Color = color.RGBA{0xff, 0x7f, 0x0e, 0xff}
	sb.LineStyle.Width = 0
	sb.Offset = w / 2
	p.Add(hb, sb)
	p.Legend.Add("live heap", hb)
	p.Legend.Add("GC-scannable heap", sb)
	p.NominalX(names...)
	return p, vg.Length(len(names))*18*vg.Millimeter + 6*vg.Centimeter, 11 * vg.Centimeter, nil
}
