#!/bin/bash
# usage: syscount.sh PID PORT ARGS...
pid=$1; port=$2; shift 2
r0=$(awk '/syscr/{print $2}' /proc/$pid/io); w0=$(awk '/syscw/{print $2}' /proc/$pid/io)
t0=$(awk '{print $14+$15}' /proc/$pid/stat)
redis-benchmark -p $port "$@" -q | tr '\r' '\n' | tail -2
r1=$(awk '/syscr/{print $2}' /proc/$pid/io); w1=$(awk '/syscw/{print $2}' /proc/$pid/io)
t1=$(awk '{print $14+$15}' /proc/$pid/stat)
echo "reads $((r1-r0)) writes $((w1-w0)) cpu_ticks $((t1-t0))"
