#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# GPU check of the CUDA backend: every CUDA test, the CUDA benchmarks and the PyTorch comparison, with
# a summary, in under 8 minutes on one H200. Two phases, so that the GPU's minutes go to running:
#
#   scripts/gpu-check.sh prepare   on the CPU machine (no GPU needed): builds the CUDA targets for sm_90
#                                  (build/gpu) and stages what the run needs in build/gpu-stage (the
#                                  executables, the shared libraries they need beyond the system's and
#                                  CUDA's, the model configs, the Python scripts). Prints its size.
#   scripts/gpu-check.sh run       on the GPU machine, from the repository root, with build/gpu-stage
#                                  carried along (the device tool: carry ["build/gpu-stage"], command
#                                  "scripts/gpu-check.sh run", timeout_s 540): runs each part under its
#                                  own time limit and writes build/gpu-stage/summary.txt (and
#                                  $OUT/summary.txt + $OUT/logs.tar.gz when OUT is set). Parts: probe,
#                                  test_cuda (every label-cuda test), memory_plan, bench_cuda_model,
#                                  torch_compare (tests/cuda/torch_compare.py), torch_peers
#                                  (bench/peers/cuda_peers.py). The binaries were built on Debian 12; if
#                                  they do not start there (missing libraries), logs/probe.log says so.
#
# Environment: MDLM_GPU_CHECK_BUDGET (seconds for all parts together, default 450), MDLM_CUDA_ARCH
# (prepare: CMAKE_CUDA_ARCHITECTURES, default 90). Exit code: 0 when every part passed or was skipped
# for a stated reason, 1 when one failed.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
stage="$root/build/gpu-stage"

# Targets the run needs; each is staged when the build defines it (later issues add theirs).
targets=(mdlm_cuda_probe test_cuda mdlm_tool bench_cuda_model bench_cuda_rows)

