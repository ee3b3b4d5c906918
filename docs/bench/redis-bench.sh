#!/usr/bin/env bash
# Throughput of shardkv-server against redis-server, measured by
# redis-benchmark on this machine:
#
#   bash docs/bench/redis-bench.sh [OUTDIR]        # OUTDIR: docs/bench/redis
#
# Builds shardkv-server and starts it on a free port of 127.0.0.1; when
# redis-server is installed (Debian: apt-get install redis-server
# redis-tools), starts it too on a free port, with no persistence (--save ''
# --appendonly no). Then runs
#
#   redis-benchmark -t CMD -n N -r 100000 -c 50 -d 64 --csv [-P 16]
#
# for CMD in set, get and incr (one run per command, the requests of
# redis-benchmark -t set,get,incr, so that what the server spent on each,
# its CPU time and system calls, is read from /proc between the runs)
# without and with pipelining against each server, interleaved (shardkv,
# redis, shardkv, redis, ...) for ROUNDS rounds, writes every run's raw
# output to OUTDIR, and prints (and writes to OUTDIR/results.md) a markdown
# table of the medians. The benchmark client runs on the same machine and
# competes with the server for its cores: compare the two servers' figures
# from one run only.
#
# Environment: N (requests per test, default 500000), ROUNDS (default 3,
# at least 2), PIPELINE (the pipelined depth, default 16), SHARDKV_ARGS
# (more flags for shardkv-server, e.g. "--event-loops -1" for its
# goroutine-per-client engine); GOMAXPROCS, if set, reaches shardkv-server
# (redis-server is single-threaded).
set -euo pipefail
cd "$(dirname "$0")/../.."

out=${1:-docs/bench/redis}
N=${N:-500000}
ROUNDS=${ROUNDS:-3}
PIPELINE=${PIPELINE:-16}
[[ "$N" =~ ^[1-9][0-9]*$ ]] || { echo "N must be a positive integer" >&2; exit 1; }
[[ "$ROUNDS" =~ ^[0-9]+$ ]] && [ "$ROUNDS" -ge 2 ] || { echo "ROUNDS must be at least 2" >&2; exit 1; }
[[ "$PIPELINE" =~ ^[1-9][0-9]*$ ]] || { echo "PIPELINE must be a positive integer" >&2; exit 1; }
command -v redis-benchmark >/dev/null || { echo "redis-benchmark not found (Debian: apt-get install redis-tools)" >&2; exit 1; }

mkdir -p "$out"
work=$(mktemp -d)
shardkv_pid="" redis_pid=""
cleanup() {
  for p in $shardkv_pid $redis_pid; do
    kill -0 "$p" 2>/dev/null && kill -9 "$p" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

cpu_model() {
  local m
  m=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)
  [ -n "$m" ] || m=$(sed -n 's/^model name[[:space:]]*: *//p' /proc/cpuinfo | head -n 1)
  echo "${m:-unknown}"
}

echo "building shardkv-server" >&2
go build -o "$work/shardkv-server" ./cmd/shardkv-server

