// SPDX-License-Identifier: MIT
// Tests of the platform-independent variates in mdlm/reference/random.hpp: moments of the normal,
// Gamma and Dirichlet samplers with fixed seeds. Each moment check is a z-test at |z| < 5 (two-sided
// false-failure rate 5.7e-7 per check with a fresh seed; with the fixed seeds the outcome is fixed).
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "mdlm/reference/random.hpp"

using mdlm::sequential_rng;

namespace {
struct moments {
  double mean = 0, var = 0;
};
moments sample_moments(const std::vector<double>& x) {
  moments m;
  for (double v : x) m.mean += v;
  m.mean /= static_cast<double>(x.size());
  for (double v : x) m.var += (v - m.mean) * (v - m.mean);
  m.var /= static_cast<double>(x.size() - 1);
  return m;
}
constexpr std::size_t n = 40000;
}  // namespace

TEST_CASE("random: standard normal has mean 0 and variance 1", "[reference][random]") {
  sequential_rng rng{11, mdlm::rng_stream::user};
  std::vector<double> x(n);
  for (auto& v : x) v = mdlm::reference::sample_standard_normal(rng);
  const auto m = sample_moments(x);
  CHECK(std::abs(m.mean) / std::sqrt(1.0 / n) < 5.0);
  CHECK(std::abs(m.var - 1.0) / std::sqrt(2.0 / n) < 5.0);  // var(s^2) = 2 sigma^4 / n for a normal
}

TEST_CASE("random: Gamma(alpha) has mean alpha and variance alpha", "[reference][random]") {
  const double alpha = GENERATE(0.05, 0.3, 1.0, 3.5, 40.0);
  CAPTURE(alpha);
  sequential_rng rng{static_cast<std::uint64_t>(alpha * 1000), mdlm::rng_stream::user};
  std::vector<double> x(n);
  for (auto& v : x) {
    const double lg = mdlm::reference::sample_log_gamma(alpha, rng);
    REQUIRE(!std::isnan(lg));
    REQUIRE(lg < std::log(1e6));
    v = std::exp(lg);
  }
  const auto m = sample_moments(x);
  CHECK(std::abs(m.mean - alpha) / std::sqrt(alpha / n) < 5.0);
  // var(s^2) ~ (mu4 - sigma^4) / n with mu4 = 3 alpha^2 + 6 alpha for Gamma(alpha, 1).
  CHECK(std::abs(m.var - alpha) / std::sqrt((2 * alpha * alpha + 6 * alpha) / n) < 5.0);
}

TEST_CASE("random: tiny alpha stays finite in log space", "[reference][random]") {
  sequential_rng rng{3, mdlm::rng_stream::user};
  for (int i = 0; i < 1000; ++i) {
    const double lg = mdlm::reference::sample_log_gamma(0.001, rng);
    REQUIRE(std::isfinite(lg));
  }
}

TEST_CASE("random: Dirichlet vectors are distributions with mean 1/k", "[reference][random]") {
  const double alpha = GENERATE(0.1, 1.0, 10.0);
  CAPTURE(alpha);
  constexpr std::size_t k = 5, draws = 20000;
  sequential_rng rng{17, mdlm::rng_stream::user};
  std::vector<double> first(draws);
  for (std::size_t d = 0; d < draws; ++d) {
    const auto p = mdlm::reference::sample_dirichlet(k, alpha, rng);
    double sum = 0.0;
    for (double v : p) {
      REQUIRE(v >= 0.0);
      sum += v;
    }
    REQUIRE(sum == Approx(1.0).epsilon(1e-14));
    first[d] = p[0];
  }
  const double a0 = alpha * static_cast<double>(k);
  const double var = (alpha * (a0 - alpha)) / (a0 * a0 * (a0 + 1.0));  // Beta(alpha, a0 - alpha) variance
  const auto m = sample_moments(first);
  CHECK(std::abs(m.mean - 1.0 / k) / std::sqrt(var / draws) < 5.0);
}

TEST_CASE("random: same seed, same draws", "[reference][random]") {
  sequential_rng a{5, mdlm::rng_stream::model}, b{5, mdlm::rng_stream::model};
  CHECK(mdlm::reference::sample_dirichlet(7, 0.5, a) == mdlm::reference::sample_dirichlet(7, 0.5, b));
}

TEST_CASE("random: bad Dirichlet parameters name the value", "[reference][random][errors]") {
  sequential_rng rng{1};
  CHECK_THROWS_WITH(mdlm::reference::sample_dirichlet(0, 1.0, rng), Catch::Contains("n = 0"));
  CHECK_THROWS_WITH(mdlm::reference::sample_dirichlet(3, -1.0, rng), Catch::Contains("alpha = -1"));
  CHECK_THROWS_WITH(mdlm::reference::sample_dirichlet(3, INFINITY, rng), Catch::Contains("alpha = inf"));
}
