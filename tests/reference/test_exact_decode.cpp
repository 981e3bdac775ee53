// SPDX-License-Identifier: MIT
// Exact output distributions of the decode loop (mdlm::reference::exact_output_distribution), and the
// exactness properties of issue 3 item 6:
//   a. token-independent policies at one position per step with ancestral sampling output exactly the
//      model's joint given the prompt;
//   b. k = 2 positions per step is not exact;
//   c. MED / EB: KL(p_out || q_out) <= trajectory bound <= lambda L (MED), gamma E[steps] (EB);
//      KL -> 0 as lambda -> 0;
//   d. LLaDA low_confidence (confidence of the sampled token) at T = 1, one position per step, is not
//      exact;
//   e. 10^5 real mdlm::decode runs agree with the exact distribution (chi-square, false-failure rate
//      1e-6, fixed seeds).
// Plus: greedy runs (point masses) agree with decode in every step mode, the enumeration helpers, and
// bad input.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "mdlm/mdlm.hpp"
#include "mdlm/reference/exact_decode.hpp"
#include "mdlm/reference/reference.hpp"  // the umbrella header: its static_asserts check joint_table and hmm
#include "mdlm/reference/hmm.hpp"
#include "mdlm/reference/joint_table.hpp"
#include "support/chi_square.hpp"

using mdlm::canvas;
using mdlm::count_schedule;
using mdlm::decode_options;
using mdlm::score_kind;
using mdlm::token_choice;
using mdlm::token_id;
using mdlm::reference::exact_decode_options;
using mdlm::reference::exact_output_distribution;
using mdlm::reference::joint_table;
using mdlm::reference::kl_divergence;
using mdlm::reference::max_abs_difference;
using mdlm::reference::model_output_distribution;
using mdlm::reference::output_distribution;
using mdlm::test::chi_square;
using mdlm::test::chi_square_tail;

namespace {

token_choice ancestral() {
  token_choice c;
  c.temperature = 1.0;
  return c;
}

template <class P>
decode_options<P> options(P policy, token_choice choice, std::size_t block = 0, std::size_t steps = 0) {
  decode_options<P> o;
  o.policy = policy;
  o.choice = choice;
  o.block_length = block;
  o.steps = steps;
  return o;
}

//! A canvas [prompt][gen masks] for a model of length prompt + gen; the prompt is drawn from the seed.
canvas toy_canvas(std::size_t vocab, std::size_t prompt, std::size_t gen, token_id mask, std::uint64_t seed) {
  mdlm::sequential_rng r{seed, mdlm::rng_stream::user, 3};
  std::vector<token_id> p(prompt);
  for (auto& t : p) t = static_cast<token_id>(std::min<double>(r.uniform() * static_cast<double>(vocab),
                                                               static_cast<double>(vocab - 1)));
  return mdlm::make_canvas(p, gen, mask);
}

mdlm::fixed_count per_step(score_kind s, std::size_t k, double alg_temp = 0.0) {
  mdlm::fixed_count f;
  f.score = s;
  f.schedule = count_schedule::per_step;
  f.per_step = k;
  f.alg_temp = alg_temp;
  return f;
}

double total(const output_distribution& d) {
  double s = 0.0;
  for (const auto& e : d) s += e.probability;
  return s;
}

using output_key = std::vector<token_id>;
using trajectory_key = std::pair<std::vector<token_id>, std::vector<std::int32_t>>;

std::vector<std::pair<output_key, double>> expected_outputs(const output_distribution& d) {
  std::vector<std::pair<output_key, double>> out;
  for (const auto& e : d) out.emplace_back(e.tokens, e.probability);
  return out;
}
std::vector<std::pair<trajectory_key, double>> expected_trajectories(
    const std::vector<mdlm::reference::trajectory_probability>& d) {
  std::vector<std::pair<trajectory_key, double>> out;
  for (const auto& e : d) out.emplace_back(trajectory_key{e.tokens, e.unmask_step}, e.probability);
  return out;
}

//! Counts of `runs` real decodes (seed fixed, canvas.sequence = run index): per output and per
//! (output, unmask steps).
struct mc_counts {
  std::map<output_key, std::size_t> outputs;
  std::map<trajectory_key, std::size_t> trajectories;
};

template <class Model, class P>
mc_counts monte_carlo(Model& model, canvas c, const decode_options<P>& o, std::uint64_t seed, std::size_t runs) {
  mc_counts counts;
  for (std::size_t r = 0; r < runs; ++r) {
    c.sequence = static_cast<std::uint32_t>(r);
    const auto res = mdlm::decode(model, c, o, mdlm::counter_rng{seed});
    REQUIRE(res.status == mdlm::decode_status::completed);
    ++counts.outputs[res.tokens];
    ++counts.trajectories[{res.tokens, res.unmask_step}];
  }
  return counts;
}

constexpr double false_failure_rate = 1e-6;
constexpr std::size_t mc_runs = 100000;

}  // namespace

