// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! The sampled token's definition: a two-level (hierarchical) Gumbel-max draw from softmax(y) over
//! the tempered, filtered values y_v = z_v / T of one row, shared by every code path that samples
//! (token_choice.hpp, the row kernels of kernels/batched_stats.hpp and the CUDA backend).
//!
//! The row is cut into blocks of `gumbel_block` entries, b = v / gumbel_block. With y* = max_v y_v,
//!   l_b  = log sum_{v in b, y_v > -inf} exp(y_v - y*)       (the block's log-mass, a double sum in
//!                                                             index order)
//!   b*   = argmax_b  l_b - log(-log U_b)                      (U_b = counter_rng::uniform(token,
//!                                                             sequence, step, position, 2^31 + b))
//!   x0   = argmax_{v in b*}  y_v - log(-log U_v)              (U_v = counter_rng::uniform(token,
//!                                                             sequence, step, position, v))
//! with ties to the lower index. Both levels are Gumbel-max draws: b* ~ softmax(l), i.e.
//! P(b*) = sum_{v in b*} exp(y_v) / sum_v exp(y_v), and given b*, x0 ~ softmax(y) restricted to b*, so
//! P(x0 = v) = exp(y_v) / sum_u exp(y_u) exactly (up to the double rounding of l_b and of the keys):
//! the same distribution as the one-level Gumbel-max of LLaDA's `add_gumbel_noise`
//! (shared/spec/samplers.md section 5.1), drawn with one uniform per block plus the uniforms of one
//! block instead of one per entry. A fast path needs the exact l_b only where two blocks' keys are
//! within its own error of each other (kernels/detail/row_kernel.hpp); every path then chooses the
//! same token. Preconditions: the row has fewer than 2^31 entries (the block counters 2^31 + b
//! start above every entry's counter) and at least one finite value. When y* is +inf (z / T
//! overflowed for a tiny T, the limit T -> 0) the token is the lowest index with y_v = +inf.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "mdlm/rng.hpp"
#include "mdlm/types.hpp"

namespace mdlm::detail {

//! Entries per block of the two-level draw; also the block size of the vector row kernels.
inline constexpr std::size_t gumbel_block = 1024;

//! The counter index of block b's uniform: above 2^31, clear of the entries' indices.
[[nodiscard]] constexpr std::uint32_t block_uniform_index(std::size_t b) noexcept {
  return 0x80000000u + static_cast<std::uint32_t>(b);
}

//! Where the random numbers of one row come from.
struct gumbel_keying {
  counter_rng rng{};
  std::uint32_t sequence = 0, step = 0, position = 0;
};

//! The Gumbel value -log(-log U_b) of block b.
[[nodiscard]] inline double block_noise(const gumbel_keying& k, std::size_t b) noexcept {
  return -std::log(-std::log(k.rng.uniform(rng_stream::token, k.sequence, k.step, k.position,
                                           block_uniform_index(b))));
}

//! l_b = log sum_{v in [begin, end), y(v) > -inf} exp(y(v) - y_max), summed in index order in
//! double; -inf when the range has no finite value. `y(v)` returns the tempered value as double.
template <class Y>
[[nodiscard]] double block_log_mass(std::size_t begin, std::size_t end, double y_max, Y&& y) noexcept {
  double s = 0.0;
  for (std::size_t v = begin; v < end; ++v) {
    const double yv = y(v);
    if (yv == -std::numeric_limits<double>::infinity()) continue;
    s += std::exp(yv - y_max);
  }
  return s > 0.0 ? std::log(s) : -std::numeric_limits<double>::infinity();
}

//! argmax_{v in [begin, end)} y(v) - log(-log U_v) over the finite y(v) (ties to the lower id);
//! `begin` is even (a block start), so U_v comes in the pairs of counter_rng::uniform2.
//! no_token when the range has no finite value.
template <class Y>
[[nodiscard]] token_id block_gumbel_argmax(std::size_t begin, std::size_t end, const gumbel_keying& k,
                                           Y&& y) noexcept {
  token_id best = no_token;
  double best_key = -std::numeric_limits<double>::infinity();
  for (std::size_t v = begin; v < end; v += 2) {
    const auto u = k.rng.uniform2(rng_stream::token, k.sequence, k.step, k.position, static_cast<std::uint32_t>(v / 2));
    for (std::size_t j = 0; j < 2 && v + j < end; ++j) {
      const double yv = y(v + j);
      if (yv == -std::numeric_limits<double>::infinity()) continue;
      // The product inside y(v) is rounded once and the noise added after: no fused multiply-add
      // can merge them, so every path forms the same key.
      const double key = yv - std::log(-std::log(u[j]));
      if (best == no_token || key > best_key) {
        best_key = key;
        best = static_cast<token_id>(v + j);
      }
    }
  }
  return best;
}

//! The block b* of the two-level draw given every block's exact log-mass `l(b)`, b < blocks
//! (ties to the lower block; blocks with l = -inf never win). Returns `blocks` when none is finite.
template <class L>
[[nodiscard]] std::size_t choose_block(std::size_t blocks, const gumbel_keying& k, L&& l) noexcept {
  std::size_t best = blocks;
  double best_key = -std::numeric_limits<double>::infinity();
  for (std::size_t b = 0; b < blocks; ++b) {
    const double lb = l(b);
    if (lb == -std::numeric_limits<double>::infinity()) continue;
    const double key = lb + block_noise(k, b);
    if (best == blocks || key > best_key) {
      best_key = key;
      best = b;
    }
  }
  return best;
}

//! The sampled token of a row of n tempered values y(v) with maximum `y_max` (the definition in this
//! file's comment), in double precision: the reference every faster path reproduces.
template <class Y>
[[nodiscard]] token_id two_level_gumbel(std::size_t n, double y_max, const gumbel_keying& k, Y&& y) noexcept {
  if (y_max == std::numeric_limits<double>::infinity()) {
    for (std::size_t v = 0; v < n; ++v)
      if (y(v) == y_max) return static_cast<token_id>(v);
  }
  if (!(y_max > -std::numeric_limits<double>::infinity())) return no_token;
  const std::size_t blocks = (n + gumbel_block - 1) / gumbel_block;
  const std::size_t b = choose_block(blocks, k, [&](std::size_t i) {
    const std::size_t end = (i + 1) * gumbel_block < n ? (i + 1) * gumbel_block : n;
    return block_log_mass(i * gumbel_block, end, y_max, y);
  });
  if (b == blocks) return no_token;
  const std::size_t end = (b + 1) * gumbel_block < n ? (b + 1) * gumbel_block : n;
  return block_gumbel_argmax(b * gumbel_block, end, k, y);
}

}  // namespace mdlm::detail
