// SPDX-License-Identifier: MIT
// The CUDA forward (mdlm::cuda::model) at LLaDA-8B's and Dream-7B's real shapes with random bf16
// weights made on the device, against the device's bf16 GEMM rate measured in the same run.
//
//   bench_cuda_model --memory   the memory plan (weights + activations + logits) of both models at
//                               batch 1 / 8 and 320 / 1024 positions; needs no GPU.
//   bench_cuda_model [Google Benchmark flags]   the benchmarks below (exit 77 without a GPU).
//
// Benchmarks (times from CUDA events on the model's stream, UseManualTime):
//   gemm_peak/8192            cuBLASLt bf16 x bf16 -> bf16, fp32 accumulation, 8192^3: the peak.
//   forward/<model>/B/L       one forward of B canvases of L positions with the LM head over every row
//                             (batch_logits_device). Counters: TFLOP/s, peak_share = TFLOP/s over the
//                             gemm_peak of this run, ms per step.
//   forward_rows/<model>/B/L  the same with the LM head over 32 rows per canvas (a block of masks):
//                             what the row-statistics path of the lead's issue 14 will run.
//   generate/<policy>         mdlm::decode of 256 tokens after a 64-token prompt on LLaDA-8B shapes
//                             (host logits path): tokens/s, steps, and overhead_share = 1 - steps x
//                             forward time / total (the logits copy to the host, the CPU statistics and
//                             the policy), measured in the same benchmark. With random weights MED's
//                             entropies stay high, so it unmasks about one token per step.
// FLOP: 2 multiply-adds of every linear layer (fused q/k/v, output, fused gate/up, down) per row, the
// attention products 4 L^2 d per layer and sequence, and 2 d V per LM-head row.
#include <cuda_runtime_api.h>

#include <benchmark/benchmark.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "forward.hpp"
#include "kernels.hpp"
#include "lt_gemm.hpp"
#include "mdlm/checkpoint/config.hpp"
#include "mdlm/cuda/device.hpp"
#include "mdlm/cuda/model.hpp"
#include "mdlm/decode.hpp"
#include "mdlm/policies/fixed_count.hpp"
#include "mdlm/policies/med.hpp"