TEST_CASE("chi-square tail: closed forms and table values", "[reference][exact_decode][statistics]") {
  for (double x : {0.1, 1.0, 3.0, 10.0, 40.0}) {
    CHECK(chi_square_tail(x, 2.0) == Approx(std::exp(-x / 2.0)).epsilon(1e-12));
    CHECK(chi_square_tail(x, 1.0) == Approx(std::erfc(std::sqrt(x / 2.0))).epsilon(1e-10));
    CHECK(chi_square_tail(x, 4.0) == Approx(std::exp(-x / 2.0) * (1.0 + x / 2.0)).epsilon(1e-12));
  }
  // Table values: chi^2_{0.95}(10) = 18.307, chi^2_{0.999}(26) = 54.052.
  CHECK(chi_square_tail(18.307, 10.0) == Approx(0.05).epsilon(1e-3));
  CHECK(chi_square_tail(54.052, 26.0) == Approx(0.001).epsilon(1e-3));
}

TEST_CASE("exact_output_distribution: greedy decoding is a point mass equal to decode's output",
          "[reference][exact_decode]") {
  for (std::uint64_t seed = 0; seed < 6; ++seed) {
    const std::size_t v = 2 + seed % 2;
    const joint_table t = joint_table::random(v, 5, 0.5, 100 + seed);
    const canvas c = toy_canvas(v, 1, 4, t.mask_token(), seed);
    const auto check = [&](const auto& o) {
      INFO("seed " << seed << " block " << o.block_length << " steps " << o.steps);
      const auto e = exact_output_distribution(t, c, o);
      const auto d = mdlm::decode(t, c, o, mdlm::counter_rng{seed});
      REQUIRE(e.outputs.size() == 1);
      CHECK(e.outputs[0].tokens == d.tokens);
      CHECK(e.outputs[0].probability == 1.0);
      CHECK(e.expected_nfe == static_cast<double>(d.nfe));
      CHECK(e.incomplete_probability == 0.0);
    };
    const token_choice greedy{};
    for (std::size_t block : {1u, 2u, 4u}) {
      check(options(mdlm::med{0.3, 4}, greedy, block));
      check(options(mdlm::eb_sampler{0.2, mdlm::eb_order::margin}, greedy, block));
      check(options(mdlm::fast_dllm_threshold{0.7}, greedy, block));
      check(options(mdlm::fast_dllm_factor{1.0, true}, greedy, block));
      check(options(per_step(score_kind::confidence, 2), greedy, block));
      check(options(mdlm::fixed_count{}, greedy, block, 4));  // LLaDA low_confidence, 4 steps
      check(options(mdlm::fixed_count{}, greedy, block, 8));  // no-op steps included
    }
    mdlm::fixed_count dream;
    dream.score = score_kind::tempered_confidence;
    dream.schedule = count_schedule::dream_timesteps;
    check(options(dream, greedy, 0, 3));
    check(options(dream, greedy, 0, 6));
  }
}

