// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! `mdlm::reference::joint_table`: an explicit joint distribution over V^L sequences, the exact
//! masked diffusion model on which the paper's bounds (arXiv 2510.19990, eq. 3 and eq. 5) are checked
//! to machine precision.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include <xtensor/xarray.hpp>

#include "mdlm/concepts.hpp"
#include "mdlm/reference/detail/model_support.hpp"
#include "mdlm/reference/random.hpp"
#include "mdlm/rng.hpp"
#include "mdlm/types.hpp"

namespace mdlm::reference {

//! An explicit joint distribution p(x_0, ..., x_{L-1}) over sequences of length L on V symbols,
//! stored as an L-dimensional `xt::xarray<double>` of shape (V, ..., V).
//!
//! As a masked diffusion model its vocabulary has V + 1 ids: 0..V-1 are the symbols and id V is the
//! mask token. `logits` returns the exact conditionals p(x_i = v | every non-mask token) at every
//! masked position; the mask token's logit is always `-inf`.
//!
//! Cost: a query enumerates the V^m completions of the m masked positions consistent with the
//! evidence, O(m V^m), so tables are limited to `max_entries` = 2^22 entries (32 MiB of doubles).
//! All members are const and the object is immutable after construction, so concurrent queries from
//! several threads are safe.
class joint_table {
 public:
  //! Largest table the class accepts: V^L <= 2^22 entries.
  static constexpr std::size_t max_entries = std::size_t{1} << 22;

  //! A table from explicit weights.
  //! @param vocab          V >= 1 symbols (the mask token gets id V).
  //! @param length         L >= 1 positions.
  //! @param probabilities  V^L non-negative finite weights, row-major with position 0 the most
  //!                       significant digit: entry sum_i x_i V^(L-1-i) is the weight of x. Zeros are
  //!                       allowed. The weights are divided by their sum, so they need not be
  //!                       normalised (counts work); the sum must be positive.
  //! @throws std::invalid_argument naming the bad value: vocab or length 0, V^L > `max_entries`,
  //!         the wrong number of weights, a negative / NaN / infinite weight, or all weights 0.
  joint_table(std::size_t vocab, std::size_t length, std::span<const double> probabilities)
      : vocab_{vocab}, length_{length} {
    detail::require(vocab >= 1, "joint_table: vocab = ", vocab, " must be >= 1");
    detail::require(length >= 1, "joint_table: length = ", length, " must be >= 1");
    const std::size_t entries = checked_entries(vocab, length);
    detail::require(probabilities.size() == entries, "joint_table: probabilities.size() = ",
                    probabilities.size(), " must equal vocab^length = ", vocab, "^", length, " = ", entries);
    detail::validate_nonnegative("joint_table", "probabilities", probabilities);
    double sum = 0.0;
    for (double p : probabilities) sum += p;
    detail::require(sum > 0.0, "joint_table: the probabilities sum to ", sum, "; at least one must be > 0");

    table_ = xt::xarray<double>::from_shape(std::vector<std::size_t>(length, vocab));
    double* data = table_.data();
    for (std::size_t k = 0; k < entries; ++k) data[k] = probabilities[k] / sum;
    strides_.assign(length, 1);
    for (std::size_t i = length - 1; i > 0; --i) strides_[i - 1] = strides_[i] * vocab;
  }

  //! A random table drawn from the symmetric Dirichlet(alpha) over the V^L entries: alpha = 0.1
  //! gives peaked joints (strong dependence between positions), alpha = 10 nearly uniform ones.
  //! Deterministic in `seed` on every platform (own Gamma sampler on `mdlm::sequential_rng`, stream
  //! `rng_stream::model`, sequence 0).
  //! @throws std::invalid_argument for the size errors of the constructor or alpha not finite > 0.
  [[nodiscard]] static joint_table random(std::size_t vocab, std::size_t length, double alpha, std::uint64_t seed) {
    detail::require(vocab >= 1, "joint_table::random: vocab = ", vocab, " must be >= 1");
    detail::require(length >= 1, "joint_table::random: length = ", length, " must be >= 1");
    const std::size_t entries = checked_entries(vocab, length);
    detail::require(std::isfinite(alpha) && alpha > 0.0, "joint_table::random: alpha = ", alpha,
                    " must be finite and > 0");
    sequential_rng rng{seed, rng_stream::model, 0};
    const std::vector<double> p = sample_dirichlet(entries, alpha, rng);
    return joint_table{vocab, length, p};
  }

