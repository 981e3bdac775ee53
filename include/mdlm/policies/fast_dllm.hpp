// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! Fast-dLLM parallel decoding rules (Wu et al., arXiv 2505.22618; NVlabs/Fast-dLLM
//! llada/generate.py `get_transfer_index` and `get_transfer_index_dynamic`).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>

#include "mdlm/detail/errors.hpp"
#include "mdlm/policy.hpp"

namespace mdlm {

//! Fast-dLLM threshold rule: unmask the most confident position (always; ties to the lower
//! position) plus every position whose confidence c = p(x0) under softmax(z) is >= tau (equality
//! kept: the reference drops c < tau). c is the probability of the chosen (possibly sampled) token
//! x0, as Fast-dLLM's `get_transfer_index` gathers it (unlike EB-Sampler's p_max proxy). Default tau 0.9 as in every Fast-dLLM evaluation script.
//! tau = 1 unmasks the top-1 plus exact certainties; tau = 0 unmasks the whole block.
struct fast_dllm_threshold {
  double tau = 0.9;  //!< confidence threshold in [0, 1]

  void validate() const { detail::require(tau >= 0.0 && tau <= 1.0, "tau = ", tau, " must lie in [0, 1]"); }
  [[nodiscard]] bool scheduled() const noexcept { return false; }
  //! Reads only the candidates (policy.hpp): usable with row-statistics models.
  static constexpr bool reads_logit_rows = false;

  void select(const step_context&, std::span<const position_info> cand, selection& out) const {
    if (cand.empty()) return;
    // One pass: the positions with c >= tau (appended without a branch: the slot is written, then
    // kept or not) and the first maximum; the maximum is inserted in place when it is below tau.
    const std::size_t base = out.unmask.size();
    out.unmask.resize(base + cand.size());
    std::size_t* kept = out.unmask.data() + base;
    std::size_t n_kept = 0, best = 0;
    double best_prob = cand[0].prob;
    for (std::size_t i = 0; i < cand.size(); ++i) {
      const double c = cand[i].prob;
      if (c > best_prob) {
        best_prob = c;
        best = i;
      }
      kept[n_kept] = i;
      n_kept += c >= tau ? 1 : 0;
    }
    out.unmask.resize(base + n_kept);
    if (!(best_prob >= tau))
      out.unmask.insert(std::lower_bound(out.unmask.begin() + static_cast<std::ptrdiff_t>(base), out.unmask.end(), best),
                        best);
  }
};

//! Fast-dLLM factor rule: sort by confidence descending (ties to the lower position); rank r >= 2
//! needs c_(r) >= 1 - factor / (r + 1) (f = 1: 0.667, 0.75, 0.8, 0.833, ...); accept the ranks
//! before the first failure, rank 1 always. `reference_last_rank` (default true) reproduces the
//! reference's quirk: when the scan ends without a failure OR fails only at the last rank, every
//! candidate is accepted.
struct fast_dllm_factor {
  double factor = 1.0;              //!< f > 0; +inf = every rank accepted (the whole block)
  bool reference_last_rank = true;  //!< the reference's last-rank quirk (see above)

  void validate() const {
    detail::require(!std::isnan(factor) && factor > 0.0, "factor = ", factor, " must be > 0 (+inf allowed)");
  }
  [[nodiscard]] bool scheduled() const noexcept { return false; }
  //! Reads only the candidates (policy.hpp): usable with row-statistics models.
  static constexpr bool reads_logit_rows = false;

  //! Threshold for 1-based rank r (rank 1: always accepted).
  [[nodiscard]] double threshold(std::size_t rank) const noexcept {
    return rank <= 1 ? -1.0 : 1.0 - factor / static_cast<double>(rank + 1);
  }

  void select(const step_context&, std::span<const position_info> cand, selection& out) const {
    const std::size_t n = cand.size();
    if (n == 0) return;
    // Ranks by descending confidence, popped lazily (policy.hpp ascending_prefix): only the accepted
    // prefix (+1) is ordered. Rank r is accepted while its confidence meets threshold(r); the first
    // failing rank ends the selection, except the last rank under the reference quirk.
    detail::ascending_prefix ranked(out);
    ranked.prepare(n, [&](std::size_t i) { return -cand[i].prob; }, 64);
    for (std::size_t r = 1; r <= n; ++r) {
      const std::size_t i = ranked.pop();
      if (cand[i].prob < threshold(r) && !(reference_last_rank && r == n)) break;
      out.unmask.push_back(i);
    }
  }
};

}  // namespace mdlm