TEST_CASE("(a) token-independent policies at one position per step output exactly the model's joint",
          "[reference][exact_decode][exactness]") {
  const token_choice choice = ancestral();
  std::size_t checked = 0;
  for (std::uint64_t seed = 0; seed < 8; ++seed) {
    const std::size_t v = 2 + seed % 2;
    const double alpha = seed % 4 < 2 ? 0.3 : 1.0;
    const joint_table t = joint_table::random(v, 5, alpha, 1000 + seed);
    const canvas c = toy_canvas(v, 1, 4, t.mask_token(), seed);
    const output_distribution joint = model_output_distribution(t, c);
    REQUIRE(total(joint) == Approx(1.0).epsilon(1e-13));
    exact_decode_options eo;
    eo.exact_process = seed < 2;  // the exact process must agree with the joint too
    const auto check = [&](const auto& o, const char* name) {
      INFO("seed " << seed << " V " << v << " alpha " << alpha << " policy " << name << " block " << o.block_length);
      const auto e = exact_output_distribution(t, c, o, eo);
      CHECK(e.incomplete_probability == 0.0);
      CHECK(max_abs_difference(e.outputs, joint) < 1e-12);
      CHECK(std::abs(kl_divergence(joint, e.outputs)) < 1e-12);
      if (e.has_exact_process) {
        CHECK(max_abs_difference(e.exact_outputs, joint) < 1e-12);
        CHECK(e.trajectory_bound == 0.0);  // one position per step: every term sum - max is 0
      }
      ++checked;
    };
    for (std::size_t block : {1u, 2u, 4u}) {
      check(options(mdlm::med{0.0, 4}, choice, block), "MED lambda 0");
      check(options(mdlm::med{0.5, 1}, choice, block), "MED k_max 1");
      check(options(mdlm::eb_sampler{0.0, mdlm::eb_order::entropy}, choice, block), "EB entropy gamma 0");
      check(options(mdlm::eb_sampler{0.0, mdlm::eb_order::confidence}, choice, block), "EB confidence gamma 0");
      check(options(mdlm::eb_sampler{0.0, mdlm::eb_order::margin}, choice, block), "EB margin gamma 0");
      check(options(per_step(score_kind::neg_entropy, 1), choice, block), "entropy top-1");
      check(options(per_step(score_kind::margin, 1), choice, block), "margin top-1");
      check(options(per_step(score_kind::left_to_right, 1), choice, block), "left-to-right");
      check(options(per_step(score_kind::random, 1), choice, block), "random order");
      check(options(per_step(score_kind::neg_entropy, 1, 0.7), choice, block), "entropy alg_temp 0.7");
      mdlm::fixed_count llada_random;
      llada_random.score = score_kind::random;
      check(options(llada_random, choice, block, 4), "LLaDA random, 4 steps");
    }
  }
  CHECK(checked == 8 * 3 * 11);
}

TEST_CASE("(a) on an HMM: entropy decoding at one position per step is exact", "[reference][exact_decode][exactness]") {
  for (std::uint64_t seed = 0; seed < 3; ++seed) {
    const auto h = mdlm::reference::hmm::random(3, 2, 6, 50 + seed, 0.5);
    const canvas c = toy_canvas(2, 2, 4, h.mask_token(), seed);
    const output_distribution joint = model_output_distribution(h, c);
    for (std::size_t block : {1u, 2u, 4u}) {
      const auto e = exact_output_distribution(h, c, options(mdlm::med{0.0, 8}, ancestral(), block));
      CHECK(max_abs_difference(e.outputs, joint) < 1e-12);
      CHECK(max_abs_difference(e.exact_outputs, joint) < 1e-12);
    }
  }
}

