// SPDX-License-Identifier: MIT
// The fast selection paths of the policies (policy.hpp `ascending_prefix` and `top_k`, the one-pass
// Fast-dLLM threshold and KLASS loops) against straightforward reference selections -- a full sort
// by (key, index), `top_k_indices`, the binary heap and the policies' former loops -- on many random
// inputs full of ties (a few distinct values), with wide, skewed and constant spreads, infinities
// and NaN keys. The selected indices and their order must be identical.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <random>
#include <vector>

#include "mdlm/policies/eb_sampler.hpp"
#include "mdlm/policies/fast_dllm.hpp"
#include "mdlm/policies/fixed_count.hpp"
#include "mdlm/policies/klass.hpp"
#include "mdlm/policies/med.hpp"
#include "mdlm/policy.hpp"

namespace {

using indices = std::vector<std::size_t>;
constexpr double nan_value = std::numeric_limits<double>::quiet_NaN();
constexpr double inf_value = std::numeric_limits<double>::infinity();

//! Random keys of one of several shapes; `nan` adds a NaN or two.
std::vector<double> random_keys(std::mt19937_64& g, std::size_t n, int shape, bool nan) {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::uniform_int_distribution<int> few(0, 4);
  std::vector<double> k(n);
  for (auto& x : k) {
    switch (shape) {
      case 0: x = 0.25 * few(g); break;                               // five values: ties everywhere
      case 1: x = u(g) < 0.5 ? 0.125 * few(g) : u(g); break;          // ties among spread values
      case 2: x = std::pow(u(g), 8.0); break;                         // skewed towards 0
      case 3: x = u(g) < 0.01 ? 1e6 : u(g); break;                    // a far outlier: one bucket
      case 4: x = 0.5; break;                                         // constant
      case 5: x = u(g) < 0.05 ? (u(g) < 0.5 ? inf_value : -inf_value) : u(g); break;
      case 6: x = u(g) < 0.5 ? -0.0 : 0.0; break;                     // signed zeros tie
      default: x = std::ldexp(u(g), -1070); break;                    // subnormal range
    }
  }
  if (nan && n > 0) {
    k[std::uniform_int_distribution<std::size_t>(0, n - 1)(g)] = nan_value;
    k[std::uniform_int_distribution<std::size_t>(0, n - 1)(g)] = nan_value;
  }
  return k;
}

//! The reference ascending order: a full sort by (key, index).
indices sorted_order(const std::vector<double>& k) {
  std::vector<std::size_t> s;
  mdlm::detail::ascending_order(k.size(), [&](std::size_t i) { return k[i]; }, s);
  return s;
}

//! The order the binary heap hands out (the policies' order with a NaN key).
indices heap_order(const std::vector<double>& k, std::size_t p) {
  std::vector<std::size_t> h;
  h.reserve(k.size());
  mdlm::detail::ascending_heap(k.size(), h, k);
  indices out;
  while (!h.empty() && out.size() < p) out.push_back(mdlm::detail::pop_ascending(h, k));
  return out;
}

std::size_t pick_size(std::mt19937_64& g) {
  static constexpr std::size_t sizes[] = {0, 1, 2, 3, 63, 64, 65, 100, 257, 1000, 4096};
  return sizes[std::uniform_int_distribution<std::size_t>(0, std::size(sizes) - 1)(g)];
}

std::vector<mdlm::position_info> random_candidates(std::mt19937_64& g, std::size_t n, int shape) {
  const auto p = random_keys(g, n, shape % 3 == 0 ? 0 : 1, false);
  const auto h = random_keys(g, n, shape, false);
  const auto m = random_keys(g, n, shape % 2 == 0 ? 0 : 2, false);
  std::vector<mdlm::position_info> c(n);
  for (std::size_t i = 0; i < n; ++i) {
    c[i].position = 3 * i + 1;
    c[i].token = static_cast<mdlm::token_id>(i % 7);
    c[i].prob = c[i].tempered_prob = std::clamp(p[i], 0.0, 1.0);
    c[i].entropy = c[i].tempered_entropy = std::isfinite(h[i]) ? std::fabs(h[i]) : 0.5;
    c[i].margin = c[i].tempered_margin = std::clamp(m[i], 0.0, 1.0);
    c[i].stats.valid = true;
    c[i].stats.top1_logprob = std::log(std::max(c[i].prob, 1e-300));
  }
  return c;
}

}  // namespace

