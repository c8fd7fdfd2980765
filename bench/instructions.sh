#!/usr/bin/env bash
# Instructions per simulated event, counted by valgrind's callgrind: the
# same number on any machine load, unlike wall time (docs/performance.md,
# "Regression comparison"). Usage: bench/instructions.sh [EMU] [SCENARIO]
# (defaults: target/release/emu, bench/in-cache.toml). Needs valgrind.
set -euo pipefail
emu=${1:-target/release/emu}
scenario=${2:-"$(dirname "$0")/in-cache.toml"}
command -v valgrind >/dev/null || { echo "instructions.sh: valgrind is not installed" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" \
  "$emu" run "$scenario" --out "$work/out" >"$work/stdout" 2>"$work/stderr"
events=$(cat "$work/stdout" "$work/stderr" | grep -o "[0-9]* events in" | grep -o "^[0-9]*")
# The event loop's inclusive count (the largest of its entries: inlined
# parts are listed apart).
callgrind_annotate --inclusive=yes "$work/cg.out" >"$work/annotated" 2>/dev/null
steps=$(grep 'Scheduler<E>::run_steps' "$work/annotated" | awk '{gsub(",", "", $1); if ($1 + 0 > m + 0) m = $1} END {print m}')
total=$(grep -o 'refs: *[0-9,]*' "$work/stderr" | tr -dc '0-9')
echo "events=$events run_steps=$steps per_event=$((steps / events)) whole_process=$total"
