// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! Instruction sets of the statistics kernels and their one-time runtime selection.
//!
//! Why compiler vectors and not xsimd / Highway: every header under include/mdlm/ needs only the C++
//! standard library. The kernels therefore get explicit SIMD from the compiler itself: GCC / Clang
//! vector extensions (`__attribute__((vector_size(N)))`) in code that is compiled several times,
//! once per instruction set, inside `#pragma GCC target` (GCC) or `#pragma clang attribute` (Clang)
//! regions (kernels/detail/row_kernel.hpp). The best set the CPU supports is chosen once at run time
//! with `__builtin_cpu_supports`, so users need no -march flag. Other compilers get the scalar path.

#include <cstdint>
#include <string_view>

#if (defined(__GNUC__) || defined(__clang__))
//! 1 when the compiler has GCC / Clang vector extensions (the vector kernels are compiled).
#define MDLM_KERNELS_VECTOR 1
#else
#define MDLM_KERNELS_VECTOR 0
#endif

#if MDLM_KERNELS_VECTOR && (defined(__x86_64__) || defined(_M_X64))
//! 1 when the AVX2 and AVX-512 variants are compiled (x86-64 with GCC or Clang).
#define MDLM_KERNELS_X86 1
#else
#define MDLM_KERNELS_X86 0
#endif

namespace mdlm {

//! An instruction-set variant of the statistics kernels.
enum class simd_isa : std::uint8_t {
  best = 0,  //!< the fastest variant the running CPU supports (the default)
  scalar,    //!< plain C++ in double precision, no vector code (any compiler)
  baseline,  //!< 4-lane compiler vectors for the build's baseline target (SSE2 on x86-64, NEON on ARM)
  avx2,      //!< 8-lane AVX2 + FMA (x86-64)
  avx512,    //!< 16-lane AVX-512 F/BW/DQ/VL (x86-64)
};

//! The name of an instruction-set variant ("best", "scalar", "baseline", "avx2", "avx512").
[[nodiscard]] constexpr std::string_view to_string(simd_isa isa) noexcept {
  switch (isa) {
    case simd_isa::best: return "best";
    case simd_isa::scalar: return "scalar";
    case simd_isa::baseline: return "baseline";
    case simd_isa::avx2: return "avx2";
    case simd_isa::avx512: return "avx512";
  }
  return "unknown";
}

namespace detail {

//! Probes the CPU (once; the result is cached by `detected_isa`).
[[nodiscard]] inline simd_isa probe_isa() noexcept {
#if MDLM_KERNELS_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx2") &&
      __builtin_cpu_supports("fma"))
    return simd_isa::avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return simd_isa::avx2;
  return simd_isa::baseline;
#elif MDLM_KERNELS_VECTOR
  return simd_isa::baseline;
#else
  return simd_isa::scalar;
#endif
}

}  // namespace detail

//! The best variant this CPU and build support (probed once, thread-safe).
[[nodiscard]] inline simd_isa detected_isa() noexcept {
  static const simd_isa isa = detail::probe_isa();
  return isa;
}

//! True when `isa` can run here: `best` and `scalar` always; the others when compiled in and
//! supported by the CPU.
[[nodiscard]] inline bool isa_supported(simd_isa isa) noexcept {
  const simd_isa top = detected_isa();
  switch (isa) {
    case simd_isa::best:
    case simd_isa::scalar: return true;
    case simd_isa::baseline: return top != simd_isa::scalar;
    case simd_isa::avx2: return top == simd_isa::avx2 || top == simd_isa::avx512;
    case simd_isa::avx512: return top == simd_isa::avx512;
  }
  return false;
}

//! `isa` with `best` replaced by `detected_isa()`.
[[nodiscard]] inline simd_isa resolve_isa(simd_isa isa) noexcept {
  return isa == simd_isa::best ? detected_isa() : isa;
}

}  // namespace mdlm
