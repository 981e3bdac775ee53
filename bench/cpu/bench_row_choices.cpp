// SPDX-License-Identifier: MIT
// Step time of the CPU backend on its two model interfaces (issue 14) at LLaDA-8B's head shape:
// d_model 4096, vocabulary 126464 (the LM head alone is 0.52 G parameters), one transformer block,
// L = 320 positions (256 prompt + 64 generated), a step that needs the 32 masked rows of one block.
//
//   logits/...: model.logits (the head over all 320 rows) + compute_row_choices on the 32 rows, which
//               is what decode does with a logits-only model;
//   rows/...:   model.row_choices: the head over the 32 requested rows only, the same decisions.
//
// Compare the two rows of the same run (same threads): the ratio is the step time saved.
// Weights are random (`mdlm make-checkpoint`'s generator), written once to a temporary directory
// (2.2 GB bf16 on disk, 4.4 GB fp32 in memory); the values do not affect the speed.
#include <benchmark/benchmark.h>

#include <filesystem>
#include <memory>
#include <unistd.h>
#include <vector>

#include "mdlm/cpu/make_checkpoint.hpp"
#include "mdlm/cpu/model.hpp"
#include "mdlm/row_choices.hpp"

namespace {

constexpr std::size_t length = 320, block_begin = 256, block = 32;

mdlm::cpu::model& model() {
  static std::unique_ptr<mdlm::cpu::model> m;
  if (!m) {
    mdlm::cpu::tiny_checkpoint_spec s;
    s.layers = 1;
    s.d_model = 4096;
    s.heads = 32;
    s.kv_heads = 32;
    s.mlp = 128;
    s.vocab = 126464;
    s.seed = 1;
    const auto dir = std::filesystem::temp_directory_path() / ("mdlm-bench-rows-" + std::to_string(::getpid()));
    mdlm::cpu::write_tiny_checkpoint(s, dir);
    m = std::make_unique<mdlm::cpu::model>(mdlm::cpu::model::load(dir));
    std::filesystem::remove_all(dir);
  }
  return *m;
}

std::vector<mdlm::token_id> tokens() {
  std::vector<mdlm::token_id> t(length);
  for (std::size_t i = 0; i < length; ++i) t[i] = static_cast<mdlm::token_id>((i * 7919) % 120000);
  for (std::size_t i = block_begin; i < length; ++i) t[i] = model().mask_token();
  return t;
}

std::vector<std::size_t> rows() {
  std::vector<std::size_t> r(block);
  for (std::size_t i = 0; i < block; ++i) r[i] = block_begin + i;
  return r;
}

void BM_step_logits(benchmark::State& state) {
  auto& m = model();
  m.set_threads(static_cast<int>(state.range(0)));
  const auto t = tokens();
  const auto r = rows();
  std::vector<float> logits(length * m.vocab_size());
  std::vector<mdlm::row_choice> out(block);
  mdlm::detail::choice_scratch scratch;
  scratch.reserve(m.vocab_size());
  const mdlm::row_request req{.rows = r};
  for (auto _ : state) {
    m.logits(t, logits);
    mdlm::compute_row_choices(std::span<const float>(logits), m.vocab_size(), req, std::span<mdlm::row_choice>(out),
                              nullptr, scratch);
    benchmark::DoNotOptimize(out.data());
  }
}

void BM_step_rows(benchmark::State& state) {
  auto& m = model();
  m.set_threads(static_cast<int>(state.range(0)));
  const auto t = tokens();
  const auto r = rows();
  std::vector<mdlm::row_choice> out(block);
  const mdlm::row_request req{.rows = r};
  for (auto _ : state) {
    m.row_choices(t, req, out);
    benchmark::DoNotOptimize(out.data());
  }
}

}  // namespace

BENCHMARK(BM_step_logits)->ArgName("threads")->Arg(1)->Arg(2)->Unit(benchmark::kSecond)->Iterations(2)->UseRealTime();
BENCHMARK(BM_step_rows)->ArgName("threads")->Arg(1)->Arg(2)->Unit(benchmark::kSecond)->Iterations(2)->UseRealTime();
BENCHMARK_MAIN();
