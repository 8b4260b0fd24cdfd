#!/usr/bin/env bash
# run.sh - times rac against PyTorch on the benchmark models, in one run.
#
#   bash bench/run.sh [BUILD_DIR]          (make bench passes its build folder)
#
# Settings from the environment:
#   ROUNDS   rounds (default 5); each round runs every model at every thread
#            count: rac, rac --jit, PyTorch configured, PyTorch as given, in
#            turn, so the programs alternate and share the machine's load
#   STEPS    timed steps of every model (default per model: tiny 60,
#            small 20, medium 5, charlm 20)
#   MODELS   default "tiny small medium charlm" (bench/tiny.ra,
#            bench/encoder.ra, bench/medium.ra, bench/charlm.ra; PyTorch:
#            bench/torch_encoder.py --model NAME)
#   THREADS  default "1 2"
#
# PyTorch "configured" is its best setting on this kind of machine: the
# thread count N in OMP_NUM_THREADS and OPENBLAS_NUM_THREADS before import
# and torch.set_num_threads(N) (the script does both), OMP_WAIT_POLICY=PASSIVE,
# large MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_ and MALLOC_TOP_PAD_,
# OPENBLAS_CORETYPE unset (OpenBLAS picks its own kernel), and at 2 threads
# or more the OpenMP build of OpenBLAS (Debian's libopenblas0-openmp, fetched
# with apt-get download into a temporary folder and put first on
# LD_LIBRARY_PATH of the torch process only; without network the script
# says so and torch keeps the system's OpenBLAS).  PyTorch "as given" runs in
# the caller's environment (the thread count still set by the script).  rac
# needs no settings and runs in the caller's environment in both tables.
#
# It builds two probes (bench/micro) and runs them in every round, keeping
# the best: the FMA peak (fma_peak: independent FMA chains, AVX-512 or AVX2
# by cpuid) and the sgemm peak (sgemm_peak: OpenBLAS on a 2048-cube,
# OPENBLAS_CORETYPE unset and as given), at 1 and 2 threads.  Prints two
# tables, best steps/s of the rounds: rac against PyTorch configured, and
# against PyTorch as given.
set -euo pipefail
cd "$(dirname "$0")/.."

B=build
if [ $# -gt 0 ]; then B=$1; shift; fi
usage="usage: bash bench/run.sh [BUILD_DIR]   (ROUNDS, STEPS, MODELS, THREADS from the environment)"
[ $# -eq 0 ] || { echo "$usage" >&2; exit 2; }
if [[ $B =~ ^[0-9]+$ ]]; then echo "bench/run.sh: '$B' is not a build folder; threads and steps are set by THREADS and STEPS"$'\n'"$usage" >&2; exit 2; fi
ROUNDS=${ROUNDS:-5}
MODELS=${MODELS:-tiny small medium charlm}
THREADS=${THREADS:-1 2}
PY=/usr/bin/python3

die() { echo "bench/run.sh: $*" >&2; exit 1; }
posint() { [[ $1 =~ ^[1-9][0-9]*$ ]]; }
posint "$ROUNDS" || die "ROUNDS must be a positive integer, got '$ROUNDS'"
[ -z "${STEPS:-}" ] || posint "$STEPS" || die "STEPS must be a positive integer, got '$STEPS'"
for t in $THREADS; do posint "$t" || die "THREADS must be positive integers, got '$THREADS'"; done

spec_of() {
  case $1 in
  tiny) echo bench/tiny.ra ;; small) echo bench/encoder.ra ;;
  medium) echo bench/medium.ra ;; charlm) echo bench/charlm.ra ;;
  *) die "unknown model '$1' (tiny, small, medium, charlm)" ;;
  esac
}
steps_of() {
  if [ -n "${STEPS:-}" ]; then echo "$STEPS"; return; fi
  case $1 in tiny) echo 60 ;; medium) echo 5 ;; *) echo 20 ;; esac
}
for m in $MODELS; do spec_of "$m" >/dev/null; done

if [ ! -x "$B/rac" ]; then
  echo "building rac ..." >&2
  make -s -j2 B="$B" "$B/rac" >&2 || die "cannot build $B/rac"
fi
if [ ! -f data/fortunes.tsv ] || [ ! -f data/corpus.txt ]; then
  echo "making the data sets ..." >&2
  make -s data >&2 || die "cannot make data/fortunes.tsv and data/corpus.txt (make data)"
