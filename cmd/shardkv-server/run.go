package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/shardkv/shardkv"
	"github.com/shardkv/shardkv/server"
)

// buildVersion, when set with -ldflags "-X main.buildVersion=1.2.3",
// is the version reported; otherwise the module's, or 0.0.0-dev.
var buildVersion string

func version() string {
	if buildVersion != "" {
		return buildVersion
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return strings.TrimPrefix(bi.Main.Version, "v")
	}
	return "0.0.0-dev"
}

// run is the whole command: it parses args, serves until ctx is done, then
// shuts down gracefully and returns nil. It logs to stdout (as redis-server
// does) and writes the reason it could not start, if any, to stderr as well
// as returning it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	defer func() {
		if err != nil {
			fmt.Fprintf(stderr, "shardkv-server: %v\n", err)
		}
	}()
	cfg, err := parseArgs(args)
	if err != nil {
		return err
	}
	if cfg.help {
		writeUsage(stdout, "shardkv-server")
		return nil
	}
	if cfg.version {
		fmt.Fprintf(stdout, "shardkv-server v=%s go=%s bits=%d\n", version(), runtime.Version(), strconv.IntSize)
		return nil
	}
	log := newLogger(stdout, cfg)
	log.Info("shardkv-server starting", "version", version(), "go", runtime.Version(), "pid", os.Getpid(), "config_file", cfg.file)

	store, global := shardkv.Global()
	owned := !global // a store the command made, and so closes
	clustered := len(cfg.etcdEndpoints) > 0
	if global && clustered {
		return &errUsage{"--etcd-endpoints: the store published by shardkv.SetGlobal is served as it is; it cannot be put on etcd"}
	}
	if clustered {
		var closeStore func()
		if store, closeStore, err = openCluster(log, cfg); err != nil {
			return err
		}
		defer closeStore()
	} else if global {
		var moot []string
		for _, name := range []string{"max-keys", "max-value-size", "strict-keys"} {
			if cfg.set[name] {
				moot = append(moot, name)
			}
		}
		if len(moot) > 0 {
			log.Warn("serving the store published by shardkv.SetGlobal: these options do not apply to it", "ignored", moot)
		} else {
			log.Info("serving the store published by shardkv.SetGlobal")
		}
	} else {
		store = shardkv.New(storeOptions(cfg)...)
		defer store.Close()
	}
	if int64(store.MaxValueSize()) > cfg.protoMaxBulkLen && owned {
		log.Warn("max-value-size is over proto-max-bulk-len: no client can send a value that long", "max_value_size", formatMemory(int64(store.MaxValueSize())), "proto_max_bulk_len", formatMemory(cfg.protoMaxBulkLen))
	}

	lns, err := listen(log, cfg)
	if err != nil {
		return err
	}
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()

	var (
		obs       *metrics
		httpSrv   *http.Server
		httpErr   = make(chan error, 1)
		metricsLn net.Listener
	)
	if cfg.metricsAddr != "" {
		metricsLn, err = net.Listen("tcp", cfg.metricsAddr)
		if err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
		obs = newMetrics(store, version())
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(obs.reg, promhttp.HandlerOpts{Registry: obs.reg}))
		httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { httpErr <- httpSrv.Serve(metricsLn) }()
	}

	scfg := server.Config{
		Password:             cfg.requirepass,
		DisableProtectedMode: !cfg.protectedMode,
		MaxClients:           cfg.maxClients,
		EventLoops:           cfg.eventLoops,
		MaxRequestBytes:      cfg.protoMaxBulkLen,
		IdleTimeout:          cfg.timeout,
		NotifyKeyspaceEvents: cfg.notifyKeyspaceEvents,
		ClusterTimeout:       cfg.etcdTimeout,
		Logger:               log,
		// Version stays server.DefaultVersion: it is the Redis version INFO
		// and HELLO report, from which clients judge what the server speaks.
	}
	if obs != nil {
		scfg.Observer = obs
	}
	srv := server.New(store, scfg)

	maxKeys := "none"
	if n := store.MaxKeys(); n < 1<<62 {
		maxKeys = strconv.Itoa(n)
	}
	log.Info("limits",
		"maxclients", cfg.maxClients,
		"event_loops", srv.EventLoops(),
		"max_keys", maxKeys,
		"max_value_size", formatMemory(int64(store.MaxValueSize())),
		"proto_max_bulk_len", formatMemory(cfg.protoMaxBulkLen),
		"timeout", cfg.timeout.String(),
		"protected_mode", yesNo(cfg.protectedMode),
		"requirepass", yesNo(cfg.requirepass != ""),
		"strict_keys", yesNo(cfg.strictKeys),
		"notify_keyspace_events", cfg.notifyKeyspaceEvents,
	)
	if cfg.requirepass == "" && !cfg.protectedMode {
		for _, ln := range lns {
			if ta, ok := ln.Addr().(*net.TCPAddr); ok && !ta.IP.IsLoopback() {
				log.Warn("no password and protected mode off: anyone who can reach this address can use the store", "addr", ln.Addr().String())
			}
		}
	}

	serveErr := make(chan error, len(lns))
	for _, ln := range lns {
		go func() { serveErr <- srv.Serve(ln) }()
	}
	// The metrics line comes first: "Ready to accept connections" is the
	// last line of start-up, which scripts and tests wait for.
	if metricsLn != nil {
		log.Info("Serving Prometheus metrics", "url", "http://"+metricsLn.Addr().String()+"/metrics")
	}
	for _, ln := range lns {
		log.Info("Ready to accept connections tcp", "addr", ln.Addr().String())
	}

	var failure error
	pending := len(lns)
	select {
	case <-ctx.Done():
		log.Info("Received shutdown request, shutting down", "cause", context.Cause(ctx).Error(), "timeout", cfg.shutdownTimeout.String())
	case e := <-serveErr:
		pending--
		if !errors.Is(e, server.ErrServerClosed) {
			failure = fmt.Errorf("serve: %w", e)
			log.Error("serving failed, shutting down", "err", e)
		}
	case e := <-httpErr:
		failure = fmt.Errorf("metrics: %w", e)
		log.Error("serving metrics failed, shutting down", "err", e)
		httpSrv = nil
	}

	sctx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("clients still busy at the shutdown timeout; closing their connections", "err", err)
		srv.Close()
	}
	for ; pending > 0; pending-- {
		if e := <-serveErr; !errors.Is(e, server.ErrServerClosed) && failure == nil {
			failure = fmt.Errorf("serve: %w", e)
		}
	}
	if httpSrv != nil {
		if err := httpSrv.Shutdown(sctx); err != nil {
			httpSrv.Close()
		}
		<-httpErr
	}
	if failure != nil {
		return failure
	}
	log.Info("shardkv-server is now ready to exit, bye bye...")
	return nil
}

