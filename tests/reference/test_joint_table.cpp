// SPDX-License-Identifier: MIT
// Tests of mdlm::reference::joint_table: exact conditionals against brute-force sums of the table,
// conditional joints, batching, determinism of random tables, and bad input.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "mdlm/concepts.hpp"
#include "mdlm/logit_stats.hpp"
#include "mdlm/reference/joint_table.hpp"
#include "support/exact.hpp"
#include "support/property.hpp"

using mdlm::token_id;
using mdlm::reference::joint_table;

static_assert(mdlm::ConditionalModel<joint_table>);
static_assert(mdlm::BatchedConditionalModel<joint_table>);
static_assert(mdlm::ExactConditionalModel<joint_table>);

namespace {
constexpr double ninf = -std::numeric_limits<double>::infinity();

std::vector<double> flat(const joint_table& t) { return {t.table().begin(), t.table().end()}; }

//! A random joint: Dirichlet(alpha), or (when `with_zeros`) weights of which about half are 0, so
//! that some evidence is impossible.
joint_table random_table(std::size_t v, std::size_t l, double alpha, std::uint64_t seed, bool with_zeros) {
  if (!with_zeros) return joint_table::random(v, l, alpha, seed);
  mdlm::test::case_rng r{seed};
  std::size_t n = 1;
  for (std::size_t i = 0; i < l; ++i) n *= v;
  std::vector<double> w(n);
  for (auto& x : w) x = r.uniform() < 0.5 ? 0.0 : r.uniform();
  w[r.below(n)] = 1.0;
  return joint_table{v, l, w};
}
}  // namespace

TEST_CASE("joint_table: a hand-computed 2x2 joint", "[reference][joint_table]") {
  // p(x0, x1): (0,0)=0.1 (0,1)=0.2 (1,0)=0.3 (1,1)=0.4, given as unnormalised counts.
  const std::vector<double> w{1, 2, 3, 4};
  const joint_table t{2, 2, w};
  CHECK(t.vocab_size() == 3);
  CHECK(t.base_vocab() == 2);
  CHECK(t.mask_token() == 2);
  CHECK(t.length() == 2);
  CHECK(t.table().dimension() == 2);
  CHECK(t.table()(1, 0) == Approx(0.3).epsilon(1e-15));
  const std::vector<token_id> seq{1, 1};
  CHECK(t.probability(seq) == Approx(0.4).epsilon(1e-15));

  std::vector<double> out(2 * 3);
  const std::vector<token_id> both{2, 2};
  t.logits(both, out);
  CHECK(std::exp(out[0]) == Approx(0.3).epsilon(1e-14));  // p(x0 = 0)
  CHECK(std::exp(out[1]) == Approx(0.7).epsilon(1e-14));
  CHECK(out[2] == ninf);
  CHECK(std::exp(out[3]) == Approx(0.4).epsilon(1e-14));  // p(x1 = 0)
  CHECK(std::exp(out[4]) == Approx(0.6).epsilon(1e-14));

  const std::vector<token_id> x1_is_1{2, 1};
  t.logits(x1_is_1, out);
  CHECK(std::exp(out[0]) == Approx(1.0 / 3.0).epsilon(1e-14));  // 0.2 / 0.6
  CHECK(std::exp(out[1]) == Approx(2.0 / 3.0).epsilon(1e-14));
  CHECK(out[3] == ninf);  // unmasked row: log one-hot of token 1
  CHECK(out[4] == 0.0);
  CHECK(out[5] == ninf);

  const std::vector<std::size_t> a{1, 0};  // axes in the given order: (x1, x0)
  const auto j = t.conditional_joint(both, a);
  REQUIRE(j.dimension() == 2);
  CHECK(j(0, 1) == Approx(0.3).epsilon(1e-15));  // x1 = 0, x0 = 1
  CHECK(j(1, 0) == Approx(0.2).epsilon(1e-15));
  const auto c = t.conditional(x1_is_1, 0);
  CHECK(c[0] == Approx(1.0 / 3.0).epsilon(1e-14));
  const std::vector<std::size_t> none;
  CHECK(t.conditional_joint(both, none).dimension() == 0);
  CHECK(t.conditional_joint(both, none)() == 1.0);
  CHECK(std::exp(t.log_evidence(x1_is_1)) == Approx(0.6).epsilon(1e-15));
}

