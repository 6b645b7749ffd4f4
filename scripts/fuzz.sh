#!/usr/bin/env bash
# Fuzzes kiln's parsers of outside bytes with libFuzzer: IDX files (plain and gzip), .npz archives,
# the file-cache format, image decoding and whole-model .kiln files. Builds the targets with clang
# (ASan + UBSan) in build-fuzz/, then runs each for SECONDS (default 30), one per core at a time,
# from its seed corpus in fuzz/corpus/.
# New inputs go to a temporary folder, so the corpus in the repository stays as it is.
#   scripts/fuzz.sh [SECONDS]
# A crash stops with the input that caused it saved as build-fuzz/crash-<target>-<hash>: move it to
# fuzz/regressions/fuzz_<target>/ (ctest then replays it in every build) and fix the cause.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"
jobs="$(nproc)"

# -O1 with line tables only, as the sanitizer builds in scripts/test.sh: half the compile time of
# -O2 -g, and a crash still names file and line. A new build-fuzz/ builds the fuzz targets alone;
# one that scripts/test.sh made also holds the sanitizer suite, and keeps it.
configure=(-DCMAKE_CXX_COMPILER=clang++ -DKILN_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
           -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" -DKILN_BUILD_APPS=OFF)
[ -f build-fuzz/CMakeCache.txt ] || configure+=(-DKILN_BUILD_TESTS=OFF)
cmake -S . -B build-fuzz "${configure[@]}" >/dev/null
cmake --build build-fuzz -j"$jobs"

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

# One target: fuzzes from a copy of its corpus, and leaves its exit status in $scratch/<target>.status.
fuzz_target() {
  local target="$1"
  mkdir -p "$scratch/$target"
  cp fuzz/corpus/"$target"/* "$scratch/$target/"
  # Any input may ask for at most 2 GB at once and 4 GB in all: more is a bug (an unchecked size).
  local status=0
  build-fuzz/bin/fuzz_"$target" -max_total_time="$seconds" -rss_limit_mb=4096 -malloc_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="build-fuzz/crash-$target-" "$scratch/$target" 2>"$scratch/$target.log" || status=$?
  echo "$status" >"$scratch/$target.status"
}

# The targets run side by side, one per core.
targets=(idx npz cache image model)
for target in "${targets[@]}"; do
  echo "== fuzz_$target for ${seconds} s"
  fuzz_target "$target" &
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
done
wait

failed=0
for target in "${targets[@]}"; do
  if [ "$(cat "$scratch/$target.status")" != 0 ]; then
    tail -40 "$scratch/$target.log"
    echo "fuzz_$target failed: its input is build-fuzz/crash-$target-* (see above)" >&2
    failed=1
  else
    echo "fuzz_$target: $(grep -E "stat::number_of_executed_units|stat::new_units_added" "$scratch/$target.log" | tr '\n' ' ')"
  fi
done
exit "$failed"
