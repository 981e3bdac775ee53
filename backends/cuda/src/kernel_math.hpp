// SPDX-License-Identifier: MIT
#pragma once
// The arithmetic of the CUDA forward's kernels, as __host__ __device__ functions (C++17, no CUDA
// header): kernels.cu calls them from the device, tests/cuda/test_kernel_math.cpp and the host
// executor of tests/cuda/host_executor.hpp call them on the CPU, so the arithmetic and the index
// mapping of every kernel are tested without a GPU.
//
// bf16 values are stored as their raw 16-bit patterns (std::uint16_t; cuBLAS reads the same bits as
// CUDA_R_16BF), converted with the round-to-nearest-even rule of the CPU backend (f32_to_bf16).
// Products and sums use explicitly rounded operations (mul_rn, add_rn, fma_rn), so nvcc cannot
// contract them into FMAs that the host would not do: host and device give the same bits, except for
// expf (device: <= 2 ulp; host: glibc) in silu and softmax.
//
// Numerics follow the reference PyTorch bf16 runs (shared/spec/models.md sections 2.8, 3.7, 7):
// RMSNorm normalises in fp32, rounds to bf16, then multiplies by the bf16 weight; LLaDA's RoPE is fp32
// on bf16 q/k; Dream's RoPE is bf16 with cos/sin rounded to bf16; SiLU and the gate product round to
// bf16 like PyTorch's bf16 ops. Where mdlm deliberately differs (the residual stream stays fp32), the
// model's header says so.
#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define MDLM_HD __host__ __device__ __forceinline__
#else
#define MDLM_HD inline
#endif

namespace mdlm::cuda::math {

//! Threads per block of the row kernels (RMSNorm, softmax) and the element-wise kernels. Fixed: the
//! reduction order of a row depends on it, and the host emulation uses the same value.
inline constexpr int block_threads = 256;

// --- bit-exact scalar operations -------------------------------------------------------------------

MDLM_HD float as_float(std::uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
#endif
}

MDLM_HD std::uint32_t as_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
#endif
}

//! bf16 bits -> fp32 (exact).
MDLM_HD float bf16_to_f32(std::uint16_t b) { return as_float(static_cast<std::uint32_t>(b) << 16); }

//! fp32 -> bf16 bits, round to nearest, ties to even; NaN stays a quiet NaN (the CPU backend's rule).
MDLM_HD std::uint16_t f32_to_bf16(float x) {
  const std::uint32_t u = as_bits(x);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<std::uint16_t>((u >> 16) | 0x40u);
  return static_cast<std::uint16_t>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

//! x rounded to the nearest bf16 value, as fp32.
MDLM_HD float round_bf16(float x) { return bf16_to_f32(f32_to_bf16(x)); }

MDLM_HD float mul_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  volatile float r = a * b;  // volatile: no contraction with a neighbouring add
  return r;
#endif
}

MDLM_HD float add_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  volatile float r = a + b;
  return r;
#endif
}

MDLM_HD float fma_rn(float a, float b, float c) {
#if defined(__CUDA_ARCH__)
  return __fmaf_rn(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}

MDLM_HD float div_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fdiv_rn(a, b);
#else
  volatile float r = a / b;
  return r;
#endif
}

MDLM_HD float sqrt_rn(float a) {
#if defined(__CUDA_ARCH__)
  return __fsqrt_rn(a);
#else
  return std::sqrt(a);
#endif
}

MDLM_HD float exp_f(float a) {
#if defined(__CUDA_ARCH__)
  return expf(a);
#else
  return std::exp(a);
#endif
}

MDLM_HD float neg_inf() { return as_float(0xFF800000u); }

// --- block reductions: the order of the device's shared-memory tree --------------------------------
//
// A row kernel gives thread t the elements t, t + T, t + 2T, ... (T = block_threads) and then halves
// the partials in shared memory: at stride s = T/2, T/4, ..., 1, partial[i] += partial[i + s] for
// i < s. `tree_sum` is that loop; the device runs the same loop with __syncthreads between strides.