TEST_CASE("ascending_prefix hands out the full sort's order, ties to the lower index", "[decode][policies][selection]") {
  std::mt19937_64 g(20261202);
  mdlm::selection sel;
  for (int trial = 0; trial < 1500; ++trial) {
    const std::size_t n = pick_size(g);
    const int shape = trial % 8;
    const bool nan = trial % 11 == 5 && n > 0;
    const auto k = random_keys(g, n, shape, nan);
    const std::size_t p = std::uniform_int_distribution<std::size_t>(0, n)(g);
    const std::size_t hint = std::uniform_int_distribution<std::size_t>(0, 80)(g);
    sel.reserve(n);
    mdlm::detail::ascending_prefix ranked(sel);
    ranked.prepare(n, [&](std::size_t i) { return k[i]; }, hint);
    indices got;
    while (!ranked.empty() && got.size() < p) got.push_back(ranked.pop());
    CAPTURE(trial, n, shape, nan, p, hint);
    CHECK(ranked.has_nan() == nan);
    if (nan) {
      CHECK(got == heap_order(k, p));
    } else {
      indices want = sorted_order(k);
      want.resize(p);
      CHECK(got == want);
      CHECK(got == heap_order(k, p));  // the heap the policies used before gives the same order
    }
  }
}

TEST_CASE("top_k selects what top_k_indices (partial sort) selects, in its order", "[decode][policies][selection]") {
  std::mt19937_64 g(7);
  mdlm::selection sel;
  for (int trial = 0; trial < 1500; ++trial) {
    const std::size_t n = pick_size(g);
    const auto k = random_keys(g, n, trial % 8, trial % 13 == 3);
    const std::size_t count = std::uniform_int_distribution<std::size_t>(0, n + 2)(g);
    sel.reserve(n);
    sel.clear();
    mdlm::detail::top_k(n, count, [&](std::size_t i) { return k[i]; }, sel);
    std::vector<std::size_t> scratch;
    scratch.reserve(n);
    indices want;
    mdlm::detail::top_k_indices(n, count, [&](std::size_t i) { return k[i]; }, scratch, want);
    CAPTURE(trial, n, count);
    CHECK(sel.unmask == want);
  }
}

