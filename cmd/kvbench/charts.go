package main

import (
	"fmt"
	"image/color"
	"math"
	"os"
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

// chart is a figure: one or more panels in a grid and one legend, drawn
// to the right of the panels, outside every plot area, so that it never
// covers a bar or a line.
type chart struct {
	panels []*plot.Plot
	cols   int
	legend plot.Legend
	w, h   vg.Length
}

// newLegend is a legend for the strip right of the panels.
func newLegend() plot.Legend {
	l := plot.NewLegend()
	l.Top, l.Left = true, true
	l.Padding = vg.Points(2)
	return l
}

// save writes the chart to path in format (svg or png).
func (c chart) save(path, format string) error {
	cv, err := draw.NewFormattedCanvas(c.w, c.h, format)
	if err != nil {
		return err
	}
	dc := draw.New(cv)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	pad := vg.Points(10)
	legendW := vg.Length(0)
	if r := c.legend.Rectangle(dc); r.Size().X > 0 {
		legendW = r.Size().X + 2*pad
	}
	area := draw.Crop(dc, 0, -legendW, 0, 0)
	cols := max(c.cols, 1)
	rows := (len(c.panels) + cols - 1) / cols
	tiles := draw.Tiles{Rows: rows, Cols: cols, PadX: pad, PadY: pad, PadTop: vg.Points(4), PadBottom: vg.Points(4), PadLeft: vg.Points(4)}
	for i, p := range c.panels {
		p.Draw(tiles.At(area, i%cols, i/cols))
	}
	if legendW > 0 {
		// Top-aligned, below the (first row's) title.
		c.legend.Draw(draw.Crop(dc, c.w-legendW+pad, -pad, 0, -vg.Points(30)))
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := cv.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeCharts draws the charts of the first GOMAXPROCS value and size into
// dir, with stable names: throughput.svg, scaling.svg, latency.svg,
// memory.svg and, with a scale section, scale.svg (or .png, by format). It
// returns the files written.
func (r *Report) writeCharts(dir, format string) ([]string, error) {
	type drawer struct {
		name string
		draw func() (*chart, error)
	}
	var charts []drawer
	if len(r.Config.Procs) > 0 && len(r.Config.Keys) > 0 {
		procs, n := r.Config.Procs[0], r.Config.Keys[0]
		title := fmt.Sprintf("%s keys, GOMAXPROCS %d, %s", sizeLabel(n), procs, r.Machine.CPU)
		for _, ch := range []struct {
			name string
			draw func(string, int, int) (*chart, error)
		}{
			{"throughput", r.throughputChart},
			{"scaling", r.scalingChart},
			{"latency", r.latencyChart},
			{"memory", r.memoryChart},
		} {
			charts = append(charts, drawer{ch.name, func() (*chart, error) { return ch.draw(title, procs, n) }})
		}
	}
	charts = append(charts, drawer{"scale", r.scaleChart})
	var files []string
	for _, ch := range charts {
		c, err := ch.draw()
		if err != nil {
			return files, fmt.Errorf("%s: %w", ch.name, err)
		}
		if c == nil {
			continue
		}
		path := filepath.Join(dir, ch.name+"."+format)
		if err := c.save(path, format); err != nil {
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
	p.Y.Tick.Marker = plot.DefaultTicks{}
	return p
}

// groupedBars draws, for each series (a store), one bar per category,
// sized for a plot area wide, and adds the series to leg.
func groupedBars(p *plot.Plot, leg *plot.Legend, wide vg.Length, categories []string, series []string, value func(s, c int) float64) error {
	spacing := (wide - 2*vg.Centimeter) / vg.Length(len(categories))
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
		leg.Add(s, bars)
	}
	p.NominalX(categories...)
	p.X.Min = -0.6
	p.X.Max = float64(len(categories)) - 0.4
	return nil
}

// legendWidth is room enough for the longest store name in a legend.
const legendWidth = 4 * vg.Centimeter

// throughputChart: ops/s of the main mixes, one bar a store.
func (r *Report) throughputChart(title string, procs, n int) (*chart, error) {
	ix := r.index()
	var cats []string
	for _, wl := range r.workloadNames() {
		if slices.Contains(summaryWorkloads, wl) || wl == "read90-uniform" || wl == "get-half-expired" {
			cats = append(cats, wl)
		}
	}
	names := r.storeNames()
	if len(cats) == 0 {
		return nil, nil
	}
	p := newPlot("Throughput, "+title, "million ops/s (higher is better)")
	wide := 26 * vg.Centimeter
	leg := newLegend()
	err := groupedBars(p, &leg, wide, cats, names, func(s, c int) float64 {
		if cell, ok := ix.cell(Key{procs, n, names[s]}, cats[c]); ok && cell.Status == "ok" {
			return cell.OpsPerSec / 1e6
		}
		return 0
	})
	return &chart{panels: []*plot.Plot{p}, legend: leg, w: wide + legendWidth, h: 13 * vg.Centimeter}, err
}

// line adds one series to p and its legend entry to leg: points joined by
// a line, in colour c, dashed for a floor.
func line(p *plot.Plot, leg *plot.Legend, name string, pts plotter.XYs, c color.Color, dashed bool) error {
	l, points, err := plotter.NewLinePoints(pts)
	if err != nil {
		return err
	}
	l.Color = c
	points.Color = c
	points.Shape = draw.CircleGlyph{}
	if dashed {
		l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		points.Shape = draw.BoxGlyph{}
	}
	p.Add(l, points)
	if leg != nil {
		leg.Add(name, l, points)
	}
	return nil
}

// scalingChart: read90 ops/s against goroutines, one line a store.
func (r *Report) scalingChart(title string, procs, n int) (*chart, error) {
	if len(r.scalingGoroutines(procs, n)) == 0 {
		return nil, nil
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
	p.X.Max = float64(gs[len(gs)-1]) * 1.2
	p.Y.Min = 0
	leg := newLegend()
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
		if err := line(p, &leg, name, pts, storeColor(si), false); err != nil {
			return nil, err
		}
	}
	return &chart{panels: []*plot.Plot{p}, legend: leg, w: 20*vg.Centimeter + legendWidth, h: 12 * vg.Centimeter}, nil
}

// floorColor draws the noop floor.
var floorColor = color.RGBA{0x22, 0x22, 0x22, 0xff}

// rowColor is a latency row's colour and legend label: the store's colour,
// or the floor's.
func rowColor(names []string, name string) (color.Color, string) {
	if name == noopName {
		return floorColor, "noop (floor)"
	}
	return storeColor(max(slices.Index(names, name), 0)), name
}

// latencyChart: Get service-time percentiles under a writer, log scale,
// one line a store and the noop floor dashed; for a saved run without
// them, read90's offered-load percentiles.
func (r *Report) latencyChart(title string, procs, n int) (*chart, error) {
	if !r.hasGetLatency(procs, n) {
		return r.offeredLatencyChart(title, procs, n)
	}
	p := newPlot("Get service time under a writer, "+title, "latency (log scale; lower is better)")
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = durationTicks{}
	p.NominalX(percentileNames...)
	p.X.Min = -0.3
	p.X.Max = float64(len(percentileNames)) - 0.7
	leg := newLegend()
	names := r.storeNames()
	for _, name := range r.latencyRows() {
		for _, l := range r.GetLatency {
			if l.Key != (Key{procs, n, name}) {
				continue
			}
			var pts plotter.XYs
			for i, v := range l.percentiles() {
				pts = append(pts, plotter.XY{X: float64(i), Y: math.Max(v, 1)})
			}
			c, label := rowColor(names, name)
			if err := line(p, &leg, label, pts, c, name == noopName); err != nil {
				return nil, err
			}
		}
	}
	return &chart{panels: []*plot.Plot{p}, legend: leg, w: 20*vg.Centimeter + legendWidth, h: 12 * vg.Centimeter}, nil
}

// offeredLatencyChart: read90 percentiles at the fixed load.
func (r *Report) offeredLatencyChart(title string, procs, n int) (*chart, error) {
	if !r.hasLatency(procs, n) {
		return nil, nil
	}
	p := newPlot(fmt.Sprintf("read90 latency at %s ops/s offered, %s", fmtRate(r.Config.Rate), title), "latency (log scale; lower is better)")
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = durationTicks{}
	p.NominalX("p50", "p99", "p99.9", "max")
	p.X.Min = -0.3
	p.X.Max = 3.3
	leg := newLegend()
	names := r.storeNames()
	for _, name := range r.latencyRows() {
		for _, l := range r.Latency {
			if l.Key != (Key{procs, n, name}) {
				continue
			}
			pts := plotter.XYs{{X: 0, Y: l.P50}, {X: 1, Y: l.P99}, {X: 2, Y: l.P999}, {X: 3, Y: l.Max}}
			for i := range pts {
				pts[i].Y = math.Max(pts[i].Y, 1)
			}
			c, label := rowColor(names, name)
			if err := line(p, &leg, label, pts, c, name == noopName); err != nil {
				return nil, err
			}
		}
	}
	return &chart{panels: []*plot.Plot{p}, legend: leg, w: 20*vg.Centimeter + legendWidth, h: 12 * vg.Centimeter}, nil
}

// durationTicks marks powers of ten of nanoseconds as 100 ns, 1 µs, ...;
// 2 and 5 times them too where the axis spans less than three decades.
type durationTicks struct{}

func (durationTicks) Ticks(lo, hi float64) []plot.Tick {
	lo = math.Max(lo, 1)
	steps := []float64{1}
	if hi/lo < 1000 {
		steps = []float64{1, 2, 5}
	}
	var ticks []plot.Tick
	for v := math.Pow(10, math.Floor(math.Log10(lo))); v <= hi*1.0001; v *= 10 {
		for _, m := range steps {
			if t := v * m; t >= lo*0.9999 && t <= hi*1.0001 {
				label := strings.ReplaceAll(strings.ReplaceAll(fmtNs(t), ".00 ", " "), ".0 ", " ")
				ticks = append(ticks, plot.Tick{Value: t, Label: label})
			}
		}
	}
	return ticks
}

// memoryChart: heap and GC-scannable bytes per entry, one pair of bars a
// store.
func (r *Report) memoryChart(title string, procs, n int) (*chart, error) {
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
		return nil, nil
	}
	p := newPlot("Bytes per entry, "+title, "bytes per entry (lower is better)")
	w := vg.Points(14)
	hb, err := plotter.NewBarChart(heap, w)
	if err != nil {
		return nil, err
	}
	hb.Color = color.RGBA{0x1f, 0x77, 0xb4, 0xff}
	hb.LineStyle.Width = 0
	hb.Offset = -w / 2
	sb, err := plotter.NewBarChart(scan, w)
	if err != nil {
		return nil, err
	}
	sb.Color = color.RGBA{0xff, 0x7f, 0x0e, 0xff}
	sb.LineStyle.Width = 0
	sb.Offset = w / 2
	p.Add(hb, sb)
	leg := newLegend()
	leg.Add("live heap", hb)
	leg.Add("GC-scannable heap", sb)
	p.NominalX(names...)
	p.X.Min, p.X.Max = -0.6, float64(len(names))-0.4
	return &chart{panels: []*plot.Plot{p}, legend: leg, w: vg.Length(len(names))*18*vg.Millimeter + 3*vg.Centimeter + legendWidth, h: 11 * vg.Centimeter}, nil
}

// scaleChart: each scale metric against the key count (log x), one panel
// a metric, one line a store, the noop floor dashed.
func (r *Report) scaleChart() (*chart, error) {
	keys := r.scaleKeys()
	if len(r.Scale) == 0 || len(keys) == 0 {
		return nil, nil
	}
	names := r.storeNames()
	rows := r.scaleRows()
	colorOf := func(name string) color.Color {
		if name == noopName {
			return floorColor
		}
		if i := slices.Index(names, name); i >= 0 {
			return storeColor(i)
		}
		return storeColor(len(names) + slices.Index(rows, name))
	}
	leg := newLegend()
	named := map[string]bool{}
	var panels []*plot.Plot
	for _, m := range scaleMetrics {
		p := newPlot(m.title, m.unit)
		p.Title.TextStyle.Font.Size = vg.Points(11)
		p.X.Label.Text = "keys (log scale)"
		p.X.Scale = plot.LogScale{}
		var ticks []plot.Tick
		for _, n := range keys {
			ticks = append(ticks, plot.Tick{Value: float64(n), Label: sizeLabel(n)})
		}
		p.X.Tick.Marker = plot.ConstantTicks(ticks)
		p.X.Min, p.X.Max = float64(keys[0])/1.5, float64(keys[len(keys)-1])*1.5
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, name := range rows {
			if m.noFloorRow && name == noopName {
				continue
			}
			var pts plotter.XYs
			for _, n := range keys {
				c, ok := r.scaleCell(name, n)
				if !ok || c.Status != "ok" {
					continue
				}
				v, ok := m.value(c)
				if !ok || (m.logY && v <= 0) {
					continue
				}
				pts = append(pts, plotter.XY{X: float64(n), Y: v})
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
			if len(pts) == 0 {
				continue
			}
			var l *plot.Legend
			if !named[name] { // the first panel a row is drawn in names it
				named[name], l = true, &leg
			}
			label := name
			if name == noopName {
				label = "noop (floor)"
			}
			if err := line(p, l, label, pts, colorOf(name), name == noopName); err != nil {
				return nil, err
			}
		}
		switch {
		case m.logY && hi > 0:
			p.Y.Scale = plot.LogScale{}
			p.Y.Min, p.Y.Max = lo/1.5, hi*1.5
			if m.ns {
				p.Y.Tick.Marker = durationTicks{}
			}
		case hi > 0:
			p.Y.Min, p.Y.Max = 0, hi*1.1
		}
		panels = append(panels, p)
	}
	return &chart{panels: panels, cols: 3, legend: leg, w: 36*vg.Centimeter + legendWidth, h: 22 * vg.Centimeter}, nil
}
