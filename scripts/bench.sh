#!/usr/bin/env bash
# Builds kiln in Release and runs every benchmark, kiln beside PyTorch in the same run, then writes
# the tables as Markdown to build/bench/performance.md (docs/performance.md summarises them).
# Everything runs at normal priority, as users train; the figures are medians of several runs,
# because other work on the machine moves single ones.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --bench
jobs=$(nproc 2>/dev/null || echo 2)
out=build/bench
mkdir -p "$out"

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DKILN_BUILD_APPS=ON -DKILN_MPI=ON >/dev/null
cmake --build build -j"$jobs" --target kiln-bench-model kiln-bench-pipeline kiln-bench-images kiln-bench-convnet \
  kiln-bench-distributed
# The same library with Eigen calling OpenBLAS, to compare the two GEMM back ends.
cmake -S . -B build-openblas -DCMAKE_BUILD_TYPE=Release -DKILN_BUILD_APPS=ON -DKILN_BUILD_TESTS=OFF \
      -DKILN_GEMM=openblas >/dev/null
cmake --build build-openblas -j"$jobs" --target kiln-bench-model

build/bin/kiln-bench-model --json "$out/model.json" --markdown "$out/model.md"
build-openblas/bin/kiln-bench-model --no-peer --json "$out/model-openblas.json" --markdown "$out/model-openblas.md"
build/bin/kiln-bench-pipeline --json "$out/pipeline.json" | tee "$out/pipeline.txt"
build/bin/kiln-bench-images --json "$out/images.json" | tee "$out/images.txt"
build/bin/kiln-bench-convnet --json "$out/convnet.json" | tee "$out/convnet.txt"
build/bin/kiln-bench-distributed --json "$out/distributed.json" | tee "$out/distributed.txt"

{
  echo "## Machine"
  echo
  echo "- $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB"
  echo "- $(g++ --version | head -1); PyTorch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)' 2>/dev/null || echo 'not installed')"
  echo "- $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "## Models (kiln-bench-model)"
  echo
  cat "$out/model.md"
  echo
  echo "## The same with KILN_GEMM=openblas (kiln only)"
  echo
  cat "$out/model-openblas.md"
  echo
  echo "## Pipeline (kiln-bench-pipeline)"
  echo
  echo '```'
  cat "$out/pipeline.txt"
  echo '```'
  echo
  echo "## Images (kiln-bench-images)"
  echo
  echo '```'
  cat "$out/images.txt"
  echo '```'
  echo
  echo "## Convnet (kiln-bench-convnet)"
  echo
  cat "$out/convnet.txt"
  echo
  echo "## Distributed (kiln-bench-distributed)"
  echo
  echo '```'
  cat "$out/distributed.txt"
  echo '```'
} > "$out/performance.md"
echo "Wrote $out/performance.md"
