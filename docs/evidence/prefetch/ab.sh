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
tick=$(getconf CLK_TCK)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; }
trap cleanup EXIT
port() { while :; do p=$((20000 + RANDOM % 40000)); ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null && { echo $p; return; }; done; }
pa=$(port); "$a" --port "$pa" --bind 127.0.0.1 >/dev/null 2>&1 & pids+=($!)
pb=$(port); "$b" --port "$pb" --bind 127.0.0.1 >/dev/null 2>&1 & pids+=($!)
pr=$(port); redis-server --port "$pr" --bind 127.0.0.1 --save '' --appendonly no >/dev/null 2>&1 & pids+=($!)
for p in $pa $pb $pr; do for _ in $(seq 100); do redis-cli -p $p ping >/dev/null 2>&1 && break; sleep 0.05; done; done
names=(A B redis) ports=($pa $pb $pr)
echo "# A: $a; B: $b; $(date -u +%FT%TZ); $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: *//p' /proc/cpuinfo | head -n 1); load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# redis-benchmark -t CMD -n $N -r 100000 -c 50 -d 64 -P 16 --csv"
echo "round cmd server rps cpu_us"
for r in $(seq "$rounds"); do
  for cmd in set get incr; do
    for i in 0 1 2; do
      c0=$(awk '{print $14+$15}' /proc/${pids[$i]}/stat)
      rps=$(redis-benchmark -p ${ports[$i]} -t $cmd -n "$N" -r 100000 -c 50 -d 64 -P 16 --csv | tail -n 1 | cut -d, -f2 | tr -d '"')
      c1=$(awk '{print $14+$15}' /proc/${pids[$i]}/stat)
      echo "$r $cmd ${names[$i]} $rps $(echo "scale=2; ($c1-$c0)*1000000/$tick/$N" | bc)"
    done
  done
done
echo "# load at end $(cut -d' ' -f1-3 /proc/loadavg)"