# shardkv-server: port 0, the port read from its log.
# shellcheck disable=SC2086 # SHARDKV_ARGS is a list of flags
"$work/shardkv-server" --port 0 --bind 127.0.0.1 ${SHARDKV_ARGS:-} >"$out/shardkv-server.log" 2>&1 &
shardkv_pid=$!
shardkv_port=""
for _ in $(seq 200); do
  shardkv_port=$(sed -n 's/.*msg="Ready to accept connections tcp" addr=127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$out/shardkv-server.log" | head -n 1)
  [ -n "$shardkv_port" ] && break
  kill -0 "$shardkv_pid" 2>/dev/null || { cat "$out/shardkv-server.log" >&2; exit 1; }
  sleep 0.05
done
[ -n "$shardkv_port" ] || { echo "shardkv-server never became ready" >&2; cat "$out/shardkv-server.log" >&2; exit 1; }

# redis-server, if installed: Redis' port 0 means no TCP at all, so pick a
# free port (nothing answers on it) and retry on the rare race.
redis_port=""
if command -v redis-server >/dev/null; then
  for _ in $(seq 10); do
    p=$((20000 + RANDOM % 40000))
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then continue; fi
    redis-server --port "$p" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
      --logfile "" >"$out/redis-server.log" 2>&1 &
    redis_pid=$!
    for _ in $(seq 100); do
      grep -q 'Ready to accept connections' "$out/redis-server.log" && break
      kill -0 "$redis_pid" 2>/dev/null || break
      sleep 0.05
    done
    if grep -q 'Ready to accept connections' "$out/redis-server.log"; then redis_port=$p; break; fi
    kill -9 "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
    redis_pid=""
  done
  [ -n "$redis_port" ] || { echo "redis-server would not start:" >&2; cat "$out/redis-server.log" >&2; exit 1; }
else
  echo "redis-server not installed: measuring shardkv-server alone" >&2
fi

load() { cut -d' ' -f1-3 /proc/loadavg; }
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "cpu: $(cpu_model)"
  echo "nproc: $(nproc)"
  echo "GOMAXPROCS of shardkv-server: ${GOMAXPROCS:-unset (the Go default: nproc)}"
  echo "shardkv-server flags: --port 0 --bind 127.0.0.1 ${SHARDKV_ARGS:-}"
  echo "load average at start (1, 5, 15 min): $(load)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- . ":(exclude)$out" ":(exclude)docs/bench/redis*" 2>/dev/null || echo ' (with uncommitted changes outside docs/bench/redis*)')"
  echo "go: $(go version)"
  echo "shardkv-server: $("$work/shardkv-server" --version)"
  if [ -n "$redis_port" ]; then echo "redis-server: $(redis-server --version)"; else echo "redis-server: not installed"; fi
  echo "redis-benchmark: $(redis-benchmark --version 2>/dev/null || echo unknown)"
  echo "command: redis-benchmark -t CMD -n $N -r 100000 -c 50 -d 64 --csv [-P $PIPELINE] -p PORT, for CMD in set, get, incr"
  echo "rounds: $ROUNDS, interleaved: shardkv then redis, unpipelined then -P $PIPELINE, each round"
} >"$out/header.txt"
cat "$out/header.txt" >&2

# usage PID: the process's read and write system calls so far and its CPU
# time in clock ticks (/proc/PID/io's syscr and syscw, /proc/PID/stat's
# utime + stime).
usage() {
  local io st
  io=$(awk '/^syscr/ { r = $2 } /^syscw/ { w = $2 } END { print r, w }' "/proc/$1/io")
  st=$(sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }') # fields 14, 15 after pid and comm
  echo "$io $st"
}

# bench SERVER PORT PIPELINE ROUND: one redis-benchmark run per command,
# their CSV appended to one file, and what the server spent on each (read
# and write calls, CPU ticks) to roundR-SERVER-PP.usage.
bench() {
  local name=$1 port=$2 p=$3 round=$4 pid=$5 file t before after
  file="$out/round$round-$name-P$p.csv"
  : >"$file"
  echo "# command requests reads writes cpu_ticks (CLK_TCK $(getconf CLK_TCK)): the server's, during the run" >"$out/round$round-$name-P$p.usage"
  echo "round $round: $name -P $p" >&2
  for t in set get incr; do
    local args=(-t "$t" -n "$N" -r 100000 -c 50 -d 64 --csv -p "$port")
    if [ "$p" -gt 1 ]; then args+=(-P "$p"); fi
    before=$(usage "$pid")
    redis-benchmark "${args[@]}" >>"$file" 2>&1 || { echo "redis-benchmark failed against $name:" >&2; cat "$file" >&2; exit 1; }
    after=$(usage "$pid")
    echo "${t^^} $N $before $after" | awk '{ print $1, $2, $6 - $3, $7 - $4, $8 - $5 }' >>"$out/round$round-$name-P$p.usage"
  done
  grep -q '^"SET","' "$file" || { echo "no SET result from $name:" >&2; cat "$file" >&2; exit 1; }
}

for round in $(seq "$ROUNDS"); do
  for p in 1 "$PIPELINE"; do
    bench shardkv "$shardkv_port" "$p" "$round" "$shardkv_pid"
    if [ -n "$redis_port" ]; then bench redis "$redis_port" "$p" "$round" "$redis_pid"; fi
  done
done
echo "load average at end (1, 5, 15 min): $(load)" >>"$out/header.txt"

# Stop both; shardkv-server must exit 0 on SIGTERM.
kill -TERM "$shardkv_pid"
rc=0
wait "$shardkv_pid" || rc=$?
shardkv_pid=""
[ "$rc" -eq 0 ] || echo "warning: shardkv-server exited $rc after SIGTERM" >&2
if [ -n "$redis_pid" ]; then
  kill -TERM "$redis_pid"
  wait "$redis_pid" || true
  redis_pid=""
