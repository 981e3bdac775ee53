// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! EB-Sampler, Ben-Hamu et al., "Accelerated sampling from masked diffusion models via entropy
//! bounded unmasking", arXiv 2505.24857 (rule as in the third-party implementations listed in
//! shared/spec/samplers.md section 9).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>

#include "mdlm/detail/errors.hpp"
#include "mdlm/policy.hpp"

namespace mdlm {

//! The error proxy EB-Sampler orders positions by (ascending; ties to the lower position).
enum class eb_order {
  entropy,     //!< H_l
  confidence,  //!< -p_max (most confident first)
  margin,      //!< -(p_(1) - p_(2))
};

//! EB-Sampler(gamma, order): order the masked positions by the error proxy; with S_j the sum and
//! Mx_j the maximum of the first j entropies, unmask the longest prefix with S_j - Mx_j <= gamma
//! (at least one position). S_j - Mx_j bounds KL(joint || product) of the prefix (bounds.hpp) and is
//! non-decreasing in j, so the accepted set is a prefix. gamma = 0 gives one token per step unless
//! entropies are exactly 0. Default gamma 0.01 nats (PC-Sampler scripts; the paper's grid is
//! unverified). Entropies are those of the model's softmax(z), untempered.
struct eb_sampler {
  double gamma = 0.01;               //!< error budget in nats, >= 0; +inf = the whole block each step
  eb_order order = eb_order::entropy;  //!< error proxy

  void validate() const {
    detail::require(!std::isnan(gamma) && gamma >= 0.0, "gamma = ", gamma, " must be >= 0 (+inf allowed)");
  }
  [[nodiscard]] bool scheduled() const noexcept { return false; }
  //! Reads only the candidates (policy.hpp): usable with row-statistics models.
  static constexpr bool reads_logit_rows = false;

  //! The error proxy of a candidate. `confidence` is the distribution's top-1 probability p_max
  //! (`stats.top1_prob()`), not the probability of the sampled token (`prob`, which Fast-dLLM ranks
  //! by): EB-Sampler's proxies describe the position's distribution only (samplers.md section 9), so
  //! the order does not depend on the sampled token. At temperature 0 the two are equal.
  [[nodiscard]] double proxy(const position_info& c) const noexcept {
    switch (order) {
      case eb_order::entropy: return c.entropy;
      case eb_order::confidence: return -c.stats.top1_prob();
      case eb_order::margin: return -c.margin;
    }
    return 0.0;
  }

  void select(const step_context&, std::span<const position_info> cand, selection& out) const {
    if (cand.empty()) return;
    // The order is popped lazily (policy.hpp ascending_prefix): only the accepted prefix (+1) is ordered.
    detail::ascending_prefix ranked(out);
    ranked.prepare(cand.size(), [&](std::size_t i) { return proxy(cand[i]); }, 64);
    double sum = 0.0, mx = 0.0;
    for (std::size_t r = 0; !ranked.empty(); ++r) {
      const std::size_t i = ranked.pop();
      const double h = cand[i].entropy;
      sum += h;
      mx = std::max(mx, h);
      if (r > 0 && !(sum - mx <= gamma)) break;
      out.unmask.push_back(i);
    }
  }
};

}  // namespace mdlm
