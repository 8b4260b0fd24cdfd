#!/usr/bin/env bash
# run.sh [seconds] - builds the fuzz targets and runs each for half the time
# (default 60 s in all) from the seed corpus, printing the number of
# executions: fuzz_frontend (lexer, parser, AST, diagnostics) and fuzz_check
# (the whole checker: sema, lowering, autodiff, passes, memory plan).
# New interesting inputs go to build/fuzz/work, crashes to build/fuzz/crashes/;
# turn each crash into a file in tests/fuzz/regress/ (test_parser parses them
# all) and fix it.
set -eu
secs=${1:-60}
cd "$(dirname "$0")/../.."
B=${B:-build}
make -s -f tests/fuzz/fuzz.mk B="$B"
secs=$(( secs / 2 > 0 ? secs / 2 : 1 ))
status=0
for target in fuzz_frontend fuzz_check; do
  mkdir -p "$B/fuzz/work-$target" "$B/fuzz/crashes"
  log="$B/fuzz/last-run-$target.log"
  set +e
  start=$SECONDS
  "$B/fuzz/$target" "$B/fuzz/work-$target" tests/fuzz/corpus tests/fuzz/regress \
    -dict=tests/fuzz/ra.dict -max_len=4096 -max_total_time="$secs" -print_final_stats=1 \
    -artifact_prefix="$B/fuzz/crashes/$target-" >"$log" 2>&1
  rc=$?
  set -e
  execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log" | tail -1)
  echo "$target: ${execs:-?} executions in $((SECONDS - start))s (exit $rc; log in $log)"
  if [ "$rc" -ne 0 ]; then
    grep -E "ERROR|SUMMARY|Test unit written" "$log" | head -20
    status=$rc
  fi
done
exit "$status"
