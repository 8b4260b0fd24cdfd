#!/usr/bin/env bash
# check_layers.sh - the layers and what each may include (docs/hacking.md):
#
#   base -> lang -> compiler (-> compiler/jit) -> runtime/exec -> runtime/data -> runtime/train
#        -> runtime/api -> (include/ra.h) -> cli
#
# A file may include its own folder and the folders listed for it below,
# nothing else of the project's; no arrow points back.  Prints each include
# that breaks the rule (file:line: include) and exits 1 if there is one.
set -u
cd "$(dirname "$0")/.."
allowed() {
  case "$1" in
    base) echo "base" ;;
    lang) echo "base lang" ;;
    compiler) echo "base lang compiler" ;;
    compiler/jit) echo "base lang compiler compiler/jit" ;;
    runtime/exec) echo "base compiler compiler/jit runtime/exec" ;;
    runtime/data) echo "base compiler runtime/exec runtime/data" ;;
    runtime/train) echo "base compiler compiler/jit runtime/exec runtime/data runtime/train include" ;;
    runtime/api) echo "base lang compiler compiler/jit runtime/exec runtime/data runtime/train runtime/api include" ;;
    cli) echo "cli include" ;;
    *) echo "?" ;;
  esac
}
bad=0
files=$(git ls-files 'base/*' 'lang/*' 'compiler/*' 'runtime/*' 'cli/*' 2>/dev/null |
        grep -E '\.(c|h|re|y|def)$')
for f in $files; do
  dir=$(dirname "$f")
  ok=$(allowed "$dir")
  if [ "$ok" = "?" ]; then echo "$f: a folder with no layer (add it to tests/check_layers.sh)"; bad=1; continue; fi
  while IFS=: read -r line inc; do
    name=$(printf '%s' "$inc" | sed -nE 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"([^"]+)".*/\1/p')
    [ -n "$name" ] || continue
    case "$name" in parser.h|ra.h) [ "$name" = ra.h ] && target=include || target=lang ;;
      *) p=$(realpath -m --relative-to=. "$dir/$name"); target=$(dirname "$p") ;;
    esac
    [ "$name" = parser.h ] && target=lang
    case " $ok " in *" $target "*) ;; *) echo "$f:$line: includes $name ($target may not be used from $dir)"; bad=1 ;; esac
  done < <(grep -n '#[[:space:]]*include' "$f")
done
[ $bad -eq 0 ] && echo "layers: every include follows the rule"
exit $bad
