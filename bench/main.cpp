// SPDX-License-Identifier: MIT
// The single main of mdlm_bench (Google Benchmark's command line: --benchmark_filter,
// --benchmark_repetitions, --benchmark_out, ...).
#include <benchmark/benchmark.h>

BENCHMARK_MAIN();
