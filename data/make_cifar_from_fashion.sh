#!/bin/sh
# Writes a CIFAR-10-format data set made from Fashion-MNIST, so that CifarData has
# real, checkable data without a download: data_batch_1.bin .. data_batch_5.bin
# (the first 50,000 training images, 10,000 each) and test_batch.bin (the 10,000
# test images). Each 28x28 grey image is centred on a black 32x32 canvas and
# copied to the 3 channels; labels are Fashion-MNIST's 0-9.
#
# usage: data/make_cifar_from_fashion.sh [OUTDIR]   (default: data/generated/cifar-fashion)
# env:   DLTRAIN (the binary, default ./dltrain), FASHION_DIR (the idx files)
set -eu

. "$(dirname "$0")/common.sh"
find_dltrain
find_fashion
out=${1:-$(dirname "$0")/generated/cifar-fashion}
mkdir -p "$out"

images=$FASHION_DIR/train-images-idx3-ubyte.gz
labels=$FASHION_DIR/train-labels-idx1-ubyte.gz
for b in 1 2 3 4 5; do
  "$DLTRAIN" convert cifar "$images" "$labels" "$out/data_batch_$b.bin" \
    --first $(((b - 1) * 10000)) --count 10000
done
"$DLTRAIN" convert cifar "$FASHION_DIR/t10k-images-idx3-ubyte.gz" \
  "$FASHION_DIR/t10k-labels-idx1-ubyte.gz" "$out/test_batch.bin"
"$DLTRAIN" convert mean "$out/mean.bin" "$out"/data_batch_?.bin
cat > "$out/batches.meta.txt" <<'NAMES'
t-shirt
trouser
pullover
dress
coat
sandal
shirt
sneaker
bag
ankle-boot
NAMES
echo "CIFAR-format Fashion-MNIST in $out"
