#!/usr/bin/env bash
# Drives shardkv-server with the real redis-cli and redis-benchmark: builds
# the server, starts it on a free port (--port 0; the port is read from its
# "Ready to accept connections" log line), checks each reply of a set of
# commands exactly, runs a short redis-benchmark, then stops it with SIGTERM
# and checks it exited 0. A second run does the same with --requirepass.
#
# Installs nothing: the caller provides redis-cli and redis-benchmark
# (Debian: apt-get install redis-tools). Any mismatch fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in redis-cli redis-benchmark; do
  command -v "$tool" >/dev/null || { echo "redis-cli.sh: $tool not found (Debian: apt-get install redis-tools)" >&2; exit 1; }
done

work=$(mktemp -d)
bin=$work/shardkv-server
pid=""
log=""
port=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "redis-cli.sh: FAIL: $*" >&2
  if [ -n "$log" ] && [ -f "$log" ]; then
    echo "--- server log ($log):" >&2
    cat "$log" >&2
  fi
  exit 1
}

echo "== build"
go build -o "$bin" ./cmd/shardkv-server
"$bin" --version

# start NAME ARGS...: starts the server with ARGS on a free port of
# 127.0.0.1 and sets pid, log and port.
start() {
  log=$work/$1.log
  shift
  "$bin" --port 0 --bind 127.0.0.1 "$@" >"$log" 2>&1 &
  pid=$!
  port=""
  for _ in $(seq 200); do
    port=$(sed -n 's/.*msg="Ready to accept connections tcp" addr=127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$log" | head -n 1)
    [ -n "$port" ] && break
    kill -0 "$pid" 2>/dev/null || fail "the server exited before it was ready"
    sleep 0.05
  done
  [ -n "$port" ] || fail "no 'Ready to accept connections' line within 10 s"
  echo "started shardkv-server${*:+ $*} (pid $pid) on 127.0.0.1:$port"
}

# stop: SIGTERM, then the server must exit 0 within 15 s, saying goodbye.
stop() {
  kill -TERM "$pid"
  local rc=0 waited=0
  while kill -0 "$pid" 2>/dev/null; do
    [ "$waited" -lt 300 ] || fail "still running 15 s after SIGTERM"
    sleep 0.05
    waited=$((waited + 1))
  done
  wait "$pid" || rc=$?
  pid=""
  [ "$rc" -eq 0 ] || fail "exited $rc after SIGTERM, want 0"
  grep -q 'ready to exit, bye bye' "$log" || fail "no goodbye line in the log after SIGTERM"
  echo "stopped with SIGTERM: exit 0"
}

# check WANT ARGS...: redis-cli ARGS must print exactly WANT (redis-cli's
# raw output: no "(integer)"; an error reply is its text; trailing newlines
# are dropped).
check() {
  local want=$1 got
  shift
  got=$(redis-cli -p "$port" "$@" 2>&1) || fail "redis-cli $* exited non-zero: $got"
  if [ "$got" != "$want" ]; then
    fail "redis-cli $*: got $(printf '%q' "$got"), want $(printf '%q' "$want")"
  fi
  echo "ok  redis-cli $* -> $(printf '%q' "$got")"
}

# check_sorted WANT ARGS...: as check, with the output's lines sorted
# (KEYS and SCAN promise no order).
check_sorted() {
  local want=$1 got
  shift
  got=$(redis-cli -p "$port" "$@" 2>&1 | LC_ALL=C sort) || fail "redis-cli $* failed: $got"
  if [ "$got" != "$want" ]; then
    fail "redis-cli $* (sorted): got $(printf '%q' "$got"), want $(printf '%q' "$want")"
  fi
  echo "ok  redis-cli $* (sorted) -> $(printf '%q' "$got")"
}

# transcript WANT: the commands on stdin, one connection, must print
# exactly WANT (error replies are followed by an empty line).
transcript() {
  local want=$1 got
  got=$(redis-cli -p "$port" 2>&1) || fail "redis-cli (commands on stdin) exited non-zero: $got"
  if [ "$got" != "$want" ]; then
    fail "transcript: got $(printf '%q' "$got"), want $(printf '%q' "$want")"
  fi
  echo "ok  transcript of $(printf '%s' "$want" | grep -c '') lines"
}

echo "== commands"
start plain
check PONG PING
check OK SET greeting hello
check hello GET greeting
check "" GET missing
check 1 INCR visits
check 2 INCR visits
check 12 INCRBY visits 10
check "ERR value is not an integer or out of range" INCR greeting
check 1 EXPIRE greeting 100
ttl=$(redis-cli -p "$port" TTL greeting)
[ "$ttl" -ge 99 ] && [ "$ttl" -le 100 ] || fail "TTL greeting = $ttl, want 99 or 100"
echo "ok  redis-cli TTL greeting -> $ttl"
check -1 TTL visits
check -2 TTL missing
check 0 EXPIRE missing 100
check OK SET temp x PX 100
sleep 0.3
check "" GET temp
check -2 TTL temp
check OK SET a 1
check OK SET b 2
check_sorted "$(printf 'a\nb\ngreeting\nvisits')" KEYS '*'
check_sorted "$(printf 'a\nb')" KEYS '[ab]'
check_sorted "$(printf 'a\nb\ngreeting\nvisits')" --scan
check_sorted "$(printf 'a\nb')" --scan --pattern '[ab]'
first=$(redis-cli -p "$port" SCAN 0 COUNT 1000 | head -n 1)
[[ "$first" =~ ^[0-9]+$ ]] || fail "SCAN 0's first line is $(printf '%q' "$first"), want a cursor"
echo "ok  redis-cli SCAN 0 COUNT 1000 -> cursor $first"
check 2 DEL a b missing
check 0 EXISTS a
check 1 EXISTS greeting
check_sorted "$(printf 'greeting\nvisits')" KEYS '*'
transcript "$(printf 'OK\n1\nv\n1')" <<'EOF'
SET k v
EXISTS k
GET k
DEL k
EOF
check "ERR wrong number of arguments for 'get' command" GET
check "ERR unknown command 'NOSUCHCOMMAND', with args beginning with: 'x' " NOSUCHCOMMAND x

echo "== redis-benchmark -q -n 5000 -t set,get,incr"
bench=$(redis-benchmark -q -n 5000 -t set,get,incr -p "$port" 2>&1 | tr '\r' '\n') || fail "redis-benchmark failed: $bench"
echo "$bench" | grep 'requests per second' || true
for cmd in SET GET INCR; do
  echo "$bench" | grep -Eq "^$cmd: [0-9]+(\.[0-9]+)? requests per second" ||
    fail "redis-benchmark reported no requests per second for $cmd; it printed: $bench"
done
# Without -r the key is not randomised: every INCR hits counter:__rand_int__.
check 5000 GET counter:__rand_int__
stop

echo "== --requirepass"
start auth --requirepass 's3cret pass'
check "NOAUTH Authentication required." GET k
check "NOAUTH Authentication required." SET k v
transcript "$(printf 'NOAUTH Authentication required.\n\nWRONGPASS invalid username-password pair or user is disabled.\n\nOK\nOK\nv')" <<'EOF'
GET k
AUTH wrong
AUTH "s3cret pass"
SET k v
GET k
EOF
check v --no-auth-warning -a 's3cret pass' GET k
check PONG --no-auth-warning -a 's3cret pass' PING
stop

echo "redis-cli.sh: all checks passed"
