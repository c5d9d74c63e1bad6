# Shared by the data/make_*.sh scripts (sourced, not run): where dltrain and
# Fashion-MNIST are.
# shellcheck shell=sh

# The dltrain binary: $DLTRAIN, else the one built in the repository.
find_dltrain() {
  repo=$(cd "$(dirname "$0")/.." && pwd)
  DLTRAIN=${DLTRAIN:-$repo/dltrain}
  if [ ! -x "$DLTRAIN" ]; then
    echo "$0: no dltrain binary at $DLTRAIN: run 'make' in $repo first (or set DLTRAIN)" >&2
    exit 1
  fi
}

# Fashion-MNIST's idx files: $FASHION_DIR, else the Debian data-set location.
find_fashion() {
  FASHION_DIR=${FASHION_DIR:-/usr/share/datasets/fashion-mnist}
  for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz \
    t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz; do
    if [ ! -r "$FASHION_DIR/$f" ]; then
      echo "$0: $FASHION_DIR/$f not found; set FASHION_DIR to the folder of the Fashion-MNIST" \
        "idx files (see scripts/setup.sh)" >&2
      exit 1
    fi
  done
}
