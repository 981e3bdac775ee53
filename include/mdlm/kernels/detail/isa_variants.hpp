// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! Compiles the vector row kernel (row_kernel.hpp) once per instruction set and selects one at run
//! time. GCC gets `#pragma GCC target` regions, Clang `#pragma clang attribute` regions; both apply
//! the target to every function defined inside (templates included), so the same source becomes
//! AVX-512, AVX2 + FMA and baseline code. Every header the kernel uses is included first, outside the
//! regions, so that no standard-library function is compiled for a wider target than the build's.

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <type_traits>

#include "mdlm/kernels/detail/row_common.hpp"
#include "mdlm/kernels/half.hpp"
#include "mdlm/kernels/simd.hpp"

#if MDLM_KERNELS_X86
// The compiler's own x86 intrinsics header (not a library): one pmuludq for Philox (row_kernel.hpp).
#include <immintrin.h>
#endif

#if MDLM_KERNELS_VECTOR

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
// Vectors wider than the baseline ABI never cross a function boundary compiled for another target.
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

#define MDLM_DETAIL_KERNEL_NS isa_baseline
#define MDLM_DETAIL_KERNEL_WIDTH 4
#include "mdlm/kernels/detail/row_kernel.hpp"
#undef MDLM_DETAIL_KERNEL_NS
#undef MDLM_DETAIL_KERNEL_WIDTH

#if MDLM_KERNELS_X86

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,bmi,bmi2,popcnt,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,bmi,bmi2,popcnt,f16c")
#endif
#define MDLM_DETAIL_KERNEL_NS isa_avx2
#define MDLM_DETAIL_KERNEL_WIDTH 8
#include "mdlm/kernels/detail/row_kernel.hpp"
#undef MDLM_DETAIL_KERNEL_NS
#undef MDLM_DETAIL_KERNEL_WIDTH
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,bmi,bmi2,popcnt,f16c"))), \
                             apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,bmi,bmi2,popcnt,f16c")
#endif
#define MDLM_DETAIL_KERNEL_NS isa_avx512
#define MDLM_DETAIL_KERNEL_WIDTH 16
#include "mdlm/kernels/detail/row_kernel.hpp"
#undef MDLM_DETAIL_KERNEL_NS
#undef MDLM_DETAIL_KERNEL_WIDTH
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#endif  // MDLM_KERNELS_X86

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#endif  // MDLM_KERNELS_VECTOR

namespace mdlm::detail {

//! Rows [begin, end) of a job with the scalar path.
template <class T>
void scalar_rows(const row_job& job, std::size_t begin, std::size_t end) noexcept {
  const T* base = static_cast<const T*>(job.logits);
  for (std::size_t i = begin; i < end; ++i) {
    const std::size_t r = job.rows[i];
    store_result(job, i, scalar_row(base + r * job.vocab, job.vocab, job, position_of(job, r)));
  }
}

//! The per-row entry point of one instruction set and element type.
using rows_fn = void (*)(const row_job&, std::size_t, std::size_t) noexcept;

//! The entry point for `isa` (already resolved and supported) and element type T.
template <class T>
[[nodiscard]] rows_fn rows_function(simd_isa isa) noexcept {
  switch (isa) {
#if MDLM_KERNELS_X86
    case simd_isa::avx512: return &isa_avx512::process_rows<T>;
    case simd_isa::avx2: return &isa_avx2::process_rows<T>;
#endif
#if MDLM_KERNELS_VECTOR
    case simd_isa::baseline: return &isa_baseline::process_rows<T>;
#endif
    default: return &scalar_rows<T>;
  }
}

//! The position-uniform entry point of one instruction set.
using uniforms_fn = void (*)(const position_uniform_job&, double*) noexcept;

inline void scalar_position_uniforms(const position_uniform_job& job, double* out) noexcept {
  for (std::size_t i = 0; i < job.n; ++i) out[i] = scalar_position_uniform(job, i);
}

//! out[i] = rng.uniform2(stream, sequence, step, position_i, 0)[half] for the n positions
//! (std::size_t) at positions + i * stride bytes (the `position` members of an array of
//! position_info, say), bit for bit,
//! with the widest Philox variant this CPU runs (detected_isa): the random scores of the policies
//! (fixed_count `random` and `alg_temp`, Dream `origin`) without one scalar Philox call each.
inline void position_uniforms(const counter_rng& rng, rng_stream stream, std::uint32_t sequence, std::uint32_t step,
                              const std::byte* positions, std::size_t stride, std::size_t n, unsigned half,
                              double* out) noexcept {
  position_uniform_job job;
  const std::uint64_t k = splitmix64(rng.seed ^ (0xA5A5A5A5ull * (static_cast<std::uint64_t>(stream) + 1)));
  for (std::uint32_t r = 0; r < 10; ++r) {
    job.keys[2 * r] = static_cast<std::uint32_t>(k) + r * 0x9E3779B9u;
    job.keys[2 * r + 1] = static_cast<std::uint32_t>(k >> 32) + r * 0xBB67AE85u;
  }
  job.rng = rng;
  job.stream = stream;
  job.sequence = sequence;
  job.step = step;
  job.positions = positions;
  job.stride = stride;
  job.n = n;
  job.half = half;
  uniforms_fn f = &scalar_position_uniforms;
  switch (detected_isa()) {
#if MDLM_KERNELS_X86
    case simd_isa::avx512: f = &isa_avx512::position_uniforms; break;
    case simd_isa::avx2: f = &isa_avx2::position_uniforms; break;
#endif
#if MDLM_KERNELS_VECTOR
    case simd_isa::baseline: f = &isa_baseline::position_uniforms; break;
#endif
    default: break;
  }
  f(job, out);
}

}  // namespace mdlm::detail
