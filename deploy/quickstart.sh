#!/usr/bin/env bash
# quickstart.sh - the first command of the README. On a fresh Debian 12
# machine: installs the missing packages (deploy/install-deps.sh; needs
# root or sudo), builds Saturn with meson + ninja in build/, then trains the
# default job through saturnd and 2 workers on this machine with progress
# shown:  cnn-small, W4A4, SAT + CG-PACT, Fashion-MNIST, 2 workers.
#
#   deploy/quickstart.sh                 the default job
#   deploy/quickstart.sh --epochs 2      extra arguments go to `saturn run`
#
# The model lands in ./runs/cnn-small-w4a4/model.safetensors.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/install-deps.sh
if [ ! -d build ]; then
    meson setup build
fi
ninja -C build
exec build/client/saturn run examples/cnn-small-w4a4.json --workers 2 "$@"
