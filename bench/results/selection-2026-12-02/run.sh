#!/bin/bash
# Interleaved selection benchmarks: for each policy, the branch's binary then main's (c0d3e83).
set -e
cd /work/wt-sel
R=bench/results/selection-2026-12-02
mkdir -p $R/raw
A="--benchmark_repetitions=3 --benchmark_report_aggregates_only=true --benchmark_out_format=json"
NEW=./build/rel/bench/mdlm_bench
OLD=/tmp/sel_base/build/bench/mdlm_bench
{ uptime; date -u; } > $R/load.txt
for p in llada_confidence llada_random dream_entropy dream_margin_alg_temp dream_origin med eb_sampler fast_dllm_threshold fast_dllm_factor klass probe_read; do
  $NEW --benchmark_filter="^selection/$p/" $A --benchmark_out=$R/raw/after_$p.json > /dev/null
  old=$p; [ $p = klass ] && old=klass_v32
  [ $p = probe_read ] || $OLD --benchmark_filter="^selection/$old/" $A --benchmark_out=$R/raw/before_$p.json > /dev/null
  { uptime; } >> $R/load.txt
done
$NEW --benchmark_filter="^selection/klass_logits_v32/" $A --benchmark_out=$R/raw/after_klass_logits_v32.json > /dev/null
{ uptime; date -u; } >> $R/load.txt
