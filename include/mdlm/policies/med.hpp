// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! Multi-token entropy decoding (MED), "No Compute Left Behind", arXiv 2510.19990, section 4.2.

#include <cmath>
#include <cstddef>
#include <span>

#include "mdlm/detail/errors.hpp"
#include "mdlm/policy.hpp"

namespace mdlm {

//! MED(lambda, k_max): sort the masked positions of the block by entropy ascending (ties to the
//! lower position); unmask those with H < lambda (strict), at most k_max of them; if none qualifies,
//! unmask the single lowest-entropy position. Each step's parallel-decoding error is then bounded by
//! KL(joint || product) <= sum_{i in A} H_i < lambda * k_max (eq. 5). lambda = 0 gives one-token
//! entropy decoding (sigma_{ENTROPY,1}). Defaults are the paper's appendix A settings (lambda 0.2,
//! k_max 32). H is the entropy of the model's softmax(z), untempered.
struct med {
  //! Entropy threshold in nats, >= 0; +inf = every position qualifies (k_max per step, lowest
  //! entropies first), the "always" value every threshold of mdlm accepts.
  double lambda = 0.2;
  std::size_t k_max = 32;   //!< at most this many positions per step, >= 1

  void validate() const {
    detail::require(!std::isnan(lambda) && lambda >= 0.0, "lambda = ", lambda, " must be >= 0 (+inf allowed)");
    detail::require(k_max >= 1, "k_max = ", k_max, " must be >= 1");
  }
  [[nodiscard]] bool scheduled() const noexcept { return false; }
  //! Reads only the candidates (policy.hpp): usable with row-statistics models.
  static constexpr bool reads_logit_rows = false;

  void select(const step_context&, std::span<const position_info> cand, selection& out) const {
    if (cand.empty()) return;
    // Lowest entropies first, popped lazily: only the accepted prefix (at most k_max + 1) is ordered.
    detail::ascending_prefix ranked(out);
    ranked.prepare(cand.size(), [&](std::size_t i) { return cand[i].entropy; }, k_max + 1);
    const std::size_t lowest = ranked.pop();
    if (!(cand[lowest].entropy < lambda)) {
      out.unmask.push_back(lowest);  // none below lambda: the single lowest-entropy position
      return;
    }
    out.unmask.push_back(lowest);
    while (!ranked.empty() && out.unmask.size() < k_max) {
      const std::size_t i = ranked.pop();
      if (!(cand[i].entropy < lambda)) break;
      out.unmask.push_back(i);
    }
  }
};

}  // namespace mdlm
