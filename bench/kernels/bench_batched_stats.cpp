// SPDX-License-Identifier: MIT
// Batched statistics (kernels/batched_stats.hpp) over every row of an L x V logit matrix, against a
// streaming read of the same bytes (the memory-bandwidth probe, support.hpp) with the same threads.
//
// Benchmarks (arguments L, V, pool = threads):
//   probe_read<T>      the probe itself: bytes/s of one read of the matrix;
//   stats<T>           batched_logit_stats of all L rows (greedy statistics);
//   choose_greedy<T>   choose_rows at T = 0: statistics + argmax token + per-token quantities;
//   choose_sampled<T>  choose_rows at T = 0.7: statistics + the two-level Gumbel-max token +
//                      tempered quantities (its ratio to choose_greedy is the cost of sampling);
//   choose_sampled_t1<T> the same at T = 1, where no tempered sums are needed: the draw alone;
//   cached/...         the same on an 8 x 32000 matrix that stays in cache (arithmetic throughput).
// Counters: bytes (matrix bytes per second), rows (rows per second), bw_pct (the kernel's bytes/s as
// a percentage of the probe's best-of-7 bytes/s on the same matrix and thread count).
#include <benchmark/benchmark.h>

#include <cstddef>
#include <span>
#include <vector>

#include "mdlm/kernels/batched_stats.hpp"
#include "support.hpp"

namespace {

template <class T>
void set_counters(benchmark::State& state, std::size_t rows, std::size_t vocab, const void* data, std::size_t threads) {
  const double bytes = static_cast<double>(rows * vocab * sizeof(T));
  state.counters["bytes"] = benchmark::Counter(bytes, benchmark::Counter::kIsIterationInvariantRate,
                                               benchmark::Counter::kIs1024);
  state.counters["rows"] = benchmark::Counter(static_cast<double>(rows), benchmark::Counter::kIsIterationInvariantRate);
  // bw_pct = 100 * (bytes / time per iteration) / probe bytes per second; Google Benchmark divides
  // a kIsIterationInvariantRate counter by the total time and multiplies by the iterations.
  const double probe = mdlm::bench::probe_bandwidth(data, rows * vocab * sizeof(T), threads);
  state.counters["bw_pct"] = benchmark::Counter(100.0 * bytes / probe, benchmark::Counter::kIsIterationInvariantRate);
}

template <class T>
void probe_read(benchmark::State& state) {
  const auto rows = static_cast<std::size_t>(state.range(0)), vocab = static_cast<std::size_t>(state.range(1));
  const auto threads = static_cast<std::size_t>(state.range(2));
  const auto& m = mdlm::bench::logits<T>(rows, vocab);
  auto& tp = mdlm::bench::pool(threads);
  for (auto _ : state) benchmark::DoNotOptimize(mdlm::bench::probe_read(m.data(), m.size() * sizeof(T), tp));
  set_counters<T>(state, rows, vocab, m.data(), threads);
}

template <class T>
void stats(benchmark::State& state) {
  const auto rows = static_cast<std::size_t>(state.range(0)), vocab = static_cast<std::size_t>(state.range(1));
  const auto threads = static_cast<std::size_t>(state.range(2));
  const auto& m = mdlm::bench::logits<T>(rows, vocab);
  std::vector<std::size_t> idx(rows);
  for (std::size_t i = 0; i < rows; ++i) idx[i] = i;
  std::vector<mdlm::logit_stats> out(rows);
  auto& tp = mdlm::bench::pool(threads);
  for (auto _ : state) {
    mdlm::batched_logit_stats(std::span<const T>(m), vocab, std::span<const std::size_t>(idx),
                              std::span<mdlm::logit_stats>(out), &tp);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_counters<T>(state, rows, vocab, m.data(), threads);
}

//! choose_rows over every row at temperature `t`: statistics, token and tempered quantities.
template <class T>
void choose_all(benchmark::State& state, double t) {
  const auto rows = static_cast<std::size_t>(state.range(0)), vocab = static_cast<std::size_t>(state.range(1));
  const auto threads = static_cast<std::size_t>(state.range(2));
  const auto& m = mdlm::bench::logits<T>(rows, vocab);
  std::vector<std::size_t> idx(rows);
  for (std::size_t i = 0; i < rows; ++i) idx[i] = i;
  std::vector<mdlm::row_choice> out(rows);
  auto& tp = mdlm::bench::pool(threads);
  std::uint32_t step = 0;
  for (auto _ : state) {
    mdlm::choose_rows(std::span<const T>(m), vocab, std::span<const std::size_t>(idx),
                      std::span<mdlm::row_choice>(out),
                      {.temperature = t, .rng = mdlm::counter_rng{1}, .sequence = 0, .step = step++}, &tp);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_counters<T>(state, rows, vocab, m.data(), threads);
}

template <class T>
void choose_greedy(benchmark::State& state) {
  choose_all<T>(state, 0.0);
}
template <class T>
void choose_sampled(benchmark::State& state) {
  choose_all<T>(state, 0.7);
}
//! T = 1: no tempered sums (softmax(z / T) = softmax(z)), so the ratio to choose_greedy is the cost
//! of the draw alone.
template <class T>
void choose_sampled_t1(benchmark::State& state) {
  choose_all<T>(state, 1.0);
}

void shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"L", "V", "pool"});
  for (long l : {256, 1024})
    for (long v : {32000, 126464, 152064})
      for (long t : {1, 2}) b->Args({l, v, t});
  b->UseRealTime()->Unit(benchmark::kMillisecond);
}