fi
make -s -C bench/micro B="$B" probes >&2 || die "cannot build the probes (make -C bench/micro probes)"
"$PY" -c 'import torch' 2>/dev/null || die "$PY cannot import torch (apt-get install python3-torch)"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/rac-bench.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# The OpenMP flavour of OpenBLAS for the configured torch at 2+ threads.
OMPBLAS="" OMPNOTE=""
if (cd "$TMP" && apt-get download libopenblas0-openmp >"$TMP/apt.log" 2>&1); then
  deb=$(ls "$TMP"/libopenblas0-openmp_*.deb 2>/dev/null | head -n 1)
  if [ -n "$deb" ] && dpkg -x "$deb" "$TMP/omp" 2>>"$TMP/apt.log"; then
    OMPBLAS=$(dirname "$(find "$TMP/omp" -name 'libblas.so.3' | head -n 1)")
    OMPNOTE="OpenMP OpenBLAS ($(basename "$deb")) at 2+ threads"
  fi
fi
if [ -z "$OMPBLAS" ]; then
  OMPNOTE="the system's OpenBLAS at every thread count: apt-get download libopenblas0-openmp failed ($(tail -n 1 "$TMP/apt.log"))"
  echo "bench/run.sh: $OMPNOTE" >&2
fi

# The number after "KEY " at the start of a line of a report ("max rss" and
# "jit compile" are two words).
field() { awk -v k="$1" '
  index($0, k " ") == 1 && !done { s = substr($0, length(k) + 2); split(s, w, " "); print w[1]; done = 1 }'; }

# best[KEY]: the largest value seen (steps/s), last[KEY]: the latest
declare -A best last

keep_best() {
  local key=$1 v=$2
  if [ -z "${best[$key]:-}" ] || awk -v a="$v" -v b="${best[$key]}" 'BEGIN { exit !(a + 0 > b + 0) }'; then
    best[$key]=$v
  fi
}

# Runs one program and records steps/s (best), rss and jit time (latest).
record() {
  local key=$1 out sps; shift
  out=$("$@" 2>&1) || die "failed: $*"$'\n'"$out"
  sps=$(printf '%s\n' "$out" | field 'steps/s')
  [ -n "$sps" ] || die "no steps/s in the output of: $*"$'\n'"$out"
  keep_best "$key" "$sps"
  last[$key.rss]=$(printf '%s\n' "$out" | field 'max rss')
  last[$key.gflop]=$(printf '%s\n' "$out" | field 'GFLOP/step')
  case $key in
  jit.*)
    last[$key.jit]=$(printf '%s\n' "$out" | field 'jit compile')
    [ -n "${last[$key.jit]}" ] || die "rac bench --jit printed no 'jit compile N ms':"$'\n'"$out" ;;
  rac.*)
    last[gemm]=$(printf '%s\n' "$out" | sed -n 's/.*  gemm \(.*\)$/\1/p' | head -n 1) ;;
  torch*)
    last[torchver]=$(printf '%s\n' "$out" | awk '$1 == "torch" { print $2; exit }')
    last[$key.blas]=$(printf '%s\n' "$out" | field 'blas') ;;
  esac
}

torch_cfg() {
  local t=$1; shift
  local lib=()
  [ "$t" -lt 2 ] || [ -z "$OMPBLAS" ] || lib=(LD_LIBRARY_PATH="$OMPBLAS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")
  env -u OPENBLAS_CORETYPE OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS="$t" OPENBLAS_NUM_THREADS="$t" \
    MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=1073741824 MALLOC_TOP_PAD_=67108864 \
    "${lib[@]}" "$@"
}

# ---- the probes: run in every round, the best kept (a probe that met a
# busy machine would otherwise set the peak too low) ----
maxT=1
for t in $THREADS; do [ "$t" -gt "$maxT" ] && maxT=$t; done
probe_round() {
  local out t
  out=$("$B/bench/fma_peak" "$maxT") || die "fma_peak failed"
  for t in 1 "$maxT"; do keep_best "fma.$t" "$(printf '%s\n' "$out" | awk -v t="$t" '$1 == "peak" && $2 == t { print $3 }')"; done
  out=$("$B/bench/sgemm_peak" "$maxT" 2048 5) || die "sgemm_peak failed"
  last[core.given]=$(printf '%s\n' "$out" | awk '$1 == "core" { print $2 }')
  for t in 1 "$maxT"; do keep_best "sg_given.$t" "$(printf '%s\n' "$out" | awk -v t="$t" '$1 == "sgemm" && $2 == t { print $3 }')"; done
  out=$(env -u OPENBLAS_CORETYPE "$B/bench/sgemm_peak" "$maxT" 2048 5) || die "sgemm_peak failed"
  last[core.unset]=$(printf '%s\n' "$out" | awk '$1 == "core" { print $2 }')
  for t in 1 "$maxT"; do keep_best "sg_unset.$t" "$(printf '%s\n' "$out" | awk -v t="$t" '$1 == "sgemm" && $2 == t { print $3 }')"; done
}
# a thread count between 1 and the largest: the 1-thread figure times t
scaled() { awk -v p="${best[$1.1]}" -v q="${best[$1.$2]:-}" -v t="$2" 'BEGIN { print q != "" ? q : p * t }'; }
fma() { scaled fma "$1"; }
sgemm() { scaled "$1" "$2"; }