prepare() {
  local build="$root/build/gpu"
  local launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMDLM_WARNINGS_AS_ERRORS=ON "${launcher[@]}" \
        -DMDLM_BUILD_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="${MDLM_CUDA_ARCH:-90}" -DMDLM_SANITIZE=OFF || return 1
  local present=()
  for t in "${targets[@]}"; do
    if cmake --build "$build" --target help | grep -q "^$t:"; then present+=("$t"); fi
  done
  cmake --build "$build" -j "${MDLM_JOBS:-2}" --target "${present[@]}" || return 1
  rm -rf "$stage"
  mkdir -p "$stage/bin" "$stage/lib" "$stage/configs"
  for t in "${present[@]}"; do
    local name=$t
    [ "$t" = mdlm_tool ] && name=mdlm
    find "$build" -type f -name "$name" -perm -u+x -not -path '*/CMakeFiles/*' -exec cp {} "$stage/bin/" \;
  done
  # Shared libraries beyond glibc and CUDA's (cuBLAS and the driver come from the GPU machine).
  for b in "$stage"/bin/*; do
    ldd "$b" | awk '/=> \// {print $3}' | while read -r lib; do
      case "$(basename "$lib")" in
        libc.so*|libm.so*|libdl.so*|librt.so*|libpthread.so*|ld-linux*|libcuda.so*|libcublas*|libcudart*) ;;
        *) cp -n "$lib" "$stage/lib/" ;;
      esac
    done
  done
  # The real models' configs (the shared folder does not travel to the GPU machine).
  local shared="$root/../shared/models"
  for m in llada-8b-instruct dream-v0-instruct-7b; do
    if [ -f "$shared/$m/config.json" ]; then mkdir -p "$stage/configs/$m" && cp "$shared/$m/config.json" "$stage/configs/$m/"; fi
  done
  cp scripts/gpu-check.sh "$stage/"
  local size
  size=$(du -sm "$stage" | cut -f1)
  echo "gpu-check: staged ${present[*]} in $stage ($size MiB; the device tool carries at most 64 MiB in all)"
  if [ "$size" -gt 56 ]; then echo "gpu-check: the stage is too large to carry" >&2; return 1; fi
}

# --- run -------------------------------------------------------------------------------------------
summary=()
failed=0
deadline=0

# part NAME LIMIT_S COMMAND...: runs COMMAND with a time limit (capped by what is left of the budget),
# its output in build/gpu-stage/logs/NAME.log; records passed / failed / skipped (exit 77) / timeout.
part() {
  local name=$1 limit=$2
  shift 2
  local left=$((deadline - $(date +%s)))
  if [ "$left" -le 5 ]; then summary+=("$(printf '%-28s %-8s %s' "$name" skipped 'budget spent')"); return; fi
  [ "$limit" -gt "$left" ] && limit=$left
  local t0 rc t
  t0=$(date +%s%N)
  timeout --kill-after=10 "$limit" "$@" >"$stage/logs/$name.log" 2>&1
  rc=$?
  t=$(( ($(date +%s%N) - t0) / 100000000 ))
  t="$((t / 10)).$((t % 10))"
  local status
  case $rc in
    0) status=passed ;;
    77) status=skipped ;;
    124|137) status=timeout; failed=1 ;;
    *) status="failed($rc)"; failed=1 ;;
  esac
  local note
  note=$(grep -E '^(SKIPPED|FAILED)' "$stage/logs/$name.log" | head -2 | tr '\n' ' ')
  summary+=("$(printf '%-28s %-10s %7ss  %s' "$name" "$status" "$t" "$note")")
  while IFS= read -r line; do summary+=("    $line"); done < <(grep -E '^RESULT' "$stage/logs/$name.log" | head -20)
  echo "== $name: $status in ${t}s"
  tail -20 "$stage/logs/$name.log"
}

find_cuda_libs() {
  # cuBLAS / cuBLASLt of the GPU machine: the system CUDA, else PyTorch's pip wheels.
  local dirs=()
  for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/lib/x86_64-linux-gnu; do
    ls "$d"/libcublasLt.so.13* >/dev/null 2>&1 && dirs+=("$d")
  done
  local py
  py=$(python3 -c 'import nvidia.cublas, os; print(os.path.join(list(nvidia.cublas.__path__)[0], "lib"))' 2>/dev/null)
  [ -n "$py" ] && ls "$py"/libcublasLt.so.13* >/dev/null 2>&1 && dirs+=("$py")
  local IFS=:
  echo "${dirs[*]}"
}

run() {
  [ -d "$stage/bin" ] || { echo "gpu-check: $stage is missing: run 'scripts/gpu-check.sh prepare' first (on the CPU machine) and carry build/gpu-stage" >&2; exit 1; }
  mkdir -p "$stage/logs"
  deadline=$(( $(date +%s) + ${MDLM_GPU_CHECK_BUDGET:-450} ))
  export LD_LIBRARY_PATH="$stage/lib:$(find_cuda_libs)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export MDLM_TOOL_PATH="$stage/bin/mdlm" MDLM_CONFIGS_DIR="$stage/configs" MDLM_REPO_DIR="$root"
  nvidia-smi --query-gpu=name,memory.total,memory.used,clocks.sm,clocks.max.sm,driver_version --format=csv 2>&1 | tee "$stage/logs/nvidia-smi.log"
  local bin="$stage/bin"
  part probe 30 "$bin/mdlm_cuda_probe"
  if ! grep -q "^probe  *passed" <(printf '%s\n' "${summary[@]}"); then
    printf '%s\n' "gpu-check: no usable CUDA device (logs/probe.log); nothing else was run" "${summary[@]}" | tee "$stage/summary.txt"
    [ -n "${OUT:-}" ] && cp "$stage/summary.txt" "$OUT/"
    grep -q "^probe  *skipped" <(printf '%s\n' "${summary[@]}") && exit 77
    exit 1
  fi
  local logs="$stage/logs" work="${TMPDIR:-/tmp}/mdlm-gpu-check"
  mkdir -p "$work"
  # 1. every CUDA test (tiny checkpoints vs the CPU backend, determinism, memory, generate parity)
  [ -x "$bin/test_cuda" ] && part test_cuda 180 "$bin/test_cuda" --order rand --rng-seed 20261122 --warn NoAssertions
  [ -x "$bin/bench_cuda_model" ] && part memory_plan 20 "$bin/bench_cuda_model" --memory
  # 2. benchmarks at LLaDA-8B / Dream-7B shapes (random weights made on the device)
  [ -x "$bin/bench_cuda_model" ] && part bench_cuda_model 150 "$bin/bench_cuda_model" --benchmark_min_time=0.2 \
    --benchmark_out="$logs/bench_cuda_model.json" --benchmark_out_format=json --benchmark_counters_tabular=true
  # 2b. device row statistics vs the copy bandwidth, greedy vs sampled (issue 14)
  [ -x "$bin/bench_cuda_rows" ] && part bench_cuda_rows 60 "$bin/bench_cuda_rows" \
    --benchmark_out="$logs/bench_cuda_rows.json" --benchmark_out_format=json --benchmark_counters_tabular=true
  part torch_stats_peers 60 python3 bench/peers/cuda_stats_peers.py --out "$logs/cuda_stats_peers.json" \
    --mdlm "$logs/bench_cuda_rows.json"
  # 3. logits at real shapes (2 blocks) against tests/golden/torch_models.py on the same GPU
  [ -x "$bin/test_cuda" ] && part torch_compare 150 python3 tests/cuda/torch_compare.py --test "$bin/test_cuda" \
    --configs "$stage/configs" --work "$work" --out "$logs"
  rm -rf "$work"
  # 4. PyTorch eager bf16 at the benchmark shapes and the reference generate loop, with the ratios
  part torch_peers 120 python3 bench/peers/cuda_peers.py --configs "$stage/configs" --out "$logs/cuda_peers.json" \
    --mdlm "$logs/bench_cuda_model.json"
  {
    echo "gpu-check summary ($(date -u +%Y-%m-%dT%H:%MZ), $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1))"
    printf '%s\n' "${summary[@]}"
  } | tee "$stage/summary.txt"
  if [ -n "${OUT:-}" ]; then
    cp "$stage/summary.txt" "$OUT/"
    tar -czf "$OUT/logs.tar.gz" -C "$stage" logs 2>/dev/null
  fi
  exit $failed
}

case "${1:-}" in
  prepare) prepare ;;
  run) run ;;
  *) echo "usage: scripts/gpu-check.sh prepare|run (see the comment at the top)" >&2; exit 2 ;;
esac
