#!/bin/sh
# Writes Fashion-MNIST as PNG files for ImageData: OUTDIR/train/CLASS/NNNNN.png and
# OUTDIR/test/CLASS/NNNNN.png (8-bit grey, 28x28; CLASS is "0-t-shirt" ..
# "9-ankle-boot", so the folders sort in label order), plus the list files
# OUTDIR/train.txt and OUTDIR/test.txt (`train/0-t-shirt/00001.png 0` lines).
# N (default: all) limits each split to its first N images.
#
# usage: data/make_png_from_fashion.sh [OUTDIR [N]]   (default: data/generated/png-fashion)
# env:   DLTRAIN (the binary, default ./dltrain), FASHION_DIR (the idx files)
set -eu

. "$(dirname "$0")/common.sh"
find_dltrain
find_fashion
out=${1:-$(dirname "$0")/generated/png-fashion}
count=${2:-}
case $count in
  *[!0-9]* | 0*)
    echo "$0: N must be a positive integer, got '$count'" >&2
    exit 2
    ;;
esac
classes=0-t-shirt,1-trouser,2-pullover,3-dress,4-coat,5-sandal,6-shirt,7-sneaker,8-bag,9-ankle-boot
mkdir -p "$out"

for split in train test; do
  prefix=$split
  [ "$split" = test ] && prefix=t10k
  rm -f "$out/$split.txt"
  rm -rf "${out:?}/$split"
  # shellcheck disable=SC2086 # ${count:+...} is meant to split into two words
  "$DLTRAIN" convert png "$FASHION_DIR/$prefix-images-idx3-ubyte.gz" \
    "$FASHION_DIR/$prefix-labels-idx1-ubyte.gz" "$out/$split" \
    --list "$out/$split.txt" --classes "$classes" ${count:+--count $count}
done
echo "PNG Fashion-MNIST in $out (lists: $out/train.txt, $out/test.txt)"
