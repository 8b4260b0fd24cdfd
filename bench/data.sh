#!/usr/bin/env bash
# data.sh - a corpus larger than the examples' on the character model:
# generates a text corpus of SIZE_GIB GiB (data/corpus.txt repeated, in a
# temporary folder removed at the end), then, rounds alternating between it
# and data/corpus.txt:
#   - `rac bench` of examples/charlm.ra on it for STEPS steps under
#     /usr/bin/time -v: wall time and peak resident set (the data set reads
#     its windows from the mapped file; what it holds is the vocabulary and
#     every 64th window's byte offset; its split and shuffles are keyed
#     bijections, docs/data.md);
#   - bench/data/data_load (built here against BUILD/libra_int.a): the
#     loader alone, both passes over the mapping (tokens and the windows'
#     offsets, then the train windows' counts), as seconds per GiB;
#   - the same for tokenize bpe vocab 512 on data/corpus.txt only (bpe
#     copies the split texts: docs/data.md).
# Not run by CI (minutes, GiBs of disk).
#
#   bash bench/data.sh [BUILD_DIR] [SIZE_GIB] [STEPS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
B=build
if [ $# -gt 0 ] && ! [[ $1 =~ ^[0-9]+$ ]]; then B=$1; shift; fi
G=${1:-2}
STEPS=${2:-5}
ROUNDS=${3:-2}
die() { echo "bench/data.sh: $*" >&2; exit 1; }
[ -x "$B/rac" ] || die "no $B/rac: run make first"
[ -f data/corpus.txt ] || make data >/dev/null
[ -x /usr/bin/time ] || die "/usr/bin/time is missing (Debian package time)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc -O2 -std=c11 -D_DEFAULT_SOURCE -I. bench/data/data_load.c "$B/libra_int.a" -lm -lpthread \
  -o "$tmp/data_load"

# the corpus: whole copies of data/corpus.txt up to SIZE_GIB GiB
small=$(stat -c %s data/corpus.txt)
want=$((G * 1024 * 1024 * 1024))
copies=$(( (want + small - 1) / small ))
t0=$(date +%s.%N)
for ((i = 0; i < copies; i++)); do cat data/corpus.txt; done > "$tmp/big.txt"
t1=$(date +%s.%N)
big=$(stat -c %s "$tmp/big.txt")
printf 'corpus: %d copies of data/corpus.txt, %d bytes (%.2f GiB), written in %.1f s\n' \
  "$copies" "$big" "$(echo "$big / 1073741824" | bc -l)" "$(echo "$t1 - $t0" | bc -l)"
grep -m1 'model name' /proc/cpuinfo | sed 's/^/cpu: /'
printf 'cpu family %s model %s, %s cores\n' "$(grep -m1 'cpu family' /proc/cpuinfo | awk '{print $NF}')" \
  "$(grep -m1 '^model' /proc/cpuinfo | awk '{print $NF}')" "$(nproc)"

sed "s#\"data/corpus.txt\"#\"$tmp/big.txt\"#" examples/charlm.ra > "$tmp/big.ra"
sed "s#\"data/corpus.txt\"#\"$PWD/data/corpus.txt\"#" examples/charlm.ra > "$tmp/small.ra"

bench_one() { # name spec file
  /usr/bin/time -v "$B/rac" bench "$2" --steps "$STEPS" --threads 2 > "$tmp/out" 2> "$tmp/time" ||
    { cat "$tmp/out" "$tmp/time" >&2; die "rac bench $1 failed"; }
  local rss wall sps
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$tmp/time")
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$tmp/time")
  sps=$(awk '/^steps\/s/ {print $2}' "$tmp/out")
  printf '  rac bench %-6s %d steps: wall %s, peak RSS %.1f MiB, %s steps/s\n' "$1" "$STEPS" "$wall" \
    "$(echo "$rss / 1024" | bc -l)" "$sps"
}
load_one() { # name file bytes tokenize vocab
  local line s
  line=$("$tmp/data_load" "$2" "$4" 64 "$5")
  s=$(echo "$line" | awk '{print $2}')
  printf '  load %-6s %-5s: %s (%.2f s per GiB)\n' "$1" "$4" "$line" "$(echo "$s / ($3 / 1073741824)" | bc -l)"
}
for ((r = 1; r <= ROUNDS; r++)); do
  echo "round $r"
  bench_one big "$tmp/big.ra"
  bench_one small "$tmp/small.ra"
  load_one big "$tmp/big.txt" "$big" chars 96
  load_one small data/corpus.txt "$small" chars 96
  load_one small data/corpus.txt "$small" bpe 512
done
