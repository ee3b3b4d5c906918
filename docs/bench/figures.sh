#!/usr/bin/env bash
# figures.sh regenerates every figure that README.md and bench/README.md
# keep. Run it on a quiet machine: expect about 12 minutes on 2 cores
# (COUNT=10: about 16).
#
#   bash docs/bench/figures.sh          # the benchmarks, then the tables
#   bash docs/bench/figures.sh tables   # only the tables, from docs/bench/raw/*.txt
#   bash docs/bench/figures.sh peers    # the peers at 1M keys and Get1M again, then the tables
#
# Each benchmark command's output goes to docs/bench/raw/NAME.txt after a
# header of '#' lines (which benchstat ignores): date, uname -a, nproc,
# go version, the commit, /proc/loadavg before and after, and the exact
# command. benchstat's summaries go beside it (NAME.benchstat.txt), and the
# Markdown tables built from them (peers.md, targets.md, memory.md) are
# pasted into README.md between its "<!-- figures.sh:NAME -->" and
# "<!-- /figures.sh:NAME -->" lines. kvbench writes docs/bench/results.md,
# results.json and the charts itself; its stderr goes to raw/kvbench.txt.
#
# COUNT (default 6, the fewest for which benchstat gives a confidence
# interval) sets the runs of each go test benchmark. BENCHSTAT names a
# benchstat binary to use instead of installing the pinned version.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
raw=docs/bench/raw
count=${COUNT:-6}
benchstat_version=v0.0.0-20260908200009-22c9c6c9d4da
mkdir -p "$raw"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# benchstat: the pinned version, installed once into $tmp (or BENCHSTAT).
benchstat=${BENCHSTAT:-}
if [ -z "$benchstat" ]; then
  (cd "$tmp" && GOBIN="$tmp" go install "golang.org/x/perf/cmd/benchstat@$benchstat_version")
  benchstat="$tmp/benchstat"
fi

# run NAME DIR COMMAND...: runs COMMAND in DIR, writing the header and the
# command's stdout and stderr to raw/NAME.txt.
run() {
  local name=$1 dir=$2
  shift 2
  local out="$raw/$name.txt"
  echo "figures.sh: $name ($(date -u +%H:%M:%S))" >&2
  {
    echo "# figures.sh: $name"
    echo "# date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "# uname -a: $(uname -a)"
    echo "# nproc: $(nproc)"
    echo "# go version: $(go version)"
    echo "# commit: $(git rev-parse HEAD)$(git diff --quiet HEAD -- || echo ' plus uncommitted changes')"
    echo "# loadavg at start: $(cat /proc/loadavg)"
    echo "# command (in $dir): $(printf '%q ' "$@")"
  } >"$out"
  (cd "$dir" && "$@") >>"$out" 2>&1 || { echo "figures.sh: $name failed; see $out" >&2; exit 1; }
  echo "# loadavg at end: $(cat /proc/loadavg)" >>"$out"
}

benchmarks() {
  # kvbench's default run: every store and workload once, 300 ms a cell.
  run kvbench . go run ./cmd/kvbench -out docs/bench -q -progress lines
  # The peers side by side at 1M keys (README: Peers, Targets).
  run peers bench go test -run '^$' -timeout 60m -cpu 2 -count "$count" \
    -bench 'KV/keys=1M/store=(shardkv|shardkv-view|shardkv-append|otter|ristretto|go-cache|ttlcache|xsync)/workload=(read100|read90|write100|ttl-churn)$'
  # Memory and GC of every store at 1M keys: one process a run, because
  # the heap and GC-CPU figures are measured once per process, at the
  # prefill (README: Memory).
  run memory bench bash -c "for i in \$(seq $count); do go test -run '^\$' -timeout 60m -cpu 2 -count 1 -bench 'KV/keys=1M/store=/workload=memory\$' || exit 1; done"
  # Get on 1M keys, half of them expired (README: Targets, no sweep).
  run get1m . go test -run '^$' -timeout 60m -cpu 2 -count "$count" -bench '^BenchmarkGet1M$'
  # Watch: events delivered to subscribers (README: Watch).
  run watch . go test -run '^$' -timeout 60m -cpu 2 -count "$count" -bench '^BenchmarkWatch$'
}

