#!/usr/bin/env bash
# run.sh - times rac against PyTorch on the same model and training step.
#
#   bash bench/run.sh [BUILD_DIR] [THREADS] [STEPS] [REPEATS]
#
# BUILD_DIR (default build; `make bench` passes it) is optional: the first
# argument is taken as the build folder when it is not a number.  THREADS
# defaults to the number of cores, STEPS to 20, REPEATS to 3.  For THREADS
# and then for 1 thread, runs `rac bench bench/encoder.ra` and
# bench/torch_encoder.py (Debian's python3-torch through /usr/bin/python3,
# with OMP_WAIT_POLICY=PASSIVE for its OpenMP workers; rac's own pool needs
# nothing set), REPEATS times each, alternating; prints
# the best steps/s of each and the ratio rac/torch (best-of-N is robust to
# other load on the machine).  Needs data/fortunes.tsv (made by `make data`
# when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

B=build
if [ $# -gt 0 ] && ! [[ $1 =~ ^[0-9]+$ ]]; then B=$1; shift; fi
T=${1:-$(nproc)}
N=${2:-20}
R=${3:-3}
PY=/usr/bin/python3

die() { echo "bench/run.sh: $*" >&2; exit 1; }
[[ $T =~ ^[1-9][0-9]*$ ]] || die "THREADS must be a positive integer, got '$T'"
[[ $N =~ ^[1-9][0-9]*$ ]] || die "STEPS must be a positive integer, got '$N'"
[[ $R =~ ^[1-9][0-9]*$ ]] || die "REPEATS must be a positive integer, got '$R'"

if [ ! -x "$B/rac" ]; then
  echo "building rac ..." >&2
  make -s "$B/rac" >&2 || die "cannot build $B/rac"
fi
if [ ! -f data/fortunes.tsv ]; then
  echo "making data/fortunes.tsv ..." >&2
  make -s data >&2 || die "cannot make data/fortunes.tsv (make data)"
fi
"$PY" -c 'import torch' 2>/dev/null || die "$PY cannot import torch (apt-get install python3-torch)"

# The number after "KEY " at the start of a line of a report.
field() { awk -v k="$1" '$1 == k && !done { print $2; done = 1 }'; }

max() { awk -v a="$1" -v b="$2" 'BEGIN { print (a == "" || b + 0 > a + 0) ? b : a }'; }

run_one() {
  local t=$1 out sps rac_best="" torch_best="" rep
  for ((rep = 0; rep < R; rep++)); do
    out=$("$B/rac" bench bench/encoder.ra --threads "$t" --steps "$N" 2>&1) ||
      die "rac bench failed:"$'\n'"$out"
    sps=$(printf '%s\n' "$out" | field 'steps/s')
    [ -n "$sps" ] || die "no steps/s in rac's report:"$'\n'"$out"
    rac_best=$(max "$rac_best" "$sps")
    out=$(OMP_WAIT_POLICY=PASSIVE "$PY" bench/torch_encoder.py --threads "$t" --steps "$N" 2>&1) ||
      die "bench/torch_encoder.py failed:"$'\n'"$out"
    sps=$(printf '%s\n' "$out" | field 'steps/s')
    [ -n "$sps" ] || die "no steps/s in the torch script's output:"$'\n'"$out"
    torch_best=$(max "$torch_best" "$sps")
  done
  awk -v t="$t" -v r="$rac_best" -v p="$torch_best" \
    'BEGIN { printf "threads %-3d rac %8.3f steps/s   torch %8.3f steps/s   rac/torch %.2f\n", t, r, p, r / p }'
}

echo "encoder: 2 layers, d 128, 8 heads, seq 64, batch 32, ffn 512, svgd + adamw"
echo "best of $R runs of $N timed steps each (after warm-up)"
run_one "$T"
[ "$T" -eq 1 ] || run_one 1
