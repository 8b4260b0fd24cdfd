#!/bin/bash
# results.sh - the study of docs/results.md: the sweeps that answer its
# questions, each a `rac sweep` into OUT/PART (finished runs are skipped, so
# running it again resumes or only rewrites the tables).
#
#   bash tools/results.sh OUT [PART...]     PART: kinds heads schedule charlm
#                                            (default: all, in that order)
#
# Every run is one thread and one at a time (--jobs 1 --threads 1), so the
# figures do not depend on the machine's load; RAC names the rac to use
# (default build/rac).  Needs `make` and `make data` first.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 1 ]; then
  echo "usage: bash tools/results.sh OUT [kinds|heads|schedule|charlm]..." >&2
  exit 2
fi
OUT=$1
shift
RAC=${RAC:-build/rac}
PARTS=${*:-kinds heads schedule charlm}
SEEDS=1..5
sweep() { "$RAC" sweep "$@" --seeds "$SEEDS" --jobs 1 --threads 1; }

for part in $PARTS; do
  case $part in
  kinds)
    # does repulsion help: every kind on every example, the specs' budgets
    for x in fortunes licenses reverse charlm; do
      sweep "examples/$x.ra" --repulsion none,svgd,spos,penalty --out "$OUT/kinds-$x"
    done ;;
  *) echo "results.sh: unknown part '$part'" >&2; exit 2 ;;
  esac
done