# summarize NAME ARGS...: appends benchstat's text summary of ARGS to
# raw/NAME.benchstat.txt, under the command.
summarize() {
  local name=$1
  shift
  {
    echo "# benchstat $(printf '%q ' "$@")"
    (cd "$raw" && "$benchstat" "$@")
    echo
  } >>"$raw/$name.benchstat.txt"
}

# long ARGS...: benchstat's CSV of ARGS as lines of
# unit TAB row TAB column TAB median TAB vs-base TAB p.
long() {
  (cd "$raw" && "$benchstat" -format csv "$@" 2>/dev/null) | awk -F, -v OFS='\t' '
    /^$/ { state = 0; next }
    state == 0 && /^,/ {
      n = split($0, h, ","); cur = ""
      for (i = 2; i <= n; i++) { if (h[i] != "") cur = h[i]; col[i] = cur }
      state = 1; next
    }
    state == 1 { unit = $2; m = NF; for (i = 2; i <= NF; i++) sub_[i] = $i; state = 2; next }
    state == 2 && $1 != "geomean" {
      for (i = 2; i <= m; i++) {
        if (sub_[i] != unit || $i == "") continue
        d = ""; p = ""
        for (j = i + 1; j <= m && sub_[j] != unit; j++) {
          if (sub_[j] == "vs base") d = $j
          if (sub_[j] == "P") { p = $j; sub(/^p=/, "", p); sub(/ .*/, "", p) }
        }
        print unit, $1, col[i], $i, d, p
      }
    }'
}

# meta FILE: one sentence on where and when FILE's figures were measured.
meta() {
  awk -F': ' '
    /^# date: / { date = $2 } /^# nproc: / { n = $2 } /^# go version: / { sub(/^go version /, "", $2); gv = $2 }
    /^# loadavg at start: / { split($2, a, " "); l0 = a[1] } /^# loadavg at end: / { split($2, a, " "); l1 = a[1] }
    /^cpu: / && cpu == "" { cpu = $2 }
    END { printf "Measured %s on %s, %s cores, %s; 1-minute load average %s at the start, %s at the end.\n", date, cpu, n, gv, l0, l1 }' "$1"
}