TEST_CASE("(b) two positions per step is not exact on generic joints", "[reference][exact_decode][exactness]") {
  for (std::uint64_t seed = 0; seed < 10; ++seed) {
    const std::size_t v = 2 + seed % 2;
    const joint_table t = joint_table::random(v, 5, 1.0, 2000 + seed);
    const canvas c = toy_canvas(v, 1, 4, t.mask_token(), seed);
    const output_distribution joint = model_output_distribution(t, c);
    for (score_kind s : {score_kind::neg_entropy, score_kind::left_to_right, score_kind::random}) {
      INFO("seed " << seed << " score " << static_cast<int>(s));
      const auto e = exact_output_distribution(t, c, options(per_step(s, 2), ancestral()));
      const double kl = kl_divergence(joint, e.outputs);
      CHECK(kl > 1e-6);
      CHECK(total(e.outputs) == Approx(1.0).epsilon(1e-13));
      // The selection is token-independent, so the exact process outputs the joint and bounds the KL.
      CHECK(max_abs_difference(e.exact_outputs, joint) < 1e-12);
      CHECK(kl <= e.trajectory_bound + 1e-12);
    }
    // Dream origin: token-independent, but several positions can be unmasked at one step.
    INFO("seed " << seed << " Dream origin");
    const auto origin = exact_output_distribution(t, c, options(mdlm::dream_origin{}, ancestral(), 0, 4));
    const double kl = kl_divergence(joint, origin.outputs);
    CHECK(kl > 1e-6);
    CHECK(max_abs_difference(origin.exact_outputs, joint) < 1e-12);
    CHECK(kl <= origin.trajectory_bound + 1e-12);
  }
}

TEST_CASE("(c) MED and EB: KL(p_out || q_out) <= trajectory bound <= lambda L, gamma E[steps]",
          "[reference][exact_decode][exactness]") {
  const std::size_t gen = 4;
  std::size_t positive = 0;
  for (std::uint64_t seed = 0; seed < 8; ++seed) {
    const std::size_t v = 2 + seed % 2;
    const joint_table t = joint_table::random(v, 5, 0.4, 3000 + seed);
    const canvas c = toy_canvas(v, 1, gen, t.mask_token(), seed);
    const output_distribution joint = model_output_distribution(t, c);
    for (std::size_t block : {2u, 4u}) {
      for (double lambda : {1.0, 0.5, 0.2, 0.05}) {
        INFO("seed " << seed << " block " << block << " lambda " << lambda);
        const auto e = exact_output_distribution(t, c, options(mdlm::med{lambda, gen}, ancestral(), block));
        REQUIRE(e.has_exact_process);
        CHECK(max_abs_difference(e.exact_outputs, joint) < 1e-12);
        const double kl = kl_divergence(e.exact_outputs, e.outputs);
        CHECK(kl <= e.trajectory_bound + 1e-12);
        CHECK(e.trajectory_bound <= lambda * static_cast<double>(gen));
        positive += kl > 1e-9;
      }
      for (double gamma : {0.5, 0.1, 0.01}) {
        for (auto order : {mdlm::eb_order::entropy, mdlm::eb_order::confidence, mdlm::eb_order::margin}) {
          INFO("seed " << seed << " block " << block << " gamma " << gamma << " order " << static_cast<int>(order));
          const auto e = exact_output_distribution(t, c, options(mdlm::eb_sampler{gamma, order}, ancestral(), block));
          CHECK(max_abs_difference(e.exact_outputs, joint) < 1e-12);
          const double kl = kl_divergence(e.exact_outputs, e.outputs);
          CHECK(kl <= e.trajectory_bound + 1e-12);
          CHECK(e.trajectory_bound <= gamma * e.exact_expected_steps + 1e-12);
          CHECK(e.exact_expected_steps <= static_cast<double>(gen) + 1e-12);
          positive += kl > 1e-9;
        }
      }
    }
  }
  // The bounds are not vacuous: parallel steps do happen and cost something.
  CHECK(positive > 20);
}

