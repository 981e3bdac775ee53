// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! Internals shared by the reference models: argument validation and log-space arithmetic.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <span>
#include <vector>

#include "mdlm/detail/errors.hpp"
#include "mdlm/types.hpp"

namespace mdlm::reference::detail {

using mdlm::detail::require;

inline constexpr double neg_inf = -std::numeric_limits<double>::infinity();

//! log(sum_i exp(x_i)) without overflow: subtract the maximum first. All `-inf` (or empty) gives
//! `-inf`, which is the log of an empty sum, not an error.
[[nodiscard]] inline double log_sum_exp(std::span<const double> x) noexcept {
  double m = neg_inf;
  for (double v : x) m = std::max(m, v);
  if (m == neg_inf) return neg_inf;
  double s = 0.0;
  for (double v : x) s += std::exp(v - m);
  return m + std::log(s);
}

//! log(exp(a) + exp(b)) without overflow; `-inf` is the identity.
[[nodiscard]] inline double log_add_exp(double a, double b) noexcept {
  if (a < b) std::swap(a, b);
  if (b == neg_inf) return a;
  return a + std::log1p(std::exp(b - a));
}

//! Checks a partly masked sequence: `tokens.size() == length` and every id in [0, vocab] (id `vocab`
//! is the mask token). Names the first bad value.
inline void validate_tokens(const char* model, std::span<const token_id> tokens, std::size_t length,
                            std::size_t vocab) {
  require(tokens.size() == length, model, ": tokens.size() = ", tokens.size(), " must equal length = ", length);
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    require(tokens[i] >= 0 && static_cast<std::size_t>(tokens[i]) <= vocab, model, ": tokens[", i,
            "] = ", tokens[i], " is outside the vocabulary [0, ", vocab, "] (", vocab, " is the mask token)");
  }
}

//! Checks a complete sequence: `sequence.size() == length` and every id in [0, vocab) (no masks).
inline void validate_sequence(const char* model, std::span<const token_id> sequence, std::size_t length,
                              std::size_t vocab) {
  require(sequence.size() == length, model, ": sequence.size() = ", sequence.size(),
          " must equal length = ", length);
  for (std::size_t i = 0; i < sequence.size(); ++i) {
    require(sequence[i] >= 0 && static_cast<std::size_t>(sequence[i]) < vocab, model, ": sequence[", i,
            "] = ", sequence[i], " must be a token id in [0, ", vocab, ") (no mask tokens in a full sequence)");
  }
}

//! Checks that `out` has `rows * width` entries.
inline void validate_output(const char* model, std::size_t out_size, std::size_t rows, std::size_t width) {
  require(out_size == rows * width, model, ": out.size() = ", out_size, " must equal ", rows,
          " positions * vocab_size() ", width, " = ", rows * width);
}

//! Checks that every entry of `values` is finite and >= 0, naming the first bad one as `what[i]`.
inline void validate_nonnegative(const char* model, const char* what, std::span<const double> values) {
  for (std::size_t i = 0; i < values.size(); ++i) {
    require(std::isfinite(values[i]) && values[i] >= 0.0, model, ": ", what, "[", i, "] = ", values[i],
            " must be finite and >= 0");
  }
}

//! Checks a set of positions A of a partly masked sequence: each in [0, length), masked, no repeats.
inline void validate_positions(const char* model, std::span<const token_id> tokens,
                               std::span<const std::size_t> positions, token_id mask) {
  std::vector<bool> seen(tokens.size(), false);
  for (std::size_t k = 0; k < positions.size(); ++k) {
    const std::size_t p = positions[k];
    require(p < tokens.size(), model, ": positions[", k, "] = ", p, " is out of range [0, ", tokens.size(), ")");
    require(tokens[p] == mask, model, ": positions[", k, "] = ", p, " is not masked (tokens[", p, "] = ",
            tokens[p], ")");
    require(!seen[p], model, ": positions[", k, "] = ", p, " is repeated");
    seen[p] = true;
  }
}

//! Writes the row of an unmasked position: log one-hot of `token` (0 there, `-inf` elsewhere).
template <class Real>
void write_one_hot_row(std::span<Real> row, token_id token) noexcept {
  std::fill(row.begin(), row.end(), -std::numeric_limits<Real>::infinity());
  row[static_cast<std::size_t>(token)] = Real(0);
}

}  // namespace mdlm::reference::detail
