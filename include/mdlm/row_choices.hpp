// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! From logit rows to `row_choice`s: the one function both model interfaces share.
//!
//! `compute_row_choices(logits, vocab, request, out, ...)` computes, for every canvas position
//! `request.rows[i]`, the statistics and the chosen token of its row of the L x V matrix `logits`
//! into `out[i]`. `mdlm::decode` calls it on the rows a `ConditionalModel` returned; the CPU
//! backend's row-statistics interface calls it on the rows it evaluated (only those), so both
//! interfaces take exactly the same decisions from the same logits. Implementations on other
//! hardware (backends/cuda) reproduce it: tokens exactly (greedy always; sampled as their
//! documentation states), statistics to rounding.
//!
//! Method, per row (`stats_path`):
//!   * `kernels` (default) and V >= detail::kernels_min_vocab: the one-pass SIMD kernels of
//!     kernels/batched_stats.hpp (statistics, greedy or sampled token, tempered quantities), rows
//!     spread over `pool`; rows with a top-k / top-p filter then take the sorting path of
//!     token_choice.hpp (`choose_token`) from the kernels' statistics;
//!   * `scalar_reference`, or V < kernels_min_vocab (exact toy models): `compute_logit_stats` +
//!     `choose_token` in double precision, one row after another.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>

#include "mdlm/kernels/batched_stats.hpp"
#include "mdlm/kernels/thread_pool.hpp"
#include "mdlm/logit_stats.hpp"
#include "mdlm/row_model.hpp"
#include "mdlm/token_choice.hpp"

namespace mdlm {

namespace detail {
//! Narrowest logit row for which `stats_path::kernels` calls the vector kernels.
inline constexpr std::size_t kernels_min_vocab = 128;
}  // namespace detail

//! The `row_choice` of a `position_info` (the inverse of `to_position_info`, lossless).
[[nodiscard]] inline row_choice to_row_choice(const position_info& info) noexcept {
  row_choice c;
  c.stats = info.stats;
  c.token = info.token;
  c.prob = info.prob;
  c.tempered_prob = info.tempered_prob;
  c.tempered_entropy = info.tempered_entropy;
  c.tempered_margin = info.tempered_margin;
  return c;
}

//! Statistics and chosen token of canvas positions `request.rows` of the L x V row-major `logits`
//! into `out` (out.size() == request.rows.size()). `request.banned` must be empty: a caller with
//! banned ids sets their logits to -inf in its rows first (the CPU backend does). Allocation-free
//! once `scratch` is reserved to V (`scratch.reserve(vocab)`). Invalid rows are data, not errors:
//! their `stats.valid` is false.
//! @throws std::invalid_argument for sizes that do not match or a non-empty `banned` (see
//!         `choose_rows` for the rest).
template <logit_element T>
void compute_row_choices(std::span<const T> logits, std::size_t vocab, const row_request& request,
                         std::span<row_choice> out, thread_pool* pool, detail::choice_scratch& scratch) {
  const stats_path path = request.path;
  const auto rows = request.rows;
  detail::require(request.banned.empty(), "compute_row_choices: request.banned has ", request.banned.size(),
                  " ids; set their logits to -inf in the rows instead");
  detail::require(out.size() == rows.size(), "out.size() = ", out.size(), " differs from rows.size() = ",
                  rows.size());
  const token_choice& choice = request.choice;
  if (path == stats_path::scalar_reference || vocab < detail::kernels_min_vocab) {
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const std::size_t p = rows[i];
      const auto row = logits.subspan(p * vocab, vocab);
      const logit_stats s = detail::compute_logit_stats_impl<double>(row);  // any element type
      if (!s.valid) {
        out[i] = row_choice{.stats = s};
        continue;
      }
      out[i] = to_row_choice(
          choose_token(row, s, choice, request.rng, request.sequence, request.step, p, scratch));
    }
    return;
  }
  const bool filtered = (choice.top_p && *choice.top_p < 1.0) || choice.top_k.has_value();
  const row_choice_options ko{.temperature = filtered ? 0.0 : choice.temperature,
                              .rng = request.rng,
                              .sequence = request.sequence,
                              .step = request.step};
  choose_rows(logits, vocab, rows, out, ko, pool);
  if (!filtered) return;
  // Top-k / top-p: the documented slower path (a sort of the row) with the kernels' statistics.
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (!out[i].stats.valid) continue;
    const std::size_t p = rows[i];
    out[i] = to_row_choice(choose_token(logits.subspan(p * vocab, vocab), out[i].stats, choice, request.rng,
                                        request.sequence, request.step, p, scratch));
  }
}

}  // namespace mdlm
