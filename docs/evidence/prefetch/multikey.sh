#!/usr/bin/env bash
# Same-run A/B of two shardkv-server builds against Redis on multi-key
# commands: 10-key MGET and MSET, unpipelined, 50 clients. Each server is
# first filled by `redis-benchmark -t set -n 500000 -r 100000 -d 64`; then
# for each round, A, B and Redis in turn run
#
#   redis-benchmark -n N -r 100000 -c 50 --csv MGET key:__rand_int__ (x10)
#   redis-benchmark -n N -r 100000 -c 50 --csv MSET key:__rand_int__ v (x10)
#
#   bash docs/evidence/prefetch/multikey.sh A_BINARY B_BINARY [ROUNDS]
#
# One line a run: round, command, server, requests/s, server CPU µs a
# request (utime+stime from /proc/PID/stat). N defaults to 200000.
set -euo pipefail
a=$1 b=$2 rounds=${3:-5} N=${N:-200000}
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
mget=(MGET) mset=(MSET)
for _ in $(seq 10); do mget+=(key:__rand_int__); mset+=(key:__rand_int__ vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv); done
echo "# A: $a; B: $b; $(date -u +%FT%TZ); $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: *//p' /proc/cpuinfo | head -n 1); load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# redis-benchmark -n $N -r 100000 -c 50 --csv MGET key:__rand_int__ x10 | MSET key:__rand_int__ <64 bytes> x10"
for p in "${ports[@]}"; do redis-benchmark -p "$p" -t set -n 500000 -r 100000 -d 64 -q >/dev/null; done
echo "# keys after the fill: A $(redis-cli -p $pa dbsize), B $(redis-cli -p $pb dbsize), redis $(redis-cli -p $pr dbsize)"
echo "round cmd server rps cpu_us"
for r in $(seq "$rounds"); do
  for cmd in mget mset; do
    for i in 0 1 2; do
      if [ $cmd = mget ]; then c=("${mget[@]}"); else c=("${mset[@]}"); fi
      c0=$(awk '{print $14+$15}' /proc/${pids[$i]}/stat)
      rps=$(redis-benchmark -p ${ports[$i]} -n "$N" -r 100000 -c 50 --csv "${c[@]}" | tail -n 1 | cut -d, -f2 | tr -d '"')
      c1=$(awk '{print $14+$15}' /proc/${pids[$i]}/stat)
      echo "$r $cmd ${names[$i]} $rps $(echo "scale=2; ($c1-$c0)*1000000/$tick/$N" | bc)"
    done
  done
done
echo "# load at end $(cut -d' ' -f1-3 /proc/loadavg)"