//! Sums `partials[0, n)` (n a power of two) in the order of the device tree; overwrites `partials`.
MDLM_HD float tree_sum(float* partials, int n) {
  for (int s = n / 2; s > 0; s /= 2)
    for (int i = 0; i < s; ++i) partials[i] = add_rn(partials[i], partials[i + s]);
  return partials[0];
}

//! Thread t's partial sum of squares of x[0, d) (elements t, t + threads, ...), fp32 with FMA.
MDLM_HD float sum_squares_partial(const float* x, std::int64_t d, int t, int threads) {
  float acc = 0.0f;
  for (std::int64_t i = t; i < d; i += threads) acc = fma_rn(x[i], x[i], acc);
  return acc;
}

//! 1 / sqrt(mean + eps) from the row's sum of squares (IEEE division and square root).
MDLM_HD float rms_inverse(float sum_squares, std::int64_t d, float eps) {
  const float mean = div_rn(sum_squares, static_cast<float>(d));
  return div_rn(1.0f, sqrt_rn(add_rn(mean, eps)));
}

//! One RMSNorm output: round(round(x * inv) * w) in bf16 (normalise, cast, then weight: models.md 7.5).
MDLM_HD std::uint16_t rms_apply(float x, float inv, std::uint16_t weight) {
  return f32_to_bf16(mul_rn(round_bf16(mul_rn(x, inv)), bf16_to_f32(weight)));
}

// --- online softmax (attention rows) ---------------------------------------------------------------

//! Running maximum and sum of exp(x - max) of a set of scores.
struct softmax_state {
  float max;
  float sum;
};

MDLM_HD softmax_state softmax_empty() { return {neg_inf(), 0.0f}; }

//! Adds score x (finite or -inf; -inf contributes nothing).
MDLM_HD softmax_state softmax_add(softmax_state s, float x) {
  if (x == neg_inf()) return s;
  if (x > s.max) return {x, add_rn(mul_rn(s.sum, exp_f(add_rn(s.max, -x))), 1.0f)};
  return {s.max, add_rn(s.sum, exp_f(add_rn(x, -s.max)))};
}

//! Merges two states (order matters for the rounding: the tree always merges (left, right)).
MDLM_HD softmax_state softmax_merge(softmax_state a, softmax_state b) {
  const float m = a.max > b.max ? a.max : b.max;
  if (m == neg_inf()) return softmax_empty();
  const float ea = a.max == neg_inf() ? 0.0f : mul_rn(a.sum, exp_f(add_rn(a.max, -m)));
  const float eb = b.max == neg_inf() ? 0.0f : mul_rn(b.sum, exp_f(add_rn(b.max, -m)));
  return {m, add_rn(ea, eb)};
}

//! Thread t's state over x[t], x[t + threads], ... of a row of n scores.
MDLM_HD softmax_state softmax_partial(const float* x, std::int64_t n, int t, int threads) {
  softmax_state s = softmax_empty();
  for (std::int64_t i = t; i < n; i += threads) s = softmax_add(s, x[i]);
  return s;
}

//! The device tree over `partials[0, n)` (n a power of two); overwrites `partials`.
MDLM_HD softmax_state softmax_tree(softmax_state* partials, int n) {
  for (int s = n / 2; s > 0; s /= 2)
    for (int i = 0; i < s; ++i) partials[i] = softmax_merge(partials[i], partials[i + s]);
  return partials[0];
}

//! One probability exp(x - max) / sum, rounded to bf16 (0 for -inf scores).
MDLM_HD std::uint16_t softmax_prob(float x, softmax_state s) {
  if (x == neg_inf()) return 0;
  return f32_to_bf16(div_rn(exp_f(add_rn(x, -s.max)), s.sum));
}

// --- SwiGLU ----------------------------------------------------------------------------------------

