#!/usr/bin/env bash
# kvbench's scale section at 10M keys for shardkv (and the noop floor, always run),
# built at OLD (default d8bbf7e, before splits went a step at a time and
# before the refiller polled) and at HEAD, run alternately ROUNDS times
# (default 2), each run into docs/evidence/split-kvbench/<old|new>-<round>/.
#
#   bash docs/evidence/split-kvbench.sh 2>&1 | tee docs/evidence/split-kvbench/run.txt
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
old=${OLD:-d8bbf7e}
rounds=${ROUNDS:-2}
out=docs/evidence/split-kvbench
work=$(mktemp -d)
trap 'git worktree remove --force "$work/old" >/dev/null 2>&1; rm -rf "$work"' EXIT
git worktree add -f --detach "$work/old" "$old" >/dev/null 2>&1
(cd "$work/old" && go build -o "$work/old.kvbench" ./cmd/kvbench)
go build -o "$work/new.kvbench" ./cmd/kvbench
echo "# kvbench -stores shardkv -workloads scale -scale-keys 10M: old = $old, new = $(git rev-parse --short HEAD)"
echo "# date: $(date -u +%FT%TZ); $(uname -a); nproc $(nproc); $(go version); loadavg $(cat /proc/loadavg)"
for r in $(seq "$rounds"); do
  for v in old new; do
    echo "## round $r, $v"
    "$work/$v.kvbench" -stores shardkv -workloads scale -scale-keys 10M -q -progress lines -out "$out/$v-$r" >/dev/null
  done
done
