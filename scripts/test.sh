#!/usr/bin/env bash
# The test command: installs what is missing, builds in Release (with MPI), runs the whole suite with ctest,
# then builds the suite again with AddressSanitizer + UndefinedBehaviorSanitizer and runs it, then
# runs the pipeline's suites under ThreadSanitizer (OpenMP's runtime is not instrumented, so
# tests/tsan.supp hides the reports that come from inside it), and last fuzzes the parsers of
# outside bytes for 10 s each (scripts/fuzz.sh). The ASan + UBSan suite is built with clang in
# build-fuzz/, instrumented for libFuzzer too, so the fuzzers link against the same library build
# instead of a third one. The sanitizer builds leave out what they do not run (apps and
# benchmarks; under TSan all but the pipeline's suites) to keep the whole under 20 min.
# Set KILN_SKIP_SANITIZERS=1 to run only the Release suite, KILN_SKIP_FUZZ=1 to skip the fuzzing.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)

scripts/setup.sh
# With MPI (scripts/setup.sh installs Open MPI): ctest also runs distributed training on 2 ranks.
scripts/build.sh -DKILN_BUILD_TESTS=ON -DKILN_BUILD_APPS=ON -DKILN_MPI=ON
(cd build && ctest --output-on-failure -j"$jobs" -LE soak)

if [ "${KILN_SKIP_SANITIZERS:-0}" != 1 ]; then
  sanitizer_flags="-O1 -g1 -DNDEBUG"
  pipeline_suites="test_dataset_ops.cpp;test_pipeline_threads.cpp;test_fit_dataset.cpp"
  echo "== the suite again under AddressSanitizer + UndefinedBehaviorSanitizer"
  # -O1 with line tables only: half the compile time of -O2 -g, and reports still name file and line.
  cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DKILN_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="$sanitizer_flags" -DKILN_BUILD_TESTS=ON -DKILN_BUILD_APPS=OFF
  cmake --build build-fuzz -j"$jobs"  # the suite, the fuzz targets' replays and the fuzz targets
  (cd build-fuzz && ctest --output-on-failure -j"$jobs" -LE soak -E 'consumer_project|all_suites_in_one_process')

  echo "== the pipeline suites under ThreadSanitizer"
  cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="$sanitizer_flags" \
    -DKILN_SANITIZE=thread -DKILN_BUILD_APPS=OFF -DKILN_TEST_SUITES="$pipeline_suites"
  cmake --build build-tsan -j"$jobs" --target kiln_tests
  # One suite at a time: they check that threads stop promptly, and TSan slows every thread down.
  (export TSAN_OPTIONS="suppressions=$PWD/tests/tsan.supp"
   cd build-tsan && ctest --output-on-failure -R 'test_dataset_ops|test_pipeline_threads|test_fit_dataset' -E all_suites)
fi

if [ "${KILN_SKIP_FUZZ:-0}" != 1 ]; then
  echo "== the parsers fuzzed"
  scripts/fuzz.sh 10
fi
