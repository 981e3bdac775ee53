#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds and runs every test: a -Werror build, then an AddressSanitizer + UBSan build of the same
# tests. This is the README's test command and what .ci/run calls. The CUDA backend is compiled (nvcc,
# -Werror) in the first build when nvcc is found; its GPU tests (label cuda) report skipped without a
# GPU (scripts/gpu-check.sh runs them on one). The sanitizer build leaves CUDA out.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
jobs=$(nproc)

echo "== build (Release, -Wall -Wextra -Werror)"
cmake -S . -B build/ci -G Ninja -DCMAKE_BUILD_TYPE=Release -DMDLM_WARNINGS_AS_ERRORS=ON
cmake --build build/ci -j "$jobs"
(cd build/ci && ctest --output-on-failure -j "$jobs")

if [ "${MDLM_SKIP_SANITIZERS:-0}" != "1" ]; then
  echo "== build (AddressSanitizer + UndefinedBehaviorSanitizer)"
  cmake -S . -B build/asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMDLM_WARNINGS_AS_ERRORS=ON \
        -DMDLM_SANITIZE=ON -DMDLM_BUILD_BENCHMARKS=OFF -DMDLM_BUILD_CUDA=OFF
  cmake --build build/asan -j "$jobs"
  (cd build/asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
     ctest --output-on-failure -j "$jobs" -LE no_sanitize)
fi
