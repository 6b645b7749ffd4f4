#!/usr/bin/env bash
# The test command: installs what is missing, builds in Release, runs the whole suite with ctest,
# then builds the suite again with AddressSanitizer + UndefinedBehaviorSanitizer and runs it, and
# last runs the pipeline's suites under ThreadSanitizer (OpenMP's runtime is not instrumented, so
# tests/tsan.supp hides the reports that come from inside it), and last fuzzes the parsers of
# outside bytes for 25 s each (scripts/fuzz.sh).
# Set KILN_SKIP_SANITIZERS=1 to run only the Release suite, KILN_SKIP_FUZZ=1 to skip the fuzzing.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)

scripts/setup.sh
scripts/build.sh -DKILN_BUILD_TESTS=ON -DKILN_BUILD_APPS=ON
(cd build && ctest --output-on-failure -j"$jobs" -LE soak)

if [ "${KILN_SKIP_SANITIZERS:-0}" != 1 ]; then
  echo "== the suite again under AddressSanitizer + UndefinedBehaviorSanitizer"
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKILN_SANITIZE=address -DKILN_BUILD_APPS=OFF
  cmake --build build-asan -j"$jobs"  # the suite and the fuzz targets' replays
  (cd build-asan && ctest --output-on-failure -j"$jobs" -LE soak -E 'consumer_project|all_suites_in_one_process')

  echo "== the pipeline suites under ThreadSanitizer"
  cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKILN_SANITIZE=thread -DKILN_BUILD_APPS=OFF
  cmake --build build-tsan -j"$jobs" --target kiln_tests
  # One suite at a time: they check that threads stop promptly, and TSan slows every thread down.
  (export TSAN_OPTIONS="suppressions=$PWD/tests/tsan.supp"
   cd build-tsan && ctest --output-on-failure -R 'test_dataset_ops|test_pipeline_threads|test_fit_dataset')
fi

if [ "${KILN_SKIP_FUZZ:-0}" != 1 ]; then
  echo "== the parsers fuzzed"
  scripts/fuzz.sh 25
fi
