# Sourced by ab.sh and multikey.sh, with a and b the two shardkv-server
# binaries and N the requests per run: starts A, B and redis-server on free
# ports of 127.0.0.1 (stopped when the script exits), waits until each
# answers PING, and prints the header line. Then
#
#   run ROUND NAME I REDIS-BENCHMARK-ARGS...
#
# runs redis-benchmark -p PORT -n N --csv ARGS against server I (0: A,
# 1: B, 2: Redis) and prints "ROUND NAME SERVER rps cpu_us", cpu_us being
# the server's CPU time a request (utime+stime from /proc/PID/stat).
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

run() {
  local r=$1 name=$2 i=$3 c0 c1 rps
  shift 3
  c0=$(awk '{print $14+$15}' /proc/${pids[$i]}/stat)
  rps=$(redis-benchmark -p ${ports[$i]} -n "$N" --csv "$@" | tail -n 1 | cut -d, -f2 | tr -d '"')
  c1=$(awk '{print $14+$15}' /proc/${pids[$i]}/stat)
  echo "$r $name ${names[$i]} $rps $(echo "scale=2; ($c1-$c0)*1000000/$tick/$N" | bc)"
}
