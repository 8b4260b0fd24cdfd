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
# (--jobs 1 --threads 1): 166 runs and 20 ablations, about 25 minutes of
# one idle core of the AMD EPYC (family 25 model 17) the figures were
# measured on, by its single runs' times (docs/results.md says what the
# study took there under load).  OUT/compare-PART.txt holds the paired
# differences between arms of different sweeps.  RAC names the rac to
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
sweep() { "$RAC" sweep "$@" --seeds "${SEEDS:-1..5}" --jobs 1 --threads 1; }

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

# The paired difference of a metric between two arms, over the seeds both
# have: arm B of sweep.jsonl FB minus arm A of FA (an arm: the start of
# its runs' names, e.g. "repulsion=svgd,"), then ci of the differences.
# Runs with the same seed and settings give the same bits in any sweep, so
# arms of two sweeps pair as arms of one do.
paired() {
  awk -v fa="$1" -v pa="$2" -v fb="$3" -v pb="$4" -v key="\"$5\"" -F'[:,{}]' '
    { name = ""; seed = ""; val = ""
      for (i = 1; i < NF; i++) {
        if ($i == "\"name\"" && name == "") name = $(i + 1)
        if ($i == "\"seed\"") seed = $(i + 1)
        if ($i == key && val == "") val = $(i + 1) }
      sub(/^"/, "", name)
      if (FILENAME == fa && index($0, "{\"name\":\"" pa) == 1) a[seed] = val
      if (FILENAME == fb && index($0, "{\"name\":\"" pb) == 1) b[seed] = val }
    END { for (s in b) if (s in a) print b[s] - a[s] }' "$1" "$3" | ci
}

# One line of OUT/compare-PART.txt: what, then the paired difference.
compare() {
  local what=$1
  shift
  echo "$what: $(paired "$@")" | tee -a "$OUT/compare-$part.txt"
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
  mkdir -p "$OUT"
  rm -f "$OUT/compare-$part.txt"
  case $part in
  kinds)
    # does repulsion help: every kind on every example, the specs' budgets
    for x in fortunes licenses reverse charlm; do
      sweep "examples/$x.ra" --repulsion none,svgd,spos,penalty --out "$OUT/kinds-$x"
    done ;;
  dropout)
    # does attention dropout change what svgd does (examples/fortunes.ra);
    # dropout 0 is kinds-fortunes
    sweep examples/fortunes.ra --repulsion none,svgd --set dropout_pct=10 --out "$OUT/dropout"
    k=$OUT/kinds-fortunes/sweep.jsonl d=$OUT/dropout/sweep.jsonl
    for m in accuracy loss; do
      compare "fortunes $m, dropout 10 % minus 0 %, none" "$k" "repulsion=none," "$d" "repulsion=none,dropout_pct=10," $m
      compare "fortunes $m, dropout 10 % minus 0 %, svgd" "$k" "repulsion=svgd," "$d" "repulsion=svgd,dropout_pct=10," $m
    done
    # the interaction per seed: (svgd - none at 10 %) - (svgd - none at 0 %)
    awk -v dfile="$d" -F'[:,{}]' '{ for (i = 1; i < NF; i++) {
                      if ($i == "\"repulsion\"") r = $(i + 1)
                      if ($i == "\"seed\"") s = $(i + 1)
                      if ($i == "\"accuracy\"") a = $(i + 1) }
                    p = FILENAME == dfile ? 10 : 0
                    v[r, p, s] = a; seeds[s] = 1 }
         END { for (s in seeds)
                 print (v["\"svgd\"", 10, s] - v["\"none\"", 10, s]) - (v["\"svgd\"", 0, s] - v["\"none\"", 0, s]) }' \
      "$k" "$d" | ci | sed 's/^/fortunes accuracy, interaction (svgd gain at 10 % minus at 0 %): /' \
      | tee -a "$OUT/compare-$part.txt" ;;
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
    # repulsion from the start (kinds-*: svgd), from mid-training, or when
    # the layer's diversity falls below X
    sweep examples/fortunes.ra --set repulsion_start=150 --out "$OUT/start-fortunes"
    sweep examples/fortunes.ra --set repulsion_when=0.85,0.9 --out "$OUT/when-fortunes"
    sweep examples/licenses.ra --set repulsion_start=80 --out "$OUT/start-licenses"
    sweep examples/licenses.ra --set repulsion_when=0.6,0.7 --out "$OUT/when-licenses"
    for x in fortunes licenses; do
      k=$OUT/kinds-$x/sweep.jsonl
      case $x in fortunes) mid=150 w1=0.85 w2=0.9 ;; licenses) mid=80 w1=0.6 w2=0.7 ;; esac
      for m in accuracy loss; do
        compare "$x $m, svgd from step $mid minus none" "$k" "repulsion=none," "$OUT/start-$x/sweep.jsonl" "repulsion_start=$mid," $m
        compare "$x $m, svgd from step $mid minus svgd from 0" "$k" "repulsion=svgd," "$OUT/start-$x/sweep.jsonl" "repulsion_start=$mid," $m
        for w in $w1 $w2; do
          compare "$x $m, svgd when diversity < $w minus none" "$k" "repulsion=none," "$OUT/when-$x/sweep.jsonl" "repulsion_when=$w," $m
          compare "$x $m, svgd when diversity < $w minus svgd from 0" "$k" "repulsion=svgd," "$OUT/when-$x/sweep.jsonl" "repulsion_when=$w," $m
        done
      done
    done ;;
  charlm)
    # the character model's perplexity cost (kinds-charlm: none, svgd, spos):
    # svgd with alpha 0 keeps only the kernel-weighted mixing of the heads'
    # gradients, without the repulsive term; spos from step 1000 of 1500
    # (seeds 1-3: a run of it is a minute on an idle core, where the others
    # take seconds; kinds-charlm has the same seeds, which pair)
    SEEDS=1..3 sweep examples/charlm.ra --repulsion svgd --set repulsion_alpha=0 --out "$OUT/charlm-alpha0"
    SEEDS=1..3 sweep examples/charlm.ra --set repulsion_start=1000 --out "$OUT/charlm-late"
    k=$OUT/kinds-charlm/sweep.jsonl
    compare "charlm perplexity, svgd alpha 0 minus none" "$k" "repulsion=none," "$OUT/charlm-alpha0/sweep.jsonl" "repulsion=svgd," perplexity
    compare "charlm perplexity, svgd alpha 0 minus svgd alpha 1" "$k" "repulsion=svgd," "$OUT/charlm-alpha0/sweep.jsonl" "repulsion=svgd," perplexity
    compare "charlm perplexity, spos from step 1000 minus none" "$k" "repulsion=none," "$OUT/charlm-late/sweep.jsonl" "repulsion_start=1000," perplexity
    compare "charlm perplexity, spos from step 1000 minus spos from 0" "$k" "repulsion=spos," "$OUT/charlm-late/sweep.jsonl" "repulsion_start=1000," perplexity ;;
  *) echo "results.sh: unknown part '$part'" >&2; exit 2 ;;
  esac
done
