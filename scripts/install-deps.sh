#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs, from Debian 12 packages, exactly what mdlm needs to build, test and benchmark.
# Does nothing when everything is already present. Run as root (or with sudo available).
set -euo pipefail

packages=(
  build-essential cmake ninja-build git          # toolchain
  catch2 librapidcheck-dev                       # tests (Catch2 v2 + rapidcheck)
  libbenchmark-dev                               # bench/ (Google Benchmark)
  libeigen3-dev xtensor-dev libxsimd-dev         # reference models, CPU backend, SIMD kernels
  nlohmann-json3-dev libcli11-dev                # checkpoint reader, command-line tool
  libpcre2-dev libutf8proc-dev pkg-config        # tokenizer/ (Unicode regexes, NFC)
  nodejs                                         # tokenizer oracles (@huggingface/tokenizers, jinja) via npm
  clang libclang-rt-14-dev libomp-dev            # libFuzzer target of the safetensors parser (clang + its OpenMP)
  python3 python3-torch python3-numpy python3-matplotlib   # golden tests, peers, training, plots
  libopenblas0-pthread                           # fast BLAS behind Debian's torch (else reference BLAS)
  libopenblas-pthread-dev                        # the CPU backend's matrix products (cblas_sgemm)
  python3-dev pybind11-dev python3-pybind11 python3-pytest   # Python package mdlm (python/)
  python3-pip python3-setuptools python3-wheel python3-venv  # pip install . (setuptools backend)
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# npm comes with NodeSource's nodejs package, but is a package of its own in Debian.
if ! command -v npm >/dev/null 2>&1; then missing+=(npm); fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
