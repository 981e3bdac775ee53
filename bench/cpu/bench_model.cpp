// SPDX-License-Identifier: MIT
// Forward throughput of the CPU backend (mdlm::cpu::model, backends/cpu/include/mdlm/cpu/model.hpp)
// on a tiny LLaDA config and a ~100M-parameter LLaDA config, at 256 prompt + 64 generated = 320
// tokens, against Eigen's measured single-precision GEMM peak in the same run.
//
// Reported counters (Google Benchmark prints rates with a "/s" suffix):
//   tokens         positions processed per second (320 per forward);
//   GFLOP          2 * multiply-adds of every linear layer (q, k, v, o, gate, up, down, head) plus
//                  the attention products (Q K^T and P V: 4 L^2 d per layer), per second;
//   peak_fraction  GFLOP/s of the forward divided by Eigen's GEMM rate measured once at start-up (best of 5) on
//                  a 320 x 768 x 2048 product, the shape of the 100M model's MLP, with the same
//                  number of threads (BM_eigen_gemm shows the same measurement as a benchmark).
// Weights are random (the generator of `mdlm make-checkpoint`), written once to a temporary
// directory; the values do not affect the speed.
#include <omp.h>

#include <Eigen/Core>
#include <algorithm>
#include <benchmark/benchmark.h>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <unistd.h>
#include <vector>

#include "mdlm/cpu/make_checkpoint.hpp"
#include "mdlm/cpu/model.hpp"

namespace {

constexpr std::size_t prompt_tokens = 256, gen_tokens = 64, length = prompt_tokens + gen_tokens;

// The GEMM shape of the peak measurement: [320 x 768] * [768 x 2048].
constexpr Eigen::Index gemm_m = static_cast<Eigen::Index>(length), gemm_k = 768, gemm_n = 2048;

//! Floating-point operations of one forward of `c` over `l` tokens (see the file comment).
double forward_flops(const mdlm::cpu::model_config& c, std::size_t l) {
  const double d = static_cast<double>(c.d_model), kv = static_cast<double>(c.n_kv_heads * c.head_dim);
  const double per_token_macs = static_cast<double>(c.n_layers) * (2 * d * d + 2 * d * kv + 3 * d * static_cast<double>(c.mlp_hidden)) +
                                d * static_cast<double>(c.vocab_size);
  const double attention = static_cast<double>(c.n_layers) * 4.0 * static_cast<double>(l * l) * d;
  return 2.0 * per_token_macs * static_cast<double>(l) + attention;
}

struct named_spec {
  const char* name;
  mdlm::cpu::tiny_checkpoint_spec spec;
};

mdlm::cpu::tiny_checkpoint_spec spec_of(const std::string& name) {
  mdlm::cpu::tiny_checkpoint_spec s;  // LLaDA-tiny: 2 layers, d_model 64, 4 heads, mlp 96, vocab 320
  s.seed = 1;
  if (name == "100M") {
    // 12 layers, d_model 768, 12 heads, SwiGLU 2048, vocabulary 16384: 85.0M in the blocks,
    // 25.2M in the embedding and head, 110M in all.
    s.layers = 12;
    s.d_model = 768;
    s.heads = 12;
    s.kv_heads = 12;
    s.mlp = 2048;
    s.vocab = 16384;
  }
  return s;
}

//! Loaded models, shared by the benchmarks (written once to a temporary directory).
mdlm::cpu::model& model_named(const std::string& name) {
  static std::map<std::string, std::unique_ptr<mdlm::cpu::model>> models;
  auto& m = models[name];
  if (!m) {
    const auto dir = std::filesystem::temp_directory_path() /
                     ("mdlm-bench-cpu-" + std::to_string(::getpid()) + "-" + name);
    mdlm::cpu::write_tiny_checkpoint(spec_of(name), dir);
    m = std::make_unique<mdlm::cpu::model>(mdlm::cpu::model::load(dir));
    std::filesystem::remove_all(dir);
  }
  return *m;
}

using matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

//! Eigen's GEMM rate (FLOP/s) on the peak shape with `threads` threads: best of 5 timed products.
double measured_gemm_peak(int threads) {
  static std::map<int, double> cache;
  if (auto it = cache.find(threads); it != cache.end()) return it->second;
  const matrix a = matrix::Random(gemm_m, gemm_k), b = matrix::Random(gemm_k, gemm_n);
  matrix c(gemm_m, gemm_n);
  Eigen::setNbThreads(threads);
  c.noalias() = a * b;  // warm-up
  double best = 0.0;
  for (int r = 0; r < 5; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    c.noalias() = a * b;
    const std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
    benchmark::DoNotOptimize(c.data());
    best = std::max(best, 2.0 * static_cast<double>(gemm_m * gemm_k * gemm_n) / dt.count());
  }
  Eigen::setNbThreads(1);
  return cache[threads] = best;
}

void BM_eigen_gemm(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  const matrix a = matrix::Random(gemm_m, gemm_k), b = matrix::Random(gemm_k, gemm_n);
  matrix c(gemm_m, gemm_n);
  Eigen::setNbThreads(threads);
  for (auto _ : state) {
    c.noalias() = a * b;
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  Eigen::setNbThreads(1);
  state.counters["GFLOP"] = benchmark::Counter(2e-9 * static_cast<double>(gemm_m * gemm_k * gemm_n),
                                                 benchmark::Counter::kIsIterationInvariantRate);
}

void BM_forward(benchmark::State& state, const char* name) {
  const int threads = static_cast<int>(state.range(0));
  auto& m = model_named(name);
  m.set_threads(threads);
  const double peak = measured_gemm_peak(threads);
  const auto vocab = m.vocab_size();
  const auto mask = m.mask_token();
  std::vector<mdlm::token_id> tokens(length, mask);
  for (std::size_t i = 0; i < prompt_tokens; ++i) tokens[i] = static_cast<mdlm::token_id>((i * 7919) % (vocab - 32));
  std::vector<float> logits(length * vocab);
  for (auto _ : state) {
    m.logits(tokens, logits);
    benchmark::DoNotOptimize(logits.data());
    benchmark::ClobberMemory();
  }
  const double flops = forward_flops(m.config(), length);
  state.counters["tokens"] =
      benchmark::Counter(static_cast<double>(length), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GFLOP"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  // Needs the elapsed time, which counters only see as rates: peak_fraction = (flops/s) / peak.
  state.counters["peak_fraction"] =
      benchmark::Counter(flops / peak, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["params_M"] = static_cast<double>(m.config().parameter_count()) * 1e-6;
}

void thread_args(benchmark::internal::Benchmark* b) {
  b->Arg(1);
  const int n = omp_get_max_threads();
  if (n > 1) b->Arg(n);
  b->ArgName("threads")->UseRealTime()->Unit(benchmark::kMillisecond);
}

BENCHMARK(BM_eigen_gemm)->Apply(thread_args);
BENCHMARK_CAPTURE(BM_forward, tiny, "tiny")->Apply(thread_args);
BENCHMARK_CAPTURE(BM_forward, 100M, "100M")->Apply(thread_args)->MinTime(2.0);

}  // namespace

BENCHMARK_MAIN();
