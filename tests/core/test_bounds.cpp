// SPDX-License-Identifier: MIT
// Tests of include/mdlm/bounds.hpp: the entropy bounds of arXiv 2510.19990 (eq. 3 and eq. 5) and the
// EB-Sampler refinement, checked exactly (double precision) on the reference models:
//  (b) KL(p(x_A|s) || prod_i p(x_i|s)) = sum_i H_i - H(x_A|s) <= sum_i H_i - max_i H_i <= sum_i H_i;
//  (c) H(a|s) <= H_UB = sum_j H(a_j|s) for answer blocks a.
// The marginals and entropies come from the models' logits through compute_logit_stats, as a
// decoder sees them; the joints from conditional_joint.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

#include "mdlm/bounds.hpp"
#include "mdlm/logit_stats.hpp"
#include "mdlm/reference/hmm.hpp"
#include "mdlm/reference/joint_table.hpp"
#include "support/exact.hpp"
#include "support/property.hpp"

using mdlm::token_id;
using mdlm::reference::hmm;
using mdlm::reference::joint_table;

namespace {

//! Everything the bounds talk about, for one model, evidence s and subset A.
struct bound_terms {
  std::vector<double> entropies;        // H(x_i | s), i in A, from compute_logit_stats
  std::vector<mdlm::logit_stats> stats;  // the rows' statistics
  double joint_entropy = 0;             // H(x_A | s)
  double kl = 0;                        // KL(joint || product of marginals)
  double naive_entropy_error = 0;       // max |stats entropy - naive entropy of the marginal|
};

template <class Model>
bound_terms compute_terms(const Model& m, const std::vector<token_id>& tokens, const std::vector<std::size_t>& a) {
  const std::size_t v = m.base_vocab(), w = m.vocab_size();
  std::vector<double> logits(tokens.size() * w);
  m.logits(tokens, logits);
  bound_terms t;
  std::vector<std::vector<double>> marginals;
  for (std::size_t pos : a) {
    const std::span<const double> row{logits.data() + pos * w, w};
    const auto st = mdlm::compute_logit_stats(row);
    t.stats.push_back(st);
    t.entropies.push_back(st.entropy);
    std::vector<double> p(v);
    for (std::size_t x = 0; x < v; ++x) p[x] = std::exp(row[x]);
    t.naive_entropy_error = std::max(t.naive_entropy_error, std::abs(st.entropy - mdlm::test::entropy(p)));
    marginals.push_back(std::move(p));
  }
  const auto joint_x = m.conditional_joint(tokens, a);
  const std::vector<double> joint(joint_x.begin(), joint_x.end());
  // Product of the marginals, row-major over A in the given order (the layout of conditional_joint).
  std::vector<double> product(joint.size());
  for (std::size_t index = 0; index < joint.size(); ++index) {
    double q = 1.0;
    std::size_t rest = index;
    for (std::size_t k = a.size(); k > 0; --k) q *= marginals[k - 1][rest % v], rest /= v;
    product[index] = q;
  }
  t.joint_entropy = mdlm::test::entropy(joint);
  t.kl = mdlm::test::kl_divergence(joint, product);
  return t;
}

//! The eq. 5 / EB checks on one case (RC_ASSERT fails the property on a violation).
void check_eq5(const bound_terms& t) {
  const double sum_h = mdlm::entropy_upper_bound(std::span<const double>{t.entropies});
  const double eb = mdlm::parallel_decoding_error_bound(t.entropies);
  RC_ASSERT(t.stats.size() == t.entropies.size());
  for (const auto& s : t.stats) RC_ASSERT(s.valid);
  RC_ASSERT(t.naive_entropy_error <= 1e-12);
  RC_ASSERT(std::isfinite(t.kl));
  // The identity (eq. 9 of the paper's appendix G): KL = sum_i H_i - H(x_A | s).
  RC_ASSERT(std::abs(t.kl - (sum_h - t.joint_entropy)) <= 1e-9);
  RC_ASSERT(t.kl >= -1e-12);                // Gibbs' inequality
  RC_ASSERT(t.kl <= eb + 1e-12);            // EB-Sampler: <= sum - max
  RC_ASSERT(eb <= sum_h + 1e-15);           // which implies eq. 5
  RC_ASSERT(t.kl <= sum_h + 1e-12);         // eq. 5
}

double draw_alpha() { return *rc::gen::element(0.05, 0.1, 0.3, 1.0, 5.0, 50.0); }

}  // namespace

