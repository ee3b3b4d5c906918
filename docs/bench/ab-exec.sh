#!/usr/bin/env bash
# A/B of the server's command path: server.BenchmarkExec (SET, GET, INCR
# dispatched with no socket, keys over 100k) at commit OLD against NEW
# (default HEAD), each built once, run alternately ROUNDS times (default
# 8). An OLD that predates the benchmark gets NEW's server/exec_test.go
# (and the race_test.go/norace_test.go it needs).
# Writes $RAW/ab-exec-{old,new}.txt and their benchstat, ab-exec.benchstat.txt.
#
#   OLD=3234dd2 RAW=docs/evidence/keys-noescape bash docs/bench/ab-exec.sh [NEW]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
old=$(git rev-parse --short "${OLD:?set OLD to the baseline commit}")
new=$(git rev-parse --short "${1:-HEAD}")
rounds=${ROUNDS:-8}
raw=${RAW:-docs/bench/raw}
mkdir -p "$raw"
benchstat=${BENCHSTAT:-$(command -v benchstat || echo "$HOME/go/bin/benchstat")}

work=$(mktemp -d)
trap 'git worktree remove --force "$work/old" >/dev/null 2>&1; git worktree remove --force "$work/new" >/dev/null 2>&1; rm -rf "$work"' EXIT
for v in old new; do
  c=$old; [ $v = new ] && c=$new
  git worktree add -f --detach "$work/$v" "$c" >/dev/null 2>&1
  # The benchmark's file, and the race flag files it may need, from NEW
  # where OLD lacks them.
  if ! grep -qs 'func BenchmarkExec' "$work/$v"/server/*_test.go; then
    src=$(git grep -l 'func BenchmarkExec' "$new" -- server/ | head -n 1) # NEW:server/FILE
    git show "$src" >"$work/$v/server/$(basename "${src#*:}")"
    for f in race_test.go norace_test.go; do
      [ -f "$work/$v/server/$f" ] || ! git cat-file -e "$new:server/$f" 2>/dev/null || git show "$new:server/$f" >"$work/$v/server/$f"
    done
  fi
  (cd "$work/$v/server" && go test -c -o "$work/$v.test" .)
done
for v in old new; do
  {
    echo "# A/B: server.BenchmarkExec, old = $old, new = $new"
    echo "# date: $(date -u +%FT%TZ); $(uname -a); nproc $(nproc); $(go version)"
    echo "# loadavg at start: $(cat /proc/loadavg)"
    echo "# each round: ./old.test then ./new.test, -test.run '^\$' -test.bench Exec -test.cpu 2 -test.benchtime 1000000x -test.benchmem; $rounds rounds (docs/bench/ab-exec.sh)"
  } >"$raw/ab-exec-$v.txt"
done
for r in $(seq "$rounds"); do
  for v in old new; do
    (cd "$work/$v/server" && "$work/$v.test" -test.run '^$' -test.bench Exec -test.cpu 2 -test.benchtime 1000000x -test.benchmem) >>"$raw/ab-exec-$v.txt"
  done
done
echo "# loadavg at end: $(cat /proc/loadavg)" | tee -a "$raw/ab-exec-old.txt" >>"$raw/ab-exec-new.txt"
"$benchstat" "$raw/ab-exec-old.txt" "$raw/ab-exec-new.txt" | tee "$raw/ab-exec.benchstat.txt"
