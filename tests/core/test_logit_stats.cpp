// SPDX-License-Identifier: MIT
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "mdlm/logit_stats.hpp"
#include "support/property.hpp"

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

namespace {

//! Naive two-pass double-precision reference for compute_logit_stats: max, then sums; top-2 by a
//! stable sort of the ids on (value descending), so ties keep the lower id first.
template <class T>
mdlm::logit_stats naive_stats(const std::vector<T>& row) {
  mdlm::logit_stats out{};
  const double inf = std::numeric_limits<double>::infinity();
  bool any_finite = false;
  for (T z : row) {
    if (std::isnan(static_cast<double>(z)) || static_cast<double>(z) == inf) return out;  // invalid
    if (static_cast<double>(z) > -inf) any_finite = true;
  }
  if (!any_finite) return out;
  double m = -inf;
  for (T z : row) m = std::max(m, static_cast<double>(z));
  double sum = 0.0;
  for (T z : row) sum += std::exp(static_cast<double>(z) - m);
  const double log_z = m + std::log(sum);
  double h = 0.0;
  for (T z : row) {
    const double lp = static_cast<double>(z) - log_z;
    const double p = std::exp(lp);
    if (p > 0.0) h -= p * lp;
  }
  std::vector<std::size_t> ids(row.size());
  std::iota(ids.begin(), ids.end(), std::size_t{0});
  std::stable_sort(ids.begin(), ids.end(), [&](std::size_t a, std::size_t b) {
    return static_cast<double>(row[a]) > static_cast<double>(row[b]);
  });
  out.log_normalizer = log_z;
  out.entropy = std::max(h, 0.0);
  out.top1 = static_cast<mdlm::token_id>(ids[0]);
  out.top1_logprob = static_cast<double>(row[ids[0]]) - log_z;
  if (row.size() > 1) {
    out.top2 = static_cast<mdlm::token_id>(ids[1]);
    const double z2 = static_cast<double>(row[ids[1]]);
    out.top2_logprob = z2 == -inf ? -inf : z2 - log_z;
  }
  out.valid = true;
  return out;
}

//! A random logit row mixing ordinary values, -inf (banned tokens), +-1e4, exact ties and, by
//! flavour, NaN / +inf / all -inf / single-entry rows.
template <class T>
std::vector<T> random_row() {
  const int flavour = *rc::gen::inRange(0, 10);
  const auto n = flavour == 9 ? std::size_t{1} : *rc::gen::inRange<std::size_t>(1, 80);
  const T inf = std::numeric_limits<T>::infinity();
  std::vector<T> row(n);
  for (std::size_t i = 0; i < n; ++i) {
    const int kind = *rc::gen::inRange(0, 20);
    if (flavour == 8 || kind < 3) {
      row[i] = -inf;  // flavour 8: every entry banned
    } else if (kind < 5) {
      row[i] = static_cast<T>(kind == 3 ? 1e4 : -1e4);
    } else if (kind < 8 && i > 0) {
      row[i] = row[*rc::gen::inRange<std::size_t>(0, i)];  // exact tie with an earlier entry
    } else {
      row[i] = static_cast<T>(*rc::gen::inRange(-200000, 200001) / 1e4);  // in [-20, 20]
    }
  }
  if (flavour == 6) row[*rc::gen::inRange<std::size_t>(0, n)] = std::numeric_limits<T>::quiet_NaN();
  if (flavour == 7) row[*rc::gen::inRange<std::size_t>(0, n)] = inf;
  return row;
}

template <class T>
void check_against_naive() {
  const std::vector<T> row = random_row<T>();
  const auto got = mdlm::compute_logit_stats(std::span<const T>{row});
  const auto want = naive_stats(row);
  RC_ASSERT(got.valid == want.valid);
  if (!want.valid) return;
  constexpr double tol = 1e-12;  // relative, with an absolute floor of 1e-12 near 0
  RC_ASSERT(mdlm::test::close_to(got.log_normalizer, want.log_normalizer, tol));
  RC_ASSERT(mdlm::test::close_to(got.entropy, want.entropy, tol));
  RC_ASSERT(got.entropy >= 0.0);
  RC_ASSERT(got.top1 == want.top1);
  RC_ASSERT(got.top2 == want.top2);
  const double scale = std::max(1.0, std::abs(want.log_normalizer));
  RC_ASSERT(mdlm::test::close_to(got.top1_logprob, want.top1_logprob, tol * scale));
  RC_ASSERT(mdlm::test::close_to(got.top2_logprob, want.top2_logprob, tol * scale));
}

}  // namespace

TEST_CASE("logit_stats: property (d) one pass equals the naive two-pass reference",
          "[core][logit_stats][property]") {
  mdlm::test::check_property("compute_logit_stats(double rows) == naive two-pass", [] { check_against_naive<double>(); });
  mdlm::test::check_property("compute_logit_stats(float rows) == naive two-pass", [] { check_against_naive<float>(); });
}

TEST_CASE("logit_stats: ties, huge values and one-entry rows by hand", "[core][logit_stats]") {
  const std::vector<double> ties{1.0, 3.0, 3.0, 3.0};
  const auto t = mdlm::compute_logit_stats(ties);
  CHECK(t.top1 == 1);
  CHECK(t.top2 == 2);
  const std::vector<float> huge{1e4f, -1e4f, 1e4f};
  const auto h = mdlm::compute_logit_stats(huge);
  REQUIRE(h.valid);
  CHECK(h.log_normalizer == Approx(1e4 + std::log(2.0)).epsilon(1e-15));
  CHECK(h.entropy == Approx(std::log(2.0)).epsilon(1e-14));
  CHECK(h.top1 == 0);
  CHECK(h.top2 == 2);
  const std::vector<double> one{-3.5};
  const auto o = mdlm::compute_logit_stats(one);
  REQUIRE(o.valid);
  CHECK(o.entropy == 0.0);
  CHECK(o.top1 == 0);
  CHECK(o.top1_logprob == 0.0);
  CHECK(o.top2 == mdlm::no_token);
  CHECK(o.top2_logprob == -std::numeric_limits<double>::infinity());
  const std::vector<double> one_finite{-std::numeric_limits<double>::infinity(), 2.0};
  const auto f = mdlm::compute_logit_stats(one_finite);
  CHECK(f.top1 == 1);
  CHECK(f.top2 == 0);  // a banned token can be top-2 when fewer than two are finite
  CHECK(f.top2_logprob == -std::numeric_limits<double>::infinity());
  const std::vector<double> plus_inf{0.0, std::numeric_limits<double>::infinity()};
  CHECK_FALSE(mdlm::compute_logit_stats(plus_inf).valid);
}
