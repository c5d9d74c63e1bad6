#!/bin/sh
# bench/engines.sh: Convolution's engines side by side. Every net is copied with
# `engine: native` and with `engine: onednn` on each Convolution (sed), and
# `dltrain bench` times both, alternating, for a number of rounds at each thread
# count. Prints per convolution the forward and backward ms of each engine and
# native / onednn, then the whole iteration. Each figure is the median over the
# rounds (of the bench's per-layer mean and iteration median). POSIX sh and awk.
set -u

usage() {
  cat <<EOF
usage: bench/engines.sh [options] NET.yaml...

options:
  --threads LIST   comma list of thread counts (default: 2,1)
  --rounds N       runs of each engine, alternating which goes first (default 3)
  --iterations N   timed iterations of each run (default 10)
  --warmup N       warm-up iterations of each run (default 2)
  --keep DIR       keep the configs and raw outputs in DIR (default: a temp dir, removed)
  --help

environment: DLTRAIN, the dltrain binary [REPO/dltrain]
EOF
}

die() {
  echo "engines.sh: $*" >&2
  exit 2
}

repo=$(cd "$(dirname "$0")/.." && pwd)
dltrain=${DLTRAIN:-$repo/dltrain}
threads=2,1
rounds=3
iterations=10
warmup=2
keep=
nets=
while [ $# -gt 0 ]; do
  case $1 in
  --threads) threads=${2:?}; shift ;;
  --rounds) rounds=${2:?}; shift ;;
  --iterations) iterations=${2:?}; shift ;;
  --warmup) warmup=${2:?}; shift ;;
  --keep) keep=${2:?}; shift ;;
  --help | -h) usage; exit 0 ;;
  -*) die "unknown option $1 (--help lists them)" ;;
  *) nets="$nets $1" ;;
  esac
  shift
done
[ -n "$nets" ] || { usage >&2; exit 2; }
[ -x "$dltrain" ] || die "no dltrain at $dltrain (make, or set DLTRAIN)"

if [ -n "$keep" ]; then
  dir=$keep
  mkdir -p "$dir" || die "cannot make $dir"
else
  dir=$(mktemp -d) || die "mktemp failed"
  trap 'rm -rf "$dir"' EXIT
fi

# Both YAML styles: `type: Convolution,` inside a flow mapping, and a
# `type: Convolution` line of a block mapping (engine goes on the next line).
variant() { # NET ENGINE OUT; an engine the net already names is replaced
  sed -e '/^ *engine: *[a-z]* *\(#.*\)\{0,1\}$/d' \
    -e 's/, *engine: *[a-z]*\([,}]\)/\1/' \
    -e 's/{ *engine: *[a-z]*, */{/' \
    -e "s/type: Convolution,/type: Convolution, engine: $2,/" \
    -e "s/^\( *\)type: Convolution *\$/&\\
\1engine: $2/" "$1" >"$3"
}

echo "dltrain bench, engine native vs onednn: $rounds rounds, $iterations timed iterations after" \
  "$warmup warm-up; $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for net in $nets; do
  [ -f "$net" ] || die "no such net: $net"
  name=$(basename "$(dirname "$net")")_$(basename "$net" .yaml)
  for e in native onednn; do variant "$net" $e "$dir/$name.$e.yaml"; done
  for t in $(echo "$threads" | tr , ' '); do
    load0=$(cut -d' ' -f1 /proc/loadavg)
    r=1
    while [ "$r" -le "$rounds" ]; do
      if [ $((r % 2)) -eq 1 ]; then order="native onednn"; else order="onednn native"; fi
      for e in $order; do
        out=$dir/$name.$e.t$t.r$r.txt
        "$dltrain" bench "$dir/$name.$e.yaml" --threads "$t" --iterations "$iterations" \
          --warmup "$warmup" >"$out" 2>&1 || die "dltrain bench failed: $(tail -3 "$out")"
      done
      r=$((r + 1))
    done
    echo
    echo "$name, $t thread(s) (1-minute load average $load0 before, $(cut -d' ' -f1 /proc/loadavg) after):"
    # Per run: "conv NAME FWD BWD" lines and "iter MEDIAN"; then medians over the rounds.
    for e in native onednn; do
      for f in "$dir/$name.$e.t$t".r*.txt; do
        awk -v e=$e '$2 == "Convolution" { print e, "conv", $1, $3, $4 }
                     /^iteration: median/ { print e, "iter", $3 }' "$f"
      done
    done | awk '
      function median(list,   n, a, i, j, t) {
        n = split(list, a, " ")
        for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
      }
      $2 == "conv" { if (!(($3) in seen)) { seen[$3] = 1; order[++nl] = $3 }
                     f[$1, $3] = f[$1, $3] " " $4; b[$1, $3] = b[$1, $3] " " $5 }
      $2 == "iter" { it[$1] = it[$1] " " $3 }
      END {
        printf "%-12s %12s %12s %12s %12s %9s\n", "layer", "native fwd", "native bwd", "onednn fwd", "onednn bwd", "ratio"
        for (i = 1; i <= nl; i++) {
          l = order[i]
          nf = median(f["native", l]); nb = median(b["native", l])
          of = median(f["onednn", l]); ob = median(b["onednn", l])
          printf "%-12s %12.2f %12.2f %12.2f %12.2f %8.2fx\n", l, nf, nb, of, ob, (nf + nb) / (of + ob)
        }
        ni = median(it["native"]); oi = median(it["onednn"])
        printf "%-12s %25.1f %25.1f %8.2fx\n", "iteration", ni, oi, ni / oi
      }'
  done
done