  //! Logit row width V + 1 (symbols 0..V-1 plus the mask token).
  [[nodiscard]] std::size_t vocab_size() const noexcept { return vocab_ + 1; }
  //! Number of symbols V.
  [[nodiscard]] std::size_t base_vocab() const noexcept { return vocab_; }
  //! The mask token, id V.
  [[nodiscard]] token_id mask_token() const noexcept { return static_cast<token_id>(vocab_); }
  //! Sequence length L.
  [[nodiscard]] std::size_t length() const noexcept { return length_; }
  //! The normalised table, shape (V, ..., V) with L axes.
  [[nodiscard]] const xt::xarray<double>& table() const noexcept { return table_; }

  //! Exact conditional logits: `out[i*(V+1) + v] = log p(x_i = v | non-mask tokens)` for masked i and
  //! v < V; entry V (the mask) is `-inf`. Rows of unmasked positions hold the log one-hot of their
  //! token. If the evidence has probability 0, every masked row is all `-inf` (which
  //! `compute_logit_stats` reports as invalid).
  //! @throws std::invalid_argument if `tokens.size() != L`, an id is outside [0, V], or
  //!         `out.size() != L * (V+1)`.
  void logits(std::span<const token_id> tokens, std::span<float> out) const { fill_logits(tokens, out); }
  //! Same as the float overload, in double precision (`ExactConditionalModel`).
  void logits(std::span<const token_id> tokens, std::span<double> out) const { fill_logits(tokens, out); }

  //! `batch` sequences of length L at `tokens[b*L .. (b+1)*L)`, rows written to
  //! `out[(b*L + i)*(V+1) + v]`; each sequence's rows equal what `logits` returns for it alone.
  //! @throws std::invalid_argument if `tokens.size() != batch * L` or `out.size() != batch*L*(V+1)`.
  void batch_logits(std::span<const token_id> tokens, std::size_t batch, std::span<float> out) const {
    fill_batch(tokens, batch, out);
  }
  //! Double-precision batch overload.
  void batch_logits(std::span<const token_id> tokens, std::size_t batch, std::span<double> out) const {
    fill_batch(tokens, batch, out);
  }

  //! p(x) of a full sequence (no mask tokens).
  //! @throws std::invalid_argument if `sequence.size() != L` or an id is outside [0, V).
  [[nodiscard]] double probability(std::span<const token_id> sequence) const {
    detail::validate_sequence("joint_table", sequence, length_, vocab_);
    std::size_t index = 0;
    for (std::size_t i = 0; i < length_; ++i) index += static_cast<std::size_t>(sequence[i]) * strides_[i];
    return table_.data()[index];
  }

  //! log p(x) of a full sequence (`-inf` for probability 0).
  [[nodiscard]] double log_probability(std::span<const token_id> sequence) const {
    return std::log(probability(sequence));
  }

  //! log p(observed tokens): the log of the total probability of the sequences that agree with every
  //! non-mask token (masked positions marginalised). `-inf` when the evidence is impossible.
  [[nodiscard]] double log_evidence(std::span<const token_id> tokens) const {
    detail::validate_tokens("joint_table", tokens, length_, vocab_);
    double total = 0.0;
    for_each_completion(tokens, [&](std::size_t index, std::span<const std::size_t>) { total += table_.data()[index]; });
    return std::log(total);
  }

  //! The exact joint p(x_A | s) of the masked positions A = `positions` (in the given order) given
  //! the non-mask tokens s of `tokens`; masked positions outside A are marginalised. Shape (V, ..., V)
  //! with |A| axes, axis k for `positions[k]`; an empty A gives a 0-dimensional array holding 1.
  //! @throws std::invalid_argument for invalid `tokens`, a position out of range, unmasked or
  //!         repeated, or evidence of probability 0.
  [[nodiscard]] xt::xarray<double> conditional_joint(std::span<const token_id> tokens,
                                                     std::span<const std::size_t> positions) const {
    detail::validate_tokens("joint_table", tokens, length_, vocab_);
    detail::validate_positions("joint_table", tokens, positions, mask_token());
    const std::size_t m = positions.size();
    // Stride of each position in the output (row-major over the given order); 0 for positions not in A.
    std::vector<std::size_t> out_stride(length_, 0);
    std::size_t s = 1;
    for (std::size_t k = m; k > 0; --k) {
      out_stride[positions[k - 1]] = s;
      s *= vocab_;
    }
    const std::vector<std::size_t> masked = masked_positions(tokens);
    xt::xarray<double> out = xt::xarray<double>::from_shape(std::vector<std::size_t>(m, vocab_));
    std::fill(out.begin(), out.end(), 0.0);
    double* o = out.data();
    double total = 0.0;
    for_each_completion(tokens, [&](std::size_t index, std::span<const std::size_t> digits) {
      const double p = table_.data()[index];
      if (p == 0.0) return;
      std::size_t j = 0;
      for (std::size_t k = 0; k < masked.size(); ++k) j += digits[k] * out_stride[masked[k]];
      o[j] += p;
      total += p;
    });
    detail::require(total > 0.0, "joint_table: the evidence has probability ", total,
                    "; conditionals are undefined");
    for (auto& x : out) x /= total;
    return out;
  }