TEST_CASE("the policies select what their straightforward definitions select", "[decode][policies][selection]") {
  std::mt19937_64 g(99);
  for (int trial = 0; trial < 600; ++trial) {
    const std::size_t n = pick_size(g);
    const auto c = random_candidates(g, n, trial % 8);
    mdlm::step_context ctx{};
    ctx.step = static_cast<std::size_t>(trial);
    ctx.rng = mdlm::counter_rng{static_cast<std::uint64_t>(trial)};
    ctx.block_masked_at_start = n;
    ctx.steps_per_block = 8;
    ctx.step_in_block = static_cast<std::size_t>(trial % 8);
    mdlm::selection sel;
    sel.reserve(n);
    CAPTURE(trial, n);
    const auto run = [&](const auto& policy) {
      sel.clear();
      policy.select(ctx, c, sel);
      return sel.unmask;
    };
    const auto order_by = [&](auto key) {
      std::vector<double> k(n);
      for (std::size_t i = 0; i < n; ++i) k[i] = key(c[i]);
      return sorted_order(k);
    };

    const double lambda = std::uniform_real_distribution<double>(0.0, 0.6)(g);
    const std::size_t k_max = std::uniform_int_distribution<std::size_t>(1, 80)(g);
    if (n > 0) {
      indices want;
      const indices o = order_by([](const mdlm::position_info& x) { return x.entropy; });
      for (std::size_t r = 0; r < n && want.size() < k_max && (r == 0 || c[o[r]].entropy < lambda); ++r)
        want.push_back(o[r]);
      if (!(c[o[0]].entropy < lambda)) want = {o[0]};
      CHECK(run(mdlm::med{.lambda = lambda, .k_max = k_max}) == want);
    }

    const double gamma = std::uniform_real_distribution<double>(0.0, 3.0)(g);
    for (const auto order : {mdlm::eb_order::entropy, mdlm::eb_order::confidence, mdlm::eb_order::margin}) {
      const mdlm::eb_sampler eb{.gamma = gamma, .order = order};
      indices want;
      const indices o = order_by([&](const mdlm::position_info& x) { return eb.proxy(x); });
      double sum = 0.0, mx = 0.0;
      for (std::size_t r = 0; r < n; ++r) {
        sum += c[o[r]].entropy;
        mx = std::max(mx, c[o[r]].entropy);
        if (r > 0 && !(sum - mx <= gamma)) break;
        want.push_back(o[r]);
      }
      CHECK(run(eb) == want);
    }

    const mdlm::fast_dllm_factor factor{.factor = std::uniform_real_distribution<double>(0.05, 2.0)(g),
                                        .reference_last_rank = trial % 2 == 0};
    {
      indices want;
      const indices o = order_by([](const mdlm::position_info& x) { return -x.prob; });
      for (std::size_t r = 1; r <= n; ++r) {
        if (c[o[r - 1]].prob < factor.threshold(r) && !(factor.reference_last_rank && r == n)) break;
        want.push_back(o[r - 1]);
      }
      CHECK(run(factor) == want);
    }

    const mdlm::fast_dllm_threshold threshold{.tau = 0.25 * static_cast<double>(trial % 5)};
    {
      indices want;
      std::size_t best = 0;
      for (std::size_t i = 1; i < n; ++i)
        if (c[i].prob > c[best].prob) best = i;
      for (std::size_t i = 0; i < n; ++i)
        if (i == best || c[i].prob >= threshold.tau) want.push_back(i);
      CHECK(run(threshold) == want);
    }

    for (const auto score : {mdlm::score_kind::confidence, mdlm::score_kind::tempered_confidence,
                             mdlm::score_kind::margin, mdlm::score_kind::neg_entropy, mdlm::score_kind::random,
                             mdlm::score_kind::left_to_right}) {
      for (const double alg_temp : {0.0, 0.5}) {
        const mdlm::fixed_count fc{.score = score, .schedule = mdlm::count_schedule::per_step,
                                   .per_step = std::uniform_int_distribution<std::size_t>(1, 70)(g),
                                   .alg_temp = alg_temp};
        std::vector<double> k(n);
        for (std::size_t i = 0; i < n; ++i) {
          k[i] = fc.key(ctx, c[i]);
          if (alg_temp > 0.0) {
            const double u = ctx.rng.uniform(mdlm::rng_stream::position, ctx.sequence,
                                             static_cast<std::uint32_t>(ctx.step),
                                             static_cast<std::uint32_t>(c[i].position), 1);
            k[i] = k[i] / alg_temp - std::log(-std::log(u));
          }
        }
        std::vector<std::size_t> scratch;
        scratch.reserve(n);
        indices want;
        mdlm::detail::top_k_indices(n, fc.per_step, [&](std::size_t i) { return k[i]; }, scratch, want);
        CHECK(run(fc) == want);
      }
    }
  }
}

