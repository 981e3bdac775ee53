// SPDX-License-Identifier: MIT
// Tests of mdlm::reference::hmm: exact conditionals and joints against the brute-force enumeration of
// its full joint (small L), chain-rule consistency for long sequences (L = 256), determinism, bad input.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "mdlm/concepts.hpp"
#include "mdlm/logit_stats.hpp"
#include "mdlm/reference/hmm.hpp"
#include "mdlm/reference/joint_table.hpp"
#include "support/exact.hpp"
#include "support/property.hpp"

using mdlm::token_id;
using mdlm::reference::hmm;

static_assert(mdlm::ConditionalModel<hmm>);
static_assert(mdlm::BatchedConditionalModel<hmm>);
static_assert(mdlm::ExactConditionalModel<hmm>);

namespace {
constexpr double ninf = -std::numeric_limits<double>::infinity();

//! p(x) for all V^L sequences (position 0 most significant), by `log_probability`.
std::vector<double> enumerate(const hmm& m) {
  const std::size_t v = m.base_vocab(), l = m.length();
  std::size_t n = 1;
  for (std::size_t i = 0; i < l; ++i) n *= v;
  std::vector<double> p(n);
  std::vector<token_id> x(l);
  for (std::size_t index = 0; index < n; ++index) {
    std::size_t rest = index;
    for (std::size_t i = l; i > 0; --i) x[i - 1] = static_cast<token_id>(rest % v), rest /= v;
    p[index] = std::exp(m.log_probability(x));
  }
  return p;
}

//! A random HMM; when `sparse`, about a third of the transition and emission weights are 0 (each row
//! keeps one positive entry), so that some evidence is impossible and some logits are -inf.
hmm random_hmm(std::size_t k, std::size_t v, std::size_t l, double alpha, std::uint64_t seed, bool sparse) {
  const hmm dense = hmm::random(k, v, l, seed, alpha);
  if (!sparse) return dense;
  mdlm::test::case_rng r{seed + 1};
  std::vector<double> a(dense.transition().begin(), dense.transition().end());
  std::vector<double> b(dense.emission().begin(), dense.emission().end());
  for (auto& x : a) x = r.uniform() < 0.35 ? 0.0 : x;
  for (auto& x : b) x = r.uniform() < 0.35 ? 0.0 : x;
  for (std::size_t s = 0; s < k; ++s) a[s * k + r.below(k)] = 1.0, b[s * v + r.below(v)] = 1.0;
  const std::vector<double> pi(dense.initial().begin(), dense.initial().end());
  return hmm{pi, a, b, l};
}
}  // namespace

TEST_CASE("hmm: a hand-computed two-state chain", "[reference][hmm]") {
  // Deterministic alternation 0,1,0,1,... with symbol = state: p(x) = 1 for x = (0,1,0), from state 0.
  const std::vector<double> pi{1, 0}, a{0, 1, 1, 0}, b{1, 0, 0, 1};
  const hmm m{pi, a, b, 3};
  CHECK(m.states() == 2);
  CHECK(m.base_vocab() == 2);
  CHECK(m.vocab_size() == 3);
  CHECK(m.mask_token() == 2);
  CHECK(m.length() == 3);
  const std::vector<token_id> x{0, 1, 0}, y{0, 0, 0};
  CHECK(m.log_probability(x) == 0.0);
  CHECK(m.log_probability(y) == ninf);
  const std::vector<token_id> masked{2, 2, 2};
  std::vector<double> out(9);
  m.logits(masked, out);
  CHECK(out[0] == 0.0);
  CHECK(out[1] == ninf);
  CHECK(out[3] == ninf);
  CHECK(out[4] == 0.0);
  CHECK(out[5] == ninf);

  // Normalisation of weights, and a mixing chain checked by hand: pi = (1/2, 1/2), A = identity,
  // B = [[3/4, 1/4], [1/4, 3/4]]. Given x0 = 0: p(z = 0 | x0) = 3/4, p(x1 = 0 | x0 = 0) = 3/4*3/4 +
  // 1/4*1/4 = 5/8.
  const std::vector<double> pi2{2, 2}, a2{1, 0, 0, 1}, b2{3, 1, 1, 3};
  const hmm m2{pi2, a2, b2, 2};
  const std::vector<token_id> s{0, 2};
  const auto c = m2.conditional(s, 1);
  CHECK(c[0] == Approx(5.0 / 8.0).epsilon(1e-15));
  CHECK(c[1] == Approx(3.0 / 8.0).epsilon(1e-15));
  CHECK(std::exp(m2.log_evidence(s)) == Approx(0.5).epsilon(1e-15));
}

