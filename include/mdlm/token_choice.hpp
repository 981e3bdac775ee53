// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! Token choice: what to write at a masked position, and the per-position quantities the unmasking
//! policies rank by.
//!
//! Order of operations (Dream's `sample_tokens`, shared/spec/samplers.md section 5.3):
//! temperature -> top-p -> top-k -> softmax -> choose. Temperature 0 means argmax, exactly (ties to
//! the lower token id). Temperature > 0 samples softmax(z / T) restricted to the kept tokens by a
//! two-level Gumbel-max draw with double-precision noise (detail/block_gumbel.hpp): a Gumbel-max
//! over blocks of 1024 tokens weighted by their mass, then LLaDA's `add_gumbel_noise` rule
//! x0 = argmax_v z_v / T - log(-log U_v) inside the chosen block; the same distribution as LLaDA's
//! one-level draw, with one uniform per block plus one block's uniforms. The uniforms come from the
//! counter-based generator keyed by (seed, rng_stream::token, sequence, step, position, index), so
//! the draw does not depend on batching.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <optional>
#include <span>
#include <vector>

#include "mdlm/detail/block_gumbel.hpp"
#include "mdlm/detail/errors.hpp"
#include "mdlm/logit_stats.hpp"
#include "mdlm/rng.hpp"
#include "mdlm/types.hpp"

namespace mdlm {

//! How a token is chosen at a position. Defaults: greedy, no filtering.
struct token_choice {
  //! Softmax temperature T >= 0. 0 (the default) = argmax, exactly; 1 = ancestral sampling.
  double temperature = 0.0;
  //! Nucleus filter (Holtzman et al., arXiv 1904.09751) with Dream's rule: a token is kept iff the
  //! probability mass of the tokens ranked above it is <= top_p (rank 1 is always kept). Must lie in
  //! (0, 1]; nullopt (default) or 1 = no filtering.
  std::optional<double> top_p{};
  //! Keep the tokens whose (tempered) logit is >= the k-th largest (ties at the k-th are kept).
  //! Must be >= 1; nullopt (default) = no filtering.
  std::optional<std::size_t> top_k{};

