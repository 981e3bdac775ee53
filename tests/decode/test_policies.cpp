// SPDX-License-Identifier: MIT
// Unmasking policies on hand-built candidates: comparison operators on both sides of every
// threshold, tie rules and the reference check vectors (shared/spec/samplers.md sections 18-19).
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "mdlm/policies/eb_sampler.hpp"
#include "mdlm/policies/fast_dllm.hpp"
#include "mdlm/policies/fixed_count.hpp"
#include "mdlm/policies/klass.hpp"
#include "mdlm/policies/med.hpp"

namespace {

struct cand_spec {
  double prob = 0.5;
  double entropy = 0.5;
  double margin = 0.0;
};

std::vector<mdlm::position_info> make(const std::vector<cand_spec>& specs) {
  std::vector<mdlm::position_info> out;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    mdlm::position_info c;
    c.position = 10 + i;
    c.token = 0;
    c.prob = c.tempered_prob = specs[i].prob;
    c.entropy = c.tempered_entropy = specs[i].entropy;
    c.margin = c.tempered_margin = specs[i].margin;
    c.stats.top1 = 0;
    c.stats.top1_logprob = std::log(specs[i].prob);
    c.stats.valid = true;
    out.push_back(c);
  }
  return out;
}

template <class P>
std::vector<std::size_t> pick(const P& policy, const std::vector<mdlm::position_info>& c,
                              mdlm::step_context ctx = {}) {
  mdlm::selection sel;
  sel.reserve(c.size());
  policy.select(ctx, c, sel);
  std::vector<std::size_t> out(sel.unmask.begin(), sel.unmask.end());
  std::sort(out.begin(), out.end());
  return out;
}

using v = std::vector<std::size_t>;
}  // namespace

TEST_CASE("MED keeps H < lambda (strict), at most k_max, else the argmin", "[decode][policies][med]") {
  const auto c = make({{.entropy = 0.3}, {.entropy = 0.1}, {.entropy = 0.2}, {.entropy = 0.2 + 1e-12}});
  CHECK(pick(mdlm::med{.lambda = 0.2, .k_max = 8}, c) == v{1});  // 0.2 is not < 0.2
  CHECK(pick(mdlm::med{.lambda = 0.2 + 1e-15, .k_max = 8}, c) == v{1, 2});
  CHECK(pick(mdlm::med{.lambda = 0.5, .k_max = 8}, c) == v{0, 1, 2, 3});
  CHECK(pick(mdlm::med{.lambda = 0.5, .k_max = 2}, c) == v{1, 2});  // the two lowest entropies
  CHECK(pick(mdlm::med{.lambda = 0.05, .k_max = 8}, c) == v{1});    // none below: the argmin
  CHECK(pick(mdlm::med{.lambda = 0.0, .k_max = 8}, c) == v{1});
  // Ties in entropy break to the lower position.
  const auto tied = make({{.entropy = 0.7}, {.entropy = 0.4}, {.entropy = 0.4}});
  CHECK(pick(mdlm::med{.lambda = 0.1, .k_max = 8}, tied) == v{1});
  CHECK(pick(mdlm::med{.lambda = 0.5, .k_max = 1}, tied) == v{1});
}

TEST_CASE("EB-Sampler: longest prefix with sum H - max H <= gamma", "[decode][policies][eb]") {
  // Ascending entropies 0.25, 0.5, 0.75 (exact in binary): prefix errors 0, 0.25, 0.75.
  const auto c = make({{.entropy = 0.75}, {.entropy = 0.25}, {.entropy = 0.5}});
  CHECK(pick(mdlm::eb_sampler{.gamma = 0.0}, c) == v{1});
  CHECK(pick(mdlm::eb_sampler{.gamma = 0.25}, c) == v{1, 2});  // 0.25 <= 0.25 kept
  CHECK(pick(mdlm::eb_sampler{.gamma = 0.25 - 1e-12}, c) == v{1});
  CHECK(pick(mdlm::eb_sampler{.gamma = 0.75}, c) == v{0, 1, 2});
  CHECK(pick(mdlm::eb_sampler{.gamma = 0.75 - 1e-12}, c) == v{1, 2});
  // With entropy order the test reads "the previous entropies sum to <= gamma": zero entropies are
  // free even at gamma = 0, and so is the first non-zero one after them.
  const auto z = make({{.entropy = 0.0}, {.entropy = 0.0}, {.entropy = 0.5}, {.entropy = 0.5}});
  CHECK(pick(mdlm::eb_sampler{.gamma = 0.0}, z) == v{0, 1, 2});
  // Confidence order: most confident first, the entropy sum still decides.
  const auto cc = make({{.prob = 0.9, .entropy = 0.4}, {.prob = 0.99, .entropy = 0.3}, {.prob = 0.5, .entropy = 0.1}});
  CHECK(pick(mdlm::eb_sampler{.gamma = 0.3, .order = mdlm::eb_order::confidence}, cc) == v{0, 1});
  CHECK(pick(mdlm::eb_sampler{.gamma = 0.29, .order = mdlm::eb_order::confidence}, cc) == v{1});
  const auto mc = make({{.entropy = 0.4, .margin = 0.1}, {.entropy = 0.3, .margin = 0.8}});
  CHECK(pick(mdlm::eb_sampler{.gamma = 0.0, .order = mdlm::eb_order::margin}, mc) == v{1});
}

