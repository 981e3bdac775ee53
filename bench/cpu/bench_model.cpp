// SPDX-License-Identifier: MIT
// Forward throughput of the CPU backend (mdlm::cpu::model, backends/cpu/include/mdlm/cpu/model.hpp)
// on a tiny LLaDA config and a ~100M-parameter LLaDA config, at 256 prompt + 64 generated = 320
// tokens, against the measured peak of the backend's own single-precision GEMM (mdlm::cpu::gemm:
// OpenBLAS or Eigen, mdlm/cpu/gemm.hpp) in the same run.
//
// Reported counters (Google Benchmark prints rates with a "/s" suffix):
//   tokens         positions processed per second (320 per forward);
//   GFLOP          2 * multiply-adds of every linear layer (q, k, v, o, gate, up, down, head) plus
//                  the attention products (Q K^T and P V: 4 L^2 d per layer), per second;
//   peak_fraction  GFLOP/s of the forward divided by the GEMM peak measured once at start-up (best
//                  of 5) with the same number of threads: each thread runs one plain, single-threaded
//                  320 x 768 x 2048 product (the 100M model's gate / up projection, its biggest
//                  body GEMM) on its own operands at the same time, and the peak is their total
//                  rate -- the most the forward's own thread split could reach (BM_gemm_peak shows
//                  the same measurement as a benchmark).
// The context line `gemm` names the library and the kernels it chose for this processor.
// Weights are random (the generator of `mdlm make-checkpoint`), written once to a temporary
// directory; the values do not affect the speed.
#include <omp.h>

#include <algorithm>
#include <benchmark/benchmark.h>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <unistd.h>
#include <vector>

#include "mdlm/cpu/gemm.hpp"
#include "mdlm/cpu/make_checkpoint.hpp"
#include "mdlm/cpu/model.hpp"

namespace {

constexpr std::size_t prompt_tokens = 256, gen_tokens = 64, length = prompt_tokens + gen_tokens;

// The GEMM shape of the peak measurement: [320 x 768] * [2048 x 768]^T.
constexpr std::size_t gemm_m = length, gemm_k = 768, gemm_n = 2048;
constexpr double gemm_flops = 2.0 * static_cast<double>(gemm_m * gemm_k * gemm_n);

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

//! One thread's operands of the peak product, filled with uniform values in [-1, 1).
struct gemm_operands {
  std::vector<float> a, b, c;
  explicit gemm_operands(unsigned seed) : a(gemm_m * gemm_k), b(gemm_n * gemm_k), c(gemm_m * gemm_n) {
    std::mt19937 gen(seed);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (auto& v : a) v = u(gen);
    for (auto& v : b) v = u(gen);
  }
  void multiply() {
    mdlm::cpu::gemm(gemm_m, gemm_n, gemm_k, a.data(), gemm_k, b.data(), gemm_k, mdlm::cpu::b_layout::n_by_k, c.data(),
                    gemm_n, false);
    benchmark::DoNotOptimize(c.data());
  }
};

//! `threads` concurrent single-threaded peak products (one per thread, own operands), timed together:
//! the seconds of the slowest.
class gemm_peak_run {
 public:
  explicit gemm_peak_run(int threads) {
    for (int t = 0; t < threads; ++t) operands_.emplace_back(static_cast<unsigned>(t + 1));
    seconds();  // warm-up: OpenBLAS's buffers, the caches
  }
  double seconds() {
    const auto t0 = std::chrono::steady_clock::now();
    const int n = static_cast<int>(operands_.size());
#pragma omp parallel for num_threads(n) schedule(static, 1)
    for (int t = 0; t < n; ++t) operands_[static_cast<std::size_t>(t)].multiply();
    const std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
    return dt.count();
  }
  [[nodiscard]] double flops() const { return gemm_flops * static_cast<double>(operands_.size()); }

 private:
  mdlm::cpu::blas_thread_scope single_threaded_blas_;
  std::vector<gemm_operands> operands_;
};

//! The GEMM peak (FLOP/s) with `threads` threads: best of 5 timed runs of gemm_peak_run.
double measured_gemm_peak(int threads) {
  static std::map<int, double> cache;
  if (auto it = cache.find(threads); it != cache.end()) return it->second;
  gemm_peak_run run(threads);
  double best = 0.0;
  for (int r = 0; r < 5; ++r) best = std::max(best, run.flops() / run.seconds());
  return cache[threads] = best;
}

void BM_gemm_peak(benchmark::State& state) {
  gemm_peak_run run(static_cast<int>(state.range(0)));
  for (auto _ : state) state.SetIterationTime(run.seconds());
  state.counters["GFLOP"] = benchmark::Counter(run.flops() * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
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

void thread_counts(benchmark::internal::Benchmark* b) {
  b->Arg(1);
  const int n = omp_get_max_threads();
  if (n > 1) b->Arg(n);
  b->ArgName("threads")->Unit(benchmark::kMillisecond);
}

void thread_args(benchmark::internal::Benchmark* b) { thread_counts(b->UseRealTime()); }

BENCHMARK(BM_gemm_peak)->Apply(thread_counts)->UseManualTime();
BENCHMARK_CAPTURE(BM_forward, tiny, "tiny")->Apply(thread_args);
BENCHMARK_CAPTURE(BM_forward, 100M, "100M")->Apply(thread_args)->MinTime(2.0);

}  // namespace

int main(int argc, char** argv) {
  benchmark::AddCustomContext("gemm", mdlm::cpu::gemm_library());
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
