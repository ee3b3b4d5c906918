#!/bin/bash
# Server CPU per request under unpipelined redis-benchmark: the gnet probe
# (1 and 2 event loops), shardkv-server (GOMAXPROCS 1 and 2) and
# redis-server, interleaved, ROUNDS rounds.
#   bash compare.sh EVENTLOOP_BIN SHARDKV_SERVER_BIN
set -u
el=$1; sk=$2; rounds=${ROUNDS:-3}; n=${N:-200000}
here=$(cd "$(dirname "$0")" && pwd)
pids=()
$el -port 7801 -loops 1 & pids+=($!)
$el -port 7802 -loops 2 & pids+=($!)
GOMAXPROCS=1 $sk --port 7803 --bind 127.0.0.1 >/dev/null 2>&1 & pids+=($!)
$sk --port 7804 --bind 127.0.0.1 >/dev/null 2>&1 & pids+=($!)
redis-server --port 7805 --bind 127.0.0.1 --save '' --appendonly no --daemonize no >/dev/null 2>&1 & pids+=($!)
trap 'kill ${pids[@]} 2>/dev/null' EXIT
sleep 1
names=(gnet-1loop gnet-2loops shardkv-server-P1 shardkv-server-P2 redis)
echo "# $(date -u +%FT%TZ) $(lscpu | sed -n 's/^Model name: *//p') $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# redis-benchmark -t CMD -n $n -r 100000 -c 50 -d 64 -q, server CPU from /proc/PID/stat (ticks of 10 ms)"
for r in $(seq $rounds); do
  for cmd in set get incr; do
    for i in 0 1 2 3 4; do
      echo "round $r ${names[$i]} $cmd"
      bash "$here/../raw-read/syscount.sh" ${pids[$i]} $((7801+i)) -t $cmd -n $n -r 100000 -c 50 -d 64
    done
  done
done
echo "# end $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)"
