#!/usr/bin/env bash
# make_data.sh - builds the small real data sets into data/ (run by `make data`
# from the repository root) from Debian packages the README's setup installs:
#
#   data/fortunes.tsv  label<TAB>text    fortune topic (8 classes; fortunes)
#   data/licenses.tsv  label<TAB>text    which licence a sentence is from
#                                        (8 classes; /usr/share/common-licenses)
#   data/corpus.txt    plain text        character corpus: Genesis-Deuteronomy
#                                        of the KJV (bible-kjv), else licences
#                                        and fortunes
#
# Plain shell and awk, byte-for-byte deterministic for the same package
# versions, idempotent (each file is rebuilt in a temporary file and moved
# into place), a second or two.  See docs/data.md.
set -euo pipefail
export LC_ALL=C

out=${1:-data}
fortunes=/usr/share/games/fortunes
licenses=/usr/share/common-licenses
mkdir -p "$out"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/rac-data.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

die() { echo "make_data: $*" >&2; exit 1; }

# Drops any line that is not valid UTF-8 (none expected; a safety net).
utf8_only() {
  if command -v iconv >/dev/null && ! iconv -f UTF-8 -t UTF-8 "$1" >/dev/null 2>&1; then
    die "$1: not valid UTF-8"
  fi
}

counts() { # file: class counts
  cut -f1 "$1" | sort | uniq -c | awk '{ printf "  %-12s %5d\n", $2, $1 }'
}

# ---- (a) fortunes.tsv: one example per fortune, whitespace collapsed,
# overstrikes removed, fortunes of more than 60 words dropped, at most 400
# per topic (the first ones, in file order).
fortune_topics="computers science politics literature food love sports law"
[ -d "$fortunes" ] || die "$fortunes is missing (apt-get install fortunes)"
: > "$tmp/fortunes.tsv"
for t in $fortune_topics; do
  f="$fortunes/$t"
  [ -f "$f" ] || die "$f is missing (apt-get install fortunes)"
  awk -v label="$t" -v cap=400 '
    BEGIN { bs = sprintf("%c", 8); n = 0; text = "" }
    function flush() {
      gsub(bs, "\001", text)                 # overstrike: drop "x<BS>"
      gsub(/[^\001]\001/, "", text)
      gsub(/[\001-\037\177]/, " ", text)     # tabs, newlines, controls
      gsub(/  +/, " ", text)
      sub(/^ /, "", text); sub(/ $/, "", text)
      w = split(text, tmpw, " ")
      if (w >= 1 && w <= 60 && n < cap) { print label "\t" text; n++ }
      text = ""
    }
    $0 == "%" { flush(); next }
    { text = text " " $0 }
    END { flush() }
  ' "$f" >> "$tmp/fortunes.tsv"
done
utf8_only "$tmp/fortunes.tsv"
mv "$tmp/fortunes.tsv" "$out/fortunes.tsv"

# ---- (b) licenses.tsv: sentences (cut after . ! ? and ;) of 5-60 words, the first occurrence of
# each sentence only (licences repeat some of theirs).
license_names="Apache-2.0 Artistic BSD CC0-1.0 GFDL-1.3 GPL-3 LGPL-2.1 MPL-2.0"
: > "$tmp/licenses.tsv"
for l in $license_names; do
  f="$licenses/$l"
  [ -f "$f" ] || die "$f is missing (base-files)"
  tr -s '\t\r\n\f ' '     ' < "$f" | awk -v label="$l" '
    {
      gsub(/[\001-\037\177]/, " ")
      gsub(/[.!?;]"? /, "&\n")
      m = split($0, s, "\n")
      for (i = 1; i <= m; i++) {
        x = s[i]
        gsub(/  +/, " ", x); sub(/^ /, "", x); sub(/ $/, "", x)
        w = split(x, tmpw, " ")
        if (w >= 5 && w <= 60) print label "\t" x
      }
    }'
done | awk -F '\t' '!seen[$2]++' > "$tmp/licenses.tsv"
utf8_only "$tmp/licenses.tsv"
mv "$tmp/licenses.tsv" "$out/licenses.tsv"

# ---- (c) corpus.txt: one verse per line without its reference, Genesis 1:1
# to Deuteronomy 34:12 (about 0.8 MB), from the bible program of bible-kjv.
if command -v bible >/dev/null && bible -f -l2000 "Gen1:1-Gen1:1" </dev/null >/dev/null 2>&1; then
  bible -f -l2000 "Gen1:1-Deu34:12" </dev/null | sed -e 's/^[^ ]* //' -e 's/ *$//' |
    awk 'NF' > "$tmp/corpus.txt"
  corpus_from="KJV Genesis-Deuteronomy (bible-kjv)"
else
  for l in $license_names; do cat "$licenses/$l"; done > "$tmp/corpus.txt"
  for t in $fortune_topics; do grep -v '^%$' "$fortunes/$t" | tr -d '\010'; done >> "$tmp/corpus.txt"
  corpus_from="licences and fortunes (bible-kjv is not installed)"
fi
utf8_only "$tmp/corpus.txt"
mv "$tmp/corpus.txt" "$out/corpus.txt"

# ---- report
for f in fortunes.tsv licenses.tsv; do
  printf '%s/%s: %d examples, %d bytes\n' "$out" "$f" "$(wc -l < "$out/$f")" "$(wc -c < "$out/$f")"
  counts "$out/$f"
done
printf '%s/corpus.txt: %d bytes, %d lines, %d distinct characters, from %s\n' "$out" \
  "$(wc -c < "$out/corpus.txt")" "$(wc -l < "$out/corpus.txt")" \
  "$(fold -w1 "$out/corpus.txt" | sort -u | wc -l)" "$corpus_from"
