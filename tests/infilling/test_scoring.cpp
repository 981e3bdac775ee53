// SPDX-License-Identifier: MIT
// Answer scoring (eq. 4), the answer-entropy bound (eq. 3) on every state, trace scoring (appendix E),
// the AUC and the decoding analytics (table 8).
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "mdlm/mdlm.hpp"
#include "mdlm/reference/joint_table.hpp"
#include "support/exact.hpp"

namespace {
using table = mdlm::reference::joint_table;

// Template on a V = 3, L = 7 table: [prompt 1][reasoning 3][delimiter 1][answer 2].
mdlm::reasoning_template small_template(mdlm::token_id mask) {
  return mdlm::make_template({.prompt = {2}, .reasoning_length = 3, .delimiter = {0}, .answer_length = 2}, mask);
}

// Visits every state of the generation region of `t`: each originally masked position either masked
// or holding one of the V symbols ((V+1)^m states).
template <class F>
void for_each_state(const mdlm::reasoning_template& t, std::size_t vocab, mdlm::token_id mask, F&& f) {
  std::vector<std::size_t> free;
  for (std::size_t p = 0; p < t.canvas.size(); ++p)
    if (t.canvas.tokens[p] == mask) free.push_back(p);
  std::vector<mdlm::token_id> tokens = t.canvas.tokens;
  std::vector<std::size_t> digit(free.size(), 0);  // 0 = mask, d = symbol d-1
  for (;;) {
    for (std::size_t k = 0; k < free.size(); ++k)
      tokens[free[k]] = digit[k] == 0 ? mask : static_cast<mdlm::token_id>(digit[k] - 1);
    f(tokens);
    std::size_t k = 0;
    while (k < free.size() && digit[k] == vocab) digit[k++] = 0;
    if (k == free.size()) return;
    ++digit[k];
  }
}
}  // namespace

TEST_CASE("phi equals the log of the product of the exact answer marginals", "[infilling][score][exact]") {
  for (std::uint64_t seed : {4u, 5u}) {
    const auto model = table::random(3, 7, seed == 4 ? 1.0 : 0.2, seed);
    const auto mask = model.mask_token();
    const auto t = small_template(mask);
    std::size_t checked = 0;
    for_each_state(t, 3, mask, [&](const std::vector<mdlm::token_id>& s) {
      // Answer span: whatever the state holds there is replaced by masks by evaluate_answer.
      auto masked = s;
      masked[5] = masked[6] = mask;
      if (!(model.log_evidence(masked) > -std::numeric_limits<double>::infinity())) return;
      for (const std::vector<mdlm::token_id>& a : {std::vector<mdlm::token_id>{0, 0}, std::vector<mdlm::token_id>{1, 2}}) {
        auto m = model;
        const auto e = mdlm::evaluate_answer(m, s, t.spans, a);
        const auto p5 = model.conditional(masked, 5), p6 = model.conditional(masked, 6);
        const double exact = std::log(p5[static_cast<std::size_t>(a[0])] * p6[static_cast<std::size_t>(a[1])]);
        CHECK(std::abs(e.phi - exact) < 1e-12);
        CHECK(std::abs(e.h_ub - (mdlm::test::entropy(p5) + mdlm::test::entropy(p6))) < 1e-12);
        CHECK(e.phi == mdlm::answer_score(m, s, t.spans, a));
        ++checked;
      }
    });
    CHECK(checked > 100);
  }
}

TEST_CASE("H(a | s) <= H_UB on every state any decode trajectory can reach", "[infilling][score][exact][bound]") {
  // Every trajectory of every policy visits only states in which each generated position is masked
  // or holds a symbol; all (V+1)^5 = 1024 such states are checked, on a dependent and a peaked table.
  for (double alpha : {1.0, 0.05}) {
    const auto model = table::random(3, 7, alpha, 8);
    const auto mask = model.mask_token();
    const auto t = small_template(mask);
    std::size_t checked = 0;
    double min_gap = std::numeric_limits<double>::infinity();
    for_each_state(t, 3, mask, [&](const std::vector<mdlm::token_id>& s) {
      if (!(model.log_evidence(s) > -std::numeric_limits<double>::infinity())) return;
      std::vector<std::size_t> masked_answer;
      for (std::size_t p = 5; p < 7; ++p)
        if (s[p] == mask) masked_answer.push_back(p);
      if (masked_answer.empty()) return;
      std::vector<double> rows(7 * 4);
      model.logits(s, std::span<double>(rows));
      double h_ub = 0.0;
      for (std::size_t p : masked_answer)
        h_ub += mdlm::compute_logit_stats(std::span<const double>(rows).subspan(p * 4, 4)).entropy;
      const auto joint = model.conditional_joint(s, masked_answer);
      const double h_joint = mdlm::test::entropy(std::vector<double>(joint.begin(), joint.end()));
      CHECK(h_joint <= h_ub + 1e-12);
      min_gap = std::min(min_gap, h_ub - h_joint);
      ++checked;
    });
    CHECK(checked > 200);
    CHECK(min_gap > -1e-12);
  }
}