TEST_CASE("(c) MED: KL -> 0 as lambda -> 0", "[reference][exact_decode][exactness]") {
  for (std::uint64_t seed = 0; seed < 4; ++seed) {
    const joint_table t = joint_table::random(3, 5, 0.3, 4000 + seed);
    const canvas c = toy_canvas(3, 1, 4, t.mask_token(), seed);
    const output_distribution joint = model_output_distribution(t, c);
    double previous_bound = std::numeric_limits<double>::infinity();
    double first_kl = 0.0, last_kl = 1.0;
    for (int n = 0; n <= 8; ++n) {
      const double lambda = 2.0 * std::pow(10.0, -n);
      INFO("seed " << seed << " lambda " << lambda);
      const auto e = exact_output_distribution(t, c, options(mdlm::med{lambda, 4}, ancestral()));
      const double kl = kl_divergence(joint, e.outputs);
      CHECK(kl <= e.trajectory_bound + 1e-12);
      CHECK(e.trajectory_bound <= 4.0 * lambda);
      CHECK(e.trajectory_bound <= previous_bound + 1e-15);
      previous_bound = e.trajectory_bound;
      if (n == 0) first_kl = kl;
      last_kl = kl;
    }
    CHECK(first_kl > 1e-6);
    CHECK(std::abs(last_kl) < 1e-12);
  }
}

TEST_CASE("(d) confidence of the sampled token at T = 1, one position per step, is not exact",
          "[reference][exact_decode][exactness]") {
  for (std::uint64_t seed = 0; seed < 10; ++seed) {
    const std::size_t v = 2 + seed % 2;
    const joint_table t = joint_table::random(v, 5, 1.0, 5000 + seed);
    const canvas c = toy_canvas(v, 1, 4, t.mask_token(), seed);
    const output_distribution joint = model_output_distribution(t, c);
    INFO("seed " << seed);
    // LLaDA low_confidence: top-1 per step by p(sampled token), adaptive and with LLaDA's schedule.
    const auto adaptive = exact_output_distribution(t, c, options(per_step(score_kind::confidence, 1), ancestral()));
    CHECK(kl_divergence(joint, adaptive.outputs) > 1e-6);
    const auto llada = exact_output_distribution(t, c, options(mdlm::fixed_count{}, ancestral(), 0, 4));
    CHECK(kl_divergence(joint, llada.outputs) > 1e-6);
    CHECK(max_abs_difference(adaptive.outputs, llada.outputs) < 1e-12);  // same rule: 1 per step either way
    // The same table with a token-independent score at one position per step is exact.
    const auto entropy = exact_output_distribution(t, c, options(per_step(score_kind::neg_entropy, 1), ancestral()));
    CHECK(max_abs_difference(entropy.outputs, joint) < 1e-12);
  }
}

