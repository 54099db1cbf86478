#!/usr/bin/env bash
# Installs what is missing, builds, and runs evlogd in the foreground on 127.0.0.1:7070 with
# its data in ./data (inside the checkout) and Prometheus metrics on
# http://127.0.0.1:9070/metrics. Extra arguments go to evlogd (see evlogd --help; a later
# --metrics-listen= overrides, empty turns metrics off).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
BUILD_DIR=${BUILD_DIR:-build}
mkdir -p data
exec "$BUILD_DIR/bin/evlogd" --listen=127.0.0.1:7070 --data-dir="$PWD/data" \
  --metrics-listen=127.0.0.1:9070 "$@"
