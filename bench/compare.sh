#!/bin/sh
# bench/compare.sh: dltrain and every installed peer (PyTorch from Debian,
# PyTorch from PyPI in .venv-torch, TensorFlow in .venv-tf) side by side on the
# DLBench nets: the same nets, batch sizes and thread counts, the runs
# alternating, all under one environment. Prints per net and thread count
# dltrain's median ms per mini-batch, each peer's, and dltrain's time as a
# ratio of the fastest peer's. POSIX sh; Python only runs the peers.
set -u

usage() {
  cat <<EOF
usage: bench/compare.sh [options]

options:
  --quick          2 timed iterations after 1 warm-up of one net (fcn_r) at 1 thread:
                   checks that every installed peer runs end to end
  --nets LIST      comma list of fcn_s,fcn_r,alexnet_s,alexnet_r,lstm (default: all)
  --threads LIST   comma list of thread counts (default: 1 and all cores)
  --iterations N   timed iterations of each run (default 10)
  --warmup N       warm-up iterations of each run (default 2)
  --rounds N       run every tool N times, alternating the order (default 1); the
                   median of the rounds is printed, then each round's ratio
  --batch N        one batch size for every net instead of the study's CPU sizes
  --peer-args ARGS extra options for every peer script, e.g. "--malloc tcmalloc --omp-passive"
  --channels-last  also run each PyTorch peer in channels-last (NHWC) memory format on the
                   conv nets (alexnet_s, alexnet_r), as PyTorch recommends on the CPU: the
                   peers torch-debian-cl and torch-pypi-cl
  --help

environment (defaults in brackets):
  DLTRAIN          the dltrain binary [REPO/dltrain]
  DLBENCH_CONFIGS  the nets for dltrain [REPO/configs/dlbench]
  DLBENCH_ANCHORS  torch_dlbench.py and tf_dlbench.py [/work/shared/anchors]
  TORCH_PYTHON     a python3 with Debian's python3-torch [/usr/bin/python3]
  TORCH_VENV       a venv with PyTorch from PyPI [REPO/.venv-torch]
  TF_VENV          a venv with tensorflow-cpu [REPO/.venv-tf]
EOF
}

die() {
  echo "compare.sh: $*" >&2
  exit 2
}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DLTRAIN=${DLTRAIN:-$ROOT/dltrain}
CONFIGS=${DLBENCH_CONFIGS:-$ROOT/configs/dlbench}
ANCHORS=${DLBENCH_ANCHORS:-/work/shared/anchors}
TORCH_PYTHON=${TORCH_PYTHON:-/usr/bin/python3}
TORCH_VENV=${TORCH_VENV:-$ROOT/.venv-torch}
TF_VENV=${TF_VENV:-$ROOT/.venv-tf}

NETS="" THREADS="" ITERS="" WARMUP="" ROUNDS=1 BATCH="" PEER_ARGS="" QUICK=0 CL=0
while [ $# -gt 0 ]; do
  case "$1" in
  --quick) QUICK=1 ;;
  --channels-last) CL=1 ;;
  --nets) [ $# -ge 2 ] || die "--nets needs a value"; NETS=$(echo "$2" | tr , ' '); shift ;;
  --threads) [ $# -ge 2 ] || die "--threads needs a value"; THREADS=$(echo "$2" | tr , ' '); shift ;;
  --iterations) [ $# -ge 2 ] || die "--iterations needs a value"; ITERS=$2; shift ;;
  --warmup) [ $# -ge 2 ] || die "--warmup needs a value"; WARMUP=$2; shift ;;
  --rounds) [ $# -ge 2 ] || die "--rounds needs a value"; ROUNDS=$2; shift ;;
  --batch) [ $# -ge 2 ] || die "--batch needs a value"; BATCH=$2; shift ;;
  --peer-args) [ $# -ge 2 ] || die "--peer-args needs a value"; PEER_ARGS=$2; shift ;;
  --help | -h) usage; exit 0 ;;
  *) usage >&2; die "unexpected argument '$1'" ;;
  esac
  shift
done
for v in "$ITERS" "$WARMUP" "$ROUNDS" "$BATCH" $THREADS; do
  case "$v" in *[!0-9]*) die "expected a number, got '$v'" ;; esac
done
if [ "$QUICK" = 1 ]; then
  : "${NETS:=fcn_r}" "${THREADS:=1}" "${ITERS:=2}" "${WARMUP:=1}"
fi
CORES=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
: "${NETS:=fcn_s fcn_r alexnet_s alexnet_r lstm}" "${ITERS:=10}" "${WARMUP:=2}"
if [ -z "$THREADS" ]; then
  THREADS=1
  [ "$CORES" -gt 1 ] && THREADS="1 $CORES"
fi
for n in $NETS; do
  [ -r "$CONFIGS/$n.yaml" ] || die "no net $CONFIGS/$n.yaml"
