#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the libFuzzer targets of the checkpoint parsers with clang (+ ASan/UBSan) and runs each for
# the given seconds from its seed corpus in backends/checkpoint/fuzz/corpus_<name>:
#   fuzz_safetensors_header  (corpus_safetensors)  safetensors file images
#   fuzz_config_json         (corpus_config)       config.json text
#   fuzz_weight_index        (corpus_index)        model.safetensors.index.json text
# Usage: scripts/fuzz.sh [seconds per target] [target...]   (default: 30 s, every target)
# The build goes to $MDLM_FUZZ_BUILD_DIR, default a folder under ${TMPDIR:-/tmp}: nothing is written
# into the source tree (a read-only checkout works). Exits 1 on the first target that finds a crash.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-${MDLM_FUZZ_SECONDS:-30}}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then targets=(fuzz_safetensors_header fuzz_config_json fuzz_weight_index); fi
case "$seconds" in ''|*[!0-9]*) echo "fuzz.sh: seconds '$seconds' is not a non-negative integer" >&2; exit 2 ;; esac
build=${MDLM_FUZZ_BUILD_DIR:-${TMPDIR:-/tmp}/mdlm-fuzz-$(id -u)-$(pwd | cksum | cut -d' ' -f1)}
# Exit 77 (ctest SKIP_RETURN_CODE of the fuzz_parsers test) when clang cannot build a libFuzzer
# program here (no clang, no compiler-rt).
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' > "$probe/p.cpp"
if ! clang++ -fsanitize=fuzzer,address,undefined "$probe/p.cpp" -o "$probe/p" >/dev/null 2>&1; then
  echo "fuzz.sh: skipped, clang++ with libFuzzer is not available"
  exit 77
fi
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
      -DMDLM_BUILD_FUZZERS=ON -DMDLM_BUILD_TESTS=OFF -DMDLM_BUILD_BENCHMARKS=OFF -DMDLM_BUILD_TOOLS=OFF \
      -DMDLM_BUILD_REFERENCE=OFF -DMDLM_BUILD_PYTHON=OFF -DMDLM_BUILD_CUDA=OFF >/dev/null
cmake --build "$build" --target "${targets[@]}"
for t in "${targets[@]}"; do
  case "$t" in
    fuzz_safetensors_header) seeds=corpus_safetensors; max_len=4096 ;;
    fuzz_config_json) seeds=corpus_config; max_len=8192 ;;
    fuzz_weight_index) seeds=corpus_index; max_len=8192 ;;
    *) echo "fuzz.sh: unknown target '$t'" >&2; exit 2 ;;
  esac
  corpus="$build/corpus/$t"
  mkdir -p "$corpus"
  cp backends/checkpoint/fuzz/$seeds/* "$corpus/"
  echo "== $t: ${seconds} s"
  # Findings (crash-*, leak-*) land in the build folder, not in the working directory.
  "$build/backends/checkpoint/$t" -max_total_time="$seconds" -max_len="$max_len" -print_final_stats=1 \
    -artifact_prefix="$build/" "$corpus" > "$build/$t.log" 2>&1 || { tail -n 40 "$build/$t.log"; exit 1; }
  tail -n 12 "$build/$t.log"
done
