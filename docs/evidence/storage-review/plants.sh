#!/usr/bin/env bash
# Each fault planted back in turn (a text replacement in one file), then the
# test written for it, run; the file is restored after each. Prints what
# go test says. Run from the repository root on a clean tree:
#   bash docs/evidence/storage-review/plants.sh > docs/evidence/storage-review/plants.txt 2>&1
set -euo pipefail
cd "$(dirname "$0")/../../.."
git diff --quiet -- '*.go' || { echo "uncommitted Go changes: commit first" >&2; exit 1; }
echo "# $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD), $(go version)"
plant() { # name file old new test
  local name=$1 file=$2 old=$3 new=$4 test=$5
  python3 - "$file" "$old" "$new" <<'PY'
import sys
p, a, b = sys.argv[1:]
s = open(p).read()
assert s.count(a) == 1, a
open(p, 'w').write(s.replace(a, b))
PY
  echo "== plant: $name ($file), go test -count=1 -run '$test' ."
  go test -count=1 -run "$test" . 2>&1 | grep -E '^(---|ok|FAIL)|_test.go:[0-9]+:' | head -4 || true
  git checkout -q -- "$file"
}
plant "a reader whose record's chunk was dropped reports a miss, not a restart" shard.go \
  $'if b = chunkAt(dir, l); b == nil {\n\t\t\t\treturn "", 0, false, true' \
  $'if b = chunkAt(dir, l); b == nil {\n\t\t\t\treturn "", 0, false, false' \
  'TestProbeRestartsWhenItsChunkIsDropped'
plant "a scan after a clear collects the range it visited again" shard.go \
  'if base < c && uint64(s.tag()<<d.sbits>>(32-maxD)) < c {' \
  'if false && base < c && uint64(s.tag()<<d.sbits>>(32-maxD)) < c {' \
  'TestScanAfterClearListsNoKeyTwice'
plant "a table no split can part does not grow" table.go \
  $'\t\t// table exceed maxTableSlots.\n\t\tn *= 2' \
  $'\t\t// table exceed maxTableSlots.\n\t\tn *= 1' \
  'TestTableAgainstModel/one-hash/seed=0'
plant "writes owe nothing for merging small chunks" arena.go \
  $'\tif a.smalls != 0 {\n\t\ta.debt += n' \
  $'\tif false && a.smalls != 0 {\n\t\ta.debt += n' \
  'TestCompactionMergesSmallChunks'
plant "compaction never picks a small chunk to merge" shard.go \
  '} else if no = a.smallest(); no != noChunk { // small chunks to merge' \
  '} else if no = noChunk; false { // small chunks to merge' \
  'TestCompactionMergesSmallChunks'