TEST_CASE("Fast-dLLM threshold keeps c >= tau and always the top-1", "[decode][policies][fast_dllm]") {
  const auto c = make({{.prob = 0.5}, {.prob = 0.9}, {.prob = 0.95}, {.prob = 0.9 - 1e-12}});
  CHECK(pick(mdlm::fast_dllm_threshold{.tau = 0.9}, c) == v{1, 2});   // equality kept
  CHECK(pick(mdlm::fast_dllm_threshold{.tau = 0.96}, c) == v{2});     // top-1 only
  CHECK(pick(mdlm::fast_dllm_threshold{.tau = 0.0}, c) == v{0, 1, 2, 3});
  const auto tied = make({{.prob = 0.4}, {.prob = 0.4}});
  CHECK(pick(mdlm::fast_dllm_threshold{.tau = 0.9}, tied) == v{0});  // tie: lower position
}

TEST_CASE("Fast-dLLM factor thresholds for f = 1 and the last-rank quirk", "[decode][policies][fast_dllm]") {
  const mdlm::fast_dllm_factor f{.factor = 1.0};
  CHECK(f.threshold(1) == -1.0);
  CHECK(f.threshold(2) == Approx(2.0 / 3.0));
  CHECK(f.threshold(3) == Approx(0.75));
  CHECK(f.threshold(4) == Approx(0.8));
  CHECK(f.threshold(5) == Approx(5.0 / 6.0));
  // ranks: 0.95, 0.8, 0.7, 0.1 -> rank 3 needs 0.75: 0.7 fails -> accept ranks 1-2.
  const auto c = make({{.prob = 0.1}, {.prob = 0.8}, {.prob = 0.95}, {.prob = 0.7}});
  CHECK(pick(f, c) == v{1, 2});
  const auto eq = make({{.prob = 0.95}, {.prob = 0.75}, {.prob = 0.75}, {.prob = 0.1}, {.prob = 0.05}});
  CHECK(pick(f, eq) == v{0, 1, 2});  // c = threshold is kept (0.75 >= 0.75 at rank 3)
  // Failure only at the last rank: the reference accepts all; without the quirk the last is dropped.
  const auto last = make({{.prob = 0.95}, {.prob = 0.9}, {.prob = 0.1}});
  CHECK(pick(f, last) == v{0, 1, 2});
  CHECK(pick(mdlm::fast_dllm_factor{.factor = 1.0, .reference_last_rank = false}, last) == v{0, 1});
  const auto one = make({{.prob = 0.01}});
  CHECK(pick(f, one) == v{0});
}

TEST_CASE("fixed-count scores and schedules", "[decode][policies][fixed_count]") {
  const auto c = make({{.prob = 0.3, .entropy = 0.9, .margin = 0.2},
                       {.prob = 0.8, .entropy = 0.1, .margin = 0.7},
                       {.prob = 0.8, .entropy = 0.5, .margin = 0.9}});
  const mdlm::step_context ctx{};
  const auto two = [](mdlm::score_kind s) {
    return mdlm::fixed_count{.score = s, .schedule = mdlm::count_schedule::per_step, .per_step = 2};
  };
  CHECK(pick(two(mdlm::score_kind::confidence), c, ctx) == v{1, 2});
  CHECK(pick(mdlm::fixed_count{.score = mdlm::score_kind::confidence, .schedule = mdlm::count_schedule::per_step},
             c, ctx) == v{1});  // tie 0.8/0.8 -> lower position
  CHECK(pick(two(mdlm::score_kind::neg_entropy), c, ctx) == v{1, 2});
  CHECK(pick(two(mdlm::score_kind::margin), c, ctx) == v{1, 2});
  CHECK(pick(two(mdlm::score_kind::left_to_right), c, ctx) == v{0, 1});
  CHECK(pick(mdlm::fixed_count{.score = mdlm::score_kind::neg_entropy, .schedule = mdlm::count_schedule::per_step,
                               .per_step = 9},
             c, ctx) == v{0, 1, 2});
  // LLaDA schedule: M = 10 in S = 4 steps -> 3, 3, 2, 2.
  mdlm::step_context l{};
  l.block_masked_at_start = 10;
  l.steps_per_block = 4;
  const mdlm::fixed_count llada{};
  for (std::size_t i = 0; i < 4; ++i) {
    l.step_in_block = i;
    CHECK(llada.count(l) == (i < 2 ? 3u : 2u));
  }
  // Dream schedule: 256 masks, 256 steps, step 0 -> 0; last step -> all.
  mdlm::step_context d{};
  d.masked_total = 256;
  d.total_steps = 256;
  const mdlm::fixed_count dream{.score = mdlm::score_kind::neg_entropy, .schedule = mdlm::count_schedule::dream_timesteps};
  CHECK(dream.count(d) == 0);
  d.step = 255;
  d.masked_total = 2;
  CHECK(dream.count(d) == 2);
}