done
[ -x "$DLTRAIN" ] || die "no dltrain binary at $DLTRAIN (run make, or set DLTRAIN)"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/dlcompare.XXXXXX") || die "cannot make a temporary folder"
trap 'rm -rf "$TMP"' EXIT INT TERM

# ---- the environment, printed once: every run below shares it ---------------
echo "dltrain vs peers on the DLBench nets ($(date -u '+%Y-%m-%d %H:%M:%S UTC'))"
CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
echo "cpu: ${CPU:-unknown}, $CORES cores online"
echo "OPENBLAS_CORETYPE: ${OPENBLAS_CORETYPE:-(not set)}"
echo "dltrain: $DLTRAIN ($("$DLTRAIN" --version 2>/dev/null))"
echo "nets: $NETS; threads: $THREADS; $ITERS timed iterations after $WARMUP warm-up;" \
  "$ROUNDS round(s), alternating${BATCH:+; batch $BATCH}"

# ---- peers: name, python, script, found? -------------------------------------
PEERS=""
peer_found() { # NAME PYTHON MODULE SCRIPT HOW
  if ! [ -x "$2" ] || ! ver=$("$2" -c "import $3; print($3.__version__)" 2>/dev/null); then
    echo "  $1: not installed (how to install: $5)"
  elif [ ! -r "$ANCHORS/$4" ]; then
    echo "  $1: $3 $ver, skipped: $ANCHORS/$4 not found (set DLBENCH_ANCHORS)"
  else
    echo "  $1: $3 $ver ($2)"
    PEERS="$PEERS $1"
    eval "PY_$(echo "$1" | tr - _)=\$2 SCRIPT_$(echo "$1" | tr - _)=\$4"
    if [ "$CL" = 1 ] && [ "$3" = torch ]; then
      echo "  $1-cl: the same in channels-last, on the conv nets"
      PEERS="$PEERS $1-cl"
      eval "PY_$(echo "$1" | tr - _)_cl=\$2 SCRIPT_$(echo "$1" | tr - _)_cl=\$4"
    fi
  fi
}
echo "peers:"
peer_found torch-debian "$TORCH_PYTHON" torch torch_dlbench.py \
  "apt-get install -y python3-torch, or set TORCH_PYTHON"
peer_found torch-pypi "$TORCH_VENV/bin/python" torch torch_dlbench.py \
  "python3 -m venv .venv-torch && .venv-torch/bin/pip install torch==2.15.0, or set TORCH_VENV"
peer_found tf "$TF_VENV/bin/python" tensorflow tf_dlbench.py \
  "python3 -m venv .venv-tf && .venv-tf/bin/pip install tensorflow-cpu==2.21.0, or set TF_VENV"
[ -n "$PEERS" ] || echo "  (no peer installed: only dltrain's times are printed)"
echo

# ---- runs ---------------------------------------------------------------------
TIME=""
[ -x /usr/bin/time ] && TIME="/usr/bin/time -f %M -o $TMP/rss"

# A number from JSON text: the first "KEY": VALUE.
json_num() {
  sed -n "s/.*\"$1\": *\([-0-9.eE+]*\).*/\1/p" "$2" | head -n 1
}

# run_tool TOOL NET THREADS: appends "ms rss_mb batch" to $TMP/res/NET.THREADS.TOOL.
run_tool() {
  out="$TMP/res/$2.$3.$1"
  rm -f "$TMP/out.json" "$TMP/rss"
  if [ "$1" = dltrain ]; then
    $TIME "$DLTRAIN" bench "$CONFIGS/$2.yaml" --threads "$3" --iterations "$ITERS" \
      --warmup "$WARMUP" ${BATCH:+--batch "$BATCH"} --json "$TMP/out.json" >"$TMP/log" 2>&1
  else
    var=$(echo "$1" | tr - _)
    py="" script="" extra=""
    case "$1" in
    *-cl)
      case "$2" in alexnet_*) extra=--channels-last ;; *) return ;; esac ;;
    esac
    eval "py=\$PY_$var script=\$SCRIPT_$var"
    # shellcheck disable=SC2086 # PEER_ARGS is a list of options
    $TIME "$py" "$ANCHORS/$script" --nets "$(echo "$2" | tr _ -)" --threads "$3" \
      --iters "$ITERS" --warmup "$WARMUP" ${BATCH:+--batch "$BATCH"} --json "$TMP/out.json" \
      $PEER_ARGS $extra >"$TMP/log" 2>&1
  fi
  rc=$?
  ms=""
  [ -r "$TMP/out.json" ] && ms=$(json_num median_ms "$TMP/out.json")
  if [ $rc -ne 0 ] || [ -z "$ms" ]; then
    echo "  $1 failed on $2 at $3 threads (exit $rc); its output ends:" >&2
    tail -n 5 "$TMP/log" | sed 's/^/    /' >&2
    return
  fi
  rss=-
  [ -s "$TMP/rss" ] && rss=$(awk 'NF { kb = $1 } END { if (kb != "") printf "%.0f", kb / 1024 }' "$TMP/rss")
  echo "$ms ${rss:--} $(json_num batch "$TMP/out.json")" >>"$out"
  echo "  $1 $2 ${3}T: $ms ms" >&2
}

