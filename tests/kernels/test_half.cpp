// SPDX-License-Identifier: MIT
// 16-bit logit formats (kernels/half.hpp): exhaustive exactness of the conversions to float, correct
// rounding of the conversions from float, and exactness of every kernel variant's vector widening.
#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <span>
#include <vector>

#include "mdlm/kernels/batched_stats.hpp"
#include "mdlm/kernels/half.hpp"

namespace {

//! The value of a binary floating-point pattern with `e_bits` exponent and `m_bits` mantissa bits,
//! from the IEEE definition in double (exact for both formats); NaN for NaN patterns.
double decode_bits(std::uint32_t bits, int e_bits, int m_bits) {
  const std::uint32_t m = bits & ((1u << m_bits) - 1u);
  const std::uint32_t e = (bits >> m_bits) & ((1u << e_bits) - 1u);
  const bool neg = (bits >> (m_bits + e_bits)) & 1u;
  const int bias = (1 << (e_bits - 1)) - 1;
  double v;
  if (e == (1u << e_bits) - 1u) v = m == 0 ? std::numeric_limits<double>::infinity() : std::nan("");
  else if (e == 0) v = std::ldexp(static_cast<double>(m), 1 - bias - m_bits);
  else v = std::ldexp(static_cast<double>(m + (1u << m_bits)), static_cast<int>(e) - bias - m_bits);
  return neg ? -v : v;
}

template <class H>
void check_round_to_nearest_even(float x, H r) {
  const float fr = r.to_float();
  INFO("x = " << x << " rounded bits " << r.bits);
  if (std::isinf(fr)) {
    // Overflow only for |x| at or beyond the midpoint above the largest finite value.
    const H largest{static_cast<std::uint16_t>((r.bits & 0x8000u) | (std::is_same_v<H, mdlm::fp16> ? 0x7bffu : 0x7f7fu))};
    const H below{static_cast<std::uint16_t>(largest.bits - 1u)};
    const double step = static_cast<double>(largest.to_float()) - static_cast<double>(below.to_float());
    CHECK(std::fabs(static_cast<double>(x)) >= std::fabs(static_cast<double>(largest.to_float())) + step / 2);
    return;
  }
  REQUIRE(std::signbit(fr) == std::signbit(x));
  const double d = std::fabs(static_cast<double>(x) - static_cast<double>(fr));
  for (int dir : {-1, 1}) {
    const int nb = static_cast<int>(r.bits & 0x7fffu) + dir;
    if (nb < 0) continue;
    const H n{static_cast<std::uint16_t>((r.bits & 0x8000u) | static_cast<std::uint32_t>(nb))};
    const float fn = n.to_float();
    if (std::isnan(fn) || std::isinf(fn)) continue;
    const double dn = std::fabs(static_cast<double>(x) - static_cast<double>(fn));
    CHECK(d <= dn);
    if (d == dn) CHECK((r.bits & 1u) == 0u);  // ties to even
  }
}

template <class H>
void check_vector_widening() {
  // One finite entry among -inf: its log-normalizer is the entry's value exactly, so every kernel's
  // widening of every bit pattern is checked bit for bit.
  const std::size_t v = 24;
  std::vector<H> matrix(65536 * v, H{static_cast<std::uint16_t>(std::is_same_v<H, mdlm::fp16> ? 0xfc00u : 0xff80u)});
  std::vector<std::size_t> rows(65536);
  for (std::uint32_t b = 0; b < 65536; ++b) {
    matrix[b * v + b % v] = H{static_cast<std::uint16_t>(b)};
    rows[b] = b;
  }
  for (auto isa : {mdlm::simd_isa::scalar, mdlm::simd_isa::baseline, mdlm::simd_isa::avx2, mdlm::simd_isa::avx512}) {
    if (!mdlm::isa_supported(isa)) continue;
    std::vector<mdlm::logit_stats> out(rows.size());
    mdlm::batched_logit_stats(std::span<const H>(matrix), v, std::span<const std::size_t>(rows),
                              std::span<mdlm::logit_stats>(out), nullptr, isa);
    std::size_t wrong = 0;
    for (std::uint32_t b = 0; b < 65536; ++b) {
      const float f = H{static_cast<std::uint16_t>(b)}.to_float();
      const bool finite = std::isfinite(f) || f == -std::numeric_limits<float>::infinity();
      const bool expect_valid = std::isfinite(f);
      if (out[b].valid != expect_valid) ++wrong;
      else if (expect_valid && (out[b].log_normalizer != static_cast<double>(f) || out[b].top1 != static_cast<int>(b % v)))
        ++wrong;
      (void)finite;
    }
    INFO("isa " << mdlm::to_string(isa));
    CHECK(wrong == 0);
  }
}

}  // namespace