TEST_CASE("random scores and alg_temp draw from the position stream deterministically", "[decode][policies][fixed_count]") {
  const auto c = make({{}, {}, {}, {}, {}});
  mdlm::step_context ctx{};
  ctx.rng = mdlm::counter_rng{5};
  const mdlm::fixed_count rnd{.score = mdlm::score_kind::random, .schedule = mdlm::count_schedule::per_step,
                              .per_step = 2};
  const auto a = pick(rnd, c, ctx);
  CHECK(a.size() == 2);
  CHECK(pick(rnd, c, ctx) == a);
  // Over many steps every position is chosen about equally often.
  std::vector<int> hits(5, 0);
  for (std::size_t s = 0; s < 5000; ++s) {
    ctx.step = s;
    for (auto i : pick(rnd, c, ctx)) ++hits[i];
  }
  for (int h : hits) CHECK(std::abs(h - 2000) < 200);  // sd ~ 35
  const mdlm::fixed_count temp{.score = mdlm::score_kind::confidence, .schedule = mdlm::count_schedule::per_step,
                               .per_step = 1, .alg_temp = 0.1};
  const auto cc = make({{.prob = 0.9}, {.prob = 0.1}});
  int first = 0;
  for (std::size_t s = 0; s < 4000; ++s) {
    ctx.step = s;
    first += pick(temp, cc, ctx) == v{0};
  }
  // softmax((0.9, 0.1) / 0.1) puts 1 / (1 + e^-8) = 0.99966 on position 0.
  CHECK(first >= 3980);
  CHECK(first < 4000);
}

TEST_CASE("Dream origin unmasks each position with probability 1 - s/t", "[decode][policies][dream_origin]") {
  const auto c = make(std::vector<cand_spec>(50));
  mdlm::step_context ctx{};
  ctx.total_steps = 4;
  ctx.rng = mdlm::counter_rng{9};
  const mdlm::dream_origin o{};
  ctx.step = 3;
  CHECK(pick(o, c, ctx).size() == 50);  // last step: everything
  double total = 0;
  ctx.step = 0;
  for (std::uint32_t seq = 0; seq < 400; ++seq) {
    ctx.sequence = seq;
    total += static_cast<double>(pick(o, c, ctx).size());
  }
  const double p = o.transfer_probability(ctx);
  CHECK(p == Approx(1.0 - mdlm::dream_timestep(4, 1e-3f, 1) / 1.0).epsilon(1e-6));
  const double n = 400.0 * 50.0;
  CHECK(std::abs(total - n * p) < 5 * std::sqrt(n * p * (1 - p)));
}

TEST_CASE("policy validation names the bad value", "[decode][policies][errors]") {
  using Catch::Matchers::Contains;
  CHECK_THROWS_WITH((mdlm::med{.lambda = -0.1}.validate()), Contains("lambda = -0.1"));
  CHECK_THROWS_WITH((mdlm::med{.lambda = 0.2, .k_max = 0}.validate()), Contains("k_max = 0"));
  CHECK_THROWS_WITH((mdlm::eb_sampler{.gamma = -1.0}.validate()), Contains("gamma = -1"));
  CHECK_THROWS_WITH((mdlm::fast_dllm_threshold{.tau = 1.5}.validate()), Contains("tau = 1.5"));
  CHECK_THROWS_WITH((mdlm::fast_dllm_threshold{.tau = -0.5}.validate()), Contains("tau = -0.5"));
  CHECK_THROWS_WITH((mdlm::fast_dllm_factor{.factor = 0.0}.validate()), Contains("factor = 0"));
  CHECK_THROWS_WITH((mdlm::fixed_count{.schedule = mdlm::count_schedule::per_step, .per_step = 0}.validate()),
                    Contains("per_step = 0"));
  CHECK_THROWS_WITH((mdlm::fixed_count{.eps = 0.0}.validate()), Contains("eps = 0"));
  CHECK_THROWS_WITH((mdlm::fixed_count{.alg_temp = -1.0}.validate()), Contains("alg_temp = -1"));
  CHECK_THROWS_WITH((mdlm::klass{.kl_threshold = 0.0}.validate()), Contains("kl_threshold = 0"));
  CHECK_THROWS_WITH((mdlm::klass{.confidence_threshold = 2.0}.validate()), Contains("confidence_threshold = 2"));
  CHECK_THROWS_WITH((mdlm::klass{.history = 0}.validate()), Contains("history = 0"));
}
