#!/usr/bin/env bash
# Replays the evidence behind issue 8's closing note, writing each output
# beside this script:
#   lifecycle-old.txt  the lifecycle tests of lifecycle_test.go run against
#                      the store as it was before the fix (a3e3020), with
#                      only the test hook (onQuotaRetry) added to it: they fail.
#   lifecycle-new.txt  the same tests on this tree: they pass.
#   listkeys-old.txt   the FuzzConcurrent check as it was (ListKeys <= MaxKeys
#                      while writes run) on the found input, 50 runs under
#                      -race: some fail.
#   listkeys-new.txt   the check as it is now, same input and runs: none fail.
#   planted.txt        docs/planted/run.sh over every planted bug.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
tmp=$(mktemp -d)
trap 'git worktree remove --force "$tmp/old" >/dev/null 2>&1; rm -rf "$tmp"' EXIT
tests='^(TestIterationKeepsTheStoreAlive|TestMethodKeepsTheStoreAlive|TestCloseFencesWritesUnderWay|TestCloseFencesQuotaRetry|TestConcurrentCloseWaits)$'

git worktree add -f "$tmp/old" a3e3020 >/dev/null 2>&1
cp lifecycle_test.go "$tmp/old/"
(cd "$tmp/old" && python3 - <<'PY'
p='options.go'; s=open(p).read()
old="\tnoReaper      bool // tests and benchmarks only: expired entries wait for an operation or CleanExpired\n"
s=s.replace(old, old+"\tonQuotaRetry  func()\n"); open(p,'w').write(s)
p='store.go'; s=open(p).read()
s=s.replace("\tepoch    time.Time // the store clock's zero\n","\tepoch    time.Time // the store clock's zero\n\tonQuotaRetry func()\n")
s=s.replace("\t\tepoch:    time.Now(),\n","\t\tepoch:    time.Now(),\n\t\tonQuotaRetry: o.onQuotaRetry,\n")
s=s.replace("\tif err == errFull {\n\t\ts.reclaimExpired()","\tif err == errFull {\n\t\tif s.onQuotaRetry != nil {\n\t\t\ts.onQuotaRetry()\n\t\t}\n\t\ts.reclaimExpired()")
open(p,'w').write(s)
PY
)
(cd "$tmp/old" && go test -count=1 -run "$tests" -v . 2>&1) > "$here/lifecycle-old.txt"
go test -count=1 -run "$tests" -v . > "$here/lifecycle-new.txt" 2>&1

# The old check: this tree with fuzz/ as it was before the fix (4be7798^),
# plus the found input.
rm -rf "$tmp/tree" && mkdir "$tmp/tree"
git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$tmp/tree"
rm -rf "$tmp/tree/fuzz" && git archive 4be7798^ fuzz | tar -x -C "$tmp/tree"
cp fuzz/testdata/fuzz/FuzzConcurrent/listkeys-not-a-store-snapshot "$tmp/tree/fuzz/testdata/fuzz/FuzzConcurrent/"
(cd "$tmp/tree" && go test -race -count 50 -run 'FuzzConcurrent/listkeys-not-a-store-snapshot' ./fuzz 2>&1 | grep -E 'ListKeys lists|^(ok|FAIL|---)' | sort | uniq -c) > "$here/listkeys-old.txt"
go test -race -count 50 -run 'FuzzConcurrent/listkeys-not-a-store-snapshot' -v ./fuzz 2>&1 | grep -E '^(ok|FAIL)|--- (PASS|FAIL): FuzzConcurrent/' | sort | uniq -c > "$here/listkeys-new.txt"

bash docs/planted/run.sh > "$here/planted.txt" 2>&1
echo "written: $(ls "$here"/*.txt | xargs -n1 basename | tr '\n' ' ')"
