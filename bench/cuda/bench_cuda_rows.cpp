// SPDX-License-Identifier: MIT
// Device row statistics (issue 14) on a GPU: mdlm::cuda::row_engine over every row of a bf16 / fp32
// logit matrix of 256 x 126464 (LLaDA-8B) and 1024 x 152064 (Dream-7B), greedy and sampled, against
// the device-to-device copy bandwidth of the same matrix measured in the same run.
//
// Counters: GBps = bytes of the rows read per second; copy_GBps = bytes a device-to-device copy of
// the same size reads per second (best of 10, same run); their ratio is the share of the copy
// bandwidth (goal >= 0.7 for bf16 greedy). The sampled / greedy ratio is the time of the two rows of
// the same shape and type (goal <= 1.3).
// The host time includes the copy of the row_choice results back and the stream synchronisation,
// as decode pays it. Without a device the benchmarks report an error (scripts/gpu-check.sh runs them
// on one).
#include <benchmark/benchmark.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <vector>

#include "mdlm/cuda/device.hpp"
#include "mdlm/cuda/row_stats.hpp"

namespace {

struct shape {
  std::size_t rows, vocab;
};
constexpr shape shapes[] = {{256, 126464}, {1024, 152064}};

//! A device matrix with values in [-4, 4) (a fixed pattern; the values do not affect the speed much).
struct device_rows {
  void* p = nullptr;
  std::size_t bytes = 0;
  device_rows(std::size_t n, bool bf16) {
    bytes = n * (bf16 ? 2 : 4);
    if (cudaMalloc(&p, bytes) != cudaSuccess) return;
    if (bf16) {
      std::vector<std::uint16_t> h(n);
      for (std::size_t i = 0; i < n; ++i) {
        const float f = static_cast<float>((i * 2654435761u) % 8192) / 1024.0f - 4.0f;
        std::uint32_t u;
        std::memcpy(&u, &f, 4);
        h[i] = static_cast<std::uint16_t>(u >> 16);
      }
      cudaMemcpy(p, h.data(), bytes, cudaMemcpyHostToDevice);
    } else {
      std::vector<float> h(n);
      for (std::size_t i = 0; i < n; ++i) h[i] = static_cast<float>((i * 2654435761u) % 8192) / 1024.0f - 4.0f;
      cudaMemcpy(p, h.data(), bytes, cudaMemcpyHostToDevice);
    }
  }
  ~device_rows() { cudaFree(p); }
};

double copy_gbps(std::size_t bytes) {
  void *a = nullptr, *b = nullptr;
  if (cudaMalloc(&a, bytes) != cudaSuccess || cudaMalloc(&b, bytes) != cudaSuccess) return 0.0;
  cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice);
  cudaDeviceSynchronize();
  double best = 0.0;
  for (int r = 0; r < 10; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice);
    cudaDeviceSynchronize();
    const std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
    best = std::max(best, static_cast<double>(bytes) / dt.count() / 1e9);  // bytes read per second
  }
  cudaFree(a);
  cudaFree(b);
  return best;
}

void BM_rows(benchmark::State& state) {
  if (!mdlm::cuda::query_device(0).present) {
    state.SkipWithError("no CUDA device");
    return;
  }
  const shape s = shapes[state.range(0)];
  const bool bf16 = state.range(1) != 0;
  const bool sampled = state.range(2) != 0;
  device_rows m(s.rows * s.vocab, bf16);
  if (m.p == nullptr) {
    state.SkipWithError("cudaMalloc failed");
    return;
  }
  mdlm::cuda::row_engine engine;
  std::vector<mdlm::cuda::device_row> rows(s.rows);
  for (std::size_t i = 0; i < s.rows; ++i) rows[i] = {i, static_cast<std::uint32_t>(i), 1, 2};
  std::vector<mdlm::row_choice> out(s.rows);
  const mdlm::cuda::device_matrix dm{m.p, bf16 ? mdlm::cuda::logit_type::bf16 : mdlm::cuda::logit_type::f32, s.rows,
                                     s.vocab, s.vocab};
  const mdlm::token_choice choice{.temperature = sampled ? 1.0 : 0.0};
  engine.choose(dm, rows, choice, {1}, {}, out);  // warm-up: buffers allocated here
  for (auto _ : state) {
    engine.choose(dm, rows, choice, {1}, {}, out);
    benchmark::DoNotOptimize(out.data());
  }
  const double gbps_copy = copy_gbps(m.bytes);
  state.counters["GBps"] = benchmark::Counter(static_cast<double>(m.bytes) / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["copy_GBps"] = gbps_copy;
  state.SetLabel(sampled ? "sampled" : "greedy");
}

void args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"shape", "bf16", "sampled"});
  for (long sh : {0, 1})
    for (long bf : {1, 0})
      for (long sa : {0, 1}) b->Args({sh, bf, sa});
  b->UseRealTime()->Unit(benchmark::kMicrosecond)->MinTime(0.2);
}

}  // namespace

BENCHMARK(BM_rows)->Apply(args);
BENCHMARK_MAIN();
