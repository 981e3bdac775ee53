// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! KL divergence of a position's distribution to the one it had at the previous model call: the
//! quantity KLASS (policies/klass.hpp) thresholds, in one definition that the policy (reading logit
//! rows) and the models of the row-statistics interface (row_model.hpp, `row_request::kl`) share,
//! so that both interfaces take identical decisions.
//!
//!     KL_t(l) = sum_v p_t(v) log((p_t(v) + 1e-12) / (p_{t-1}(v) + 1e-12)),   p_t = softmax(z_t(l)),
//!
//! with p_{-1} = 0 (so the first KL of a position is large, as in shkim0116/KLASS, where the
//! previous probabilities start as zeros). p_{t-1} is kept in float, as the reference keeps it in
//! the model's dtype; an invalid row (NaN, +inf, all -inf) has p_t = 0.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <map>
#include <vector>

#include "mdlm/detail/errors.hpp"
#include "mdlm/kernels/detail/row_common.hpp"
#include "mdlm/logit_stats.hpp"
#include "mdlm/row_model.hpp"

namespace mdlm {

//! KL_t of one row (see the file comment) against `previous` (= p_{t-1}, size V), which it then
//! overwrites with p_t. Precondition: row.size() == previous.size(). Allocation-free; two passes
//! over the row (its log-normaliser in double, then the divergence).
template <class T>
[[nodiscard]] double kl_to_previous(std::span<const T> row, std::span<float> previous) noexcept {
  const logit_stats s = detail::compute_logit_stats_impl<double>(row);  // as compute_logit_stats, any element type
  double kl = 0.0;
  for (std::size_t v = 0; v < row.size(); ++v) {
    const double p = s.valid ? std::exp(detail::element_value(row[v]) - s.log_normalizer) : 0.0;
    kl += p * std::log((p + 1e-12) / (static_cast<double>(previous[v]) + 1e-12));
    previous[v] = static_cast<float>(p);
  }
  return kl;
}

//! The previous distributions of every position of one canvas, for a model that serves
//! `row_request::kl`: `reset(length, vocab)` at a decode's first call (request.step == 0), then
//! `update(position, row)` per requested row. Memory: length x vocab floats (the size of one logit
//! matrix); allocates only in `reset` when the shape grows.
class kl_history {
 public:
  //! Forgets every previous distribution (all zero) for a canvas of `length` positions.
  void reset(std::size_t length, std::size_t vocab) {
    length_ = length;
    vocab_ = vocab;
    previous_.assign(length * vocab, 0.0f);
  }
  [[nodiscard]] std::size_t length() const noexcept { return length_; }
  [[nodiscard]] std::size_t vocab() const noexcept { return vocab_; }

  //! KL_t of `position` from its row (size vocab()), remembering p_t for the next call.
  //! @throws std::invalid_argument when position >= length() or the row size is not vocab().
  template <class T>
  double update(std::size_t position, std::span<const T> row) {
    detail::require(position < length_, "kl_history: position ", position, " outside a canvas of ", length_,
                    " positions (reset at the decode's first call)");
    detail::require(row.size() == vocab_, "kl_history: row of ", row.size(), " entries, vocabulary ", vocab_);
    return kl_to_previous(row, std::span<float>(previous_.data() + position * vocab_, vocab_));
  }

 private:
  std::size_t length_ = 0, vocab_ = 0;
  std::vector<float> previous_;
};

//! `row_request::kl` for a model that has the logit rows on the host (the CPU backend, the Python
//! bindings' callable models, test models): one `kl_history` per sequence key.
class kl_histories {
 public:
  //! When `request.kl`: `out[i].kl` = KL of row `request.rows[i]` of the L x V matrix `logits`
  //! (L = length) against the previous call's, remembering it; forgets a sequence's history at
  //! request.step == 0 or when L changes. No-op otherwise.
  template <class T>
  void fill(std::span<const T> logits, std::size_t length, std::size_t vocab, const row_request& request,
            std::span<row_choice> out) {
    if (!request.kl) return;
    kl_history& h = by_sequence_[request.sequence];
    if (request.step == 0 || h.length() != length || h.vocab() != vocab) h.reset(length, vocab);
    for (std::size_t i = 0; i < request.rows.size(); ++i)
      out[i].kl = h.update(request.rows[i], logits.subspan(request.rows[i] * vocab, vocab));
  }

 private:
  std::map<std::uint32_t, kl_history> by_sequence_;
};

}  // namespace mdlm
