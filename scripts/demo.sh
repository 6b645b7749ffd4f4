#!/usr/bin/env bash
# The demo: installs what is missing, builds in Release, and trains the reference model on
# Fashion-MNIST. Arguments go to kiln-mnist, e.g. scripts/demo.sh --epochs 10 --seed 42
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
KILN_BUILD_TARGET=kiln-mnist scripts/build.sh -DKILN_BUILD_APPS=ON >/dev/null
exec build/bin/kiln-mnist "$@"
