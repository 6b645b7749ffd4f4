#!/usr/bin/env bash
# Installs the Debian packages kiln needs to build, test and run its demo. Idempotent: it installs
# only what is missing, and does nothing (not even apt-get update) when everything is there.
# Runs apt-get as root, or through sudo for a normal user. `scripts/setup.sh --bench` also installs
# what the benchmarks compare with (PyTorch, and the OpenMP build of OpenBLAS).
set -euo pipefail

packages=(
  cmake g++ make pkg-config     # toolchain
  libeigen3-dev                 # Eigen: tensors' matrix views and GEMMs
  libstb-dev                    # stb_image: image decoding
  doctest-dev                   # the test framework
  zlib1g-dev                    # .gz IDX files, deflated .npz entries
  nlohmann-json3-dev            # JSON: model files' config.json, histories, benchmark results
  libcli11-dev                  # CLI11: the apps' command-line flags
  dataset-fashion-mnist         # the default data set (/usr/share/datasets/fashion-mnist)
  python3-numpy                 # tests check that numpy.load reads kiln's weight files
  clang libfuzzer-14-dev        # the sanitizer suite and scripts/fuzz.sh: the parsers fuzzed with libFuzzer
  libopenmpi-dev openmpi-bin    # KILN_MPI=ON: the test command runs distributed training on 2 ranks
)
if [ "${1:-}" = "--bench" ]; then
  packages+=(
    python3-torch               # the peer the benchmarks compare kiln with
    python3-pil                 # its image decoding (bench/peers/torch_images.py)
    libopenblas0-openmp         # PyTorch's fastest BLAS here
    libopenblas-openmp-dev      # for the KILN_GEMM=openblas build
    linux-perf                  # profiling
  )
fi

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages are installed"
  exit 0
fi

as_root=()
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "setup: need root or sudo to install: ${missing[*]}" >&2
    exit 1
  fi
  as_root=(sudo)
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -q
"${as_root[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
