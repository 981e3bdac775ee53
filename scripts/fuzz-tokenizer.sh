#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the tokenizer's libFuzzer targets (tokenizer/fuzz: the tokenizer.json reader and encode /
# decode) with clang + ASan/UBSan in ${MDLM_FUZZ_TOKENIZER_BUILD_DIR:-build/fuzz-tokenizer} and runs
# each for half of ${1:-30} seconds from the seed corpora in tokenizer/fuzz/corpus_*.
# Exit 77 (ctest skip) when clang cannot build a libFuzzer program here.
# Usage: scripts/fuzz-tokenizer.sh [seconds]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
seconds=${1:-30}
build=${MDLM_FUZZ_TOKENIZER_BUILD_DIR:-$root/build/fuzz-tokenizer}
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' > "$probe/p.cpp"
if ! clang++ -fsanitize=fuzzer,address,undefined "$probe/p.cpp" -o "$probe/p" >/dev/null 2>&1; then
  echo "fuzz-tokenizer.sh: skipped, clang++ with libFuzzer is not available"
  exit 77
fi
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
      -DMDLM_BUILD_TOKENIZER_FUZZERS=ON -DMDLM_BUILD_TESTS=OFF -DMDLM_BUILD_BENCHMARKS=OFF -DMDLM_BUILD_TOOLS=OFF \
      -DMDLM_BUILD_REFERENCE=OFF -DMDLM_BUILD_BACKENDS=OFF >/dev/null
cmake --build "$build" --target fuzz_tokenizer_json fuzz_tokenizer_encode
half=$(( (seconds + 1) / 2 ))
for target in json encode; do
  corpus="$build/fuzz_corpus_$target"
  mkdir -p "$corpus"
  cp "$root/tokenizer/fuzz/corpus_$target"/* "$corpus/"
  echo "== fuzz_tokenizer_$target, $half s"
  "$build/tokenizer/fuzz_tokenizer_$target" -max_total_time="$half" -max_len=8192 -timeout=20 -print_final_stats=1 \
    "$corpus" 2>&1 | tail -n 8
done