TEST_CASE("joint_table: impossible evidence gives all -inf masked rows", "[reference][joint_table]") {
  const std::vector<double> w{0, 1, 0, 1};  // x1 = 1 always
  const joint_table t{2, 2, w};
  const std::vector<token_id> tokens{2, 0};  // x1 = 0: probability 0
  std::vector<float> out(6);
  t.logits(tokens, out);
  for (int v = 0; v < 3; ++v) CHECK(out[static_cast<std::size_t>(v)] == -std::numeric_limits<float>::infinity());
  CHECK_FALSE(mdlm::compute_logit_stats(std::span<const float>{out.data(), 3}).valid);
  CHECK(t.log_evidence(tokens) == ninf);
  CHECK_THROWS_WITH(t.conditional(tokens, 0), Catch::Contains("probability 0"));
}

TEST_CASE("joint_table: random tables are deterministic and normalised", "[reference][joint_table]") {
  const auto a = joint_table::random(3, 4, 0.3, 42);
  const auto b = joint_table::random(3, 4, 0.3, 42);
  const auto c = joint_table::random(3, 4, 0.3, 43);
  CHECK(flat(a) == flat(b));
  CHECK(flat(a) != flat(c));
  double sum = 0.0;
  for (double x : flat(a)) sum += x;
  CHECK(sum == Approx(1.0).epsilon(1e-14));
}

TEST_CASE("joint_table: property (a) conditionals equal brute-force marginals of the table",
          "[reference][joint_table][property]") {
  mdlm::test::check_property("joint_table conditionals == marginals of the joint", [] {
    const auto v = *rc::gen::inRange<std::size_t>(1, 5);
    const auto l = *rc::gen::inRange<std::size_t>(1, v == 1 ? 9 : (v == 2 ? 10 : 7));
    const double alpha = *rc::gen::element(0.05, 0.1, 0.5, 1.0, 3.0, 20.0);
    const auto seed = *rc::gen::arbitrary<std::uint64_t>();
    const bool zeros = *rc::gen::element(false, false, true);
    const double mask_rate = *rc::gen::element(0.0, 0.3, 0.6, 1.0);
    const joint_table t = random_table(v, l, alpha, seed, zeros);
    const std::vector<double> p = flat(t);
    mdlm::test::case_rng r{seed ^ 0x5eedu};
    const auto tokens = mdlm::test::random_tokens(r, v, l, mask_rate);
    const token_id mask = t.mask_token();
    const std::size_t w = t.vocab_size();
    std::vector<double> out(l * w);
    t.logits(tokens, out);

    double evidence = 0.0;
    for (std::size_t i = 0; i < l; ++i) {
      const std::size_t pos[1] = {i};
      if (tokens[i] != mask) {
        for (std::size_t x = 0; x < w; ++x)
          RC_ASSERT(out[i * w + x] == (x == static_cast<std::size_t>(tokens[i]) ? 0.0 : ninf));
        continue;
      }
      const auto marg = mdlm::test::naive_joint(p, v, l, tokens, pos, evidence);
      RC_ASSERT(out[i * w + v] == ninf);
      for (std::size_t x = 0; x < v; ++x) {
        const double expected = evidence > 0.0 ? marg[x] / evidence : 0.0;
        RC_ASSERT(mdlm::test::close_rel(std::exp(out[i * w + x]), expected, 1e-12));
      }
    }
    RC_ASSERT(mdlm::test::close_rel(std::exp(t.log_evidence(tokens)), evidence, 1e-12));

    // The float overload is the double result rounded; batching changes nothing.
    std::vector<float> out_f(l * w);
    t.logits(tokens, out_f);
    for (std::size_t k = 0; k < out.size(); ++k) RC_ASSERT(out_f[k] == static_cast<float>(out[k]));
    const auto batch = 1 + r.below(3);
    std::vector<token_id> many;
    for (std::size_t b = 0; b < batch; ++b) many.insert(many.end(), tokens.begin(), tokens.end());
    std::vector<float> out_b(batch * l * w);
    t.batch_logits(many, batch, out_b);
    for (std::size_t k = 0; k < out_b.size(); ++k) RC_ASSERT(out_b[k] == out_f[k % out_f.size()]);

    // The conditional joint of a random subset A equals the brute-force joint, in the given order.
    if (evidence > 0.0) {
      const auto a = mdlm::test::random_subset(r, mdlm::test::masked_positions(tokens, mask), l);
      const auto joint = t.conditional_joint(tokens, a);
      const auto expected = mdlm::test::naive_conditional_joint(p, v, l, tokens, a);
      RC_ASSERT(joint.dimension() == a.size());
      RC_ASSERT(joint.size() == expected.size());
      for (std::size_t k = 0; k < expected.size(); ++k)
        RC_ASSERT(mdlm::test::close_rel(joint.data()[k], expected[k], 1e-12));
    }
  });
}

