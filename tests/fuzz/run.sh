#!/usr/bin/env bash
# run.sh [seconds] - builds the front-end fuzz target and runs it (default
# 60 s) from the seed corpus, then prints the number of executions.
# New interesting inputs go to build/fuzz/work, crashes to build/fuzz/crashes/;
# turn each crash into a file in tests/fuzz/regress/ (test_parser parses them
# all) and fix it.
set -eu
secs=${1:-60}
cd "$(dirname "$0")/../.."
B=${B:-build}
make -s -f tests/fuzz/fuzz.mk B="$B"
mkdir -p "$B/fuzz/work" "$B/fuzz/crashes"
log="$B/fuzz/last-run.log"
set +e
start=$SECONDS
"$B/fuzz/fuzz_frontend" "$B/fuzz/work" tests/fuzz/corpus tests/fuzz/regress \
  -dict=tests/fuzz/ra.dict -max_len=4096 -max_total_time="$secs" -print_final_stats=1 \
  -artifact_prefix="$B/fuzz/crashes/" >"$log" 2>&1
rc=$?
set -e
execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log" | tail -1)
echo "fuzz_frontend: ${execs:-?} executions in $((SECONDS - start))s (exit $rc; log in $log)"
if [ "$rc" -ne 0 ]; then
  grep -E "ERROR|SUMMARY|Test unit written" "$log" | head -20
  exit "$rc"
fi