// An 8 x 32000 matrix (1 MB fp32, 0.5 MB bf16) stays in the L2 / L3 caches across iterations: the
// kernel's arithmetic throughput without the memory limit.
void cache_shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"L", "V", "pool"})->Args({8, 32000, 1})->UseRealTime()->Unit(benchmark::kMicrosecond);
}

void sampled_shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"L", "V", "pool"});
  for (long t : {1, 2}) b->Args({256, 32000, t})->Args({256, 126464, t})->Args({1024, 152064, t});
  b->UseRealTime()->Unit(benchmark::kMillisecond);
}

}  // namespace

// Registered shape by shape so that the probe, fp32 and bf16 kernels of a shape run back to back
// while its matrices are cached.
BENCHMARK(probe_read<float>)->Name("probe_read<f32>")->Apply(shapes);
BENCHMARK(stats<float>)->Name("stats<f32>")->Apply(shapes);
BENCHMARK(probe_read<mdlm::bf16>)->Name("probe_read<bf16>")->Apply(shapes);
BENCHMARK(stats<mdlm::bf16>)->Name("stats<bf16>")->Apply(shapes);
BENCHMARK(stats<mdlm::fp16>)->Name("stats<f16>")->Apply(sampled_shapes);
BENCHMARK(probe_read<float>)->Name("cached/probe_read<f32>")->Apply(cache_shapes);
BENCHMARK(stats<float>)->Name("cached/stats<f32>")->Apply(cache_shapes);
BENCHMARK(probe_read<mdlm::bf16>)->Name("cached/probe_read<bf16>")->Apply(cache_shapes);
BENCHMARK(stats<mdlm::bf16>)->Name("cached/stats<bf16>")->Apply(cache_shapes);
BENCHMARK(choose_greedy<float>)->Name("choose_greedy<f32>")->Apply(sampled_shapes);
BENCHMARK(choose_sampled<float>)->Name("choose_sampled<f32>")->Apply(sampled_shapes);
BENCHMARK(choose_sampled_t1<float>)->Name("choose_sampled_t1<f32>")->Apply(sampled_shapes);
BENCHMARK(choose_greedy<mdlm::bf16>)->Name("choose_greedy<bf16>")->Apply(sampled_shapes);
BENCHMARK(choose_sampled<mdlm::bf16>)->Name("choose_sampled<bf16>")->Apply(sampled_shapes);
BENCHMARK(choose_sampled_t1<mdlm::bf16>)->Name("choose_sampled_t1<bf16>")->Apply(sampled_shapes);
BENCHMARK(choose_greedy<float>)->Name("cached/choose_greedy<f32>")->Apply(cache_shapes);
BENCHMARK(choose_sampled<float>)->Name("cached/choose_sampled<f32>")->Apply(cache_shapes);
BENCHMARK(choose_sampled_t1<float>)->Name("cached/choose_sampled_t1<f32>")->Apply(cache_shapes);
