#!/usr/bin/env bash
# docs/bench/gcprofile (fill n keys, then the mean GC CPU of -cycles forced
# cycles with the store live) built at OLD and at the working tree, run
# alternately ROUNDS times (default 3), 10M keys, 100 cycles each.
#
#   OLD=<commit> bash docs/evidence/gc-ab.sh > docs/evidence/<name>.txt
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
old=${OLD:?set OLD to the baseline commit}
rounds=${ROUNDS:-3}
work=$(mktemp -d)
trap 'git worktree remove --force "$work/old" >/dev/null 2>&1; rm -rf "$work"' EXIT
git worktree add -f --detach "$work/old" "$old" >/dev/null 2>&1
(cd "$work/old" && go build -o "$work/old.gcprofile" ./docs/bench/gcprofile)
go build -o "$work/new.gcprofile" ./docs/bench/gcprofile
echo "# gcprofile -n 10000000 -cycles 100: old = $old, new = $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- '*.go' || echo ' + uncommitted changes')"
echo "# date: $(date -u +%FT%TZ); $(uname -a); nproc $(nproc); $(go version)"
for r in $(seq "$rounds"); do
  for v in old new; do
    echo "$v (loadavg $(cat /proc/loadavg)): $("$work/$v.gcprofile" -n 10000000 -cycles 100 -out /dev/null)"
  done
done
