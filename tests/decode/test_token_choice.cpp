// SPDX-License-Identifier: MIT
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "mdlm/token_choice.hpp"

namespace {
constexpr double ninf = -std::numeric_limits<double>::infinity();

std::vector<double> logs(std::vector<double> p) {
  for (auto& x : p) x = std::log(x);
  return p;
}
std::size_t kept(const std::vector<double>& p) {
  std::size_t n = 0;
  for (double x : p) n += x > 0.0;
  return n;
}
}  // namespace

TEST_CASE("greedy choice is the exact argmax with ties to the lower id", "[decode][token_choice]") {
  const std::vector<float> row{1.0f, 3.0f, 3.0f, -2.0f};
  mdlm::detail::choice_scratch scratch;
  scratch.reserve(row.size());
  const auto s = mdlm::compute_logit_stats(std::span<const float>(row));
  const auto info = mdlm::choose_token(std::span<const float>(row), s, mdlm::token_choice{}, mdlm::counter_rng{7}, 0,
                                       0, 5, scratch);
  CHECK(info.token == 1);
  CHECK(info.position == 5);
  CHECK(info.prob == Approx(std::exp(3.0) / (std::exp(1.0) + 2 * std::exp(3.0) + std::exp(-2.0))));
  CHECK(info.margin == Approx(0.0).margin(1e-15));
  CHECK(info.tempered_prob == info.prob);
}

TEST_CASE("Dream top-p check vectors (0.5, 0.3, 0.2)", "[decode][token_choice][top_p]") {
  const auto row = logs({0.5, 0.3, 0.2});
  auto dist = [&](double p) {
    return mdlm::token_distribution(std::span<const double>(row), mdlm::token_choice{.temperature = 1.0, .top_p = p});
  };
  CHECK(kept(dist(0.6)) == 2);
  CHECK(kept(dist(0.5 + 1e-9)) == 2);  // the mass above rank 2 equals 0.5 <= top_p: kept
  CHECK(kept(dist(0.5 - 1e-9)) == 1);
  CHECK(kept(dist(0.4)) == 1);
  CHECK(kept(dist(1.0)) == 3);
  const auto d = dist(0.6);
  CHECK(d[0] == Approx(0.625));
  CHECK(d[1] == Approx(0.375));
}

TEST_CASE("top-k keeps ties at the k-th value; order temperature -> top-p -> top-k", "[decode][token_choice][top_k]") {
  const std::vector<double> row{2.0, 1.0, 1.0, 0.0};
  const auto d = mdlm::token_distribution(std::span<const double>(row), mdlm::token_choice{.temperature = 1.0, .top_k = 2});
  CHECK(kept(d) == 3);  // 2.0, and both 1.0 (ties at the 2nd value)
  const auto d1 = mdlm::token_distribution(std::span<const double>(row), mdlm::token_choice{.temperature = 1.0, .top_k = 1});
  CHECK(d1[0] == 1.0);
  // Temperature first: at T = 10 the probabilities are (.276, .249, .249, .226) and top-p 0.5 keeps
  // two tokens, while untempered (.535, .197, .197, .072) it keeps one.
  const auto hot = mdlm::token_distribution(std::span<const double>(row),
                                            mdlm::token_choice{.temperature = 10.0, .top_p = 0.5});
  const auto cold = mdlm::token_distribution(std::span<const double>(row),
                                             mdlm::token_choice{.temperature = 1.0, .top_p = 0.5});
  CHECK(kept(hot) == 2);
  CHECK(kept(cold) == 1);
  // top-p then top-k: top-p 0.9 keeps {0,1,2}; top-k 1 then keeps {0}.
  const auto both = mdlm::token_distribution(std::span<const double>(row),
                                             mdlm::token_choice{.temperature = 1.0, .top_p = 0.9, .top_k = 1});
  CHECK(kept(both) == 1);
}

TEST_CASE("temperature sampling never picks banned or filtered tokens and matches softmax(z/T)", "[decode][token_choice]") {
  const std::vector<float> row{0.0f, 1.0f, -std::numeric_limits<float>::infinity(), 0.5f};
  mdlm::detail::choice_scratch scratch;
  scratch.reserve(row.size());
  const auto s = mdlm::compute_logit_stats(std::span<const float>(row));
  const mdlm::token_choice choice{.temperature = 2.0};
  std::vector<double> counts(row.size(), 0.0);
  const int n = 40000;
  for (int i = 0; i < n; ++i) {
    const auto info = mdlm::choose_token(std::span<const float>(row), s, choice, mdlm::counter_rng{3}, 0,
                                         static_cast<std::uint32_t>(i), 0, scratch);
    REQUIRE(info.token != 2);
    counts[static_cast<std::size_t>(info.token)] += 1.0;
    CHECK(info.prob == Approx(std::exp(static_cast<double>(row[static_cast<std::size_t>(info.token)]) - s.log_normalizer)));
  }
  const auto p = mdlm::token_distribution(std::span<const float>(row), choice);
  CHECK(p[2] == 0.0);
  // Each frequency within 5 standard deviations (false-failure rate < 1e-5 per cell).
  for (std::size_t v = 0; v < row.size(); ++v) {
    const double sd = std::sqrt(n * p[v] * (1 - p[v]));
    CHECK(std::abs(counts[v] - n * p[v]) <= 5 * sd + 1e-9);
  }
}

TEST_CASE("describe_choice agrees with choose_token", "[decode][token_choice]") {
  const std::vector<float> row{0.3f, -1.0f, 2.0f, 0.7f, 0.7f};
  mdlm::detail::choice_scratch scratch;
  scratch.reserve(row.size());
  const auto s = mdlm::compute_logit_stats(std::span<const float>(row));
  const mdlm::token_choice choice{.temperature = 0.7, .top_p = 0.95, .top_k = 3};
  const auto a = mdlm::choose_token(std::span<const float>(row), s, choice, mdlm::counter_rng{11}, 2, 3, 4, scratch);
  const auto b = mdlm::describe_choice(std::span<const float>(row), choice, a.token, 4);
  CHECK(a.token == b.token);
  CHECK(a.prob == Approx(b.prob));
  CHECK(a.tempered_prob == Approx(b.tempered_prob));
  CHECK(a.tempered_entropy == Approx(b.tempered_entropy));
  CHECK(a.tempered_margin == Approx(b.tempered_margin));
}

TEST_CASE("token_choice validation names the bad value", "[decode][token_choice][errors]") {
  using Catch::Matchers::Contains;
  CHECK_THROWS_WITH((mdlm::token_choice{.temperature = -1.0}.validate()), Contains("temperature = -1"));
  CHECK_THROWS_WITH((mdlm::token_choice{.top_p = 0.0}.validate()), Contains("top_p = 0"));
  CHECK_THROWS_WITH((mdlm::token_choice{.top_p = 1.5}.validate()), Contains("top_p = 1.5"));
  CHECK_THROWS_WITH((mdlm::token_choice{.top_k = 0}.validate()), Contains("top_k = 0"));
  CHECK_NOTHROW(mdlm::token_choice{.temperature = 0.0, .top_p = 1.0, .top_k = 5}.validate());
}
