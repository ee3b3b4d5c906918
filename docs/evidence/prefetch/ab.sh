#!/usr/bin/env bash
# Same-run A/B of two shardkv-server builds against Redis under pipelined
# redis-benchmark: for each round and each command, A, B and Redis in turn,
# each a fresh run of
#
#   redis-benchmark -t CMD -n N -r 100000 -c 50 -d 64 -P 16 --csv
#
# and the server's CPU time for it (utime+stime from /proc/PID/stat).
#
#   bash docs/evidence/prefetch/ab.sh A_BINARY B_BINARY [ROUNDS]
#
# Prints one line a run: round, command, server, requests/s, CPU µs a
# request. N defaults to 500000. The servers hold what earlier runs wrote
# (set runs first, so get finds its keys), as in redis-bench.sh.
set -euo pipefail
a=$1 b=$2 rounds=${3:-5} N=${N:-500000}
source "$(dirname "$0")/servers.sh"
echo "# redis-benchmark -t CMD -n $N -r 100000 -c 50 -d 64 -P 16 --csv"
echo "round cmd server rps cpu_us"
for r in $(seq "$rounds"); do
  for cmd in set get incr; do
    for i in 0 1 2; do
      run "$r" $cmd $i -t $cmd -r 100000 -c 50 -d 64 -P 16
    done
  done
done
echo "# load at end $(cut -d' ' -f1-3 /proc/loadavg)"
