#!/usr/bin/env bash
# Cluster mode's cost, measured: etcdkv's BenchmarkEtcd (etcdkv/bench_test.go)
# runs each operation through raw clientv3 requests, the etcdkv.Backend, a
# shardkv.Store on that backend, and a local shardkv.Store, one call at a
# time, against one etcd embedded in the benchmark process (127.0.0.1, no
# fsync). The test binary is built once and run COUNT times (default 6),
# each run doing every operation every way once (on a fresh etcd), so that
# the four ways alternate and the machine's drift falls on all alike.
#
#   bash docs/bench/etcd.sh [OUTDIR]     # OUTDIR: docs/bench/etcd
#
# Writes OUTDIR/raw.txt (go test's output, with the machine and its load)
# and OUTDIR/benchstat.txt (benchstat -col /via: raw is the baseline).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-docs/bench/etcd}
count=${COUNT:-6}
benchtime=${BENCHTIME:-1s}
benchstat=${BENCHSTAT:-$(command -v benchstat || echo "$HOME/go/bin/benchstat")}
mkdir -p "$out"
{
  echo "# bash docs/bench/etcd.sh: $count runs of etcdkv.test -test.run '^\$' -test.bench Etcd -test.benchtime $benchtime -test.cpu 2 -test.benchmem"
  echo "# date: $(date -u +%FT%TZ); $(uname -srm); nproc $(nproc); $(go version)"
  echo "# loadavg at start: $(cat /proc/loadavg)"
  bin=$(mktemp -d)/etcdkv.test
  (cd etcdkv && go test -c -o "$bin" .)
  for r in $(seq "$count"); do
    echo "# run $r, loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
    (cd etcdkv && "$bin" -test.run '^$' -test.bench Etcd -test.benchtime "$benchtime" -test.cpu 2 -test.benchmem)
  done
  rm -f "$bin"
  echo "# loadavg at end: $(cat /proc/loadavg)"
} | tee "$out/raw.txt"
"$benchstat" -col /via "$out/raw.txt" | tee "$out/benchstat.txt"