TEST_CASE("early exit's H_UB trajectory is the bound of the states the decode visited", "[infilling][score][bound]") {
  // The observer's H_UB at each call (float rows) equals the exact bound of the state at that call
  // (double) to float precision and is >= the exact joint answer entropy.
  const auto model = table::random(3, 7, 0.3, 21);
  const auto mask = model.mask_token();
  const auto t = small_template(mask);
  for (std::uint64_t seed = 0; seed < 6; ++seed) {
    std::vector<std::vector<mdlm::token_id>> states;
    auto record = [&](mdlm::step_event& e) { states.emplace_back(e.tokens.begin(), e.tokens.end()); };
    struct on_logits_recorder {
      decltype(record)& f;
      void on_logits(mdlm::step_event& e) { f(e); }
    } rec{record};
    mdlm::early_exit exit(t, 1e-9);
    const mdlm::decode_options<mdlm::med> opt{.policy = {.lambda = 0.5}, .choice = {.temperature = 1.0}};
    const auto r = mdlm::decode(model, t.canvas, opt, mdlm::counter_rng{seed}, rec, exit);
    const auto& res = exit.result();
    REQUIRE(res.h_ub.size() == states.size());
    REQUIRE(res.nfe == r.nfe);
    for (std::size_t k = 0; k < states.size(); ++k) {
      std::vector<std::size_t> masked_answer;
      for (std::size_t p = 5; p < 7; ++p)
        if (states[k][p] == mask) masked_answer.push_back(p);
      double exact_ub = 0.0, h_joint = 0.0;
      if (!masked_answer.empty()) {
        for (std::size_t p : masked_answer) exact_ub += mdlm::test::entropy(model.conditional(states[k], p));
        const auto joint = model.conditional_joint(states[k], masked_answer);
        h_joint = mdlm::test::entropy(std::vector<double>(joint.begin(), joint.end()));
      }
      CHECK(std::abs(res.h_ub[k] - exact_ub) < 1e-5);
      CHECK(h_joint <= res.h_ub[k] + 1e-5);
    }
  }
}

TEST_CASE("trace scoring unmasks the trace left to right and averages the curves", "[infilling][score][trace]") {
  const auto model = table::random(3, 7, 0.5, 6);
  const auto mask = model.mask_token();
  const auto t = small_template(mask);
  const std::vector<mdlm::token_id> trace{1, 0, 2}, answer{2, 1};
  auto m = model;
  const auto s = mdlm::score_trace(m, t, trace, answer);
  REQUIRE(s.phi.size() == 4);
  REQUIRE(s.h_ub.size() == 4);
  double sum_phi = 0.0, sum_h = 0.0;
  auto state = t.canvas.tokens;
  for (std::size_t k = 0; k <= 3; ++k) {
    // State k: the first k trace tokens, everything else generated masked.
    const auto e = mdlm::evaluate_answer(m, state, t.spans, answer);
    CHECK(s.phi[k] == e.phi);
    CHECK(s.h_ub[k] == e.h_ub);
    const double exact = std::log(model.conditional(state, 5)[2] * model.conditional(state, 6)[1]);
    CHECK(std::abs(s.phi[k] - exact) < 1e-12);
    sum_phi += s.phi[k];
    sum_h += s.h_ub[k];
    if (k < 3) state[1 + k] = trace[k];
  }
  CHECK(std::abs(s.mean_phi - sum_phi / 4.0) < 1e-15);
  CHECK(std::abs(s.mean_h_ub - sum_h / 4.0) < 1e-15);
}

TEST_CASE("AUC: Mann-Whitney with ties counted half", "[infilling][auc]") {
  const std::vector<double> hi{3.0, 2.0}, lo{1.0, 0.0};
  CHECK(mdlm::auc(hi, lo) == 1.0);
  CHECK(mdlm::auc(lo, hi) == 0.0);
  const std::vector<double> same{1.0, 1.0}, one{1.0};
  CHECK(mdlm::auc(same, one) == 0.5);
  const std::vector<double> a{1.0, 2.0, 3.0}, b{2.0};
  CHECK(mdlm::auc(a, b) == 0.5);  // 0 + 1/2 + 1 over 3 pairs
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<double> with_inf{-inf, inf}, mid{0.0, -inf};
  CHECK(mdlm::auc(with_inf, mid) == (0.5 + 0.0 + 1.0 + 1.0) / 4.0);
  // Against the O(PN) definition on random integer scores (many ties).
  mdlm::test::case_rng rng{123};
  for (int round = 0; round < 200; ++round) {
    std::vector<double> p(1 + rng.below(12)), n(1 + rng.below(12));
    for (auto& x : p) x = static_cast<double>(rng.below(5));
    for (auto& x : n) x = static_cast<double>(rng.below(5));
    double pairs = 0.0;
    for (double x : p)
      for (double y : n) pairs += x > y ? 1.0 : x == y ? 0.5 : 0.0;
    CHECK(std::abs(mdlm::auc(p, n) - pairs / static_cast<double>(p.size() * n.size())) < 1e-15);
  }
}

