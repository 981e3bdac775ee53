#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the libFuzzer target of the safetensors header parser with clang (+ ASan/UBSan) in
# build/fuzz and runs it for ${MDLM_FUZZ_SECONDS:-30} seconds from the seed corpus in
# backends/checkpoint/fuzz/corpus. Usage: scripts/fuzz.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-${MDLM_FUZZ_SECONDS:-30}}
build=${MDLM_FUZZ_BUILD_DIR:-build/fuzz}
# Exit 77 (ctest SKIP_RETURN_CODE of the fuzz_safetensors_header test) when clang cannot build a
# libFuzzer program here (no clang, no compiler-rt).
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' > "$probe/p.cpp"
if ! clang++ -fsanitize=fuzzer,address,undefined "$probe/p.cpp" -o "$probe/p" >/dev/null 2>&1; then
  echo "fuzz.sh: skipped, clang++ with libFuzzer is not available"
  exit 77
fi
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
      -DMDLM_BUILD_FUZZERS=ON -DMDLM_BUILD_TESTS=OFF -DMDLM_BUILD_BENCHMARKS=OFF -DMDLM_BUILD_TOOLS=OFF \
      -DMDLM_BUILD_REFERENCE=OFF >/dev/null
cmake --build "$build" --target fuzz_safetensors_header
corpus="$build/fuzz_corpus"
mkdir -p "$corpus"
cp backends/checkpoint/fuzz/corpus/* "$corpus/"
"$build/backends/checkpoint/fuzz_safetensors_header" -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 \
  "$corpus" 2>&1 | tail -n 15
