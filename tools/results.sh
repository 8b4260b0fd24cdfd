#!/bin/bash
# results.sh - the study of docs/results.md in one command: the sweeps that
# answer its questions, each a `rac sweep` into OUT/NAME, and the head
# ablations of the trained checkpoints.  A sweep skips its finished runs,
# so running this again resumes a stopped study, or only rewrites tables.
#
#   bash tools/results.sh OUT [PART...]
#
# PART: kinds dropout heads ablate schedule charlm (default: all, in that
# order; ablate needs heads).  Every run has one thread, one run at a time
# (--jobs 1 --threads 1): about 55 minutes on one core of the AMD EPYC
# (family 25 model 17) the figures were measured on.  RAC names the rac to
# use (default build/rac); `make` and `make data` first.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 1 ]; then
  echo "usage: bash tools/results.sh OUT [kinds|dropout|heads|ablate|schedule|charlm]..." >&2
  exit 2
fi
OUT=$1
shift
RAC=${RAC:-build/rac}
PARTS=${*:-kinds dropout heads ablate schedule charlm}
SEEDS=1..5
sweep() { "$RAC" sweep "$@" --seeds "$SEEDS" --jobs 1 --threads 1; }

# Mean and 95 % interval (Student's t, n - 1 degrees of freedom) of the
# numbers on stdin, one a line: "mean [lo, hi] (n)".
ci() {
  awk 'BEGIN { split("12.706 4.303 3.182 2.776 2.571 2.447 2.365 2.306 2.262", t, " ") }
       { x[++n] = $1; s += $1 }
       END {
         m = s / n; v = 0
         for (i = 1; i <= n; i++) v += (x[i] - m) ^ 2
         if (n < 2 || n > 10) { printf "%.4f (n %d)\n", m, n; exit }
         h = t[n - 1] * sqrt(v / (n - 1) / n)
         printf "%.4f [%.4f, %.4f] (n %d)\n", m, m - h, m + h, n }'
}

# The ablation figures of one `rac eval --ablate-heads` table: all heads,
# half of them left, one left, and how many can go (greedily) before
# accuracy falls more than 0.01 below the figure with all heads.
ablation_figures() {
  awk '/^all heads:/ { base = $4 }
       /^ *[0-9]+  / && seen { left = $1; acc[left] = $(NF - 1); if (left > total) total = left }
       /^removed one by one/ { seen = 1 }
       END {
         k = 0
         for (l = total - 1; l >= 0 && acc[l] >= base - 0.01 - 1e-9; l--) k++
         printf "%s %s %s %d\n", base, acc[int(total / 2)], acc[1], k }' "$1"
}

for part in $PARTS; do
  case $part in
  kinds)
    # does repulsion help: every kind on every example, the specs' budgets
    for x in fortunes licenses reverse charlm; do
      sweep "examples/$x.ra" --repulsion none,svgd,spos,penalty --out "$OUT/kinds-$x"
    done ;;
  dropout)
    # does attention dropout change what svgd does (examples/fortunes.ra)
    sweep examples/fortunes.ra --repulsion none,svgd --set dropout_pct=0,10 --out "$OUT/dropout"
    # the interaction per seed: (svgd - none at 10 %) - (svgd - none at 0 %)
    awk -F'[:,]' '{ for (i = 1; i < NF; i++) {
                      if ($i == "\"repulsion\"") r = $(i + 1)
                      if ($i == "\"dropout_pct\"") d = $(i + 1)
                      if ($i == "\"seed\"") s = $(i + 1)
                      if ($i == "\"accuracy\"") a = $(i + 1) }
                    v[r, d, s] = a; seeds[s] = 1 }
         END { for (s in seeds)
                 print (v["\"svgd\"", 10, s] - v["\"none\"", 10, s]) - (v["\"svgd\"", 0, s] - v["\"none\"", 0, s]) }' \
      "$OUT/dropout/sweep.jsonl" | ci | sed 's/^/accuracy interaction (svgd gain at 10 % minus at 0 %): /' \
      > "$OUT/dropout/interaction.txt"
    cat "$OUT/dropout/interaction.txt" ;;
  heads)
    # how many heads: 1, 2, 4, 8 per layer, with and without svgd
    sweep examples/fortunes.ra --repulsion none,svgd --set n_heads=1,2,4,8 --out "$OUT/heads" ;;
  ablate)
    # the heads' importance in the trained checkpoints of the heads sweep
    mkdir -p "$OUT/ablate"
    summary="$OUT/ablate/summary.txt"
    : > "$summary"
    for n in 4 8; do
      for rep in none svgd; do
        for s in 1 2 3 4 5; do
          name="repulsion=$rep,n_heads=$n,seed=$s"
          tab="$OUT/ablate/$name.txt"
          if [ ! -s "$tab" ]; then
            "$RAC" eval examples/fortunes.ra --set "n_heads=$n" --threads 1 --quiet \
              --ckpt "$OUT/heads/runs/$name.safetensors" --ablate-heads \
              --out "$OUT/ablate/$name.svg" > "$tab.tmp"
            mv "$tab.tmp" "$tab"
          fi
          ablation_figures "$tab" > "$OUT/ablate/$name.fig"
        done
        for col in 1 2 3 4; do
          what=$(echo "all heads|$n of $((2 * n)) heads left|1 head left|heads removed within 0.01" | cut -d'|' -f$col)
          echo "$rep n_heads=$n, $what: $(cat "$OUT"/ablate/repulsion="$rep",n_heads="$n",seed=?.fig | awk -v c=$col '{ print $c }' | ci)" >> "$summary"
        done
      done
    done
    cat "$summary" ;;
  schedule)
    # repulsion from the start, from mid-training, or when diversity falls
    sweep examples/fortunes.ra --set repulsion_start=0,150 --out "$OUT/start-fortunes"
    sweep examples/fortunes.ra --set repulsion_when=0.85,0.9 --out "$OUT/when-fortunes"
    sweep examples/licenses.ra --set repulsion_start=0,80 --out "$OUT/start-licenses"
    sweep examples/licenses.ra --set repulsion_when=0.6,0.7 --out "$OUT/when-licenses" ;;
  charlm)
    # the character model's perplexity cost: the repulsive term (alpha 0:
    # only the kernel-weighted mixing of the heads' gradients), and a late start
    sweep examples/charlm.ra --repulsion svgd --set repulsion_alpha=1,0 --out "$OUT/charlm-alpha"
    sweep examples/charlm.ra --set repulsion_start=0,1000 --out "$OUT/charlm-late" ;;
  *) echo "results.sh: unknown part '$part'" >&2; exit 2 ;;
  esac
done
