#!/usr/bin/env bash
# Fuzzes kiln's parsers of outside bytes with libFuzzer: IDX files (plain and gzip), .npz archives,
# the file-cache format, image decoding and whole-model .kiln files. Builds the targets with clang
# (ASan + UBSan) in build-fuzz/, then runs each for SECONDS (default 30) from its seed corpus in fuzz/corpus/.
# New inputs go to a temporary folder, so the corpus in the repository stays as it is.
#   scripts/fuzz.sh [SECONDS]
# A crash stops with the input that caused it saved as build-fuzz/crash-<target>-<hash>: move it to
# fuzz/regressions/fuzz_<target>/ (ctest then replays it in every build) and fix the cause.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"
jobs="$(nproc)"

cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DKILN_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DKILN_BUILD_TESTS=OFF -DKILN_BUILD_APPS=OFF >/dev/null
cmake --build build-fuzz -j"$jobs"

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
for target in idx npz cache image model; do
  mkdir -p "$scratch/$target"
  cp fuzz/corpus/"$target"/* "$scratch/$target/"
  echo "== fuzz_$target for ${seconds} s"
  # Any input may ask for at most 2 GB at once and 4 GB in all: more is a bug (an unchecked size).
  if ! build-fuzz/bin/fuzz_"$target" -max_total_time="$seconds" -rss_limit_mb=4096 -malloc_limit_mb=2048 -timeout=10 \
      -print_final_stats=1 -artifact_prefix="build-fuzz/crash-$target-" "$scratch/$target" 2>"$scratch/$target.log"; then
    tail -40 "$scratch/$target.log"
    echo "fuzz_$target failed: its input is build-fuzz/crash-$target-* (see above)" >&2
    exit 1
  fi
  grep -E "stat::number_of_executed_units|stat::new_units_added" "$scratch/$target.log" | tr '\n' ' '
  echo
done
