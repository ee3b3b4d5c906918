package main

import (
	"fmt"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/shardkv/shardkv"
	"github.com/shardkv/shardkv/server"
)

var _ server.Observer = (*metrics)(nil)

// gather returns every sample of the registry as "name{label=value,...}" →
// value (a histogram's: its count).
func gather(t *testing.T, m *metrics) map[string]float64 {
	t.Helper()
	families, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, s := range f.GetMetric() {
			key := f.GetName()
			for i, l := range s.GetLabel() {
				sep := ","
				if i == 0 {
					sep = "{"
				}
				key += sep + l.GetName() + "=" + l.GetValue()
			}
			if len(s.GetLabel()) > 0 {
				key += "}"
			}
			out[key] = value(s)
		}
	}
	return out
}

func value(s *dto.Metric) float64 {
	switch {
	case s.Counter != nil:
		return s.Counter.GetValue()
	case s.Gauge != nil:
		return s.Gauge.GetValue()
	case s.Histogram != nil:
		return float64(s.Histogram.GetSampleCount())
	case s.Untyped != nil:
		return s.Untyped.GetValue()
	}
	return -1
}

func TestMetricsObserver(t *testing.T) {
	store := shardkv.New()
	defer store.Close()
	m := newMetrics(store, "1.2.3")

	m.Command("GET", 3*time.Microsecond, false)
	m.Command("get", 2*time.Millisecond, true)
	m.Command("SET", time.Microsecond, false)
	m.Connected()
	m.Connected()
	m.Disconnected()
	m.Rejected("maxclients")
	m.Rejected("protected-mode")
	m.Rejected("protected-mode")
	if err := store.SetString("a", "1"); err != nil {
		t.Fatal(err)
	}
	if err := store.SetWithTTL("b", []byte("2"), time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	store.CleanExpired()

	got := gather(t, m)
	for series, want := range map[string]float64{
		"shardkv_commands_total{cmd=get}":                           2,
		"shardkv_commands_total{cmd=set}":                           1,
		"shardkv_command_errors_total{cmd=get}":                     1,
		"shardkv_command_duration_seconds{cmd=get}":                 2,
		"shardkv_connected_clients":                                 1,
		"shardkv_rejected_connections_total{reason=maxclients}":     1,
		"shardkv_rejected_connections_total{reason=protected-mode}": 2,
		"shardkv_keys":                      1,
		"shardkv_expired_keys_total":        1,
		"shardkv_build_info{version=1.2.3}": 1,
	} {
		if v, ok := got[series]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", series, v, ok, want)
		}
	}
	if _, ok := got["go_goroutines"]; !ok {
		t.Error("no Go runtime metrics")
	}
	// A command seen has its error series from the start, at 0, so that
	// a rate over it is defined.
	if v, ok := got["shardkv_command_errors_total{cmd=set}"]; !ok || v != 0 {
		t.Errorf("SET errors = %v (present %v), want 0", v, ok)
	}

	// Histogram buckets: 3 µs falls in le=5e-06, 2 ms in le=2.5e-3.
	families, _ := m.reg.Gather()
	for _, f := range families {
		if f.GetName() != "shardkv_command_duration_seconds" {
			continue
		}
		for _, s := range f.GetMetric() {
			if s.GetLabel()[0].GetValue() != "get" {
				continue
			}
			for _, b := range s.GetHistogram().GetBucket() {
				want := uint64(0)
				switch {
				case b.GetUpperBound() >= 2.5e-3:
					want = 2
				case b.GetUpperBound() >= 5e-6:
					want = 1
				}
				if b.GetCumulativeCount() != want {
					t.Errorf("get le=%g: %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), want)
				}
			}
		}
	}
}

func TestMetricsBoundCommandLabels(t *testing.T) {
	store := shardkv.New()
	defer store.Close()
	m := newMetrics(store, "x")
	for i := range 2 * maxCommandLabels {
		m.Command(fmt.Sprint("cmd", i), time.Microsecond, false)
	}
	m.Command("no spaces please", time.Microsecond, false)
	m.Command("averyveryveryveryveryverylongcommandname", time.Microsecond, false)
	series := 0
	for k := range gather(t, m) {
		if len(k) > len("shardkv_commands_total{") && k[:len("shardkv_commands_total{")] == "shardkv_commands_total{" {
			series++
		}
	}
	if series > maxCommandLabels+1 {
		t.Errorf("%d cmd series, want at most %d", series, maxCommandLabels+1)
	}
	if v := gather(t, m)["shardkv_commands_total{cmd=other}"]; v != float64(maxCommandLabels+2) {
		t.Errorf("other = %v, want %d", v, maxCommandLabels+2)
	}
}
