// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! Area under the ROC curve of a score that should rank positives (e.g. traces rated correct) above
//! negatives, by the Mann-Whitney statistic: AUC = P(score(pos) > score(neg)) + P(equal) / 2, estimated
//! over all positive-negative pairs (ties count one half). Used to measure how well the trace score
//! (appendix E of arXiv 2510.19990) separates correct from incorrect traces.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>
#include <utility>
#include <vector>

#include "mdlm/detail/errors.hpp"

namespace mdlm {

//! AUC = (number of pairs (p, n) with p > n + half the pairs with p == n) / (|pos| |neg|), in [0, 1];
//! 0.5 = no separation, 1 = every positive above every negative. `-inf` and `+inf` are valid scores
//! (e.g. a phi of -inf) and tie with themselves. O((P + N) log(P + N)) by sorting and average ranks.
//! @throws std::invalid_argument when either set is empty or a score is NaN (the message names the set
//!         and index).
[[nodiscard]] inline double auc(std::span<const double> positives, std::span<const double> negatives) {
  detail::require(!positives.empty(), "positives is empty: the AUC needs at least one positive score");
  detail::require(!negatives.empty(), "negatives is empty: the AUC needs at least one negative score");
  for (std::size_t i = 0; i < positives.size(); ++i)
    detail::require(!std::isnan(positives[i]), "positive score ", i, " is NaN");
  for (std::size_t i = 0; i < negatives.size(); ++i)
    detail::require(!std::isnan(negatives[i]), "negative score ", i, " is NaN");
  // (score, is_positive), sorted by score; each group of equal scores gets the average of its ranks.
  std::vector<std::pair<double, bool>> all;
  all.reserve(positives.size() + negatives.size());
  for (double s : positives) all.emplace_back(s, true);
  for (double s : negatives) all.emplace_back(s, false);
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  // Rank sum of the positives with 1-based average ranks; U = R_pos - P (P + 1) / 2.
  double rank_sum = 0.0;
  for (std::size_t i = 0; i < all.size();) {
    std::size_t j = i;
    std::size_t pos_in_group = 0;
    while (j < all.size() && all[j].first == all[i].first) pos_in_group += all[j++].second ? 1 : 0;
    const double average_rank = 0.5 * static_cast<double>(i + 1 + j);  // mean of ranks i+1 .. j
    rank_sum += average_rank * static_cast<double>(pos_in_group);
    i = j;
  }
  const auto np = static_cast<double>(positives.size());
  const auto nn = static_cast<double>(negatives.size());
  const double u = rank_sum - np * (np + 1.0) / 2.0;
  return u / (np * nn);
}

}  // namespace mdlm
