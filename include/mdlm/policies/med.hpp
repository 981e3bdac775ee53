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
  double lambda = 0.2;      //!< entropy threshold in nats, >= 0
  std::size_t k_max = 32;   //!< at most this many positions per step, >= 1

  void validate() const {
    detail::require(std::isfinite(lambda) && lambda >= 0.0, "lambda = ", lambda, " must be finite and >= 0");
    detail::require(k_max >= 1, "k_max = ", k_max, " must be >= 1");
  }
  [[nodiscard]] bool scheduled() const noexcept { return false; }

  void select(const step_context&, std::span<const position_info> cand, selection& out) const {
    if (cand.empty()) return;
    detail::ascending_order(cand.size(), [&](std::size_t i) { return cand[i].entropy; }, out.scratch);
    for (std::size_t r = 0; r < out.scratch.size() && out.unmask.size() < k_max; ++r) {
      if (!(cand[out.scratch[r]].entropy < lambda)) break;
      out.unmask.push_back(out.scratch[r]);
    }
    if (out.unmask.empty()) out.unmask.push_back(out.scratch[0]);
  }
};

}  // namespace mdlm
