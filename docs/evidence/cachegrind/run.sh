#!/usr/bin/env bash
# Instructions and simulated L1/LL data misses per Set and per Get, at two
# commits: docs/bench/cgprobe under cachegrind (GOMAXPROCS=1, GOGC=off, so
# the counts are the operation's own: no GC), each mode's totals less the
# "none" mode's, divided by the operations. The cgprobe of the newer commit
# is built against each commit's library.
#
#   bash docs/evidence/cachegrind/run.sh OLD NEW [OPS] [KEYS]   # writes docs/evidence/cachegrind/*.log
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$root"
old=$1 new=$2 ops=${3:-500000} keys=${4:-1048576}
out=docs/evidence/cachegrind
work=$(mktemp -d)
trap 'for v in old new; do git worktree remove --force "$work/$v" >/dev/null 2>&1 || true; done; rm -rf "$work"' EXIT
for v in old new; do
  c=$old; [ $v = new ] && c=$new
  git worktree add -f --detach "$work/$v" "$c" >/dev/null 2>&1
  mkdir -p "$work/probe-$v"
  cp docs/bench/cgprobe/main.go "$work/probe-$v/"
  cat >"$work/probe-$v/go.mod" <<MOD
module cgprobe
go 1.25.0
require github.com/shardkv/shardkv v0.0.0
replace github.com/shardkv/shardkv => $work/$v
MOD
  cp "$work/$v/go.sum" "$work/probe-$v/"
  (cd "$work/probe-$v" && GOWORK=off GOFLAGS=-mod=mod go build -o "$work/cg-$v" .)
  for m in none set get; do
    GOMAXPROCS=1 GOGC=off valgrind --tool=cachegrind --cache-sim=yes --cachegrind-out-file=/dev/null \
      "$work/cg-$v" $m "$ops" "$keys" >"$out/$v-$c-$m-$keys.log" 2>&1 &
  done
  wait
done
python3 - "$out" "$old" "$new" "$ops" "$keys" <<'PY' | tee "$out/summary-$old-$new-$keys.txt"
import re, sys
out, old, new, ops, keys = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
def tot(f):
    d = {}
    for l in open(f):
        m = re.search(r'(I|D1|LLd)\s+(refs|misses):\s+([\d,]+)', l)
        if m: d[m[1] + ' ' + m[2]] = int(m[3].replace(',', ''))
    return d
print(f"per operation, {ops} operations on {keys} keys (cachegrind; mode less 'none'); bash docs/evidence/cachegrind/run.sh {old} {new} {ops} {keys}")
for v, c in (('old', old), ('new', new)):
    base = tot(f"{out}/{v}-{c}-none-{keys}.log")
    for m in ('set', 'get'):
        t = tot(f"{out}/{v}-{c}-{m}-{keys}.log")
        print(f"{v} {c} {m}: " + ", ".join(f"{k} {(t[k]-base[k])/ops:.1f}" for k in ('I refs', 'D1 misses', 'LLd misses')))
PY
