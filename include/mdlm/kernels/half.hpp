// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! 16-bit logit formats as models emit them: bfloat16 (LLaDA, Dream checkpoints) and IEEE binary16.
//! Each is a plain aggregate holding the raw bit pattern, so a buffer of `std::uint16_t` bits from a
//! backend maps to a distinct C++ type per format and overloads cannot mix them up.

#include <bit>
#include <cstdint>

namespace mdlm {

//! A bfloat16 number as its 16 bits: the upper half of an IEEE binary32 (8 exponent bits, 7 mantissa
//! bits). Converts to `float` exactly.
struct bf16 {
  std::uint16_t bits = 0;  //!< the raw bit pattern

  //! The exact float value (NaN and infinities keep their class).
  [[nodiscard]] constexpr float to_float() const noexcept {
    return std::bit_cast<float>(static_cast<std::uint32_t>(bits) << 16);
  }
  //! Implicit conversion: bf16 is a number type.
  constexpr operator float() const noexcept { return to_float(); }  // NOLINT(google-explicit-constructor)

  //! The bf16 nearest to `x` (round to nearest, ties to even); NaN stays NaN (quiet).
  [[nodiscard]] static constexpr bf16 from_float(float x) noexcept {
    const std::uint32_t u = std::bit_cast<std::uint32_t>(x);
    if ((u & 0x7fffffffu) > 0x7f800000u) return bf16{static_cast<std::uint16_t>((u >> 16) | 0x0040u)};
    const std::uint32_t rounded = u + 0x7fffu + ((u >> 16) & 1u);
    return bf16{static_cast<std::uint16_t>(rounded >> 16)};
  }
  friend constexpr bool operator==(bf16, bf16) = default;
};

//! An IEEE 754 binary16 number as its 16 bits (5 exponent bits, 10 mantissa bits, subnormals).
//! Converts to `float` exactly.
struct fp16 {
  std::uint16_t bits = 0;  //!< the raw bit pattern

  //! The exact float value (subnormals, infinities and NaN included).
  [[nodiscard]] constexpr float to_float() const noexcept {
    const std::uint32_t h = bits;
    const std::uint32_t sign = (h & 0x8000u) << 16;
    const std::uint32_t em = h & 0x7fffu;
    const std::uint32_t exp = em & 0x7c00u;
    std::uint32_t out;
    if (exp == 0x7c00u) {
      out = (em << 13) + (224u << 23);  // infinity / NaN: exponent 31 -> 255
    } else if (exp == 0) {
      // Zero or subnormal m * 2^-24: place m under the exponent of 2^-14 and subtract 2^-14, which
      // renormalises exactly.
      const float v = std::bit_cast<float>((em << 13) + (113u << 23)) - std::bit_cast<float>(113u << 23);
      out = std::bit_cast<std::uint32_t>(v);
    } else {
      out = (em << 13) + (112u << 23);  // rebias the exponent from 15 to 127
    }
    return std::bit_cast<float>(out | sign);
  }
  //! Implicit conversion: fp16 is a number type.
  constexpr operator float() const noexcept { return to_float(); }  // NOLINT(google-explicit-constructor)

  //! The binary16 nearest to `x` (round to nearest, ties to even; overflow to infinity; NaN stays NaN).
  [[nodiscard]] static constexpr fp16 from_float(float x) noexcept {
    const std::uint32_t u = std::bit_cast<std::uint32_t>(x);
    const std::uint16_t sign = static_cast<std::uint16_t>((u >> 16) & 0x8000u);
    const std::uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return fp16{static_cast<std::uint16_t>(sign | 0x7e00u)};
    if (a >= 0x477ff000u) return fp16{static_cast<std::uint16_t>(sign | 0x7c00u)};  // >= 65520 rounds to inf
    if (a < 0x38800000u) {
      // Result is subnormal (or zero): scale by 2^24 in float arithmetic, which rounds to nearest even.
      const float scaled = std::bit_cast<float>(a) * 16777216.0f;
      const auto m = static_cast<std::uint32_t>(scaled);
      const float frac = scaled - static_cast<float>(m);
      std::uint32_t r = m;
      if (frac > 0.5f || (frac == 0.5f && (m & 1u))) ++r;
      return fp16{static_cast<std::uint16_t>(sign | r)};
    }
    const std::uint32_t rebased = a - (112u << 23);
    const std::uint32_t rounded = rebased + 0xfffu + ((rebased >> 13) & 1u);
    return fp16{static_cast<std::uint16_t>(sign | (rounded >> 13))};
  }
  friend constexpr bool operator==(fp16, fp16) = default;
};

static_assert(sizeof(bf16) == 2 && sizeof(fp16) == 2, "16-bit logit types must have no padding");

}  // namespace mdlm
