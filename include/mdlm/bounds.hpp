// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! The entropy bounds of "No Compute Left Behind" (arXiv 2510.19990), eq. 3 and eq. 5.
//!
//! For positions A with marginals p(x_i | s) and joint p(x_A | s):
//!   KL(p(x_A | s) || prod_i p(x_i | s)) = sum_i H(x_i | s) - H(x_A | s)          (total correlation)
//!                                      <= sum_i H(x_i | s) - max_i H(x_i | s)     (EB-Sampler's bound)
//!                                      <= sum_i H(x_i | s)                        (eq. 5)
//! and, for the answer block a, H(a | s) <= H_UB = sum_j H(a_j | s) (eq. 3). Proofs: docs/theory.md.

#include <algorithm>
#include <ranges>
#include <span>

#include "mdlm/logit_stats.hpp"

namespace mdlm {

//! H_UB = sum of the given per-position entropies (eq. 3 of arXiv 2510.19990): an upper bound on the
//! joint entropy of those positions. An empty set gives 0.
[[nodiscard]] inline double entropy_upper_bound(std::span<const double> entropies) noexcept {
  double sum = 0.0;
  for (double h : entropies) sum += h;
  return sum;
}

//! H_UB over the entropies of `logit_stats` rows (eq. 3).
[[nodiscard]] inline double entropy_upper_bound(std::span<const logit_stats> stats) noexcept {
  double sum = 0.0;
  for (const auto& s : stats) sum += s.entropy;
  return sum;
}

//! Bound on the error of decoding the given positions in parallel,
//! KL(joint || product) <= sum_i H_i - max_i H_i (EB-Sampler, arXiv 2505.24857; it implies eq. 5).
//! An empty set gives 0.
[[nodiscard]] inline double parallel_decoding_error_bound(std::span<const double> entropies) noexcept {
  if (entropies.empty()) return 0.0;
  double sum = 0.0, mx = 0.0;
  for (double h : entropies) sum += h, mx = std::max(mx, h);
  return sum - mx;
}

}  // namespace mdlm
