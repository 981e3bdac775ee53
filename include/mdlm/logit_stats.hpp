// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! One-pass statistics of a logit row: log-normalizer, entropy, top-1 and top-2.

#include <cmath>
#include <concepts>
#include <cstddef>
#include <limits>
#include <span>

#include "mdlm/types.hpp"

namespace mdlm {

//! Statistics of one logit row z (length V) under p = softmax(z).
//!
//! * `log_normalizer` = log sum_v exp(z_v) (log-sum-exp);
//! * `entropy`        = H(p) = -sum_v p_v log p_v, in nats, clamped at 0 against rounding;
//! * `top1`, `top2`   = the best and second-best tokens ordered by (logit descending, id ascending),
//!   so ties break to the lower token id; `-inf` entries rank last but can still be `top2` when fewer
//!   than two entries are finite. `top2` is `no_token` when V < 2;
//! * `top1_logprob`, `top2_logprob` = log p of those tokens (`-inf` for `no_token`). The raw logit gap
//!   z_(1) - z_(2) used by Prophet equals `top1_logprob - top2_logprob`;
//! * `valid` is false when the row contains NaN or +inf, is empty, or has every entry `-inf`; the
//!   other fields are then unspecified (NaN) and must not be used. An invalid row is data, never UB.
template <class Real = double>
struct basic_logit_stats {
  Real log_normalizer = std::numeric_limits<Real>::quiet_NaN();
  Real entropy = std::numeric_limits<Real>::quiet_NaN();
  token_id top1 = no_token;
  Real top1_logprob = -std::numeric_limits<Real>::infinity();
  token_id top2 = no_token;
  Real top2_logprob = -std::numeric_limits<Real>::infinity();
  bool valid = false;

  //! Probability of the top-1 token (LLaDA's greedy confidence).
  [[nodiscard]] Real top1_prob() const noexcept { return std::exp(top1_logprob); }
  //! Margin p_(1) - p_(2) (Dream `topk_margin`, arXiv 2502.06768).
  [[nodiscard]] Real margin() const noexcept { return std::exp(top1_logprob) - std::exp(top2_logprob); }
  //! Raw logit gap z_(1) - z_(2) (Prophet, arXiv 2508.19982); +inf when top2 is banned or absent.
  [[nodiscard]] Real logit_gap() const noexcept { return top1_logprob - top2_logprob; }

  friend bool operator==(const basic_logit_stats&, const basic_logit_stats&) = default;
};

//! Statistics in double precision: the type every algorithm consumes.
using logit_stats = basic_logit_stats<double>;

namespace detail {

//! The one-pass recurrence shared by every element type. Accumulates in `Acc`.
//!
//! Numerical scheme (online softmax with an entropy accumulator): keep the running maximum m,
//! s = sum exp(z - m) and t = sum exp(z - m) * (z - m). When a new maximum m' arrives, both sums are
//! rescaled by r = exp(m - m'): s' = r*s, t' = r*(t + s*(m - m')). At the end
//! log Z = m + log s and H = log Z - sum p z = log s - t/s. Every exponent is <= 0, so nothing
//! overflows even for logits of +-1e4; `-inf` entries are skipped (exp(-inf) * (-inf) would be NaN).
template <class Acc, class T>
[[nodiscard]] constexpr logit_stats compute_logit_stats_impl(std::span<const T> row) noexcept {
  logit_stats out{};
  const std::size_t n = row.size();
  if (n == 0) return out;
  const Acc neg_inf = -std::numeric_limits<Acc>::infinity();
  Acc m = neg_inf, s = 0, t = 0;
  Acc v1 = neg_inf, v2 = neg_inf;
  std::ptrdiff_t i1 = -1, i2 = -1;
  bool bad = false;
  for (std::size_t i = 0; i < n; ++i) {
    const Acc z = static_cast<Acc>(row[i]);
    if (std::isnan(z) || z == std::numeric_limits<Acc>::infinity()) {
      bad = true;
      continue;
    }
    // Top-2 by (value desc, index asc): strict comparisons keep the lower index on ties. The index
    // tests admit -inf entries when fewer than two entries were seen.
    if (i1 < 0 || z > v1) {
      v2 = v1, i2 = i1;
      v1 = z, i1 = static_cast<std::ptrdiff_t>(i);
    } else if (i2 < 0 || z > v2) {
      v2 = z, i2 = static_cast<std::ptrdiff_t>(i);
    }
    if (z == neg_inf) continue;
    if (z > m) {
      const Acc r = (m == neg_inf) ? Acc(0) : std::exp(m - z);
      t = r * (t + s * (m == neg_inf ? Acc(0) : (m - z)));
      s = r * s + Acc(1);
      m = z;
    } else {
      const Acc d = z - m;
      const Acc e = std::exp(d);
      s += e;
      t += e * d;
    }
  }
  if (bad || m == neg_inf) return out;
  const Acc log_s = std::log(s);
  out.log_normalizer = static_cast<double>(m + log_s);
  const Acc h = log_s - t / s;
  out.entropy = h > Acc(0) ? static_cast<double>(h) : 0.0;
  out.top1 = static_cast<token_id>(i1);
  out.top1_logprob = static_cast<double>(v1) - out.log_normalizer;
  if (i2 >= 0) {
    out.top2 = static_cast<token_id>(i2);
    out.top2_logprob = v2 == neg_inf ? -std::numeric_limits<double>::infinity()
                                     : static_cast<double>(v2) - out.log_normalizer;
  }
  out.valid = true;
  return out;
}

}  // namespace detail

//! Computes `logit_stats` of one logit row in ONE pass, numerically stable for rows containing
//! `-inf` (banned tokens) and values of magnitude up to ~1e30; accumulates in double.
//! Complexity O(V), no allocation, never throws. See `basic_logit_stats` for the fields and the
//! meaning of `valid`.
[[nodiscard]] inline logit_stats compute_logit_stats(std::span<const float> logits) noexcept {
  return detail::compute_logit_stats_impl<double>(logits);
}

//! Double-precision overload (exact reference models return double logits).
[[nodiscard]] inline logit_stats compute_logit_stats(std::span<const double> logits) noexcept {
  return detail::compute_logit_stats_impl<double>(logits);
}

}  // namespace mdlm