TEST_CASE("bounds: entropy_upper_bound and parallel_decoding_error_bound by hand", "[core][bounds]") {
  const std::vector<double> none, h{0.5, 1.25, 0.25};
  CHECK(mdlm::entropy_upper_bound(none) == 0.0);
  CHECK(mdlm::parallel_decoding_error_bound(none) == 0.0);
  CHECK(mdlm::entropy_upper_bound(h) == 2.0);
  CHECK(mdlm::parallel_decoding_error_bound(h) == 0.75);
  const std::vector<double> one{0.7};
  CHECK(mdlm::parallel_decoding_error_bound(one) == 0.0);
  mdlm::logit_stats a, b;
  a.entropy = 0.5, b.entropy = 1.5;
  const std::vector<mdlm::logit_stats> stats{a, b};
  CHECK(mdlm::entropy_upper_bound(std::span<const mdlm::logit_stats>{stats}) == 2.0);
}

TEST_CASE("bounds: the KL bounds are attained (independent and copied positions)", "[core][bounds]") {
  const std::vector<token_id> masked{2, 2};
  const std::vector<std::size_t> a{0, 1};
  // Independent: p(x0, x1) = p(x0) p(x1) -> KL = 0 and H(x_A) = H_UB.
  const std::vector<double> indep{0.3 * 0.6, 0.3 * 0.4, 0.7 * 0.6, 0.7 * 0.4};
  const auto ti = compute_terms(joint_table{2, 2, indep}, masked, a);
  CHECK(std::abs(ti.kl) < 1e-15);
  CHECK(ti.joint_entropy == Approx(mdlm::entropy_upper_bound(ti.entropies)).epsilon(1e-14));
  // Copy: x1 = x0 -> KL = H(x0) = sum - max, the EB bound with equality; eq. 5 is loose by H(x1).
  const std::vector<double> copy{0.3, 0.0, 0.0, 0.7};
  const auto tc = compute_terms(joint_table{2, 2, copy}, masked, a);
  CHECK(tc.kl == Approx(mdlm::parallel_decoding_error_bound(tc.entropies)).epsilon(1e-14));
  CHECK(tc.kl == Approx(-0.3 * std::log(0.3) - 0.7 * std::log(0.7)).epsilon(1e-14));
}

TEST_CASE("bounds: property (b) eq. 5 and the EB bound on random joint tables", "[core][bounds][property]") {
  mdlm::test::check_property("eq. 5: KL(joint||product) = sum H - H(x_A|s) <= sum H - max H <= sum H (joint_table)", [] {
    const auto v = *rc::gen::inRange<std::size_t>(2, 5);
    const auto l = *rc::gen::inRange<std::size_t>(2, v == 2 ? 11 : 7);
    const double alpha = draw_alpha();
    const auto seed = *rc::gen::arbitrary<std::uint64_t>();
    const double mask_rate = *rc::gen::element(0.4, 0.7, 1.0);
    const auto t = joint_table::random(v, l, alpha, seed);
    mdlm::test::case_rng r{seed ^ 0xb0u};
    const auto tokens = mdlm::test::random_tokens(r, v, l, mask_rate);
    const auto a = mdlm::test::random_subset(r, mdlm::test::masked_positions(tokens, t.mask_token()), l);
    check_eq5(compute_terms(t, tokens, a));
  });
}

