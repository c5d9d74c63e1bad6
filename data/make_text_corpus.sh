#!/bin/sh
# Builds a word-level language-model corpus from real English text shipped by a
# Debian package: the fortune cookies of `fortunes` (/usr/share/games/fortunes).
# Each fortune becomes one line, lowercased, with punctuation split off as its own
# tokens ("don't" stays one word); fortunes are dealt into train.txt / valid.txt /
# test.txt, 18 / 1 / 1 of every 20 (90/5/5, no topic bias), and vocab.txt is built
# from train.txt with `dltrain vocab --max-size 10000` (the Penn Treebank's size).
#
# usage: data/make_text_corpus.sh [OUTDIR]   (default: data/generated/fortunes)
# env:   DLTRAIN (the binary, default ./dltrain), FORTUNE_DIR (the text files)
# As root it installs the `fortunes` package when missing; otherwise it prints
# the command to run.
set -eu

. "$(dirname "$0")/common.sh"
find_dltrain
out=${1:-$(dirname "$0")/generated/fortunes}
src=${FORTUNE_DIR:-/usr/share/games/fortunes}

if [ ! -r "$src/fortunes" ] && [ -z "${FORTUNE_DIR:-}" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "$0: the 'fortunes' package is not installed; run as root (or with sudo):" >&2
    echo "  apt-get update && apt-get install -y fortunes" >&2
    exit 1
  fi
  echo "installing the Debian package 'fortunes'" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq fortunes >&2
fi

files=$(find "$src" -maxdepth 1 -type f ! -name '*.dat' ! -name '*.u8' | LC_ALL=C sort)
if [ -z "$files" ]; then
  echo "$0: no fortune files in $src" >&2
  exit 1
fi
mkdir -p "$out"

# One fortune per line, tokenized. \047 is the apostrophe: split off only at
# the edges of a word, so contractions stay whole.
# shellcheck disable=SC2086 # $files is a newline-separated list of plain paths
LC_ALL=C awk -v out="$out" '
function flush() {
  gsub(/[ \t]+/, " ", text)
  sub(/^ /, "", text)
  sub(/ $/, "", text)
  if (text != "") {
    k = n++ % 20
    print text > (out "/" (k == 18 ? "valid" : k == 19 ? "test" : "train") ".txt")
  }
  text = ""
}
FNR == 1 { flush() }
$0 == "%" { flush(); next }
{
  line = tolower($0)
  gsub(/[][!"#$%&()*+,.\/:;<=>?@\\^_`{|}~-]/, " & ", line)
  gsub(/(^|[ \t])\047/, "& ", line)
  gsub(/\047([ \t]|$)/, " &", line)
  text = text " " line
}
END { flush() }
' $files

"$DLTRAIN" vocab "$out/train.txt" --max-size 10000 > "$out/vocab.txt"
for f in train valid test; do
  printf '%s: %s\n' "$f.txt" "$(wc -w < "$out/$f.txt") words" >&2
done
echo "fortunes corpus in $out (train.txt, valid.txt, test.txt, vocab.txt)"
