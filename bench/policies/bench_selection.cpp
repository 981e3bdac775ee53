// SPDX-License-Identifier: MIT
// Each unmasking policy's `select` among L candidates (L = 256, 1024, 4096), the candidates'
// statistics already computed: the cost a policy adds to a decode step. Candidates carry random
// confidences, entropies and margins (fixed seed); successive iterations cycle through 16 different
// candidate sets, as successive decode steps see different values (with one repeated set the
// branch predictor learns a whole sort of up to ~2000 keys and the figure is several times too low). Fixed-count policies use LLaDA's block schedule
// with 64 steps per block (k = L / 64 per step). `selection/klass` gets each masked position's KL
// from the statistics pass (`row_choice::kl` of the row-statistics interface, as decode hands it
// over: `step_context::row_stats`, 16 cycled sets too), so it measures the policy's own work;
// `selection/klass_logits_v32` is the logits interface, where the policy computes the KL over every
// masked row itself (O(L V), here V = 32). `selection/probe_read` only sums one field of every
// candidate: the cost of streaming the cycled candidate sets (16 x L x 120 bytes, beyond L2 at
// L = 4096), which no policy can go below.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstddef>
#include <limits>
#include <span>
#include <vector>

#include "mdlm/policies/eb_sampler.hpp"
#include "mdlm/policies/fast_dllm.hpp"
#include "mdlm/policies/fixed_count.hpp"
#include "mdlm/policies/klass.hpp"
#include "mdlm/policies/med.hpp"
#include "mdlm/policy.hpp"
#include "support.hpp"

namespace {

constexpr std::size_t klass_vocab = 32;

constexpr std::size_t n_sets = 16;

struct setup {
  std::vector<mdlm::position_info> cand;  // n_sets sets of l candidates
  std::vector<mdlm::token_id> tokens;
  std::vector<float> logits;
  std::vector<std::size_t> rows;             // 0, 1, ..., l - 1: every position is masked
  std::vector<mdlm::row_choice> row_stats;   // n_sets sets of l rows, with their KL
  mdlm::step_context ctx;
  mdlm::selection sel;

