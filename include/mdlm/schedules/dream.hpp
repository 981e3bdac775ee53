// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! Dream's timestep schedule (`diffusion_generate`, generation_utils.py of Dream-v0-Instruct-7B):
//! ts = linspace(1, eps, steps + 1) in float32; step i uses t = ts[i], s = ts[i + 1].

#include <cstddef>

namespace mdlm {

//! ts[i] of float32 `linspace(1, eps, steps + 1)`, reproduced with PyTorch's symmetric formula
//! (start + d*i in the first half, end - d*(n - 1 - i) in the second, d = (end - start)/(n - 1),
//! all in float) so that the counts are bit-identical to the reference.
[[nodiscard]] inline float dream_timestep(std::size_t steps, float eps, std::size_t i) noexcept {
  const std::size_t n = steps + 1;
  const float start = 1.0f, end = eps;
  const float d = (end - start) / static_cast<float>(n - 1);
  const std::size_t halfway = n / 2;
  return i < halfway ? start + d * static_cast<float>(i) : end - d * static_cast<float>(n - 1 - i);
}

//! Fraction of the masked positions Dream unmasks at step i: 1 - s/t for i < steps - 1, 1 at the
//! last step (computed in float32 as the reference does).
[[nodiscard]] inline float dream_transfer_fraction(std::size_t steps, float eps, std::size_t i) noexcept {
  if (i + 1 >= steps) return 1.0f;
  const float t = dream_timestep(steps, eps, i), s = dream_timestep(steps, eps, i + 1);
  return 1.0f - s / t;
}

//! Number of positions Dream unmasks at step i when `masked` positions are masked:
//! int(N * (1 - s/t)) (floor; may be 0, a no-op step that still costs one model call), and all N at
//! the last step. Precondition: steps > 0.
[[nodiscard]] inline std::size_t dream_transfer_count(std::size_t masked, std::size_t steps, float eps,
                                                      std::size_t i) noexcept {
  if (i + 1 >= steps) return masked;
  const float k = static_cast<float>(masked) * dream_transfer_fraction(steps, eps, i);
  return static_cast<std::size_t>(k);
}

}  // namespace mdlm