  //! True when the chosen token and the tempered quantities differ from the plain softmax ones.
  [[nodiscard]] bool transforms() const noexcept {
    return temperature > 0.0 || (top_p && *top_p < 1.0) || top_k.has_value();
  }
  //! Throws std::invalid_argument naming the bad field.
  void validate() const {
    detail::require(std::isfinite(temperature) && temperature >= 0.0, "temperature = ", temperature,
                    " must be finite and >= 0");
    if (top_p) detail::require(*top_p > 0.0 && *top_p <= 1.0, "top_p = ", *top_p, " must lie in (0, 1]");
    if (top_k) detail::require(*top_k >= 1, "top_k = ", *top_k, " must be >= 1");
  }
  friend bool operator==(const token_choice&, const token_choice&) = default;
};

//! The per-position quantities of one masked position at one step (shared/spec/samplers.md
//! section 4). "Plain" quantities use p = softmax(z) of the model's logits; "tempered" ones use the
//! distribution the token was drawn from (tempered, top-p/top-k filtered), as Dream does.
struct position_info {
  std::size_t position = 0;     //!< canvas position
  token_id token = no_token;    //!< the chosen token x0
  double prob = 0.0;            //!< p(x0) under softmax(z): LLaDA / Fast-dLLM confidence
  double tempered_prob = 0.0;   //!< p(x0) under the sampling distribution: Dream maskgit_plus
  double entropy = 0.0;         //!< H(softmax(z)) in nats: MED, EB-Sampler
  double tempered_entropy = 0.0;//!< H of the sampling distribution: Dream `entropy` (negated)
  double margin = 0.0;          //!< p_(1) - p_(2) of softmax(z)
  double tempered_margin = 0.0; //!< p_(1) - p_(2) of the sampling distribution: Dream topk_margin
  logit_stats stats{};          //!< statistics of the raw row (log-normalizer, top-1/2, logit gap)
};

namespace detail {

//! Scratch space for the slow (filtering) path of token choice, sized once per decode.
struct choice_scratch {
  std::vector<double> values;              // tempered, filtered logits
  std::vector<std::uint32_t> order;        // sort permutation for top-p / top-k
  void reserve(std::size_t vocab) {
    values.resize(vocab);
    order.resize(vocab);
  }
};

//! Writes the tempered, filtered logits of `row` into `out` (removed tokens = -inf). Dream sets
//! removed logits to finfo(dtype).min rather than -inf; both give them probability 0 after softmax.
//! `order` must have the row's size. Allocation-free.
template <class T>
void transform_row(std::span<const T> row, const token_choice& choice, std::span<double> out,
                   std::span<std::uint32_t> order) noexcept {
  const std::size_t n = row.size();
  const double inv_t = choice.temperature > 0.0 ? 1.0 / choice.temperature : 1.0;
  for (std::size_t v = 0; v < n; ++v) {
    const double z = static_cast<double>(row[v]);
    out[v] = z == -std::numeric_limits<double>::infinity() ? z : z * inv_t;
  }
  const bool use_p = choice.top_p && *choice.top_p < 1.0;
  if (!use_p && !choice.top_k) return;
  std::iota(order.begin(), order.end(), 0u);
  // Rank by (value descending, id ascending): a deterministic replacement for torch.sort.
  std::sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) {
    return out[a] > out[b] || (out[a] == out[b] && a < b);
  });
  std::size_t keep = n;
  if (use_p) {
    const double mx = out[order[0]];
    double total = 0.0;
    for (std::size_t r = 0; r < n; ++r) total += std::exp(out[order[r]] - mx);
    double above = 0.0;  // mass of the tokens ranked above rank r
    for (std::size_t r = 0; r < n; ++r) {
      if (r > 0 && above > *choice.top_p) {
        keep = r;
        break;
      }
      above += std::exp(out[order[r]] - mx) / total;
    }
  }
  if (choice.top_k && *choice.top_k < keep) {
    // Remove values strictly below the k-th largest kept value; ties at the k-th stay.
    const double kth = out[order[*choice.top_k - 1]];
    std::size_t r = *choice.top_k;
    while (r < keep && out[order[r]] >= kth) ++r;
    keep = r;
  }
  for (std::size_t r = keep; r < n; ++r) out[order[r]] = -std::numeric_limits<double>::infinity();
}

//! The sampled token of the tempered, filtered values: the two-level Gumbel-max draw of
//! detail/block_gumbel.hpp (a sample of softmax(values); -inf entries are never chosen).
template <class T>
[[nodiscard]] token_id gumbel_argmax(std::span<const T> values, counter_rng rng, std::uint32_t sequence,
                                     std::uint32_t step, std::uint32_t position) noexcept {
  double y_max = -std::numeric_limits<double>::infinity();
  for (const T& x : values) y_max = static_cast<double>(x) > y_max ? static_cast<double>(x) : y_max;
  return two_level_gumbel(values.size(), y_max, gumbel_keying{rng, sequence, step, position},
                          [&](std::size_t v) { return static_cast<double>(values[v]); });
}

}  // namespace detail

//! Fills the plain quantities (`prob`, `entropy`, `margin`, `stats`) of `info` for token `token`.
inline void set_plain_quantities(position_info& info, const logit_stats& stats, double token_logit) noexcept {
  info.stats = stats;
  info.entropy = stats.entropy;
  info.margin = stats.margin();
  info.prob = std::exp(token_logit - stats.log_normalizer);
}

