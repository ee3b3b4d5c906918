#!/usr/bin/env bash
# Replays the planted bugs: each docs/planted/*.patch plants one bug in a
# scratch copy of the working tree, and the test named on its "Test:" line
# (run from the copy's root) must fail there. It also runs that test on the
# unpatched copy, where it must pass. Exit status: non-zero if any planted
# bug goes unnoticed or any test fails without its bug.
#
#   bash docs/planted/run.sh                  # every patch
#   bash docs/planted/run.sh docs/planted/wheel-*.patch   # some of them (paths or bare names)
#
# A patch file is a unified diff (as `git diff` writes it) preceded by
# free text; the first line starting with "Test:" gives the command.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root/docs/planted"
patches=()
for a in "$@"; do patches+=("$(basename "$a")"); done # names or paths, from anywhere
[ ${#patches[@]} -eq 0 ] && patches=(*.patch)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
fail=0
for p in "${patches[@]}"; do
  cmd=$(grep -m1 '^Test:' "$p" | sed 's/^Test:[[:space:]]*//')
  if [ -z "$cmd" ]; then echo "$p: no Test: line"; fail=1; continue; fi
  rm -rf "$scratch/tree"; mkdir "$scratch/tree"
  (cd "$root" && git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$scratch/tree")
  if ! (cd "$scratch/tree" && bash -c "$cmd" >"$scratch/clean.log" 2>&1); then
    echo "FAIL  $p: the test fails without the bug:"; tail -20 "$scratch/clean.log"; fail=1; continue
  fi
  if ! (cd "$scratch/tree" && patch -s -p1 <"$root/docs/planted/$p"); then
    echo "FAIL  $p: the patch does not apply"; fail=1; continue
  fi
  if ! (cd "$scratch/tree" && go vet . ./fuzz >"$scratch/vet.log" 2>&1); then
    # A patch that does not compile would make its test "fail" for nothing.
    echo "FAIL  $p: the patched tree does not build:"; tail -5 "$scratch/vet.log"; fail=1; continue
  fi
  if (cd "$scratch/tree" && bash -c "$cmd" >"$scratch/bug.log" 2>&1); then
    echo "MISS  $p: '$cmd' passes with the bug planted"; fail=1
  else
    echo "ok    $p: '$cmd' fails with the bug, passes without"
    grep -m3 -E -- '--- FAIL|Error:|panic:' "$scratch/bug.log" | sed 's/^/        /'
  fi
done
exit $fail
