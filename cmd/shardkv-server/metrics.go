package main

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/shardkv/shardkv"
)

// maxCommandLabels bounds the distinct values of the cmd label: a client
// can send any command name, and each new one would otherwise be a new
// series. Names past the bound, and absurd ones, are counted as "other".
const maxCommandLabels = 256

// durationBuckets spans what a command served from memory takes: from a
// microsecond to a quarter second.
var durationBuckets = []float64{
	1e-6, 2.5e-6, 5e-6, 10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6,
	1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3,
}

// metrics is the server.Observer that feeds Prometheus. It keeps its own
// registry, so embedding the command never touches the default one.
type metrics struct {
	reg *prometheus.Registry

	commands  *prometheus.CounterVec
	durations *prometheus.HistogramVec
	errors    *prometheus.CounterVec
	clients   prometheus.Gauge
	rejected  *prometheus.CounterVec

	byName sync.Map // command name as the server reports it → *commandMetrics
	labels atomic.Int64
}

// commandMetrics are one cmd label's series, resolved once.
type commandMetrics struct {
	count    prometheus.Counter
	duration prometheus.Observer
	errors   prometheus.Counter
}

func newMetrics(store *shardkv.Store, version string) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shardkv_commands_total",
			Help: "Commands processed, by command name (lower case).",
		}, []string{"cmd"}),
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "shardkv_command_duration_seconds",
			Help:    "Time to execute a command, by command name.",
			Buckets: durationBuckets,
		}, []string{"cmd"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shardkv_command_errors_total",
			Help: "Commands answered with an error reply, by command name.",
		}, []string{"cmd"}),
		clients: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "shardkv_connected_clients",
			Help: "Clients connected now.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shardkv_rejected_connections_total",
			Help: "Connections refused, by reason (maxclients, protected-mode).",
		}, []string{"reason"}),
	}
	for _, reason := range []string{"maxclients", "protected-mode"} {
		m.rejected.WithLabelValues(reason)
	}
	if !store.IsClustered() {
		// In cluster mode the keys are the backend's: counting them would
		// read the whole key list from etcd at every scrape.
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "shardkv_keys",
			Help: "Entries the store holds, counted as its key quota counts them (expired ones not yet reclaimed included).",
		}, func() float64 { return float64(store.Len()) }))
	}
	m.reg.MustRegister(
		m.commands, m.durations, m.errors, m.clients, m.rejected,
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "shardkv_expired_keys_total",
			Help: "Expired entries the store has reclaimed.",
		}, func() float64 { return float64(store.Stats().Expired) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "shardkv_build_info",
			Help:        "Always 1; the version label is shardkv-server's.",
			ConstLabels: prometheus.Labels{"version": version},
		}, func() float64 { return 1 }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Command records one command: its count, duration and, if failed, an
// error.
func (m *metrics) Command(name string, d time.Duration, failed bool) {
	cm := m.command(name)
	cm.count.Inc()
	cm.duration.Observe(d.Seconds())
	if failed {
		cm.errors.Inc()
	}
}

func (m *metrics) command(name string) *commandMetrics {
	if v, ok := m.byName.Load(name); ok {
		return v.(*commandMetrics)
	}
	label := strings.ToLower(name)
	if len(label) > 32 || strings.IndexFunc(label, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '|' || r == '.')
	}) >= 0 {
		return m.series("other") // not cached: the cache must stay bounded too
	}
	if m.labels.Add(1) > maxCommandLabels {
		m.labels.Add(-1)
		return m.series("other")
	}
	v, loaded := m.byName.LoadOrStore(name, m.series(label))
	if loaded {
		m.labels.Add(-1)
	}
	return v.(*commandMetrics)
}

func (m *metrics) series(label string) *commandMetrics {
	return &commandMetrics{
		count:    m.commands.WithLabelValues(label),
		duration: m.durations.WithLabelValues(label),
		errors:   m.errors.WithLabelValues(label),
	}
}

// Connected counts a client in.
func (m *metrics) Connected() { m.clients.Inc() }

// Disconnected counts a client out.
func (m *metrics) Disconnected() { m.clients.Dec() }

// Rejected counts a refused connection under its reason.
func (m *metrics) Rejected(reason string) { m.rejected.WithLabelValues(reason).Inc() }
