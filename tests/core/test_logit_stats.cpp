// SPDX-License-Identifier: MIT
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "mdlm/logit_stats.hpp"

namespace {
constexpr float ninf = -std::numeric_limits<float>::infinity();
}

TEST_CASE("logit_stats of a uniform pair", "[core][logit_stats]") {
  const std::vector<float> row{0.0f, 0.0f};
  const auto s = mdlm::compute_logit_stats(row);
  REQUIRE(s.valid);
  CHECK(s.entropy == Approx(std::log(2.0)).margin(1e-15));
  CHECK(s.log_normalizer == Approx(std::log(2.0)).margin(1e-15));
  CHECK(s.top1 == 0);
  CHECK(s.top2 == 1);
  CHECK(s.margin() == Approx(0.0).margin(1e-15));
}

TEST_CASE("logit_stats skips -inf and reports invalid rows", "[core][logit_stats]") {
  const std::vector<float> banned{ninf, 1.0f, ninf, 1.0f};
  const auto s = mdlm::compute_logit_stats(banned);
  REQUIRE(s.valid);
  CHECK(s.top1 == 1);
  CHECK(s.top2 == 3);
  CHECK(s.entropy == Approx(std::log(2.0)).margin(1e-15));

  const std::vector<float> all_banned{ninf, ninf};
  CHECK_FALSE(mdlm::compute_logit_stats(all_banned).valid);
  const std::vector<float> nan_row{0.0f, std::numeric_limits<float>::quiet_NaN()};
  CHECK_FALSE(mdlm::compute_logit_stats(nan_row).valid);
  CHECK_FALSE(mdlm::compute_logit_stats(std::span<const float>{}).valid);
}
