// SPDX-License-Identifier: MIT
// decode's per-step overhead without the model call: a decode session (the loop `mdlm::decode`
// runs) stepped over a fixed logit matrix of 256 generated positions, so each step costs exactly
// the statistics and token choice of the current block's masked rows, the policy and the
// bookkeeping. Counter per_step: seconds per decode step (model call excluded); steps: steps per decode.
//
//   llada       LLaDA low_confidence, greedy, blocks of 32, 256 steps (one token per step);
//   llada_t1    the same with temperature 1 (Gumbel-max in the same pass);
//   dream       Dream `entropy` ranking, greedy, one block, 256 steps (reads all masked rows);
//   eb          EB-Sampler (gamma 0.01), greedy, one block, adaptive.
// Arguments: V, pool (threads of the statistics kernels).
#include <benchmark/benchmark.h>

#include <cstddef>
#include <span>
#include <vector>

#include "mdlm/decode.hpp"
#include "mdlm/policies/eb_sampler.hpp"
#include "mdlm/policies/fixed_count.hpp"
#include "support.hpp"

namespace {

constexpr std::size_t gen_length = 256;

template <class Policy>
void run_decode(benchmark::State& state, mdlm::decode_options<Policy> opt) {
  const auto vocab = static_cast<std::size_t>(state.range(0));
  const auto threads = static_cast<std::size_t>(state.range(1));
  const auto& logits = mdlm::bench::logits<float>(gen_length, vocab);
  opt.pool = &mdlm::bench::pool(threads);
  const auto mask = static_cast<mdlm::token_id>(vocab - 1);
  const auto c = mdlm::make_canvas(std::span<const mdlm::token_id>(), gen_length, mask);
  double steps = 0.0;
  for (auto _ : state) {
    state.PauseTiming();
    mdlm::detail::decode_session<Policy> session(c, opt, mdlm::counter_rng{3}, vocab, mask, 0);
    state.ResumeTiming();
    while (!session.done()) {
      session.prepare();
      const auto out = session.choice_buffer();
      mdlm::detail::choices_from_logits(session, std::span<const float>(logits), vocab, out, opt.pool);
      session.step(std::span<const mdlm::row_choice>(out), std::span<const float>(logits));
      steps += 1.0;
    }
    benchmark::DoNotOptimize(session.tokens().data());
  }
  state.counters["per_step"] = benchmark::Counter(steps, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["steps"] = steps / static_cast<double>(state.iterations());
}

void args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"V", "pool"});
  for (long v : {32000, 126464, 152064})
    for (long t : {1, 2}) b->Args({v, t});
  b->UseRealTime()->Unit(benchmark::kMillisecond);
}

void llada(benchmark::State& s) {
  run_decode(s, mdlm::decode_options<mdlm::fixed_count>{.block_length = 32, .steps = gen_length});
}
void llada_t1(benchmark::State& s) {
  run_decode(s, mdlm::decode_options<mdlm::fixed_count>{.choice = {.temperature = 1.0}, .block_length = 32,
                                                        .steps = gen_length});
}
void dream(benchmark::State& s) {
  run_decode(s, mdlm::decode_options<mdlm::fixed_count>{
                    .policy = {.score = mdlm::score_kind::neg_entropy, .schedule = mdlm::count_schedule::dream_timesteps},
                    .steps = gen_length});
}
void eb(benchmark::State& s) { run_decode(s, mdlm::decode_options<mdlm::eb_sampler>{}); }

}  // namespace

BENCHMARK(llada)->Name("decode_step/llada")->Apply(args);
BENCHMARK(llada_t1)->Name("decode_step/llada_t1")->Apply(args);
BENCHMARK(dream)->Name("decode_step/dream")->Apply(args);
BENCHMARK(eb)->Name("decode_step/eb")->Apply(args);