//! bf16(bf16(silu(g)) * u): PyTorch's bf16 `F.silu(gate) * up` (silu computed in fp32, each op rounded).
MDLM_HD std::uint16_t silu_mul(std::uint16_t gate, std::uint16_t up) {
  const float g = bf16_to_f32(gate);
  const float silu = round_bf16(div_rn(g, add_rn(1.0f, exp_f(-g))));
  return f32_to_bf16(mul_rn(silu, bf16_to_f32(up)));
}

// --- RoPE (half-split / NeoX pairs (i, i + head_dim / 2)) -------------------------------------------

//! Rotated pair of LLaDA (fp32 math on bf16 inputs, models.md 2.8):
//! o1 = x1 cos - x2 sin, o2 = x2 cos + x1 sin, each then rounded to bf16.
MDLM_HD void rope_fp32(float x1, float x2, float c, float s, std::uint16_t& o1, std::uint16_t& o2) {
  o1 = f32_to_bf16(add_rn(mul_rn(x1, c), mul_rn(-x2, s)));
  o2 = f32_to_bf16(add_rn(mul_rn(x2, c), mul_rn(x1, s)));
}

//! Rotated pair of Dream (bf16 math, models.md 3.7: cos / sin cast to bf16, `q*cos + rotate_half(q)*sin`
//! with each product and the sum rounded to bf16).
MDLM_HD void rope_bf16(float x1, float x2, float c, float s, std::uint16_t& o1, std::uint16_t& o2) {
  const float cb = round_bf16(c), sb = round_bf16(s);
  o1 = f32_to_bf16(add_rn(round_bf16(mul_rn(x1, cb)), round_bf16(mul_rn(-x2, sb))));
  o2 = f32_to_bf16(add_rn(round_bf16(mul_rn(x2, cb)), round_bf16(mul_rn(x1, sb))));
}

// --- element-wise kernels: one call per work unit, the same on host and device ----------------------

//! Embedding lookup: unit u = r * d + c writes h[u] = E[tokens[r] * d + c] (fp32 residual stream).
MDLM_HD void embed_unit(const std::int32_t* tokens, const std::uint16_t* table, std::int64_t d, float* h,
                        std::int64_t u) {
  const std::int64_t r = u / d, c = u - r * d;
  h[u] = bf16_to_f32(table[static_cast<std::int64_t>(tokens[r]) * d + c]);
}

//! Arguments of the q/k/v epilogue: the fused q/k/v GEMM's fp32 output [B*L, d + 2 kv] (columns: q
//! heads, then k heads, then v heads) -> optional bias, bf16 rounding, RoPE on q and k, and the
//! head-major bf16 layouts q [B, H, L, hd], k and v [B, Hkv, L, hd] that the attention GEMMs read.
struct qkv_params {
  const float* qkv = nullptr;
  const std::uint16_t* bias = nullptr;  //!< [d + 2 kv] (Dream) or nullptr (LLaDA)
  const float* cos = nullptr;           //!< [L, hd / 2] fp32
  const float* sin = nullptr;           //!< [L, hd / 2] fp32
  std::uint16_t* q = nullptr;
  std::uint16_t* k = nullptr;
  std::uint16_t* v = nullptr;
  std::int64_t batch = 0, length = 0, heads = 0, kv_heads = 0, head_dim = 0;
  bool rope_in_bf16 = false;  //!< Dream: true; LLaDA: false

  //! Work units: one per (row, head slot, pair index) with head slots q 0..H-1, k H..H+Hkv-1, v after.
  MDLM_HD std::int64_t units() const { return batch * length * (heads + 2 * kv_heads) * (head_dim / 2); }
};

