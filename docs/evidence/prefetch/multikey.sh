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
source "$(dirname "$0")/servers.sh"
mget=(MGET) mset=(MSET)
for _ in $(seq 10); do mget+=(key:__rand_int__); mset+=(key:__rand_int__ vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv); done
echo "# redis-benchmark -n $N -r 100000 -c 50 --csv MGET key:__rand_int__ x10 | MSET key:__rand_int__ <64 bytes> x10"
for p in "${ports[@]}"; do redis-benchmark -p "$p" -t set -n 500000 -r 100000 -d 64 -q >/dev/null; done
echo "# keys after the fill: A $(redis-cli -p $pa dbsize), B $(redis-cli -p $pb dbsize), redis $(redis-cli -p $pr dbsize)"
echo "round cmd server rps cpu_us"
for r in $(seq "$rounds"); do
  for cmd in mget mset; do
    for i in 0 1 2; do
      if [ $cmd = mget ]; then c=("${mget[@]}"); else c=("${mset[@]}"); fi
      run "$r" $cmd $i -r 100000 -c 50 "${c[@]}"
    done
  done
done
echo "# load at end $(cut -d' ' -f1-3 /proc/loadavg)"
