#!/bin/bash
# usage: ab.sh ROUNDS BENCH BENCHTIME outprefix ; binaries /tmp/old.test /tmp/new.test
R=$1; B=$2; T=$3; O=$4
: > $O-old.txt; : > $O-new.txt
for i in $(seq $R); do
  for v in old new; do
    (cd /work/main && /tmp/$v.test -test.run '^$' -test.bench "$B" -test.benchtime $T -test.cpu ${CPU:-2} -test.count 1 -test.benchmem) >> $O-$v.txt 2>&1
  done
done
~/go/bin/benchstat $O-old.txt $O-new.txt
