// SPDX-License-Identifier: MIT
#pragma once
// Pearson's chi-square goodness of fit for the statistical tests (fixed seeds, fixed false-failure
// rates): the upper tail of the chi-square law by the regularised incomplete gamma function, own
// implementation.

#include <cmath>
#include <cstddef>
#include <map>
#include <utility>
#include <vector>

namespace mdlm::test {

// ---- chi-square tail, own implementation (regularised upper incomplete gamma) ------------------

//! Q(a, x) = Gamma(a, x) / Gamma(a): series of P for x < a + 1, Lentz continued fraction otherwise.
inline double gamma_q(double a, double x) {
  if (x <= 0.0) return 1.0;
  const double log_prefix = a * std::log(x) - x - std::lgamma(a);
  if (x < a + 1.0) {
    double term = 1.0 / a, sum = term;
    for (int n = 1; n < 1000; ++n) {
      term *= x / (a + n);
      sum += term;
      if (std::abs(term) < std::abs(sum) * 1e-16) break;
    }
    return 1.0 - sum * std::exp(log_prefix);
  }
  const double tiny = 1e-300;
  double b = x + 1.0 - a, c = 1.0 / tiny, d = 1.0 / b, h = d;
  for (int i = 1; i < 1000; ++i) {
    const double an = -i * (i - a);
    b += 2.0;
    d = an * d + b;
    if (std::abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (std::abs(c) < tiny) c = tiny;
    d = 1.0 / d;
    const double delta = d * c;
    h *= delta;
    if (std::abs(delta - 1.0) < 1e-16) break;
  }
  return std::exp(log_prefix) * h;
}

//! P(chi^2_df >= x).
inline double chi_square_tail(double x, double df) { return gamma_q(df / 2.0, x / 2.0); }

//! Pearson's chi-square of observed counts against `expected` probabilities (bins with expected count
//! < 5 pooled into one); returns the tail probability. Any observation outside the support fails.
struct chi_square_result {
  double statistic = 0;
  double df = 0;
  double p_value = 0;
  std::size_t outside_support = 0;
};

template <class Key>
chi_square_result chi_square(const std::vector<std::pair<Key, double>>& expected, const std::map<Key, std::size_t>& counts,
                             std::size_t n) {
  chi_square_result r;
  double pooled_e = 0.0, pooled_o = 0.0;
  std::size_t bins = 0;
  std::size_t seen = 0;
  for (const auto& e : expected) {
    const auto it = counts.find(e.first);
    const double o = it == counts.end() ? 0.0 : static_cast<double>(it->second);
    seen += it == counts.end() ? 0 : it->second;
    const double ex = e.second * static_cast<double>(n);
    if (ex < 5.0) {
      pooled_e += ex;
      pooled_o += o;
      continue;
    }
    r.statistic += (o - ex) * (o - ex) / ex;
    ++bins;
  }
  r.outside_support = n - seen;
  if (pooled_e > 0.0) {
    r.statistic += (pooled_o - pooled_e) * (pooled_o - pooled_e) / pooled_e;
    ++bins;
  }
  r.df = static_cast<double>(bins - 1);
  r.p_value = chi_square_tail(r.statistic, r.df);
  return r;
}

}  // namespace mdlm::test
