#!/usr/bin/env bash
# The fill probe (fillprobe_test.go: every Set of a one-goroutine fill to
# N keys timed and sorted by what its shard did) at OLD (default d8bbf7e,
# before splits went a step at a time) and at HEAD, each built once, run
# alternately ROUNDS times (default 2). The probe file is copied into the
# old tree, less its question about pending splits.
#
#   bash docs/evidence/split-steps.sh > docs/evidence/split-steps.txt
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
old=${OLD:-d8bbf7e}
n=${N:-10000000}
rounds=${ROUNDS:-2}
work=$(mktemp -d)
trap 'git worktree remove --force "$work/old" >/dev/null 2>&1; rm -rf "$work"' EXIT
git worktree add -f --detach "$work/old" "$old" >/dev/null 2>&1
# A commit before the split steps has no pending splits to ask about.
sed 's|^\(\t*\)stepping := .*// splitsteps.*$|\1stepping := false|' fillprobe_test.go >"$work/old/fillprobe_test.go"
(cd "$work/old" && GOWORK=off go test -c -o "$work/old.test" .)
GOWORK=off go test -c -o "$work/new.test" .
echo "# fill probe, $n keys: old = $old, new = $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- '*.go' || echo ' + uncommitted changes')"
echo "# date: $(date -u +%FT%TZ); $(uname -a); nproc $(nproc); $(go version); loadavg $(cat /proc/loadavg)"
for r in $(seq "$rounds"); do
  for v in old new; do
    echo "## round $r, $v (loadavg $(cat /proc/loadavg))"
    SHARDKV_FILLPROBE=$n "$work/$v.test" -test.run FillProbe -test.v -test.timeout 20m | grep -v '^=== RUN\|^--- PASS\|^PASS'
  done
done