mkdir -p "$TMP/res"
TOOLS="dltrain$PEERS"
REVERSED=$(for t in $TOOLS; do echo "$t"; done | awk '{ l[NR] = $0 } END { for (i = NR; i > 0; i--) print l[i] }')
r=1
while [ "$r" -le "$ROUNDS" ]; do
  order=$TOOLS
  [ $((r % 2)) -eq 0 ] && order=$REVERSED
  for n in $NETS; do
    for t in $THREADS; do
      for tool in $order; do run_tool "$tool" "$n" "$t"; done
    done
  done
  r=$((r + 1))
done

# ---- the table ------------------------------------------------------------------
# median FILE COLUMN: the median over rounds of one column ("-" when none).
median() {
  [ -s "$1" ] || { echo -; return; }
  awk -v c="$2" '$c != "-" { print $c }' "$1" | sort -n |
    awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else print v[int((NR + 1) / 2)] }'
}

# fmt VALUE: one decimal, or "-".
fmt() {
  if [ "$1" = - ]; then echo -; else awk -v v="$1" 'BEGIN { printf "%.1f", v }'; fi
}

printf '%-10s %7s %6s %12s' net threads batch "dltrain ms"
for p in $PEERS; do printf ' %15s' "$p ms"; done
printf ' %14s %14s' "fastest peer" "dltrain/peer"
printf ' %10s' "dltrain MB"
for p in $PEERS; do printf ' %15s' "$p MB"; done
echo
for n in $NETS; do
  for t in $THREADS; do
    base="$TMP/res/$n.$t"
    d=$(median "$base.dltrain" 1)
    batch=$(median "$base.dltrain" 3)
    printf '%-10s %7s %6s %12s' "$n" "$t" "$batch" "$(fmt "$d")"
    best=- bestname=-
    for p in $PEERS; do
      v=$(median "$base.$p" 1)
      printf ' %15s' "$(fmt "$v")"
      pb=$(median "$base.$p" 3)
      [ "$pb" != - ] && [ "$pb" != "$batch" ] &&
        echo "$p ran $n at batch $pb, dltrain at batch $batch" >>"$TMP/notes"
      if [ "$v" != - ] && { [ "$best" = - ] || awk -v a="$v" -v b="$best" 'BEGIN { exit !(a < b) }'; }; then
        best=$v bestname=$p
      fi
    done
    ratio=-
    [ "$best" != - ] && [ "$d" != - ] && ratio=$(awk -v a="$d" -v b="$best" 'BEGIN { printf "%.2f", a / b }')
    printf ' %14s %14s' "$bestname" "$ratio"
    echo "$n $t $bestname" >>"$TMP/fastest"
    printf ' %10s' "$(median "$base.dltrain" 2)"
    for p in $PEERS; do printf ' %15s' "$(median "$base.$p" 2)"; done
    echo
  done
done
[ -s "$TMP/notes" ] && sed 's/^/warning: /' "$TMP/notes"

# With rounds: the ratio in each round against the same (fastest) peer, which
# shows how far the machine's noise moves it.
if [ "$ROUNDS" -gt 1 ] && [ -s "$TMP/fastest" ]; then
  echo
  echo "dltrain/peer round by round (against the fastest peer above), then the range:"
  while read -r n t p; do
    base="$TMP/res/$n.$t"
    if [ "$p" = - ] || [ ! -s "$base.dltrain" ] || [ ! -s "$base.$p" ]; then continue; fi
    [ "$(wc -l <"$base.dltrain")" -eq "$(wc -l <"$base.$p")" ] || continue # a run failed
    paste -d ' ' "$base.dltrain" "$base.$p" | awk -v n="$n" -v t="$t" -v p="$p" '
      { r = $1 / $4; s = s sprintf(" %.2f", r)
        if (NR == 1 || r < lo) lo = r
        if (NR == 1 || r > hi) hi = r }
      END { printf "%-10s %2sT vs %s:%s (%.2f-%.2f)\n", n, t, p, s, lo, hi }'
  done <"$TMP/fastest"
fi
echo
echo "ms: median ms per mini-batch (one training iteration: forward, loss, backward, SGD"
echo "momentum 0.9 update); dltrain/peer: dltrain's time over the fastest peer's (below 1:"
echo "dltrain is faster); MB: peak RSS of the whole process (/usr/bin/time %M)."