//! One unit of the q/k/v epilogue: elements i and i + hd/2 of one head at one position.
MDLM_HD void qkv_unit(const qkv_params& p, std::int64_t u) {
  const std::int64_t half = p.head_dim / 2, slots = p.heads + 2 * p.kv_heads;
  const std::int64_t width = (p.heads + 2 * p.kv_heads) * p.head_dim;  // d + 2 kv
  const std::int64_t i = u % half;
  const std::int64_t slot = (u / half) % slots;
  const std::int64_t row = u / (half * slots);  // b * L + l
  const std::int64_t b = row / p.length, l = row - b * p.length;
  const std::int64_t col = slot * p.head_dim + i;  // column of element i in the fused output
  float x1 = p.qkv[row * width + col], x2 = p.qkv[row * width + col + half];
  if (p.bias != nullptr) {  // nn.Linear with bias: fp32 accumulator + bias, then one rounding
    x1 = add_rn(x1, bf16_to_f32(p.bias[col]));
    x2 = add_rn(x2, bf16_to_f32(p.bias[col + half]));
  }
  x1 = round_bf16(x1);  // the projection's bf16 output
  x2 = round_bf16(x2);
  std::uint16_t* dst = nullptr;
  if (slot < p.heads) {
    dst = p.q + ((b * p.heads + slot) * p.length + l) * p.head_dim;
  } else if (slot < p.heads + p.kv_heads) {
    dst = p.k + ((b * p.kv_heads + (slot - p.heads)) * p.length + l) * p.head_dim;
  } else {
    dst = p.v + ((b * p.kv_heads + (slot - p.heads - p.kv_heads)) * p.length + l) * p.head_dim;
    dst[i] = f32_to_bf16(x1);
    dst[i + half] = f32_to_bf16(x2);
    return;
  }
  const float c = p.cos[l * half + i], s = p.sin[l * half + i];
  if (p.rope_in_bf16) rope_bf16(x1, x2, c, s, dst[i], dst[i + half]);
  else rope_fp32(x1, x2, c, s, dst[i], dst[i + half]);
}

//! Head-major attention output [B, H, L, hd] -> row-major [B*L, H*hd] (the output projection's
//! input): unit u = ((b * L + l) * H + h) * hd + c.
MDLM_HD void merge_heads_unit(const std::uint16_t* heads_major, std::int64_t length, std::int64_t heads,
                              std::int64_t head_dim, std::uint16_t* rows, std::int64_t u) {
  const std::int64_t c = u % head_dim;
  const std::int64_t h = (u / head_dim) % heads;
  const std::int64_t row = u / (head_dim * heads);
  const std::int64_t b = row / length, l = row - b * length;
  rows[u] = heads_major[((b * heads + h) * length + l) * head_dim + c];
}

//! SwiGLU over the fused gate/up GEMM output gu [rows, 2 m] (gate columns, then up): unit u = r * m + j
//! writes out[u] = silu(gate) * up.
MDLM_HD void silu_mul_unit(const std::uint16_t* gu, std::int64_t m, std::uint16_t* out, std::int64_t u) {
  const std::int64_t r = u / m, j = u - r * m;
  out[u] = silu_mul(gu[r * 2 * m + j], gu[r * 2 * m + m + j]);
}

//! The hidden-state row whose LM-head output is logit row i of sequence b (length L): Dream shifts
//! (row i reads hidden state i-1, row 0 its own: models.md 3.9), LLaDA does not.
MDLM_HD std::int64_t lm_source_row(std::int64_t b, std::int64_t i, std::int64_t length, bool shift) {
  return b * length + (shift && i > 0 ? i - 1 : i);
}

//! A uniform number in [-1, 1) from (seed, i): splitmix64 of seed + (i + 1) * golden ratio, top 24
//! bits. For random benchmark weights only (no statistical test relies on it).
MDLM_HD float uniform_pm1(std::uint64_t seed, std::uint64_t i) {
  std::uint64_t z = seed + (i + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<float>(static_cast<std::int64_t>(z >> 40) - (std::int64_t{1} << 23)) * (1.0f / 8388608.0f);
}

}  // namespace mdlm::cuda::math
