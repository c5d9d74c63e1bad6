#!/usr/bin/env bash
# Installs the Debian packages dltrain needs, if any are missing. As root it runs
# apt-get; otherwise it prints the exact command and stops.
set -euo pipefail

packages=(build-essential make pkg-config libyaml-dev libopenblas-dev libpng-dev zlib1g-dev check
          libdnnl-dev dataset-fashion-mnist fortunes)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "dltrain setup: missing Debian packages: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "run as root (or with sudo):"
  echo "  apt-get update && apt-get install -y ${missing[*]}"
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}"