//! Chooses the token of one masked position from its logit row and fills every per-position
//! quantity. `stats` must be `compute_logit_stats(row)` and valid. Fast path (no temperature, no
//! filter): argmax, no extra pass. Otherwise the row is tempered/filtered into `scratch` (O(V), plus
//! a sort when top-p/top-k are set). Allocation-free once `scratch` is reserved to the row size.
template <class T>
[[nodiscard]] position_info choose_token(std::span<const T> row, const logit_stats& stats,
                                         const token_choice& choice, counter_rng rng, std::uint32_t sequence,
                                         std::uint32_t step, std::size_t position,
                                         detail::choice_scratch& scratch) noexcept {
  position_info info;
  info.position = position;
  const auto pos32 = static_cast<std::uint32_t>(position);
  if (!choice.transforms()) {
    info.token = stats.top1;
    set_plain_quantities(info, stats, static_cast<double>(row[static_cast<std::size_t>(stats.top1)]));
    info.tempered_prob = info.prob;
    info.tempered_entropy = info.entropy;
    info.tempered_margin = info.margin;
    return info;
  }
  std::span<double> values(scratch.values.data(), row.size());
  detail::transform_row(row, choice, values, std::span<std::uint32_t>(scratch.order.data(), row.size()));
  const logit_stats tempered = compute_logit_stats(std::span<const double>(values));
  info.token = choice.temperature > 0.0
                   ? detail::gumbel_argmax(std::span<const double>(values), rng, sequence, step, pos32)
                   : stats.top1;
  set_plain_quantities(info, stats, static_cast<double>(row[static_cast<std::size_t>(info.token)]));
  info.tempered_prob = std::exp(values[static_cast<std::size_t>(info.token)] - tempered.log_normalizer);
  info.tempered_entropy = tempered.entropy;
  info.tempered_margin = tempered.margin();
  return info;
}

//! The exact distribution of the token chosen from `row` under `choice` (size V): one-hot on the
//! argmax for temperature 0, otherwise softmax of the tempered, filtered logits. Used by the exact
//! enumeration of output distributions; allocates. Precondition: `row` is valid.
template <class T>
[[nodiscard]] std::vector<double> token_distribution(std::span<const T> row, const token_choice& choice) {
  std::vector<double> p(row.size(), 0.0);
  const logit_stats stats = compute_logit_stats(row);
  if (!stats.valid) return p;
  if (choice.temperature == 0.0) {
    p[static_cast<std::size_t>(stats.top1)] = 1.0;
    return p;
  }
  std::vector<double> values(row.size());
  std::vector<std::uint32_t> order(row.size());
  detail::transform_row(row, choice, std::span<double>(values), std::span<std::uint32_t>(order));
  const logit_stats tempered = compute_logit_stats(std::span<const double>(values));
  for (std::size_t v = 0; v < row.size(); ++v) p[v] = std::exp(values[v] - tempered.log_normalizer);
  return p;
}

//! The `position_info` that `choose_token` would report if it had drawn `token` (for enumeration).
template <class T>
[[nodiscard]] position_info describe_choice(std::span<const T> row, const token_choice& choice, token_id token,
                                            std::size_t position) {
  position_info info;
  info.position = position;
  info.token = token;
  const logit_stats stats = compute_logit_stats(row);
  set_plain_quantities(info, stats, static_cast<double>(row[static_cast<std::size_t>(token)]));
  if (!choice.transforms()) {
    info.tempered_prob = info.prob;
    info.tempered_entropy = info.entropy;
    info.tempered_margin = info.margin;
    return info;
  }
  std::vector<double> values(row.size());
  std::vector<std::uint32_t> order(row.size());
  detail::transform_row(row, choice, std::span<double>(values), std::span<std::uint32_t>(order));
  const logit_stats tempered = compute_logit_stats(std::span<const double>(values));
  info.tempered_prob = std::exp(values[static_cast<std::size_t>(token)] - tempered.log_normalizer);
  info.tempered_entropy = tempered.entropy;
  info.tempered_margin = tempered.margin();
  return info;
}

}  // namespace mdlm
