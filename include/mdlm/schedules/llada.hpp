// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! LLaDA's per-block unmasking schedule (`get_num_transfer_tokens`, ML-GSAI/LLaDA generate.py).

#include <cstddef>
#include <span>

namespace mdlm {

//! Number of tokens LLaDA unmasks at step `step` (0-based) of a block that had `masked` masks when
//! it started and is decoded in `steps` steps: floor(M/S), plus one for the first M mod S steps (the
//! remainder goes to the EARLIEST steps). Sums to M over the S steps; a step gets 0 only if M < S.
//! Precondition: steps > 0 and step < steps (returns 0 otherwise).
[[nodiscard]] constexpr std::size_t llada_transfer_count(std::size_t masked, std::size_t steps,
                                                         std::size_t step) noexcept {
  if (steps == 0 || step >= steps) return 0;
  return masked / steps + (step < masked % steps ? 1 : 0);
}

//! Fills `out` (size = steps) with every step's count of `llada_transfer_count`.
constexpr void llada_num_transfer_tokens(std::size_t masked, std::span<std::size_t> out) noexcept {
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = llada_transfer_count(masked, out.size(), i);
}

}  // namespace mdlm