TEST_CASE("decoding analytics on hand-made decodes", "[infilling][analytics]") {
  constexpr mdlm::token_id mask = 9, eos = 7;
  mdlm::canvas start{.tokens = {1, mask, mask, mask, mask}, .region_begin = 1, .region_end = 5};
  mdlm::decode_result r;
  r.tokens = {1, 2, 3, 4, 5};
  SECTION("left to right") {
    r.unmask_step = {-1, 0, 1, 2, 3};
    const auto a = mdlm::analyze_decoding(start, r, mask, {.answer = {3, 5}});
    CHECK(a.unmasks == 4);
    CHECK(a.leftmost_fraction == 1.0);
    CHECK(a.mean_distance_from_leftmost == 0.0);
    CHECK(a.non_eos_tokens == 4);
    REQUIRE(a.answer_step.has_value());
    CHECK(*a.answer_step == 3);
  }
  SECTION("any order, parallel steps") {
    // Step 0 unmasks 2 and 3 (leftmost masked 1: distances 1, 2); step 1 unmasks 4 (leftmost 1:
    // distance 3); step 2 unmasks 1 (distance 0).
    r.unmask_step = {-1, 2, 0, 0, 1};
    auto a = mdlm::analyze_decoding(start, r, mask, {.answer = {3, 5}});
    CHECK(a.unmasks == 4);
    CHECK(a.leftmost_unmasks == 1);
    CHECK(a.leftmost_fraction == 0.25);
    CHECK(a.mean_distance_from_leftmost == 1.5);
    CHECK(*a.answer_step == 1);
    // EOS at position 4: left out of the counts, still masked (and leftmost-relevant) before step 1.
    r.tokens[4] = eos;
    a = mdlm::analyze_decoding(start, r, mask, {.answer = {3, 5}, .eos = eos});
    CHECK(a.unmasks == 3);
    CHECK(a.leftmost_fraction == Approx(1.0 / 3.0).epsilon(1e-15));
    CHECK(a.mean_distance_from_leftmost == 1.0);
    CHECK(a.non_eos_tokens == 3);
  }
  SECTION("an EOS decided first still counts as the leftmost mask for later steps") {
    // Position 1 (EOS) decided at step 1; step 0 unmasks 3 with leftmost 1 (distance 2).
    r.tokens[1] = eos;
    r.unmask_step = {-1, 1, 2, 0, 3};
    const auto a = mdlm::analyze_decoding(start, r, mask, {.eos = eos});
    CHECK(a.unmasks == 3);
    // Step 0: 3 (l = 1, d 2); step 2: 2 (l = 2, d 0); step 3: 4 (l = 4, d 0).
    CHECK(a.leftmost_unmasks == 2);
    CHECK(a.mean_distance_from_leftmost == Approx(2.0 / 3.0).epsilon(1e-15));
    CHECK_FALSE(a.answer_step.has_value());
  }
  SECTION("an incomplete answer") {
    r.tokens = {1, 2, mask, 4, mask};
    r.unmask_step = {-1, 0, -1, 1, -1};
    const auto a = mdlm::analyze_decoding(start, r, mask, {.answer = {3, 5}});
    CHECK(a.unmasks == 2);
    CHECK(a.leftmost_fraction == 0.5);  // step 1: leftmost masked is 2, position 3 is one right of it
    CHECK(a.mean_distance_from_leftmost == 0.5);
    CHECK(a.non_eos_tokens == 2);
    CHECK_FALSE(a.answer_step.has_value());
  }
}

TEST_CASE("analytics of real decodes: block length 1 is fully left to right", "[infilling][analytics]") {
  const auto model = table::random(3, 7, 0.5, 2);
  const auto mask = model.mask_token();
  const auto t = small_template(mask);
  // Region of 6 = reasoning 3 + delimiter 1 + answer 2; block length 1 decodes left to right.
  const auto r = mdlm::decode(model, t.canvas, mdlm::decode_options<mdlm::med>{.block_length = 1}, mdlm::counter_rng{1});
  const auto a = mdlm::analyze_decoding(t, r, mask);
  CHECK(a.unmasks == 5);
  CHECK(a.leftmost_fraction == 1.0);
  CHECK(a.mean_distance_from_leftmost == 0.0);
  REQUIRE(a.answer_step.has_value());
  CHECK(*a.answer_step == static_cast<std::size_t>(r.unmask_step[6]));
}