TEST_CASE("hmm: random models are deterministic", "[reference][hmm]") {
  const auto a = hmm::random(3, 4, 10, 7, 0.5);
  const auto b = hmm::random(3, 4, 10, 7, 0.5);
  const auto c = hmm::random(3, 4, 10, 8, 0.5);
  CHECK(std::vector<double>(a.emission().begin(), a.emission().end()) ==
        std::vector<double>(b.emission().begin(), b.emission().end()));
  CHECK(std::vector<double>(a.transition().begin(), a.transition().end()) !=
        std::vector<double>(c.transition().begin(), c.transition().end()));
}

TEST_CASE("hmm: property (a) conditionals and joints equal those of the enumerated joint",
          "[reference][hmm][property]") {
  mdlm::test::check_property("hmm conditionals == marginals of its enumerated joint", [] {
    const auto k = *rc::gen::inRange<std::size_t>(1, 5);
    const auto v = *rc::gen::inRange<std::size_t>(1, 5);
    const auto l = *rc::gen::inRange<std::size_t>(1, v <= 2 ? 9 : 7);
    const double alpha = *rc::gen::element(0.1, 0.5, 1.0, 5.0);
    const auto seed = *rc::gen::arbitrary<std::uint64_t>();
    const bool sparse = *rc::gen::element(false, false, true);
    const double mask_rate = *rc::gen::element(0.0, 0.3, 0.6, 1.0);
    const hmm m = random_hmm(k, v, l, alpha, seed, sparse);
    const std::vector<double> p = enumerate(m);
    double sum = 0.0;
    for (double x : p) sum += x;
    RC_ASSERT(std::abs(sum - 1.0) <= 1e-12);

    mdlm::test::case_rng r{seed ^ 0xabcdu};
    const auto tokens = mdlm::test::random_tokens(r, v, l, mask_rate);
    const token_id mask = m.mask_token();
    const std::size_t w = m.vocab_size();
    std::vector<double> out(l * w);
    m.logits(tokens, out);
    double evidence = 0.0;
    for (std::size_t i = 0; i < l; ++i) {
      if (tokens[i] != mask) {
        for (std::size_t x = 0; x < w; ++x)
          RC_ASSERT(out[i * w + x] == (x == static_cast<std::size_t>(tokens[i]) ? 0.0 : ninf));
        continue;
      }
      const std::size_t pos[1] = {i};
      const auto marg = mdlm::test::naive_joint(p, v, l, tokens, pos, evidence);
      RC_ASSERT(out[i * w + v] == ninf);
      for (std::size_t x = 0; x < v; ++x) {
        const double expected = evidence > 0.0 ? marg[x] / evidence : 0.0;
        RC_ASSERT(mdlm::test::close_rel(std::exp(out[i * w + x]), expected, 1e-12));
      }
    }
    RC_ASSERT(mdlm::test::close_rel(std::exp(m.log_evidence(tokens)), evidence, 1e-12));

    std::vector<float> out_f(l * w);
    m.logits(tokens, out_f);
    for (std::size_t q = 0; q < out.size(); ++q) RC_ASSERT(out_f[q] == static_cast<float>(out[q]));
    const auto batch = 1 + r.below(3);
    std::vector<token_id> many;
    for (std::size_t b = 0; b < batch; ++b) many.insert(many.end(), tokens.begin(), tokens.end());
    std::vector<double> out_b(batch * l * w);
    m.batch_logits(many, batch, out_b);
    for (std::size_t q = 0; q < out_b.size(); ++q) RC_ASSERT(out_b[q] == out[q % out.size()]);

    if (evidence > 0.0) {
      const auto a = mdlm::test::random_subset(r, mdlm::test::masked_positions(tokens, mask), l);
      const auto joint = m.conditional_joint(tokens, a);
      const auto expected = mdlm::test::naive_conditional_joint(p, v, l, tokens, a);
      RC_ASSERT(joint.dimension() == a.size());
      RC_ASSERT(joint.size() == expected.size());
      for (std::size_t q = 0; q < expected.size(); ++q)
        RC_ASSERT(mdlm::test::close_rel(joint.data()[q], expected[q], 1e-12));
      const auto c = m.conditional(tokens, a[0]);
      for (std::size_t x = 0; x < v; ++x)
        RC_ASSERT(mdlm::test::close_rel(c[x], std::exp(out[a[0] * w + x]), 1e-12));
    }
  });
}

