#!/usr/bin/env bash
# The test command: installs what is missing, builds in Release, runs the whole suite with ctest,
# then builds the suite again with AddressSanitizer + UndefinedBehaviorSanitizer and runs it.
# Set KILN_SKIP_SANITIZERS=1 to run only the Release suite.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)

scripts/setup.sh
scripts/build.sh -DKILN_BUILD_TESTS=ON -DKILN_BUILD_APPS=ON
(cd build && ctest --output-on-failure -j"$jobs")

if [ "${KILN_SKIP_SANITIZERS:-0}" != 1 ]; then
  echo "== the suite again under AddressSanitizer + UndefinedBehaviorSanitizer"
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKILN_SANITIZE=address -DKILN_BUILD_APPS=OFF
  cmake --build build-asan -j"$jobs" --target kiln_tests
  (cd build-asan && ctest --output-on-failure -j"$jobs" -E consumer_project)
fi