tables() {
  local f
  for f in peers memory get1m watch; do
    [ -s "$raw/$f.txt" ] || { echo "figures.sh: no $raw/$f.txt: run without 'tables' first" >&2; exit 1; }
    rm -f "$raw/$f.benchstat.txt"
  done
  summarize peers -col /store -row /workload peers.txt
  summarize peers -filter '/store:(shardkv-view OR xsync)' -col /store -row /workload peers.txt
  summarize memory -row /store -col /workload memory.txt
  summarize get1m -col .fullname -row .name get1m.txt
  summarize get1m -filter '.fullname:/fresh-ttl|half-expired/' -col .fullname -row .name get1m.txt
  summarize watch watch.txt
  long -col /store -row /workload peers.txt >"$tmp/peers.tsv"
  long -filter '/store:(shardkv-view OR xsync)' -col /store -row /workload peers.txt >"$tmp/view.tsv"
  long -filter '.fullname:/fresh-ttl|half-expired/' -col .fullname -row .name get1m.txt >"$tmp/get1m.tsv"
  long -row /store -col /workload memory.txt >"$tmp/memory.tsv"
  local runs procs
  runs=$(grep -c '^BenchmarkKV/keys=[^/]*/store=shardkv/workload=read100-' "$raw/peers.txt" || true)
  procs=$(grep -c '^BenchmarkKV/keys=[^/]*/store=shardkv/workload=memory-' "$raw/memory.txt" || true)

  # peers.md: ns/op medians, and shardkv Get's time over each column's.
  {
    meta "$raw/peers.txt"
    echo
    echo "ns/op, median of $runs runs, \`-cpu 2\`, 1M keys, zipf. In brackets: shardkv \`Get\`'s time ÷ the column's (below 1: \`Get\` is faster), or \`~\` where benchstat finds no difference (p ≥ 0.05). –: the store has no TTL. p-values and confidence intervals: \`docs/bench/raw/peers.benchstat.txt\`."
    echo
    awk -F'\t' '
      $1 != "sec/op" { next }
      !($2 in seenr) { seenr[$2] = 1; rows[++nr] = $2 }
      !($3 in seenc) { seenc[$3] = 1; cols[++nc] = $3 }
      { med[$2, $3] = $4; d[$2, $3] = $5 }
      END {
        label["shardkv"] = "shardkv Get"; label["shardkv-view"] = "shardkv View"; label["shardkv-append"] = "shardkv AppendValue"
        label["xsync"] = "xsync (no TTL)"
        printf "| workload |"; for (c = 1; c <= nc; c++) printf " %s |", (cols[c] in label ? label[cols[c]] : cols[c]); print ""
        printf "|---|"; for (c = 1; c <= nc; c++) printf "---:|"; print ""
        for (r = 1; r <= nr; r++) {
          w = rows[r]; base = med[w, cols[1]]; printf "| %s |", w
          for (c = 1; c <= nc; c++) {
            k = w SUBSEP cols[c]
            if (!(k in med)) { printf " – |"; continue }
            s = sprintf("%.0f", med[k] * 1e9)
            if (c > 1) s = s (d[k] == "~" ? " (~)" : sprintf(" (%.2f×)", base / med[k]))
            printf " %s |", s
          }
          print ""
        }
      }' "$tmp/peers.tsv"
  } >"$raw/peers.md"

  # targets.md: each target, its figure, met or missed.
  {
    meta "$raw/peers.txt"
    echo
    echo "Ratios are A's time ÷ B's (below 1: A is faster), medians of $runs runs; \`~\`: benchstat finds no difference (p ≥ 0.05), and a target that needs one is then missed."
    echo
    echo "| target | figure | met/missed |"
    echo "|---|---|---|"
    awk -F'\t' -v OFS='\t' '
      FILENAME ~ /peers/ && $1 == "sec/op" { med[$2, $3] = $4; d[$2, $3] = $5; p[$2, $3] = $6 }
      FILENAME ~ /view/ && $1 == "sec/op" { vmed[$2, $3] = $4; vd[$2, $3] = $5; vp[$2, $3] = $6 }
      FILENAME ~ /get1m/ && $1 == "sec/op" { gmed[$3] = $4; gd[$3] = $5; gp[$3] = $6 }
      function ns(x) { return sprintf("%.0f ns", x * 1e9) }
      # compare(A, a, B, b, delta, p): "A a ns ÷ B b ns = r× (p=...)", or "~" for no difference.
      function compare(an, a, bn, b, delta, pv) {
        if (delta == "~") return sprintf("%s %s vs %s %s: ~ (p=%s)", an, ns(a), bn, ns(b), pv)
        return sprintf("%s %s ÷ %s %s = %.2f× (p=%s)", an, ns(a), bn, ns(b), a / b, pv)
      }
      # best TTL-capable peer of workload w, or "".
      function best(w,   i, n, peers, b) {
        n = split("otter ristretto go-cache ttlcache", peers, " "); b = ""
        for (i = 1; i <= n; i++) if ((w, peers[i]) in med && (b == "" || med[w, peers[i]] < med[w, b])) b = peers[i]
        return b
      }
      function fastest(w, limit, text,   b, ok, s) {
        b = best(w)
        if (b == "" || !((w, "shardkv") in med)) { print text, "not measured", "missed"; return }
        s = med[w, "shardkv"]
        ok = d[w, b] != "~" && s / med[w, b] <= limit
        print text, compare("shardkv", s, b " (the fastest TTL-capable peer)", med[w, b], d[w, b], p[w, b]), ok ? "met" : "missed"
      }
      END {
        fastest("write100", 0.9999, "write100: shardkv `Set` faster than every TTL-capable peer (otter, ristretto, go-cache, ttlcache)")
        fastest("ttl-churn", 1 / 1.5, "ttl-churn: shardkv `SetWithTTL` at most 0.67× the fastest TTL-capable peer'"'"'s time (1.5× its throughput)")
        t = "read90: shardkv `View` at most 1.3× xsync'"'"'s time (xsync: no TTL, no copy)"
        if (("read90", "shardkv-view") in vmed && ("read90", "xsync") in vmed) {
          v = vmed["read90", "shardkv-view"]; x = vmed["read90", "xsync"]
          print t, compare("View", v, "xsync", x, vd["read90", "xsync"], vp["read90", "xsync"]), v / x <= 1.3 ? "met" : "missed"
        } else print t, "not measured", "missed"
        t = "no sweep: `Get` on 1M keys, half of them expired and still held, no slower than on 1M unexpired keys with TTLs (BenchmarkGet1M)"
        for (c in gmed) { if (c ~ /half-expired/) h = c; if (c ~ /fresh-ttl/) f = c }
        if (h != "" && f != "") {
          print t, compare("half-expired", gmed[h], "fresh-ttl", gmed[f], gd[h], gp[h]), (gd[h] == "~" || gmed[h] <= gmed[f]) ? "met" : "missed"
        } else print t, "not measured", "missed"
      }' "$tmp/peers.tsv" "$tmp/view.tsv" "$tmp/get1m.tsv" | awk -F'\t' '{ printf "| %s | %s | %s |\n", $1, $2, $3 }'
  } >"$raw/targets.md"

  # memory.md: heap and GC per store, medians over the processes.
  {
    meta "$raw/memory.txt"
    echo
    echo "Medians of $procs processes, 1M keys (11-byte keys, 64-byte values), after \`runtime.GC\`: the live heap the store added per entry, the part of it the GC scans, and one forced GC cycle with the store live (wall time, and CPU time of every GC worker). Ranges: \`docs/bench/raw/memory.benchstat.txt\`."
    echo
    echo "| store | heap B/entry | GC-scan B/entry | GC cycle, wall | GC cycle, CPU |"
    echo "|---|---:|---:|---:|---:|"
    awk -F'\t' '
      !($2 in seen) { seen[$2] = 1; rows[++n] = $2 }
      { v[$1, $2] = $4 }
      END {
        for (i = 1; i <= n; i++) {
          s = rows[i]
          printf "| %s | %.0f | %.0f | %.1f ms | %.1f ms |\n", s, v["heap-B/entry", s], v["gc-scan-B/entry", s], v["sec/op", s] * 1e3, v["gc-cpu-sec/cycle", s] * 1e3
        }
      }' "$tmp/memory.tsv"
  } >"$raw/memory.md"

  for f in peers targets memory; do splice "$f" "$raw/$f.md" README.md; done
  echo "figures.sh: wrote $raw/*.benchstat.txt, $raw/{peers,targets,memory}.md and pasted them into README.md" >&2
}

# splice NAME FILE TARGET: replaces the lines between TARGET's
# "<!-- figures.sh:NAME -->" and "<!-- /figures.sh:NAME -->" with FILE.
splice() {
  local name=$1 src=$2 dst=$3
  grep -qxF "<!-- figures.sh:$name -->" "$dst" && grep -qxF "<!-- /figures.sh:$name -->" "$dst" ||
    { echo "figures.sh: $dst has no figures.sh:$name markers; $src not pasted" >&2; return; }
  awk -v begin="<!-- figures.sh:$name -->" -v end="<!-- /figures.sh:$name -->" -v src="$src" '
    $0 == end { skip = 0 }
    !skip { print }
    $0 == begin { print ""; while ((getline line < src) > 0) print line; close(src); print ""; skip = 1 }' "$dst" >"$tmp/splice"
  cat "$tmp/splice" >"$dst"
}

# peers: only the runs the targets come from (the peers at 1M keys and
# BenchmarkGet1M), then every table; the others keep their last runs.
peers_only() {
  run peers bench go test -run '^$' -timeout 60m -cpu 2 -count "$count" \
    -bench 'KV/keys=1M/store=(shardkv|shardkv-view|shardkv-append|otter|ristretto|go-cache|ttlcache|xsync)/workload=(read100|read90|write100|ttl-churn)$'
  run get1m . go test -run '^$' -timeout 60m -cpu 2 -count "$count" -bench '^BenchmarkGet1M$'
}

case "${1:-all}" in
all) benchmarks; tables ;;
tables) tables ;;
peers) peers_only; tables ;;
*) echo "usage: bash docs/bench/figures.sh [tables|peers]" >&2; exit 2 ;;
esac