TEST_CASE("hmm: property (a) for long sequences, conditionals obey the chain rule",
          "[reference][hmm][property]") {
  // For L = 64..256 the joint cannot be enumerated; instead p(x_i = v | s) must equal
  // p(s, x_i = v) / p(s) computed by two independent forward passes (log_evidence), and the joint of two
  // positions must marginalise to the single-position conditionals. Tolerance 1e-11: log p(s) is a sum
  // of L per-position normalisers, so the ratio carries ~L rounding errors.
  mdlm::test::check_property("hmm conditionals == evidence ratios, L up to 256", [] {
    const auto k = *rc::gen::inRange<std::size_t>(1, 9);
    const auto v = *rc::gen::inRange<std::size_t>(2, 9);
    const auto l = *rc::gen::element<std::size_t>(64, 128, 256);
    const double alpha = *rc::gen::element(0.1, 1.0, 5.0);
    const auto seed = *rc::gen::arbitrary<std::uint64_t>();
    const double mask_rate = *rc::gen::element(0.2, 0.7, 1.0);
    const hmm m = hmm::random(k, v, l, seed, alpha);
    mdlm::test::case_rng r{seed ^ 0x1234u};
    auto tokens = mdlm::test::random_tokens(r, v, l, mask_rate);
    const token_id mask = m.mask_token();
    const std::size_t w = m.vocab_size();
    std::vector<double> out(l * w);
    m.logits(tokens, out);
    const double log_z = m.log_evidence(tokens);
    RC_ASSERT(log_z > ninf);
    const auto masked = mdlm::test::masked_positions(tokens, mask);
    const auto a = mdlm::test::random_subset(r, masked, 2);
    const std::size_t i = a[0];
    double total = 0.0;
    for (std::size_t x = 0; x < v; ++x) {
      tokens[i] = static_cast<token_id>(x);
      const double ratio = std::exp(m.log_evidence(tokens) - log_z);
      RC_ASSERT(mdlm::test::close_rel(std::exp(out[i * w + x]), ratio, 1e-11));
      total += std::exp(out[i * w + x]);
    }
    tokens[i] = mask;
    RC_ASSERT(std::abs(total - 1.0) <= 1e-12);
    const auto joint = m.conditional_joint(tokens, a);
    if (a.size() == 2) {
      for (std::size_t x = 0; x < v; ++x) {
        double row = 0.0, col = 0.0;
        for (std::size_t y = 0; y < v; ++y) row += joint(x, y), col += joint(y, x);
        RC_ASSERT(mdlm::test::close_rel(row, std::exp(out[a[0] * w + x]), 1e-11));
        RC_ASSERT(mdlm::test::close_rel(col, std::exp(out[a[1] * w + x]), 1e-11));
      }
    }
  });
}

TEST_CASE("hmm: impossible evidence gives all -inf masked rows", "[reference][hmm]") {
  const std::vector<double> pi{1, 0}, a{0, 1, 1, 0}, b{1, 0, 0, 1};
  const hmm m{pi, a, b, 3};
  const std::vector<token_id> tokens{1, 2, 2};  // state 0 must emit 0 at position 0
  std::vector<float> out(9);
  m.logits(tokens, out);
  CHECK_FALSE(mdlm::compute_logit_stats(std::span<const float>{out.data() + 3, 3}).valid);
  CHECK_FALSE(mdlm::compute_logit_stats(std::span<const float>{out.data() + 6, 3}).valid);
  CHECK(m.log_evidence(tokens) == ninf);
  const std::vector<std::size_t> pos{1};
  CHECK_THROWS_WITH(m.conditional_joint(tokens, pos), Catch::Contains("probability 0"));
  CHECK_THROWS_WITH(m.conditional(tokens, 2), Catch::Contains("probability 0"));
}