TEST_CASE("bf16 and fp16 convert to float exactly, all 65536 patterns", "[kernels][half]") {
  std::size_t bad_bf = 0, bad_h = 0;
  for (std::uint32_t b = 0; b < 65536; ++b) {
    const auto bits = static_cast<std::uint16_t>(b);
    const double want_bf = decode_bits(b, 8, 7);
    const double got_bf = mdlm::bf16{bits}.to_float();
    if (!(got_bf == want_bf || (std::isnan(got_bf) && std::isnan(want_bf)))) ++bad_bf;
    const double want_h = decode_bits(b, 5, 10);
    const double got_h = mdlm::fp16{bits}.to_float();
    if (!(got_h == want_h || (std::isnan(got_h) && std::isnan(want_h)))) ++bad_h;
    if (std::signbit(got_h) != std::signbit(want_h) && !std::isnan(want_h)) ++bad_h;
    // Round trip of every non-NaN pattern.
    if (!std::isnan(want_bf) && mdlm::bf16::from_float(mdlm::bf16{bits}.to_float()).bits != bits) ++bad_bf;
    if (!std::isnan(want_h) && mdlm::fp16::from_float(mdlm::fp16{bits}.to_float()).bits != bits) ++bad_h;
    if (std::isnan(want_h)) CHECK(std::isnan(mdlm::fp16::from_float(mdlm::fp16{bits}.to_float()).to_float()));
    if (std::isnan(want_bf)) CHECK(std::isnan(mdlm::bf16::from_float(mdlm::bf16{bits}.to_float()).to_float()));
  }
  CHECK(bad_bf == 0);
  CHECK(bad_h == 0);
}

TEST_CASE("float to bf16 / fp16 rounds to nearest, ties to even", "[kernels][half]") {
  std::mt19937 gen(123);
  std::uniform_int_distribution<std::uint32_t> any_bits;
  for (int i = 0; i < 200000; ++i) {
    float x = std::bit_cast<float>(any_bits(gen));
    if (std::isnan(x)) continue;
    check_round_to_nearest_even(x, mdlm::bf16::from_float(x));
    // Bring the magnitude into binary16's range (incl. subnormals and overflow) half of the time.
    if (i % 2 == 0) x = std::ldexp(std::fmod(x, 1.0f) + 0.5f, static_cast<int>(any_bits(gen) % 44) - 28);
    check_round_to_nearest_even(x, mdlm::fp16::from_float(x));
  }
  // Exact midpoints: 1 + 2^-11 lies halfway between 1 and the next binary16, rounds to even (1).
  CHECK(mdlm::fp16::from_float(1.0f + 0x1p-11f).bits == 0x3c00u);
  CHECK(mdlm::fp16::from_float(1.0f + 3 * 0x1p-11f).bits == 0x3c02u);
  CHECK(mdlm::fp16::from_float(65520.0f).bits == 0x7c00u);
  CHECK(mdlm::fp16::from_float(65519.0f).bits == 0x7bffu);
  CHECK(mdlm::fp16::from_float(0x1p-25f).bits == 0x0000u);            // halfway to the least subnormal: even (0)
  CHECK(mdlm::fp16::from_float(0x1p-25f * 1.0001f).bits == 0x0001u);
  CHECK(mdlm::bf16::from_float(1.0f + 0x1p-8f).bits == 0x3f80u);
  CHECK(mdlm::bf16::from_float(1.0f + 3 * 0x1p-8f).bits == 0x3f82u);
}

TEST_CASE("every kernel variant widens all 65536 bf16 and fp16 patterns exactly", "[kernels][half]") {
  check_vector_widening<mdlm::bf16>();
  check_vector_widening<mdlm::fp16>();
}