fi

# The tables: medians over the rounds of each (command, pipelining,
# server). tabulate reads lines "CMD P SERVER x4 x5 ..." and calls the
# program's line(cmd, pipelining, key) once a row, SET, GET, INCR and by
# depth; median(key " SERVER", f) is the median of field f.
tabulate() {
  awk '
    { k = $1 " " $2 " " $3; ++n[k]; for (f = 4; f <= NF; f++) v[k, f, n[k]] = $f; keys[$1 " " $2] = 1 }
    function median(k, f,   i, j, t, m, a) {
      m = n[k]; if (m == 0) return -1
      for (i = 1; i <= m; i++) a[i] = v[k, f, i] + 0
      for (i = 2; i <= m; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
      return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
    }
    function cell(x, fmt) { return x < 0 ? "–" : sprintf(fmt, x) }
    END {
      split("SET GET INCR", cmds, " ")
      for (c = 1; c <= 3; c++) {
        for (pk in keys) { split(pk, parts, " "); if (parts[1] == cmds[c]) byp[parts[2] + 0] = pk }
        np = 0; for (pp in byp) ps[++np] = pp + 0
        for (i = 2; i <= np; i++) { t = ps[i]; for (j = i - 1; j >= 1 && ps[j] > t; j--) ps[j + 1] = ps[j]; ps[j + 1] = t }
        for (i = 1; i <= np; i++) line(cmds[c], (ps[i] > 1) ? "-P " ps[i] : "none", byp[ps[i]])
        delete byp; delete ps
      }
    }
    '"$1"
}
{
  sed 's/^/    /' "$out/header.txt"
  echo
  echo "Medians of $ROUNDS runs each, requests per second; ratio: shardkv's ÷ Redis' (above 1: shardkv is faster). Raw output: \`$out/\`."
  echo
  echo "| command | pipelining | shardkv req/s | redis req/s | ratio |"
  echo "|---|---:|---:|---:|---:|"
  for f in "$out"/round*-*-P*.csv; do
    b=$(basename "$f" .csv)    # roundR-SERVER-PP
    srv=${b#round*-}; srv=${srv%-P*}
    p=${b##*-P}
    tr -d '\r' <"$f" | awk -F'","' -v srv="$srv" -v p="$p" 'NR > 1 && /^"[A-Z]/ { gsub(/"/, "", $1); gsub(/"/, "", $2); print $1, p, srv, $2 }'
  done | tabulate '
    function line(cmd, pl, pk,   s, r) {
      s = median(pk " shardkv", 4); r = median(pk " redis", 4)
      printf "| %s | %s | %.0f | %s | %s |\n", cmd, pl, s, cell(r, "%.0f"), (r <= 0 ? "–" : sprintf("%.2f", s / r))
    }'
  echo
  echo "What each server spent per request, medians of the same runs (from /proc/PID/io and /proc/PID/stat before and after each run; \`roundR-SERVER-PP.usage\`): CPU time in µs, and read and write system calls. The client's CPU is not counted: where a server uses more CPU per request, it leaves less to the client that shares the cores."
  echo
  echo "| command | pipelining | shardkv CPU µs | redis CPU µs | shardkv reads | redis reads | shardkv writes | redis writes |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|"
  tck=$(getconf CLK_TCK)
  for f in "$out"/round*-*-P*.usage; do
    b=$(basename "$f" .usage)
    srv=${b#round*-}; srv=${srv%-P*}
    p=${b##*-P}
    awk -v srv="$srv" -v p="$p" -v tck="$tck" '!/^#/ { print $1, p, srv, $5 * 1e6 / tck / $2, $3 / $2, $4 / $2 }' "$f"
  done | tabulate '
    function line(cmd, pl, pk) {
      printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", cmd, pl,
        cell(median(pk " shardkv", 4), "%.2f"), cell(median(pk " redis", 4), "%.2f"),
        cell(median(pk " shardkv", 5), "%.3f"), cell(median(pk " redis", 5), "%.3f"),
        cell(median(pk " shardkv", 6), "%.3f"), cell(median(pk " redis", 6), "%.3f")
    }'
} >"$out/results.md"
cat "$out/results.md"
