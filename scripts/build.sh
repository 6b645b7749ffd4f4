#!/usr/bin/env bash
# Configures and builds kiln in Release into build/ (executables in build/bin/).
# Extra arguments go to CMake's configure step, e.g. scripts/build.sh -DKILN_NATIVE=OFF;
# KILN_BUILD_TARGET=name builds one target instead of all.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build build -j"$jobs" ${KILN_BUILD_TARGET:+--target "$KILN_BUILD_TARGET"}
