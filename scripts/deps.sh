#!/usr/bin/env bash
# Install what loom needs to build and test on Debian 12, as root.
# Idempotent: asks apt only for packages that are missing, and runs
# `apt-get update` at most once, only when something must be installed.
# Usage: scripts/deps.sh [--bench]   (--bench adds the comparison servers)
set -euo pipefail

pkgs=(
  build-essential cmake pkg-config
  libuv1-dev libjansson-dev node-llhttp libssl-dev zlib1g-dev libsqlite3-dev liburing-dev
  libhiredis-dev libnghttp2-dev libbrotli-dev libzstd-dev libpsl-dev publicsuffix
  libpq-dev postgresql
  clang libclang-rt-14-dev llvm
  curl python3-aiohttp python3-brotli python3-zstandard python3-websockets python3-cryptography
  nginx-light redis-server wrk tinyproxy
  nodejs node-ws
  abigail-tools
  chromium
  nghttp2-client python3-h2
  # operating loom (issue 22): systemd notify/activation, the .deb and its
  # checks, the metrics and dashboard tests
  libsystemd-dev systemd dpkg-dev file lintian man-db
  python3-prometheus-client
)
if [ "${1:-}" = "--bench" ]; then
  pkgs+=(h2o nodejs gnuplot-nox linux-perf valgrind)
  # bench/wl_tfb.py: aiohttp + asyncpg the way TFB's aiohttp entry runs it
  pkgs+=(python3-asyncpg python3-jinja2 python3-ujson python3-uvloop)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "deps.sh: missing packages: ${missing[*]}; run as root to install them" >&2
  exit 1
fi
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# nginx, redis, postgresql and tinyproxy packages start system services; tests start their own.
for svc in nginx redis-server postgresql tinyproxy; do
  if command -v systemctl >/dev/null 2>&1; then systemctl disable --now "$svc" >/dev/null 2>&1 || true; fi
  service "$svc" stop >/dev/null 2>&1 || true
done
