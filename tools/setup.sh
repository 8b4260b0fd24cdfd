#!/usr/bin/env bash
# Installs the Debian packages rac needs to build, test and make its data.
# Uses sudo when not root.  Safe to run again.
set -euo pipefail
pkgs=(
  build-essential pkg-config   # compiler, make, pkg-config
  re2c lemon                   # lexer and parser generators (lang/)
  libopenblas-dev              # GEMM (what libxsmm declines)
  libxsmm-dev                  # GEMM: JIT kernels chosen by cpuid
  libffi-dev                   # extern functions
  libjansson-dev               # safetensors headers (JSON)
  libcriterion-dev             # the test suites
  llvm-19-dev                  # the JIT (compiler/jit; make LLVM=0 builds without it)
  libopenmpi-dev openmpi-bin   # data-parallel training (runtime/train/dist.c; make MPI=0 builds without it)
  clang libclang-rt-14-dev     # the fuzz target (libFuzzer)
  valgrind                     # leak checks of the embedding example
  libxml2-utils                # xmllint: the tests check the SVG files with it
  fortunes fortunes-min        # data: fortunes.tsv
  bible-kjv                    # data: the character corpus (KJV text)
  time bc                      # bench/data.sh: peak resident set, arithmetic
)
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
echo "setup: all packages present"