TEST_CASE("bounds: property (b) eq. 5 and the EB bound on random HMMs (L up to 64)", "[core][bounds][property]") {
  mdlm::test::check_property("eq. 5: KL(joint||product) = sum H - H(x_A|s) <= sum H - max H <= sum H (hmm)", [] {
    const auto k = *rc::gen::inRange<std::size_t>(1, 7);
    const auto v = *rc::gen::inRange<std::size_t>(2, 7);
    const auto l = *rc::gen::inRange<std::size_t>(2, 65);
    const double alpha = draw_alpha();
    const auto seed = *rc::gen::arbitrary<std::uint64_t>();
    const double mask_rate = *rc::gen::element(0.3, 0.7, 1.0);
    const auto m = hmm::random(k, v, l, seed, alpha);
    mdlm::test::case_rng r{seed ^ 0xb1u};
    const auto tokens = mdlm::test::random_tokens(r, v, l, mask_rate);
    const auto a = mdlm::test::random_subset(r, mdlm::test::masked_positions(tokens, m.mask_token()), 4);
    check_eq5(compute_terms(m, tokens, a));
  });
}

namespace {
//! Reasoning-as-infilling layout: the last `answer` positions are the masked answer block a; the
//! reasoning positions before it are unmasked with probability `reveal`.
std::vector<token_id> answer_layout(mdlm::test::case_rng& r, std::size_t v, std::size_t l, std::size_t answer,
                                    double reveal) {
  std::vector<token_id> t(l, static_cast<token_id>(v));
  for (std::size_t i = 0; i + answer < l; ++i)
    if (r.uniform() < reveal) t[i] = static_cast<token_id>(r.below(v));
  return t;
}

void check_eq3(const bound_terms& t) {
  const double h_ub = mdlm::entropy_upper_bound(std::span<const double>{t.entropies});
  RC_ASSERT(h_ub == mdlm::entropy_upper_bound(std::span<const mdlm::logit_stats>{t.stats}));
  RC_ASSERT(t.joint_entropy <= h_ub + 1e-12);                     // eq. 3
  RC_ASSERT(std::abs((h_ub - t.joint_entropy) - t.kl) <= 1e-9);  // the gap is the KL (eq. 13)
}
}  // namespace

TEST_CASE("bounds: property (c) eq. 3, H(a|s) <= H_UB for answer blocks", "[core][bounds][property]") {
  mdlm::test::check_property("eq. 3: H(a|s) <= H_UB (joint_table)", [] {
    const auto v = *rc::gen::inRange<std::size_t>(2, 5);
    const auto l = *rc::gen::inRange<std::size_t>(2, v == 2 ? 11 : 7);
    const auto answer = *rc::gen::inRange<std::size_t>(1, l + 1);
    const double alpha = draw_alpha();
    const auto seed = *rc::gen::arbitrary<std::uint64_t>();
    const double reveal = *rc::gen::element(0.0, 0.5, 1.0);
    const auto t = joint_table::random(v, l, alpha, seed);
    mdlm::test::case_rng r{seed ^ 0xc0u};
    const auto tokens = answer_layout(r, v, l, answer, reveal);
    std::vector<std::size_t> a(answer);
    for (std::size_t j = 0; j < answer; ++j) a[j] = l - answer + j;
    check_eq3(compute_terms(t, tokens, a));
  });
  mdlm::test::check_property("eq. 3: H(a|s) <= H_UB (hmm, L up to 128)", [] {
    const auto k = *rc::gen::inRange<std::size_t>(1, 7);
    const auto v = *rc::gen::inRange<std::size_t>(2, 6);
    const auto l = *rc::gen::inRange<std::size_t>(8, 129);
    const auto answer = *rc::gen::inRange<std::size_t>(1, 5);
    const double alpha = draw_alpha();
    const auto seed = *rc::gen::arbitrary<std::uint64_t>();
    const double reveal = *rc::gen::element(0.0, 0.5, 1.0);
    const auto m = hmm::random(k, v, l, seed, alpha);
    mdlm::test::case_rng r{seed ^ 0xc1u};
    const auto tokens = answer_layout(r, v, l, answer, reveal);
    std::vector<std::size_t> a(answer);
    for (std::size_t j = 0; j < answer; ++j) a[j] = l - answer + j;
    check_eq3(compute_terms(m, tokens, a));
  });
}