TEST_CASE("joint_table: bad input names the bad value", "[reference][joint_table][errors]") {
  const std::vector<double> ok{1, 2, 3, 4};
  CHECK_THROWS_AS(joint_table(0, 2, ok), std::invalid_argument);
  CHECK_THROWS_WITH(joint_table(0, 2, ok), Catch::Contains("vocab = 0"));
  CHECK_THROWS_WITH(joint_table(2, 0, ok), Catch::Contains("length = 0"));
  CHECK_THROWS_WITH(joint_table(2, 3, ok), Catch::Contains("probabilities.size() = 4"));
  CHECK_THROWS_WITH(joint_table(2, 23, ok), Catch::Contains("2^23") && Catch::Contains("4194304"));
  CHECK_THROWS_WITH(joint_table::random(3, 14, 1.0, 1), Catch::Contains("3^14"));
  CHECK_THROWS_WITH(joint_table::random(2, 2, -0.5, 1), Catch::Contains("alpha = -0.5"));
  CHECK_THROWS_WITH(joint_table::random(2, 2, 0.0, 1), Catch::Contains("alpha = 0"));
  const std::vector<double> negative{1, -0.25, 3, 4};
  CHECK_THROWS_WITH(joint_table(2, 2, negative), Catch::Contains("probabilities[1] = -0.25"));
  const std::vector<double> nan{1, 2, std::numeric_limits<double>::quiet_NaN(), 4};
  CHECK_THROWS_WITH(joint_table(2, 2, nan), Catch::Contains("probabilities[2] = nan"));
  const std::vector<double> inf{std::numeric_limits<double>::infinity(), 2, 3, 4};
  CHECK_THROWS_WITH(joint_table(2, 2, inf), Catch::Contains("probabilities[0] = inf"));
  const std::vector<double> zero{0, 0, 0, 0};
  CHECK_THROWS_WITH(joint_table(2, 2, zero), Catch::Contains("sum to 0"));

  const joint_table t{2, 2, ok};
  std::vector<float> out(6);
  std::vector<double> out_d(6);
  const std::vector<token_id> bad_id{0, 3};
  CHECK_THROWS_WITH(t.logits(bad_id, out), Catch::Contains("tokens[1] = 3"));
  const std::vector<token_id> negative_id{-1, 0};
  CHECK_THROWS_WITH(t.logits(negative_id, out_d), Catch::Contains("tokens[0] = -1"));
  const std::vector<token_id> short_seq{0};
  CHECK_THROWS_WITH(t.logits(short_seq, out), Catch::Contains("tokens.size() = 1"));
  const std::vector<token_id> fine{2, 0};
  std::vector<float> small(5);
  CHECK_THROWS_WITH(t.logits(fine, small), Catch::Contains("out.size() = 5"));
  std::vector<double> big(7);
  CHECK_THROWS_WITH(t.logits(fine, big), Catch::Contains("out.size() = 7"));
  CHECK_THROWS_WITH(t.batch_logits(fine, 2, out), Catch::Contains("tokens.size() = 2"));
  std::vector<float> batch_out(11);
  const std::vector<token_id> two{2, 0, 2, 2};
  CHECK_THROWS_WITH(t.batch_logits(two, 2, batch_out), Catch::Contains("out.size() = 11"));
  const std::vector<token_id> masked_seq{2, 0};
  CHECK_THROWS_WITH(t.probability(masked_seq), Catch::Contains("sequence[0] = 2"));
  const std::vector<std::size_t> out_of_range{5};
  CHECK_THROWS_WITH(t.conditional_joint(fine, out_of_range), Catch::Contains("positions[0] = 5"));
  const std::vector<std::size_t> unmasked{1};
  CHECK_THROWS_WITH(t.conditional_joint(fine, unmasked), Catch::Contains("positions[0] = 1 is not masked"));
  const std::vector<token_id> all_masked{2, 2};
  const std::vector<std::size_t> repeated{0, 1, 0};
  CHECK_THROWS_WITH(t.conditional_joint(all_masked, repeated), Catch::Contains("positions[2] = 0 is repeated"));
}