TEST_CASE("(e) Monte Carlo: 10^5 decode runs agree with the exact distribution",
          "[reference][exact_decode][monte_carlo]") {
  // Toy model: V = 3, one prompt token, three masks (27 outputs). The exact distribution is taken on
  // the float rows decode sees (logit_precision::as_decode). Each case: 10^5 runs with seed fixed and
  // canvas.sequence = run index; chi-square with a false-failure rate of 1e-6.
  const joint_table t = joint_table::random(3, 4, 0.7, 777);
  const canvas c = toy_canvas(3, 1, 3, t.mask_token(), 9);
  exact_decode_options eo;
  eo.precision = mdlm::reference::logit_precision::as_decode;
  eo.exact_process = false;
  eo.track_unmask_steps = true;
  const auto run = [&](const auto& o, std::uint64_t seed, const char* name) {
    INFO(name);
    const auto e = exact_output_distribution(t, c, o, eo);
    REQUIRE(total(e.outputs) == Approx(1.0).epsilon(1e-12));
    const auto counts = monte_carlo(t, c, o, seed, mc_runs);
    const auto r = chi_square(expected_outputs(e.outputs), counts.outputs, mc_runs);
    INFO("outputs: chi2 = " << r.statistic << " df = " << r.df << " p = " << r.p_value);
    CHECK(r.outside_support == 0);
    CHECK(r.df >= 5.0);
    CHECK(r.p_value >= false_failure_rate);
    // The joint law of (output, step at which each position was unmasked) checks the selection law.
    const auto rt = chi_square(expected_trajectories(e.trajectories), counts.trajectories, mc_runs);
    INFO("trajectories: chi2 = " << rt.statistic << " df = " << rt.df << " p = " << rt.p_value);
    CHECK(rt.outside_support == 0);
    CHECK(rt.df >= r.df);
    CHECK(rt.p_value >= false_failure_rate);
    return counts;
  };
  SECTION("LLaDA low_confidence at T = 1 (token-dependent selection)") {
    const auto o = options(mdlm::fixed_count{}, ancestral(), 0, 3);
    const auto counts = run(o, 11, "low_confidence");
    // Power: the same samples reject the model's joint, from which this sampler differs.
    const output_distribution joint = model_output_distribution(t, c);
    const auto e = exact_output_distribution(t, c, o, eo);
    REQUIRE(kl_divergence(joint, e.outputs) > 2e-3);
    CHECK(chi_square(expected_outputs(joint), counts.outputs, mc_runs).p_value < false_failure_rate);
  }
  SECTION("MED lambda 0.6, k_max 3") {
    run(options(mdlm::med{0.6, 3}, ancestral()), 12, "MED");
  }
  SECTION("random order, two per step (random k-subsets)") {
    run(options(per_step(score_kind::random, 2), ancestral()), 13, "random k=2");
  }
  SECTION("Dream origin, 3 steps (independent Bernoulli selections)") {
    run(options(mdlm::dream_origin{}, ancestral(), 0, 3), 14, "origin");
  }
  SECTION("Dream maskgit_plus with alg_temp, T = 0.8, top-p 0.9 (Plackett-Luce over sampled tokens)") {
    mdlm::fixed_count f;
    f.score = score_kind::tempered_confidence;
    f.schedule = count_schedule::dream_timesteps;
    f.alg_temp = 0.5;
    token_choice ch;
    ch.temperature = 0.8;
    ch.top_p = 0.9;
    run(options(f, ch, 0, 2), 15, "maskgit_plus alg_temp");
  }
}

TEST_CASE("exact_output_distribution: helpers and distribution invariants", "[reference][exact_decode]") {
  const joint_table t = joint_table::random(2, 4, 1.0, 31);
  const canvas c = toy_canvas(2, 1, 3, t.mask_token(), 1);
  const auto e = exact_output_distribution(t, c, options(per_step(score_kind::confidence, 2), ancestral()));
  CHECK(total(e.outputs) == Approx(1.0).epsilon(1e-14));
  for (std::size_t i = 1; i < e.outputs.size(); ++i) CHECK(e.outputs[i - 1].tokens < e.outputs[i].tokens);
  for (const auto& o : e.outputs) {
    CHECK(o.tokens[0] == c.tokens[0]);  // the prompt is kept
    CHECK(std::count(o.tokens.begin(), o.tokens.end(), t.mask_token()) == 0);
    CHECK(mdlm::reference::probability_of(e.outputs, o.tokens) == o.probability);
  }
  const std::vector<token_id> absent{1 - c.tokens[0], 0, 0, 0};
  CHECK(mdlm::reference::probability_of(e.outputs, absent) == 0.0);
  CHECK(kl_divergence(e.outputs, e.outputs) == 0.0);
  output_distribution partial(e.outputs.begin() + 1, e.outputs.end());
  CHECK(kl_divergence(e.outputs, partial) == std::numeric_limits<double>::infinity());
  CHECK(max_abs_difference(e.outputs, partial) == e.outputs[0].probability);
  output_distribution unsorted = e.outputs;
  std::swap(unsorted[0], unsorted[1]);
  CHECK_THROWS_WITH(kl_divergence(unsorted, e.outputs), Catch::Contains("kl_divergence: p"));
  // A canvas with no mask: NFE 0, the canvas itself with probability 1.
  canvas full = c;
  full.tokens = {c.tokens[0], 0, 1, 0};
  const auto f = exact_output_distribution(t, full, options(mdlm::med{}, ancestral()));
  REQUIRE(f.outputs.size() == 1);
  CHECK(f.outputs[0].tokens == full.tokens);
  CHECK(f.expected_nfe == 0.0);
}