cpu=$(awk -F': ' '/^model name/ { n = $2 } /^cpu family/ { f = $2 } /^model\t/ { m = $2 } END { printf "%s (family %s, model %s)", n, f, m }' /proc/cpuinfo)
load0=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- the rounds ----
for ((r = 1; r <= ROUNDS; r++)); do
  echo "round $r of $ROUNDS ..." >&2
  probe_round
  for m in $MODELS; do
    spec=$(spec_of "$m") n=$(steps_of "$m")
    for t in $THREADS; do
      record "rac.$m.$t" "$B/rac" bench "$spec" --threads "$t" --steps "$n"
      record "jit.$m.$t" "$B/rac" bench "$spec" --threads "$t" --steps "$n" --jit
      record "torch.$m.$t" torch_cfg "$t" "$PY" bench/torch_encoder.py --model "$m" --threads "$t" --steps "$n" --warmup 2
      record "torchgiven.$m.$t" "$PY" bench/torch_encoder.py --model "$m" --threads "$t" --steps "$n" --warmup 2
    done
  done
done
load1=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- the tables ----
echo "CPU: $cpu; load average $load0 before, $load1 after"
echo "rac: gemm ${last[gemm]:-?}; torch ${last[torchver]:-?}; best steps/s of $ROUNDS rounds, programs alternating"
printf 'FMA peak (fma_peak): %s GFLOP/s at 1 thread' "$(fma 1)"
[ "$maxT" -eq 1 ] || printf ', %s at %d' "$(fma "$maxT")" "$maxT"
echo
printf 'sgemm peak (sgemm_peak, 2048-cube, OpenBLAS %s unset / %s as given, OPENBLAS_CORETYPE=%s):' \
  "${last[core.unset]}" "${last[core.given]}" "${OPENBLAS_CORETYPE:-(unset)}"
for t in $THREADS; do printf ' %d thread(s) %s / %s' "$t" "$(sgemm sg_unset "$t")" "$(sgemm sg_given "$t")"; done
echo
echo "(probes: the best of the rounds, like the programs)"

table() {
  local tk=$1 sg=$2
  echo "| model | threads | rac steps/s | rac --jit steps/s | torch steps/s | rac/torch | rac GFLOP/s (% FMA, % sgemm) | torch GFLOP/s (% FMA, % sgemm) | max rss rac / torch MiB | jit compile ms | torch BLAS |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
  for m in $MODELS; do
    for t in $THREADS; do
      local ri=${best[rac.$m.$t]} rj=${best[jit.$m.$t]} pt=${best[$tk.$m.$t]}
      local blas=${last[$tk.$m.$t.blas]:-?}
      case $blas in *openmp*) blas=openmp ;; *pthread*) blas=pthread ;; *serial*) blas=serial ;; esac
      awk -v m="$m" -v t="$t" -v ri="$ri" -v rj="$rj" -v pt="$pt" -v g="${last[rac.$m.$t.gflop]}" \
        -v gt="${last[$tk.$m.$t.gflop]}" -v f="$(fma "$t")" -v s="$(sgemm "$sg" "$t")" \
        -v rr="${last[rac.$m.$t.rss]}" -v tr="${last[$tk.$m.$t.rss]}" -v jm="${last[jit.$m.$t.jit]}" -v bl="$blas" '
        BEGIN {
          r = ri > rj ? ri : rj
          printf "| %s | %d | %.2f | %.2f | %.2f | %.2f | %.1f (%.0f%%, %.0f%%) | %.1f (%.0f%%, %.0f%%) | %.0f / %.0f | %s | %s |\n",
            m, t, ri, rj, pt, r / pt, r * g, 100 * r * g / f, 100 * r * g / s,
            pt * gt, 100 * pt * gt / f, 100 * pt * gt / s, rr, tr, jm, bl
        }'
    done
  done
}

echo
echo "PyTorch configured ($OMPNOTE; OMP_WAIT_POLICY=PASSIVE, malloc thresholds, OPENBLAS_CORETYPE unset); % sgemm of the unset peak"
table torch sg_unset
echo
echo "PyTorch in the environment as given (OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)}, system OpenBLAS); % sgemm of the as-given peak"
table torchgiven sg_given
echo
echo "rac/torch: the faster of rac's two executors against torch; GFLOP/s counts the model's matmuls (the same count for both)."