  explicit setup(std::size_t l)
      : cand(n_sets * l), tokens(l, 0), logits(l * klass_vocab), rows(l), row_stats(n_sets * l) {
    std::vector<float> u(5 * n_sets * l);
    mdlm::bench::fill_logits(u.data(), u.size(), 77);
    for (std::size_t i = 0; i < n_sets * l; ++i) {
      auto& c = cand[i];
      c.position = i % l;
      c.token = static_cast<mdlm::token_id>(i % 1000);
      c.prob = 1.0 / (1.0 + std::exp(-static_cast<double>(u[4 * i])));
      c.tempered_prob = c.prob;
      c.entropy = std::fabs(static_cast<double>(u[4 * i + 1])) * 0.3;
      c.tempered_entropy = c.entropy;
      c.margin = c.prob * 0.5;
      c.tempered_margin = c.margin;
      c.stats.valid = true;
      c.stats.top1_logprob = std::log(c.prob);
      c.stats.top2_logprob = std::log(c.prob * 0.5);
      c.stats.entropy = c.entropy;
      // KL values around KLASS's default threshold 0.015, so that some positions become stable.
      row_stats[i].kl = std::fabs(static_cast<double>(u[4 * n_sets * l + i])) * 0.01;
    }
    for (std::size_t p = 0; p < l; ++p) rows[p] = p;
    mdlm::bench::fill_logits(logits.data(), logits.size(), 78);
    std::fill(tokens.begin(), tokens.end(), static_cast<mdlm::token_id>(klass_vocab - 1));  // all masked
    ctx.step = 3;
    ctx.step_in_block = 3;
    ctx.steps_per_block = 64;
    ctx.total_steps = 64;
    ctx.block_begin = 0;
    ctx.block_end = l;
    ctx.block_masked_at_start = l;
    ctx.masked_total = l;
    ctx.rng = mdlm::counter_rng{5};
    ctx.tokens = tokens;
    ctx.logits = logits;
    ctx.vocab = klass_vocab;
    ctx.mask = static_cast<mdlm::token_id>(klass_vocab - 1);
    sel.reserve(l);
  }
};

//! How a stateful policy's KL reaches it: computed from the logit rows, or from the statistics pass.
enum class kl_source { logits, statistics };

template <class Policy>
void run_policy(benchmark::State& state, const Policy& policy, kl_source kl = kl_source::logits) {
  const auto l = static_cast<std::size_t>(state.range(0));
  setup s(l);
  const auto cand = [&](std::size_t it) {
    return std::span<const mdlm::position_info>(s.cand).subspan((it % n_sets) * l, l);
  };
  std::size_t it = 0;
  if constexpr (mdlm::stateful_policy<Policy>) {
    auto st = policy.make_state(mdlm::decode_setup{l, klass_vocab, 0, l, l, 0, s.ctx.mask});
    if (kl == kl_source::statistics) {
      s.ctx.logits = {};
      s.ctx.row_positions = s.rows;
    }
    for (auto _ : state) {
      s.sel.clear();
      if (kl == kl_source::statistics)
        s.ctx.row_stats = std::span<const mdlm::row_choice>(s.row_stats).subspan((it % n_sets) * l, l);
      policy.select(s.ctx, cand(it++), st, s.sel);
      benchmark::DoNotOptimize(s.sel.unmask.data());
    }
  } else {
    for (auto _ : state) {
      s.sel.clear();
      policy.select(s.ctx, cand(it++), s.sel);
      benchmark::DoNotOptimize(s.sel.unmask.data());
    }
  }
  state.counters["selected"] = static_cast<double>(s.sel.unmask.size());
}

void sizes(benchmark::internal::Benchmark* b) {
  b->ArgName("L")->Arg(256)->Arg(1024)->Arg(4096)->Unit(benchmark::kMicrosecond);
}

void llada_confidence(benchmark::State& s) { run_policy(s, mdlm::fixed_count{}); }
void dream_entropy(benchmark::State& s) {
  run_policy(s, mdlm::fixed_count{.score = mdlm::score_kind::neg_entropy,
                                  .schedule = mdlm::count_schedule::per_step, .per_step = 16});
}
void dream_margin_alg_temp(benchmark::State& s) {
  run_policy(s, mdlm::fixed_count{.score = mdlm::score_kind::margin, .schedule = mdlm::count_schedule::per_step,
                                  .per_step = 16, .alg_temp = 0.5});
}
void llada_random(benchmark::State& s) { run_policy(s, mdlm::fixed_count{.score = mdlm::score_kind::random}); }
void dream_origin(benchmark::State& s) { run_policy(s, mdlm::dream_origin{}); }
void med(benchmark::State& s) { run_policy(s, mdlm::med{}); }
void eb_sampler(benchmark::State& s) { run_policy(s, mdlm::eb_sampler{.gamma = 1.0}); }
void fast_dllm_threshold(benchmark::State& s) { run_policy(s, mdlm::fast_dllm_threshold{}); }
void fast_dllm_factor(benchmark::State& s) { run_policy(s, mdlm::fast_dllm_factor{}); }
void klass(benchmark::State& s) { run_policy(s, mdlm::klass{}, kl_source::statistics); }
void klass_logits_v32(benchmark::State& s) { run_policy(s, mdlm::klass{}, kl_source::logits); }

//! The floor: one field of every candidate read (summed), as cycled as for the policies.
void probe_read(benchmark::State& state) {
  const auto l = static_cast<std::size_t>(state.range(0));
  setup s(l);
  std::size_t it = 0;
  for (auto _ : state) {
    const auto c = std::span<const mdlm::position_info>(s.cand).subspan((it++ % n_sets) * l, l);
    double sum[4] = {0.0, 0.0, 0.0, 0.0};  // four chains, so that the additions do not bound it
    for (std::size_t i = 0; i + 4 <= l; i += 4)
      for (std::size_t j = 0; j < 4; ++j) sum[j] += c[i + j].prob;
    benchmark::DoNotOptimize(sum);
  }
}

}  // namespace

BENCHMARK(llada_confidence)->Name("selection/llada_confidence")->Apply(sizes);
BENCHMARK(llada_random)->Name("selection/llada_random")->Apply(sizes);
BENCHMARK(dream_entropy)->Name("selection/dream_entropy")->Apply(sizes);
BENCHMARK(dream_margin_alg_temp)->Name("selection/dream_margin_alg_temp")->Apply(sizes);
BENCHMARK(dream_origin)->Name("selection/dream_origin")->Apply(sizes);
BENCHMARK(med)->Name("selection/med")->Apply(sizes);
BENCHMARK(eb_sampler)->Name("selection/eb_sampler")->Apply(sizes);
BENCHMARK(fast_dllm_threshold)->Name("selection/fast_dllm_threshold")->Apply(sizes);
BENCHMARK(fast_dllm_factor)->Name("selection/fast_dllm_factor")->Apply(sizes);
BENCHMARK(klass)->Name("selection/klass")->Apply(sizes);
BENCHMARK(klass_logits_v32)->Name("selection/klass_logits_v32")->Apply(sizes);
BENCHMARK(probe_read)->Name("selection/probe_read")->Apply(sizes);