namespace {
//! A policy that picks a random candidate from the generator without an exact law: refused.
struct coin_policy {
  void validate() const {}
  [[nodiscard]] bool scheduled() const noexcept { return false; }
  void select(const mdlm::step_context& ctx, std::span<const mdlm::position_info> cand, mdlm::selection& out) const {
    if (cand.empty()) return;
    const double u = ctx.rng.uniform(mdlm::rng_stream::user, ctx.sequence, static_cast<std::uint32_t>(ctx.step), 0);
    out.unmask.push_back(static_cast<std::size_t>(u * static_cast<double>(cand.size())) % cand.size());
  }
};
//! The same random choice with its exact law supplied: accepted.
struct enumerable_coin_policy : coin_policy {
  template <class F>
  void enumerate_selections(const mdlm::step_context&, std::span<const mdlm::position_info> cand, F&& f) const {
    mdlm::selection s;
    for (std::size_t i = 0; i < cand.size(); ++i) {
      s.unmask = {i};
      f(static_cast<const mdlm::selection&>(s), 1.0 / static_cast<double>(cand.size()));
    }
  }
};
}  // namespace

TEST_CASE("exact_output_distribution: bad input and limits", "[reference][exact_decode][errors]") {
  const joint_table t = joint_table::random(3, 5, 1.0, 41);
  const canvas c = toy_canvas(3, 1, 4, t.mask_token(), 2);
  CHECK_THROWS_WITH(exact_output_distribution(t, c, options(mdlm::med{-1.0, 4}, ancestral())),
                    Catch::Contains("lambda = -1"));
  CHECK_THROWS_WITH(exact_output_distribution(t, c, options(mdlm::med{}, ancestral(), 3)),
                    Catch::Contains("block_length = 3"));
  // steps = 0 with a scheduled policy: one step per generated position, as decode does.
  const auto dflt = exact_output_distribution(t, c, options(mdlm::fixed_count{}, ancestral()));
  const auto four = exact_output_distribution(t, c, options(mdlm::fixed_count{}, ancestral(), 0, 4));
  CHECK(max_abs_difference(dflt.outputs, four.outputs) == 0.0);
  CHECK(dflt.expected_nfe == Approx(4.0).epsilon(1e-12));
  CHECK_THROWS_WITH(exact_output_distribution(t, c, options(mdlm::fixed_count{}, ancestral(), 2, 3)),
                    Catch::Contains("steps = 3"));
  canvas bad = c;
  bad.tokens[0] = 7;
  CHECK_THROWS_WITH(exact_output_distribution(t, bad, options(mdlm::med{}, ancestral())), Catch::Contains("token 7"));
  exact_decode_options eo;
  eo.max_states = 0;
  CHECK_THROWS_WITH(exact_output_distribution(t, c, options(mdlm::med{}, ancestral()), eo),
                    Catch::Contains("max_states = 0"));
  eo.max_states = 10;
  CHECK_THROWS_WITH(exact_output_distribution(t, c, options(mdlm::med{}, ancestral()), eo),
                    Catch::Contains("exceed max_states = 10"));
  eo = {};
  eo.max_branches = 80;  // 3^4 = 81 joint token choices at the first step
  CHECK_THROWS_WITH(exact_output_distribution(t, c, options(mdlm::med{}, ancestral()), eo),
                    Catch::Contains("81 joint token choices"));
  CHECK_THROWS_WITH(exact_output_distribution(t, c, options(coin_policy{}, ancestral())),
                    Catch::Contains("depends on the random generator"));
  const auto e = exact_output_distribution(t, c, options(enumerable_coin_policy{}, ancestral()));
  CHECK(max_abs_difference(e.outputs, model_output_distribution(t, c)) < 1e-12);
}
