#!/usr/bin/env bash
# run-while.sh PID CMD...: runs CMD and stops it when process PID exits (so a test's helpers never outlive it).
set -u
watch="$1"; shift
"$@" &
child=$!
trap 'kill $child 2>/dev/null; exit 0' TERM INT
while kill -0 "$watch" 2>/dev/null && kill -0 "$child" 2>/dev/null; do sleep 0.5; done
kill "$child" 2>/dev/null
wait "$child" 2>/dev/null
