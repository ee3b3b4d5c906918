// Command shardkv-server serves a shardkv store over the Redis protocol
// (RESP2 and RESP3), so that redis-cli, redis-benchmark and Redis client
// libraries can use it.
//
//	shardkv-server [/path/to/shardkv.conf] [--port 6379] [--bind "127.0.0.1 ::1"] [--requirepass secret] ...
//
// Options and the configuration file follow redis-server's: a file of
// "directive value" lines, then "--directive value" options that override
// it; --help lists them. The data lives in memory only and is gone when the
// process exits.
//
// With --metrics-addr host:port it serves Prometheus metrics at /metrics:
// shardkv_commands_total{cmd}, shardkv_command_duration_seconds{cmd},
// shardkv_command_errors_total{cmd}, shardkv_connected_clients,
// shardkv_keys, shardkv_expired_keys_total,
// shardkv_rejected_connections_total{reason}, and the Go runtime's and the
// process's collectors, on a registry of its own.
//
// SIGINT or SIGTERM shuts it down gracefully: it stops accepting, lets each
// client's command in flight finish (for at most --shutdown-timeout
// seconds, then closes what is left) and exits 0.
//
// # The store
//
// The command builds its store from server.StoreOptions (binary-safe keys,
// values up to 512 MiB, no key quota) and its own options, unless
// shardkv.Global reports a store: then it serves that one, as it is, and
// never closes it; --max-keys, --max-value-size and --strict-keys do not
// apply to it (a warning says so). This matters only to code in the same
// process as run, the function main calls, such as a test or a program
// built from this package's files that calls shardkv.SetGlobal before run:
// the store it published is the one served, so it can keep using it while
// clients reach it over the network.
//
// # Cluster mode
//
// With --etcd-endpoints the store keeps its data in an etcd v3 cluster
// (the etcdkv module), under --etcd-namespace (default "shardkv/"): every
// shardkv-server given the same cluster and namespace serves one keyspace,
// and each one's keyspace subscribers see the writes made through all of
// them. The server package's documentation lists the commands cluster mode
// answers and how each maps onto etcd; the others answer "ERR '<name>' is
// not supported in cluster mode". Each etcd request of a command may take
// --etcd-timeout seconds. The command checks at start-up that etcd answers
// within --etcd-dial-timeout, and exits 1 if it does not.
//
// max-value-size defaults to 512kb in cluster mode, so that a
// CompareAndSwap of two such values fits etcd's default
// --max-request-bytes (1.5 MiB); a larger one needs etcd started with
// --max-request-bytes of at least twice it plus 64 KiB (a warning gives the
// figure). Keys are binary-safe, or checked by shardkv.ValidateKey with
// --strict-keys, as in local mode; --max-keys does not apply (etcd's
// --quota-backend-bytes bounds the data). etcd authentication takes --etcd-user with --etcd-password (or
// $SHARDKV_ETCD_PASSWORD); TLS takes https:// endpoints with --etcd-cacert,
// and --etcd-cert/--etcd-key for a client certificate. The shardkv_keys
// metric is not served in cluster mode.
package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, a second one kills the process at once.
		<-ctx.Done()
		stop()
	}()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil { // run has written it to stderr
		if u := (*errUsage)(nil); errors.As(err, &u) {
			os.Exit(2) // a bad command line or configuration file
		}
		os.Exit(1)
	}
}