// storeOptions are the options of the store the command builds.
func storeOptions(cfg config) []shardkv.Option {
	opts := append([]shardkv.Option(nil), server.StoreOptions()...)
	opts = append(opts, shardkv.WithMaxValueSize(int(cfg.maxValueSize)))
	if cfg.maxKeys > 0 {
		opts = append(opts, shardkv.WithMaxKeys(cfg.maxKeys))
	}
	if cfg.strictKeys {
		opts = append(opts, shardkv.WithKeyValidator(shardkv.ValidateKey))
	}
	return opts
}

func newLogger(w io.Writer, cfg config) *slog.Logger {
	hopts := &slog.HandlerOptions{
		Level: cfg.logLevel,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			// Name the in-between level as redis.conf does.
			if a.Key == slog.LevelKey && len(groups) == 0 {
				if l, ok := a.Value.Any().(slog.Level); ok && l == slog.LevelDebug+2 {
					a.Value = slog.StringValue("VERBOSE")
				}
			}
			return a
		},
	}
	if cfg.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, hopts))
	}
	return slog.New(slog.NewTextHandler(w, hopts))
}

// listen opens a listener on every bind address. An address written with
// a leading "-" is optional: failing to listen on it is logged, not fatal.
func listen(log *slog.Logger, cfg config) ([]net.Listener, error) {
	var lns []net.Listener
	fail := func(err error) ([]net.Listener, error) {
		for _, ln := range lns {
			ln.Close()
		}
		return nil, err
	}
	for _, b := range cfg.bind {
		host, optional := strings.CutPrefix(b, "-")
		switch host {
		case "*":
			host = "0.0.0.0"
		case "::*":
			host = "::"
		}
		network := "tcp"
		if ip := net.ParseIP(host); ip != nil {
			network = "tcp6"
			if ip.To4() != nil {
				network = "tcp4"
			}
		}
		addr := net.JoinHostPort(host, strconv.Itoa(cfg.port))
		ln, err := net.Listen(network, addr)
		if err != nil {
			if optional {
				log.Warn("could not listen on an optional bind address; skipping it", "addr", addr, "err", err)
				continue
			}
			return fail(fmt.Errorf("could not create server TCP listening socket %s: %w", addr, err))
		}
		lns = append(lns, ln)
	}
	if len(lns) == 0 {
		return fail(fmt.Errorf("could not listen on any bind address (%s)", strings.Join(cfg.bind, " ")))
	}
	return lns, nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