TEST_CASE("hmm: bad input names the bad value", "[reference][hmm][errors]") {
  const std::vector<double> pi{1, 1}, a{1, 1, 1, 1}, b{1, 2, 3, 4, 5, 6};
  const std::vector<double> empty;
  CHECK_THROWS_AS(hmm(empty, a, b, 4), std::invalid_argument);
  CHECK_THROWS_WITH(hmm(empty, a, b, 4), Catch::Contains("initial.size() = 0"));
  CHECK_THROWS_WITH(hmm(pi, a, b, 0), Catch::Contains("length = 0"));
  CHECK_THROWS_WITH(hmm(pi, a, b, hmm::max_length + 1), Catch::Contains("length = 1048577"));
  const std::vector<double> a3{1, 1, 1};
  CHECK_THROWS_WITH(hmm(pi, a3, b, 4), Catch::Contains("transition.size() = 3"));
  const std::vector<double> b5{1, 1, 1, 1, 1};
  CHECK_THROWS_WITH(hmm(pi, a, b5, 4), Catch::Contains("emission.size() = 5"));
  const std::vector<double> pi_neg{1, -2};
  CHECK_THROWS_WITH(hmm(pi_neg, a, b, 4), Catch::Contains("initial[1] = -2"));
  const std::vector<double> a_nan{1, std::numeric_limits<double>::quiet_NaN(), 1, 1};
  CHECK_THROWS_WITH(hmm(pi, a_nan, b, 4), Catch::Contains("transition[1] = nan"));
  const std::vector<double> b_zero_row{1, 2, 3, 0, 0, 0};
  CHECK_THROWS_WITH(hmm(pi, a, b_zero_row, 4), Catch::Contains("emission row 1 sums to 0"));
  const std::vector<double> pi_zero{0, 0};
  CHECK_THROWS_WITH(hmm(pi_zero, a, b, 4), Catch::Contains("initial row 0 sums to 0"));
  CHECK_THROWS_WITH(hmm::random(0, 3, 4, 1), Catch::Contains("states = 0"));
  CHECK_THROWS_WITH(hmm::random(hmm::max_states + 1, 3, 4, 1), Catch::Contains("states = 4097"));
  CHECK_THROWS_WITH(hmm::random(2, 0, 4, 1), Catch::Contains("vocab = 0"));
  CHECK_THROWS_WITH(hmm::random(2, 3, 4, 1, std::numeric_limits<double>::quiet_NaN()),
                    Catch::Contains("alpha = nan"));

  const hmm m{pi, a, b, 4};  // K = 2, V = 3, mask = 3
  REQUIRE(m.base_vocab() == 3);
  std::vector<float> out(16);
  std::vector<double> out_d(16);
  const std::vector<token_id> bad_id{0, 1, 4, 3};
  CHECK_THROWS_WITH(m.logits(bad_id, out), Catch::Contains("tokens[2] = 4"));
  const std::vector<token_id> negative{0, -7, 3, 3};
  CHECK_THROWS_WITH(m.logits(negative, out_d), Catch::Contains("tokens[1] = -7"));
  const std::vector<token_id> wrong_length{0, 1, 3};
  CHECK_THROWS_WITH(m.logits(wrong_length, out), Catch::Contains("tokens.size() = 3"));
  const std::vector<token_id> fine{0, 3, 3, 3};
  std::vector<float> small(15);
  CHECK_THROWS_WITH(m.logits(fine, small), Catch::Contains("out.size() = 15"));
  std::vector<double> big(17);
  CHECK_THROWS_WITH(m.logits(fine, big), Catch::Contains("out.size() = 17"));
  std::vector<float> batch_out(31);
  const std::vector<token_id> two{0, 3, 3, 3, 3, 3, 3, 3};
  CHECK_THROWS_WITH(m.batch_logits(two, 2, batch_out), Catch::Contains("out.size() = 31"));
  CHECK_THROWS_WITH(m.batch_logits(two, 3, batch_out), Catch::Contains("tokens.size() = 8"));
  CHECK_THROWS_WITH(m.log_probability(fine), Catch::Contains("sequence[1] = 3"));
  const std::vector<std::size_t> unmasked{0};
  CHECK_THROWS_WITH(m.conditional_joint(fine, unmasked), Catch::Contains("positions[0] = 0 is not masked"));
  const std::vector<std::size_t> out_of_range{1, 9};
  CHECK_THROWS_WITH(m.conditional_joint(fine, out_of_range), Catch::Contains("positions[1] = 9"));
  const std::vector<std::size_t> repeated{1, 1};
  CHECK_THROWS_WITH(m.conditional_joint(fine, repeated), Catch::Contains("positions[1] = 1 is repeated"));
  const hmm wide = hmm::random(2, 40, 8, 3);
  const std::vector<token_id> all_masked(8, wide.mask_token());
  const std::vector<std::size_t> four{0, 1, 2, 3};
  CHECK_THROWS_WITH(wide.conditional_joint(all_masked, four), Catch::Contains("40^4") && Catch::Contains("1048576"));
}
