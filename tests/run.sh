#!/usr/bin/env bash
# Runs every Criterion suite built in $1/tests and prints one closing line.
# The serial suites run one test at a time: they time runs, or (test_sweep)
# start two training runs at a time themselves.
#   tests/run.sh [BUILD] [SUITE...]          every suite but those named
#   tests/run.sh [BUILD] --only SUITE...     only those named
set -u
B=${1:-build}
shift || true
only=""
if [ "${1:-}" = "--only" ]; then shift; only=" $* "; skip=""; else skip=" $* "; fi
cd "$(dirname "$0")/.." || exit 1
# under ASan: Criterion's own leaks are not ours (tests/lsan.supp)
export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$PWD/tests/lsan.supp"
serial=" test_examples test_determinism test_sweep test_mpi "
pass=0; fail=0; failed=()
for t in "$B"/tests/test_*; do
  [ -x "$t" ] || continue
  case "$skip" in *" $(basename "$t") "*) continue ;; esac
  if [ -n "$only" ]; then case "$only" in *" $(basename "$t") "*) ;; *) continue ;; esac; fi
  jobs=2
  case "$serial" in *" $(basename "$t") "*) jobs=1 ;; esac
  out=$("$t" --jobs=$jobs 2>&1); rc=$?
  line=$(printf '%s\n' "$out" | grep -E 'Synthesis: Tested' | tail -1)
  p=$(printf '%s' "$line" | sed -nE 's/.*Passing: ([0-9]+).*/\1/p')
  f=$(printf '%s' "$line" | sed -nE 's/.*Failing: ([0-9]+).*/\1/p')
  c=$(printf '%s' "$line" | sed -nE 's/.*Crashing: ([0-9]+).*/\1/p')
  p=${p:-0}; f=${f:-0}; c=${c:-0}
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && [ "$c" -eq 0 ]; then f=1; fi
  pass=$((pass + p)); fail=$((fail + f + c))
  if [ "$rc" -ne 0 ] || [ "$f" -ne 0 ] || [ "$c" -ne 0 ]; then
    failed+=("$(basename "$t")")
    printf '%s\n' "$out" | grep -vE '^\[----\] *$' | tail -60
  fi
  printf '%-28s %s\n' "$(basename "$t")" "${line:-no synthesis (exit $rc)}"
done
[ ${#failed[@]} -gt 0 ] && echo "failing suites: ${failed[*]}"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
