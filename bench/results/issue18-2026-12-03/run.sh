#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Issue 18's goals measured in one run (bench/RESULTS.md, "Issue 18 goals"): statistics against the
# read probe and bf16 against fp32 (item 3), sampled against greedy (item 1), selection at L = 4096
# (item 2), PyTorch's entropy / confidence peers on the same shapes (item 6), the CPU forward against
# the same library's sgemm peak (item 4). One thread unless stated; `uptime` before and after each
# part goes to load.txt. Usage: bench/results/issue18-2026-12-03/run.sh BUILD_DIR
set -euo pipefail
build=${1:?usage: run.sh BUILD_DIR (a Release build with mdlm_bench and bench_cpu_model)}
out=$(cd "$(dirname "$0")" && pwd)/raw
mkdir -p "$out"
B="$build/bench/mdlm_bench"
M="$build/bench/cpu/bench_cpu_model"
A=(--benchmark_repetitions=3 --benchmark_report_aggregates_only=true --benchmark_out_format=json)
shapes='L:(256/V:126464|1024/V:152064)/pool:1/'
part() { echo "$(date -u +%H:%M:%S) $1: $(uptime)" >> "$out/load.txt"; }
: > "$out/load.txt"
part stats
"$B" --benchmark_filter="^(probe_read|stats)<(f32|bf16)>/$shapes" "${A[@]}" --benchmark_out="$out/stats.json" | tee "$out/stats.txt"
part choose
"$B" --benchmark_filter="^choose_(greedy|sampled|sampled_t1)<(f32|bf16)>/$shapes" "${A[@]}" --benchmark_out="$out/choose.json" | tee "$out/choose.txt"
part selection
"$B" --benchmark_filter='^selection/.*/L:4096$' "${A[@]}" --benchmark_out="$out/selection.json" | tee "$out/selection.txt"
part peers
/usr/bin/python3 "$(dirname "$0")/../../peers/peers.py" --out "$out/peers.json" --threads 1 --rows 256,1024 \
  --vocab 126464,152064 --repeats 3 | tee "$out/peers.txt"
part forward
"$M" --benchmark_filter='gemm|peak|100M' "${A[@]}" --benchmark_out="$out/forward.json" | tee "$out/forward.txt"
part end