namespace {

namespace cd = mdlm::cuda::detail;

std::filesystem::path configs_dir() {
  const char* env = std::getenv("MDLM_CONFIGS_DIR");
  return env != nullptr && *env != '\0' ? std::filesystem::path(env) : std::filesystem::path(MDLM_SHARED_MODELS_DIR);
}

const mdlm::hf::model_config& config_of(const std::string& name) {
  static std::map<std::string, mdlm::hf::model_config> cache;
  auto it = cache.find(name);
  if (it == cache.end()) {
    const std::string folder = name == "llada-8b" ? "llada-8b-instruct" : "dream-v0-instruct-7b";
    it = cache.emplace(name, mdlm::hf::read_model_config(configs_dir() / folder)).first;
  }
  return it->second;
}

double forward_flops(const mdlm::hf::model_config& c, std::size_t batch, std::size_t length, std::size_t head_rows) {
  const double d = static_cast<double>(c.d_model), kv = static_cast<double>(c.n_kv_heads * c.head_dim),
               mlp = static_cast<double>(c.mlp_hidden), layers = static_cast<double>(c.n_layers);
  const double rows = static_cast<double>(batch * length), l = static_cast<double>(length);
  const double linear = 2.0 * rows * layers * (d * (d + 2 * kv) + d * d + 2 * d * mlp + mlp * d);
  const double attention = static_cast<double>(batch) * layers * 4.0 * l * l * d;
  return linear + attention + 2.0 * static_cast<double>(head_rows) * d * static_cast<double>(c.vocab_size);
}

// One model per configuration, kept across benchmarks (making it is cheap, the memory is not).
mdlm::cuda::model& model_of(const std::string& name) {
  static std::string current;
  static std::unique_ptr<mdlm::cuda::model> m;
  if (current != name) {
    m.reset();
    m = std::make_unique<mdlm::cuda::model>(mdlm::cuda::model::random(config_of(name), 1));
    current = name;
  }
  return *m;
}

struct event_timer {
  cudaEvent_t start = nullptr, stop = nullptr;
  event_timer() {
    cudaEventCreate(&start);
    cudaEventCreate(&stop);
  }
  ~event_timer() {
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
  }
  event_timer(const event_timer&) = delete;
  event_timer& operator=(const event_timer&) = delete;
  template <class F>
  double seconds(cudaStream_t s, F&& work) {
    cudaEventRecord(start, s);
    work();
    cudaEventRecord(stop, s);
    cudaEventSynchronize(stop);
    float ms = 0.0f;
    cudaEventElapsedTime(&ms, start, stop);
    return static_cast<double>(ms) * 1e-3;
  }
};

// The bf16 GEMM rate of this device: best of 10 8192^3 products after 3 warm-ups (TFLOP/s).
constexpr std::int64_t peak_n = 8192;
double run_peak_gemm(int repetitions) {
  void *a = nullptr, *b = nullptr, *c = nullptr, *ws = nullptr;
  const std::size_t bytes = static_cast<std::size_t>(peak_n * peak_n) * 2;
  cudaMalloc(&a, bytes);
  cudaMalloc(&b, bytes);
  cudaMalloc(&c, bytes);
  cudaMalloc(&ws, cd::gemm_workspace_bytes);
  cudaStream_t s = nullptr;
  cudaStreamCreate(&s);
  cd::launch_fill_uniform(static_cast<std::uint16_t*>(a), peak_n * peak_n, 1, 0.0f, 1.0f, s);
  cd::launch_fill_uniform(static_cast<std::uint16_t*>(b), peak_n * peak_n, 2, 0.0f, 1.0f, s);
  cd::lt_gemm lt;
  const auto g = cd::linear_desc("bf16 GEMM peak", 1, peak_n, peak_n, peak_n, cd::element::bf16, false);
  event_timer t;
  double best = 1e30;
  for (int i = 0; i < repetitions + 3; ++i) {
    const double sec = t.seconds(s, [&] { lt.run(g, a, b, c, ws, cd::gemm_workspace_bytes, s, "benchmark", -1); });
    if (i >= 3) best = std::min(best, sec);
  }
  cudaStreamDestroy(s);
  for (void* p : {a, b, c, ws}) cudaFree(p);
  return 2.0 * static_cast<double>(peak_n) * peak_n * peak_n / best * 1e-12;
}

double measured_peak() {
  static const double peak = run_peak_gemm(10);
  return peak;
}

void BM_gemm_peak(benchmark::State& state) {
  for (auto _ : state) {
    const double tflops = run_peak_gemm(1);
    state.SetIterationTime(2.0 * static_cast<double>(peak_n) * peak_n * peak_n / (tflops * 1e12));
  }
  state.counters["TFLOP/s(peak, best of 10)"] = measured_peak();
}

std::vector<mdlm::token_id> random_tokens(const mdlm::hf::model_config& c, std::size_t n) {
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> tok(0, static_cast<int>(c.vocab_size) - 1);
  std::bernoulli_distribution masked(0.5);
  std::vector<mdlm::token_id> t(n);
  for (auto& x : t) x = masked(rng) ? c.mask_token : tok(rng);
  return t;
}

void forward_benchmark(benchmark::State& state, const std::string& name, bool rows_only) {
  const auto batch = static_cast<std::size_t>(state.range(0)), length = static_cast<std::size_t>(state.range(1));
  const auto& cfg = config_of(name);
  auto& m = model_of(name);
  const auto tokens = random_tokens(cfg, batch * length);
  std::vector<std::size_t> rows;  // the last 32 positions of every canvas
  for (std::size_t b = 0; b < batch; ++b)
    for (std::size_t i = length - std::min<std::size_t>(32, length); i < length; ++i) rows.push_back(b * length + i);
  auto step = [&] {
    if (rows_only) (void)m.logits_rows(tokens, batch, rows);
    else (void)m.batch_logits_device(tokens, batch);
  };
  step();  // the plan and the GEMM algorithms
  m.synchronize();
  event_timer t;
  auto* stream = static_cast<cudaStream_t>(m.stream());
  for (auto _ : state) state.SetIterationTime(t.seconds(stream, step));
  m.synchronize();
  const double flops = forward_flops(cfg, batch, length, rows_only ? rows.size() : batch * length);
  state.counters["TFLOP/s"] = benchmark::Counter(flops * 1e-12, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["peak_TFLOP/s"] = measured_peak();
  const auto plan = m.memory(batch, length);
  state.counters["device_GiB"] = static_cast<double>(plan.total()) / (1024.0 * 1024.0 * 1024.0);
  state.SetLabel("peak_share = TFLOP/s / peak_TFLOP/s");
}

void BM_forward(benchmark::State& state, const std::string& name) { forward_benchmark(state, name, false); }
void BM_forward_rows(benchmark::State& state, const std::string& name) { forward_benchmark(state, name, true); }

// Records the number of model calls.
struct step_counter {
  std::size_t steps = 0;
  void on_step(mdlm::step_event&) { ++steps; }
};

void BM_generate(benchmark::State& state, bool use_med) {
  const auto& cfg = config_of("llada-8b");
  auto& m = model_of("llada-8b");
  constexpr std::size_t prompt_length = 64, gen = 256;
  auto prompt = random_tokens(cfg, prompt_length);
  for (auto& t : prompt)
    if (t == cfg.mask_token) t = 0;
  const mdlm::canvas c = mdlm::make_canvas(prompt, gen, cfg.mask_token);
  // The forward alone at this shape, for the overhead share.
  const auto tokens = random_tokens(cfg, prompt_length + gen);
  (void)m.batch_logits_device(tokens, 1);
  m.synchronize();
  event_timer t;
  const double forward_s = t.seconds(static_cast<cudaStream_t>(m.stream()), [&] { (void)m.batch_logits_device(tokens, 1); });
  std::size_t steps = 0;
  double total_s = 0.0;
  for (auto _ : state) {
    step_counter counter;
    const auto t0 = std::chrono::steady_clock::now();
    if (use_med) {
      mdlm::decode_options<mdlm::med> opt;
      opt.block_length = 32;
      auto r = mdlm::decode(m, c, opt, mdlm::counter_rng{1}, counter);
      benchmark::DoNotOptimize(r);
    } else {
      mdlm::decode_options<mdlm::fixed_count> opt;
      opt.policy = {.score = mdlm::score_kind::confidence, .schedule = mdlm::count_schedule::llada_blocks};
      opt.block_length = 32;
      opt.steps = gen;
      auto r = mdlm::decode(m, c, opt, mdlm::counter_rng{1}, counter);
      benchmark::DoNotOptimize(r);
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    state.SetIterationTime(s);
    steps = counter.steps;
    total_s += s;
  }
  const double per_run = total_s / static_cast<double>(state.iterations());
  state.counters["tokens/s"] = static_cast<double>(gen) / per_run;
  state.counters["steps"] = static_cast<double>(steps);
  state.counters["ms_per_step"] = 1e3 * per_run / static_cast<double>(steps);
  state.counters["forward_ms"] = 1e3 * forward_s;
  state.counters["overhead_share"] = 1.0 - static_cast<double>(steps) * forward_s / per_run;
}

void print_memory_plans() {
  std::printf("CUDA memory plan (mdlm::cuda::plan_memory; GiB = 2^30 bytes; from %s)\n", configs_dir().c_str());
  std::printf("%-10s %5s %6s %9s %12s %8s %10s %9s %8s\n", "model", "batch", "length", "weights", "activations",
              "logits", "workspace", "reserve", "total");
  for (const char* name : {"llada-8b", "dream-7b"}) {
    const auto& cfg = config_of(name);
    for (std::size_t batch : {1, 8})
      for (std::size_t length : {320, 1024}) {
        const auto p = mdlm::cuda::plan_memory(cfg, batch, length);
        auto g = [](std::size_t b) { return static_cast<double>(b) / (1024.0 * 1024.0 * 1024.0); };
        std::printf("%-10s %5zu %6zu %9.2f %12.2f %8.2f %10.2f %9.2f %8.2f\n", name, batch, length, g(p.weights),
                    g(p.activations), g(p.logits), g(p.workspace), g(p.reserve), g(p.total()));
      }
  }
}

void register_benchmarks() {
  benchmark::RegisterBenchmark("gemm_peak/8192", BM_gemm_peak)->UseManualTime()->Iterations(5)->Unit(benchmark::kMillisecond);
  for (const char* name : {"llada-8b", "dream-7b"}) {
    auto* f = benchmark::RegisterBenchmark((std::string("forward/") + name).c_str(),
                                           [name](benchmark::State& s) { BM_forward(s, name); });
    f->UseManualTime()->Unit(benchmark::kMillisecond)->ArgNames({"B", "L"});
    for (long b : {1, 8})
      for (long l : {320, 1024}) f->Args({b, l});
  }
  benchmark::RegisterBenchmark("forward_rows/llada-8b", [](benchmark::State& s) { BM_forward_rows(s, "llada-8b"); })
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond)
      ->ArgNames({"B", "L"})
      ->Args({1, 320})
      ->Args({8, 320});
  benchmark::RegisterBenchmark("generate/llada-8b/llada-low-confidence", [](benchmark::State& s) { BM_generate(s, false); })
      ->UseManualTime()
      ->Iterations(1)
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("generate/llada-8b/med", [](benchmark::State& s) { BM_generate(s, true); })
      ->UseManualTime()
      ->Iterations(1)
      ->Unit(benchmark::kMillisecond);
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--memory") == 0) {
      if (!std::filesystem::exists(configs_dir() / "llada-8b-instruct" / "config.json")) {
        std::printf("SKIPPED: model configs not found in %s (set MDLM_CONFIGS_DIR)\n", configs_dir().c_str());
        return 77;
      }
      print_memory_plans();
      return 0;
    }
  }
  const auto dev = mdlm::cuda::query_device(0);
  if (!dev.present) {
    std::printf("SKIPPED: no CUDA device: %s\n", dev.reason.c_str());
    return 77;
  }
  std::printf("device: %s\n", mdlm::cuda::describe(dev).c_str());
  register_benchmarks();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
