#!/usr/bin/env bash
# A/B of the storage change: the root package's benchmarks at the commit
# before the chunked storage (35c8fb9) against those of a given commit
# (default HEAD), each built once, run alternately ROUNDS times (default 6)
# so that the machine's drift falls on both alike. Writes
# docs/bench/raw/ab-storage-{old,new}.txt and their benchstat,
# docs/bench/raw/ab-storage.benchstat.txt. Run it on a quiet machine:
# about a minute a round on 2 cores.
#
#   bash docs/bench/ab-storage.sh [commit]     # OLD=commit sets the baseline (default 35c8fb9)
#   BENCH=regexp runs only those benchmarks; RAW=dir writes elsewhere
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
old=${OLD:-35c8fb9}
new=$(git rev-parse --short "${1:-HEAD}")
rounds=${ROUNDS:-6}
bench=${BENCH:-'Get1M|Read|Workloads|IncrementHot|CASCounter|Watch|ListKeys'} # BENCH=regexp runs fewer
raw=${RAW:-docs/bench/raw} # RAW=dir writes elsewhere
mkdir -p "$raw"
benchstat=${BENCHSTAT:-$(command -v benchstat || echo "$HOME/go/bin/benchstat")}

work=$(mktemp -d)
trap 'git worktree remove --force "$work/old" >/dev/null 2>&1; git worktree remove --force "$work/new" >/dev/null 2>&1; rm -rf "$work"' EXIT
for v in old new; do
  c=$old; [ $v = new ] && c=$new
  git worktree add -f --detach "$work/$v" "$c" >/dev/null 2>&1
  (cd "$work/$v" && GOWORK=off go test -c -o "$work/$v.test" .)
done

for v in old new; do
  {
    echo "# A/B: in-package benchmarks, old = $old$([ -n "${OLD:-}" ] || echo " (before the storage change)"), new = $new"
    echo "# date: $(date -u +%FT%TZ); $(uname -a); nproc $(nproc); $(go version)"
    echo "# loadavg at start: $(cat /proc/loadavg)"
    echo "# each round: ./old.test then ./new.test, -test.run '^\$' -test.bench '$bench' -test.cpu 2 -test.benchtime 300ms -test.benchmem; $rounds rounds (docs/bench/ab-storage.sh)"
  } >"$raw/ab-storage-$v.txt"
done
for r in $(seq "$rounds"); do
  for v in old new; do
    (cd "$work/$v" && "$work/$v.test" -test.run '^$' -test.bench "$bench" -test.cpu 2 -test.benchtime 300ms -test.benchmem) >>"$raw/ab-storage-$v.txt"
  done
  echo "round $r of $rounds done" >&2
done
for v in old new; do echo "# loadavg at end: $(cat /proc/loadavg)" >>"$raw/ab-storage-$v.txt"; done
cp "$raw/ab-storage-old.txt" "$work/ab-old.txt"
cp "$raw/ab-storage-new.txt" "$work/ab-new.txt"
(cd "$work" && "$benchstat" ab-old.txt ab-new.txt) >"$raw/ab-storage.benchstat.txt"
cat "$raw/ab-storage.benchstat.txt"