TEST_CASE("KLASS's one-pass loops decide as its definition, on both interfaces", "[decode][policies][selection][klass]") {
  std::mt19937_64 g(5);
  for (int trial = 0; trial < 60; ++trial) {
    const std::size_t length = std::uniform_int_distribution<std::size_t>(1, 300)(g);
    const std::size_t history = std::uniform_int_distribution<std::size_t>(1, 3)(g);
    const mdlm::klass policy{.kl_threshold = 0.02, .confidence_threshold = 0.5, .history = history,
                             .strict_confidence = trial % 2 == 0,
                             .fallback_steps_per_block = static_cast<std::size_t>(trial % 3) * 4};
    const mdlm::token_id mask = 9;
    std::vector<mdlm::token_id> tokens(length, 0);
    auto st = policy.make_state(mdlm::decode_setup{length, 10, 0, length, length, 0, mask});
    auto ref = st;
    std::uniform_real_distribution<double> u(0.0, 1.0);
    for (std::size_t step = 0; step < 12; ++step) {
      for (auto& t : tokens) t = u(g) < 0.8 ? mask : 0;
      std::vector<mdlm::position_info> cand;
      std::vector<std::size_t> rows;
      std::vector<mdlm::row_choice> stats;
      for (std::size_t p = 0; p < length; ++p) {
        if (tokens[p] != mask) continue;
        if (u(g) < 0.9) {  // a row missing now and then: its KL is NaN
          rows.push_back(p);
          mdlm::row_choice r;
          r.kl = u(g) < 0.1 ? nan_value : (u(g) < 0.5 ? 0.02 : u(g) * 0.04);  // ties at the threshold
          stats.push_back(r);
        }
        if (u(g) < 0.7) {
          mdlm::position_info c;
          c.position = p;
          c.prob = u(g) < 0.3 ? 0.5 : u(g);
          cand.push_back(c);
        }
      }
      mdlm::step_context ctx{};
      ctx.step = step;
      ctx.step_in_block = step % 6;
      ctx.block_masked_at_start = length;
      ctx.tokens = tokens;
      ctx.mask = mask;
      ctx.row_positions = rows;
      ctx.row_stats = stats;
      mdlm::selection sel;
      sel.reserve(length);
      policy.select(ctx, cand, st, sel);
      // The definition: record each masked position's KL (binary search), then the ready test.
      for (std::size_t p = 0; p < length; ++p) {
        if (tokens[p] != mask) continue;
        const mdlm::row_choice* r = ctx.stats_at(p);
        ref.kl[p * history + ref.count[p] % history] = r != nullptr ? r->kl : nan_value;
        ++ref.count[p];
      }
      indices want;
      if (!cand.empty()) {
        for (std::size_t i = 0; i < cand.size(); ++i) {
          const double c = cand[i].prob;
          const bool confident = policy.strict_confidence ? c > policy.confidence_threshold
                                                          : c >= policy.confidence_threshold;
          if (ctx.step_in_block + 1 >= history && confident && policy.stable(ref, cand[i].position))
            want.push_back(i);
        }
        if (want.empty()) {
          std::size_t k = 1;
          if (policy.fallback_steps_per_block > 0 && ctx.step_in_block < policy.fallback_steps_per_block)
            k = mdlm::llada_transfer_count(ctx.block_masked_at_start, policy.fallback_steps_per_block,
                                           ctx.step_in_block);
          std::vector<std::size_t> scratch;
          scratch.reserve(cand.size());
          mdlm::detail::top_k_indices(cand.size(), k, [&](std::size_t i) { return cand[i].prob; }, scratch, want);
        }
      }
      CAPTURE(trial, step, history);
      CHECK(sel.unmask == want);
      CHECK(st.count == ref.count);
      for (std::size_t i = 0; i < st.kl.size(); ++i)
        if (!(std::isnan(st.kl[i]) && std::isnan(ref.kl[i]))) CHECK(st.kl[i] == ref.kl[i]);
    }
  }
}

TEST_CASE("candidate_uniforms gives counter_rng::uniform bit for bit; Dream origin keeps u < p",
          "[decode][policies][selection]") {
  std::mt19937_64 g(11);
  for (int trial = 0; trial < 200; ++trial) {
    const std::size_t n = std::uniform_int_distribution<std::size_t>(0, 100)(g);
    std::vector<mdlm::position_info> c(n);
    for (auto& x : c) x.position = std::uniform_int_distribution<std::size_t>(0, 1u << 20)(g);
    mdlm::step_context ctx{};
    ctx.rng = mdlm::counter_rng{g()};
    ctx.sequence = static_cast<std::uint32_t>(g());
    ctx.step = std::uniform_int_distribution<std::size_t>(0, 1000)(g);
    ctx.total_steps = 1001;
    mdlm::selection sel;
    sel.reserve(n);
    CAPTURE(trial, n);
    for (unsigned half = 0; half < 2; ++half) {
      const double* u = mdlm::detail::candidate_uniforms(ctx, c, half, sel);
      for (std::size_t i = 0; i < n; ++i)
        CHECK(u[i] == ctx.rng.uniform(mdlm::rng_stream::position, ctx.sequence, static_cast<std::uint32_t>(ctx.step),
                                      static_cast<std::uint32_t>(c[i].position), half));
    }
    const mdlm::dream_origin origin{};
    indices want;
    for (std::size_t i = 0; i < n; ++i)
      if (ctx.rng.uniform(mdlm::rng_stream::position, ctx.sequence, static_cast<std::uint32_t>(ctx.step),
                          static_cast<std::uint32_t>(c[i].position)) < origin.transfer_probability(ctx))
        want.push_back(i);
    sel.clear();
    origin.select(ctx, c, sel);
    CHECK(sel.unmask == want);
  }
}
