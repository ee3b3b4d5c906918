#!/usr/bin/env bash
# A/B of two commits' benchmarks: by default the root package's, at the
# commit before the chunked storage (35c8fb9) against a given commit
# (default HEAD), each built once, run alternately ROUNDS times (default 6)
# so that the machine's drift falls on both alike. Writes
# $RAW/$NAME-{old,new}.txt and their benchstat, $RAW/$NAME.benchstat.txt
# (default docs/bench/raw/ab-storage*). Run it on a quiet machine: about a
# minute a round on 2 cores.
#
#   bash docs/bench/ab-storage.sh [commit]     # OLD=commit sets the baseline (default 35c8fb9)
#
# BENCH=regexp runs only those benchmarks, BENCHTIME their -test.benchtime
# (300ms), CPU their -test.cpu (2); RAW=dir and NAME=prefix write elsewhere; PKG=dir measures that
# package (a module of the workspace, such as server) instead of the root;
# FROM_NEW=BenchmarkX gives an OLD that lacks that benchmark NEW's file of
# it (and NEW's race_test.go and norace_test.go beside it). The server's
# command path, as README "Throughput against Redis" quotes it:
#
#   OLD=3234dd2 RAW=docs/evidence/keys-noescape NAME=ab-exec PKG=server BENCH=Exec \
#     BENCHTIME=1000000x ROUNDS=8 FROM_NEW=BenchmarkExec bash docs/bench/ab-storage.sh 37576f1
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
old=${OLD:-35c8fb9}
new=$(git rev-parse --short "${1:-HEAD}")
rounds=${ROUNDS:-6}
bench=${BENCH:-'Get1M|Read$|Workloads|IncrementHot|CASCounter|Watch|ListKeys'}
benchtime=${BENCHTIME:-300ms}
cpu=${CPU:-2}
raw=${RAW:-docs/bench/raw}
name=${NAME:-ab-storage}
pkg=${PKG:-.}
mkdir -p "$raw"
benchstat=${BENCHSTAT:-$(command -v benchstat || echo "$HOME/go/bin/benchstat")}

work=$(mktemp -d)
trap 'git worktree remove --force "$work/old" >/dev/null 2>&1; git worktree remove --force "$work/new" >/dev/null 2>&1; rm -rf "$work"' EXIT
for v in old new; do
  c=$old; [ $v = new ] && c=$new
  git worktree add -f --detach "$work/$v" "$c" >/dev/null 2>&1
  if [ -n "${FROM_NEW:-}" ] && ! grep -qs "func $FROM_NEW(" "$work/$v/$pkg"/*_test.go; then
    src=$(git grep -l "func $FROM_NEW(" "$new" -- "$pkg/" | head -n 1) # NEW:PKG/FILE
    git show "$src" >"$work/$v/$pkg/$(basename "${src#*:}")"
    for f in race_test.go norace_test.go; do
      [ -f "$work/$v/$pkg/$f" ] || ! git cat-file -e "$new:$pkg/$f" 2>/dev/null || git show "$new:$pkg/$f" >"$work/$v/$pkg/$f"
    done
  fi
  # The root package builds on its own go.mod; another module needs the
  # workspace.
  gowork=off; [ "$pkg" = . ] || gowork=
  (cd "$work/$v/$pkg" && GOWORK=$gowork go test -c -o "$work/$v.test" .)
done

for v in old new; do
  {
    echo "# A/B: in-package benchmarks of $pkg, old = $old$([ -n "${OLD:-}" ] || echo " (before the storage change)"), new = $new"
    echo "# date: $(date -u +%FT%TZ); $(uname -a); nproc $(nproc); $(go version)"
    echo "# loadavg at start: $(cat /proc/loadavg)"
    echo "# each round: ./old.test then ./new.test, -test.run '^\$' -test.bench '$bench' -test.cpu $cpu -test.benchtime $benchtime -test.benchmem; $rounds rounds (docs/bench/ab-storage.sh)"
  } >"$raw/$name-$v.txt"
done
for r in $(seq "$rounds"); do
  for v in old new; do
    (cd "$work/$v/$pkg" && "$work/$v.test" -test.run '^$' -test.bench "$bench" -test.cpu "$cpu" -test.benchtime "$benchtime" -test.benchmem) >>"$raw/$name-$v.txt"
  done
  echo "round $r of $rounds done" >&2
done
for v in old new; do echo "# loadavg at end: $(cat /proc/loadavg)" >>"$raw/$name-$v.txt"; done
cp "$raw/$name-old.txt" "$work/ab-old.txt"
cp "$raw/$name-new.txt" "$work/ab-new.txt"
(cd "$work" && "$benchstat" ab-old.txt ab-new.txt) >"$raw/$name.benchstat.txt"
cat "$raw/$name.benchstat.txt"