  //! The marginal p(x_position | s) (size V) of one masked position.
  //! @throws std::invalid_argument as `conditional_joint`.
  [[nodiscard]] std::vector<double> conditional(std::span<const token_id> tokens, std::size_t position) const {
    const std::size_t positions[1] = {position};
    const xt::xarray<double> j = conditional_joint(tokens, positions);
    return std::vector<double>(j.begin(), j.end());
  }

 private:
  static std::size_t checked_entries(std::size_t vocab, std::size_t length) {
    std::size_t entries = 1;
    for (std::size_t i = 0; i < length; ++i) {
      // Checked before multiplying, so the product never overflows.
      detail::require(entries <= max_entries / vocab, "joint_table: vocab^length = ", vocab, "^", length,
                      " exceeds max_entries = ", max_entries);
      entries *= vocab;
    }
    return entries;
  }

  [[nodiscard]] std::vector<std::size_t> masked_positions(std::span<const token_id> tokens) const {
    std::vector<std::size_t> masked;
    for (std::size_t i = 0; i < length_; ++i)
      if (tokens[i] == mask_token()) masked.push_back(i);
    return masked;
  }

  //! Calls f(flat_index, digits) for every full sequence that agrees with the non-mask tokens, where
  //! digits[k] is the symbol at the k-th masked position. Odometer over the masked positions; the flat
  //! index is updated incrementally.
  template <class F>
  void for_each_completion(std::span<const token_id> tokens, F&& f) const {
    const std::vector<std::size_t> masked = masked_positions(tokens);
    std::size_t index = 0;
    for (std::size_t i = 0; i < length_; ++i)
      if (tokens[i] != mask_token()) index += static_cast<std::size_t>(tokens[i]) * strides_[i];
    std::vector<std::size_t> digits(masked.size(), 0);
    for (;;) {
      f(index, std::span<const std::size_t>{digits});
      std::size_t k = masked.size();
      bool advanced = false;
      while (k > 0) {
        --k;
        const std::size_t st = strides_[masked[k]];
        if (digits[k] + 1 < vocab_) {
          ++digits[k];
          index += st;
          advanced = true;
          break;
        }
        index -= digits[k] * st;
        digits[k] = 0;
      }
      if (!advanced) return;
    }
  }

  template <class Real>
  void fill_logits(std::span<const token_id> tokens, std::span<Real> out) const {
    detail::validate_tokens("joint_table", tokens, length_, vocab_);
    const std::size_t width = vocab_size();
    detail::validate_output("joint_table", out.size(), length_, width);
    const std::vector<std::size_t> masked = masked_positions(tokens);
    std::vector<double> marginal(masked.size() * vocab_, 0.0);
    double total = 0.0;
    for_each_completion(tokens, [&](std::size_t index, std::span<const std::size_t> digits) {
      const double p = table_.data()[index];
      if (p == 0.0) return;
      total += p;
      for (std::size_t k = 0; k < masked.size(); ++k) marginal[k * vocab_ + digits[k]] += p;
    });
    std::size_t k = 0;
    for (std::size_t i = 0; i < length_; ++i) {
      const auto row = out.subspan(i * width, width);
      if (tokens[i] != mask_token()) {
        detail::write_one_hot_row(row, tokens[i]);
        continue;
      }
      for (std::size_t v = 0; v < vocab_; ++v) {
        // total == 0 (impossible evidence) gives log(0) = -inf for every entry: an all -inf row.
        const double p = total > 0.0 ? marginal[k * vocab_ + v] / total : 0.0;
        row[v] = static_cast<Real>(std::log(p));
      }
      row[vocab_] = -std::numeric_limits<Real>::infinity();
      ++k;
    }
  }

  template <class Real>
  void fill_batch(std::span<const token_id> tokens, std::size_t batch, std::span<Real> out) const {
    const std::size_t width = vocab_size();
    detail::require(tokens.size() == batch * length_, "joint_table: tokens.size() = ", tokens.size(),
                    " must equal batch ", batch, " * length ", length_, " = ", batch * length_);
    detail::validate_output("joint_table", out.size(), batch * length_, width);
    for (std::size_t b = 0; b < batch; ++b)
      fill_logits(tokens.subspan(b * length_, length_), out.subspan(b * length_ * width, length_ * width));
  }

  std::size_t vocab_;
  std::size_t length_;
  xt::xarray<double> table_;
  std::vector<std::size_t> strides_;  // strides_[i] = V^(L-1-i), the weight of position i in the flat index
};

static_assert(check_conditional_model<joint_table>());
static_assert(ConditionalModel<joint_table> && BatchedConditionalModel<joint_table> &&
              ExactConditionalModel<joint_table>);

}  // namespace mdlm::reference
