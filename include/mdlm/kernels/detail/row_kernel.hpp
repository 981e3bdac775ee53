// SPDX-License-Identifier: MIT
// NOTE: deliberately no include guard. kernels/detail/isa_variants.hpp includes this file once per
// instruction set, each time inside a `#pragma GCC target` / `#pragma clang attribute` region and
// with MDLM_DETAIL_KERNEL_NS (namespace name) and MDLM_DETAIL_KERNEL_WIDTH (float lanes) defined, so
// that the same source is compiled for AVX-512, AVX2 + FMA and the baseline target. Included on its
// own it defines nothing.
//! @file
//! The vector row kernel: one pass over a logit row computing its statistics, its tempered
//! statistics and its Gumbel-max token (see row_common.hpp for the numerical scheme).

#if defined(MDLM_DETAIL_KERNEL_NS) && defined(MDLM_DETAIL_KERNEL_WIDTH)

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "mdlm/kernels/detail/row_common.hpp"

namespace mdlm::detail::MDLM_DETAIL_KERNEL_NS {

// Full unrolling of the short loops over a group of vectors, so that the group lives in registers
// (GCC 12 at -O2 otherwise keeps the arrays on the stack: measured 2x slower).
#ifndef MDLM_DETAIL_UNROLL
#define MDLM_DETAIL_UNROLL _Pragma("GCC unroll 16")
#endif

inline constexpr int lanes = MDLM_DETAIL_KERNEL_WIDTH;  //!< float lanes per vector
//! Elements per block (a multiple of 2 * lanes): the blocks of the two-level Gumbel draw, so that a
//! block's exponential sums are its sampling mass.
inline constexpr std::size_t block_size = gumbel_block;
//! Blocks whose masses a row keeps for the two-level draw (V <= 2^20); longer rows sample by the
//! scalar path.
inline constexpr std::size_t max_sample_blocks = 1024;

typedef float vf __attribute__((vector_size(4 * lanes)));
typedef std::int32_t vi __attribute__((vector_size(4 * lanes)));
typedef std::uint32_t vu __attribute__((vector_size(4 * lanes)));
typedef std::uint16_t vh __attribute__((vector_size(2 * lanes)));
typedef std::uint64_t vq __attribute__((vector_size(4 * lanes)));

inline vf splat(float x) noexcept { return vf{} + x; }
inline vi splat_i(std::int32_t x) noexcept { return vi{} + x; }

//! Lane-wise select m ? a : b (m: all-ones / all-zeros lanes, as comparisons yield); compiles to a
//! blend (masked move on AVX-512), and `select(a < b, b, a)` to a max instruction.
inline vf select(vi m, vf a, vf b) noexcept { return m ? a : b; }

//! max(x, lo) that keeps NaN (a comparison with NaN is false, so NaN lanes keep x).
inline vf clamp_below(vf x, vf lo) noexcept { return select(x < lo, lo, x); }

inline bool any(vi m) noexcept {
  std::uint64_t w[lanes / 2];
  std::memcpy(w, &m, sizeof m);
  std::uint64_t r = 0;
  for (int i = 0; i < lanes / 2; ++i) r |= w[i];
  return r != 0;
}

inline float hmax(vf v) noexcept {
  float r = v[0];
  for (int i = 1; i < lanes; ++i) r = v[i] > r ? v[i] : r;
  return r;
}

inline vf load(const float* p) noexcept {
  vf v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline vf load(const bf16* p) noexcept {
  vh h;
  std::memcpy(&h, p, sizeof h);
  return (vf)(__builtin_convertvector(h, vu) << 16);  // bf16 is the upper half of a float
}
inline vf load(const fp16* p) noexcept {
  // binary16 -> binary32 with integer operations (same steps as fp16::to_float): rebias normal
  // exponents, map exponent 31 to 255, renormalise subnormals by subtracting 2^-14.
  vh h16;
  std::memcpy(&h16, p, sizeof h16);
  const vu h = __builtin_convertvector(h16, vu);
  const vu sign = (h & 0x8000u) << 16;
  const vu em = h & 0x7fffu;
  const vu exp = em & 0x7c00u;
  const vu o = em << 13;
  const vf normal = (vf)(o + (112u << 23));
  const vf special = (vf)(o + (224u << 23));
  const vf sub = (vf)(o + (113u << 23)) - splat(6.103515625e-05f);  // 2^-14
  const vi is_special = (vi)(exp == 0x7c00u);
  const vi is_sub = (vi)(exp == 0u);
  const vf r = select(is_special, special, select(is_sub, sub, normal));
  return (vf)((vu)r | sign);
}
inline void store(float* p, vf v) noexcept { std::memcpy(p, &v, sizeof v); }

//! log(x) for positive normal x to ~1e-7 (Cephes logf polynomial). Used only by the Gumbel filter,
//! whose margin absorbs far larger errors.
inline vf vlog(vf x) noexcept {
  const vi xi = (vi)x;
  vi e = ((xi >> 23) & 0xff) - 127;
  vf m = (vf)((xi & 0x007fffff) | 0x3f800000);  // mantissa in [1, 2)
  const vi big = (vi)(m > 1.41421356f);
  m = select(big, m * 0.5f, m);
  e = e - big;  // big lanes are -1: e + 1
  const vf f = m - 1.0f;
  const vf ef = __builtin_convertvector(e, vf);
  const vf z = f * f;
  vf y = splat(7.0376836292e-2f);
  y = y * f - 1.1514610310e-1f;
  y = y * f + 1.1676998740e-1f;
  y = y * f - 1.2420140846e-1f;
  y = y * f + 1.4249322787e-1f;
  y = y * f - 1.6668057665e-1f;
  y = y * f + 2.0000714765e-1f;
  y = y * f - 2.4999993993e-1f;
  y = y * f + 3.3333331174e-1f;
  y = y * f * z;
  y = y + ef * -2.12194440e-4f;
  y = y - 0.5f * z;
  return f + y + ef * 0.693359375f;
}

//! Float sums of one block (sweep 3 of `process_row`).
struct block_sums {
  vf s{}, t{}, ts{}, tt{};
  vi cnt{};  //!< the number of entries equal to the maximum, per lane
};

//! exp(d[k]) for d in [-87.3, 0] to 2.4e-7 relative, as 2^x with x = d log2(e): n = round(x) by the
//! 1.5 * 2^23 shifter, 2^(x - n) by a degree-5 minimax polynomial on [-1/2, 1/2] (fitted for this
//! kernel; relative error 7.5e-8 in exact arithmetic), and 2^n added to the exponent bits. It costs
//! one multiply and five FMAs, the least the bandwidth budget allows. NaN is NOT propagated; callers
//! detect NaN through the products e * d. The caller clamps d from below (n >= -126 keeps the result
//! normal).
//! Stage by stage over U vectors: the U independent dependency chains are
//! interleaved in program order, which the out-of-order core needs to keep both FMA units busy (a
//! single chain is ~8 dependent FMAs deep). Forced inline: as a call, its array arguments would
//! travel through memory (measured: 60 % of the kernel's time in the call on GCC 12).
template <int U>
[[gnu::always_inline]] inline void vexp_n(const vf (&d)[U], vf (&e)[U]) noexcept {
#if MDLM_KERNELS_X86 && MDLM_DETAIL_KERNEL_WIDTH == 16
  // AVX-512: n = round(x) by vrndscaleps and 2^n applied by vscalefps, three instructions fewer per
  // vector than the shifter / exponent-bits form below (the kernel is compute-bound on one core).
  // The mask-zero forms avoid the intrinsics' undefined pass-through operand.
  vf x[U], n[U], f[U];
  MDLM_DETAIL_UNROLL for (int j = 0; j < U; ++j) x[j] = d[j] * 1.44269504088896341f;
  MDLM_DETAIL_UNROLL for (int j = 0; j < U; ++j)
    n[j] = (vf)_mm512_maskz_roundscale_ps(0xffff, (__m512)x[j], _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  MDLM_DETAIL_UNROLL for (int j = 0; j < U; ++j) f[j] = x[j] - n[j];
#else
  const vf shifter = splat(12582912.0f);
  vf x[U], k[U], f[U];
  MDLM_DETAIL_UNROLL for (int j = 0; j < U; ++j) x[j] = d[j] * 1.44269504088896341f;
  MDLM_DETAIL_UNROLL for (int j = 0; j < U; ++j) k[j] = x[j] + shifter;
  MDLM_DETAIL_UNROLL for (int j = 0; j < U; ++j) f[j] = x[j] - (k[j] - shifter);
#endif
  MDLM_DETAIL_UNROLL for (int j = 0; j < U; ++j) e[j] = f[j] * 1.327647129e-03f + 9.675541893e-03f;
  MDLM_DETAIL_UNROLL for (int j = 0; j < U; ++j) e[j] = e[j] * f[j] + 5.550713092e-02f;
  MDLM_DETAIL_UNROLL for (int j = 0; j < U; ++j) e[j] = e[j] * f[j] + 2.402212024e-01f;
  MDLM_DETAIL_UNROLL for (int j = 0; j < U; ++j) e[j] = e[j] * f[j] + 6.931469440e-01f;
  MDLM_DETAIL_UNROLL for (int j = 0; j < U; ++j) e[j] = e[j] * f[j] + 1.000000119e+00f;
#if MDLM_KERNELS_X86 && MDLM_DETAIL_KERNEL_WIDTH == 16
  MDLM_DETAIL_UNROLL for (int j = 0; j < U; ++j) e[j] = (vf)_mm512_maskz_scalef_ps(0xffff, (__m512)e[j], (__m512)n[j]);
#else
  MDLM_DETAIL_UNROLL for (int j = 0; j < U; ++j) e[j] = (vf)((vi)e[j] + (((vi)k[j] - (vi)shifter) << 23));
#endif
}

//! Adds exp(d) and exp(d) d, d = z - m, over `np` entries (and the tempered terms with d / T when
//! Tempered). HasMax: the block holds entries equal to m, which are counted instead of added.
//! U vectors per iteration, processed stage by stage (see `vexp_n`).
//! `prefetch` / `prefetch_end`: a later block's bytes in the row, requested line by line while this
//! block's arithmetic runs (the block itself was read by sweep 1), so that the loads of later blocks
//! overlap this block's exponentials instead of following them (measured: 1.36x on fp32 rows
//! streamed from DRAM, 1024 x 152064).
template <bool HasMax, bool Tempered>
inline void sum_block(const float* z, std::size_t np, float m, float inv_tf, block_sums& out,
                      const char* prefetch, const char* prefetch_end) noexcept {
  constexpr int u = 4;
  const vf mv = splat(m);
  const vf lo = splat(-87.3f);  // exp(-87.3) ~ FLT_MIN: lower entries add < 1.2e-38 each
  vf s{}, t{}, ts{}, tt{};
  vi cnt{};
  // Lines per iteration so that the next block is requested over this block's iterations.
  const std::size_t iters = np / (u * lanes) + 1;
  const std::size_t lines = static_cast<std::size_t>(prefetch_end - prefetch) / 64 + 1;
  const std::size_t step = (lines + iters - 1) / iters * 64;
  std::size_t i = 0;
  for (; i + u * lanes <= np; i += u * lanes) {
    for (std::size_t k = 0; k < step && prefetch < prefetch_end; k += 64, prefetch += 64) __builtin_prefetch(prefetch);
    vf d0[u], d[u], e[u];
    MDLM_DETAIL_UNROLL for (int j = 0; j < u; ++j) d0[j] = load(z + i + static_cast<std::size_t>(j) * lanes) - mv;
    MDLM_DETAIL_UNROLL for (int j = 0; j < u; ++j) d[j] = clamp_below(d0[j], lo);
    vexp_n<u>(d, e);
    vi eq[u];
    if constexpr (HasMax) {
      MDLM_DETAIL_UNROLL for (int j = 0; j < u; ++j) eq[j] = (vi)(d0[j] == 0.0f);
      MDLM_DETAIL_UNROLL for (int j = 0; j < u; ++j) e[j] = select(eq[j], vf{}, e[j]);
      cnt -= (eq[0] + eq[1]) + (eq[2] + eq[3]);
    }
    // NaN entries reach t through e * d (d keeps NaN; the exponential may not).
    s += (e[0] + e[1]) + (e[2] + e[3]);
    t += (e[0] * d[0] + e[1] * d[1]) + (e[2] * d[2] + e[3] * d[3]);
    if constexpr (Tempered) {
      vf dt[u], et[u];
      MDLM_DETAIL_UNROLL for (int j = 0; j < u; ++j) dt[j] = clamp_below(d0[j] * inv_tf, lo);
      vexp_n<u>(dt, et);
      if constexpr (HasMax)
        MDLM_DETAIL_UNROLL for (int j = 0; j < u; ++j) et[j] = select(eq[j], vf{}, et[j]);
      ts += (et[0] + et[1]) + (et[2] + et[3]);
      tt += (et[0] * dt[0] + et[1] * dt[1]) + (et[2] * dt[2] + et[3] * dt[3]);
    }
  }
  for (; i < np; i += lanes) {
    vf d0[1], d[1], e[1];
    d0[0] = load(z + i) - mv;
    d[0] = clamp_below(d0[0], lo);
    vexp_n<1>(d, e);
    vi eq{};
    if constexpr (HasMax) {
      eq = (vi)(d0[0] == 0.0f);
      e[0] = select(eq, vf{}, e[0]);
      cnt -= eq;
    }
    s += e[0];
    t += e[0] * d[0];
    if constexpr (Tempered) {
      vf dt[1], et[1];
      dt[0] = clamp_below(d0[0] * inv_tf, lo);
      vexp_n<1>(dt, et);
      if constexpr (HasMax) et[0] = select(eq, vf{}, et[0]);
      ts += et[0];
      tt += et[0] * dt[0];
    }
  }
  out.s = s;
  out.t = t;
  out.ts = ts;
  out.tt = tt;
  out.cnt = cnt;
}

//! (a mod 2^32) * c for each 64-bit lane: the 32 x 32 -> 64-bit product of Philox. With AVX2 and
//! SSE2 it is one unsigned-multiply instruction (pmuludq), which GCC does not derive from
//! `(a & lo) * c` (it emits a slow emulated 64-bit multiply there: measured 1.8x on the sampled
//! path). AVX-512 keeps the plain form: its native 64-bit multiply measured as fast.
inline vq mul_lo32(vq a, std::uint32_t c) noexcept {
#if MDLM_KERNELS_X86 && MDLM_DETAIL_KERNEL_WIDTH == 8
  return (vq)_mm256_mul_epu32((__m256i)a, _mm256_set1_epi64x(static_cast<long long>(c)));
#elif MDLM_KERNELS_X86 && MDLM_DETAIL_KERNEL_WIDTH == 4
  return (vq)_mm_mul_epu32((__m128i)a, _mm_set1_epi64x(static_cast<long long>(c)));
#else
  return (a & 0xffffffffull) * static_cast<std::uint64_t>(c);
#endif
}

//! Per-row state of the Gumbel-max scan.
struct gumbel_state {
  double best = -std::numeric_limits<double>::infinity();
  float threshold = -std::numeric_limits<float>::infinity();
  token_id token = no_token;
  std::array<std::uint32_t, 20> keys{};  // Philox round keys (k0, k1) per round
  float inv_t = 1.0f;
};

//! The filter threshold for the current best key: lower by 1e-4 * (|best| + 80), far more than the
//! float errors of the approximate key (relative ~1e-6 on z/T, absolute ~3e-4 on log E), so the
//! filter never rejects an entry whose exact key could beat `best`.
inline float filter_threshold(double best) noexcept {
  return static_cast<float>(best - 1e-4 * (std::fabs(best) + 80.0));
}

//! Gumbel-max over one chunk of `lanes` elements starting at the even index `e0`: Philox4x32-10 for
//! lanes / 2 counters in vector registers (each counter gives the uniforms of two entries, as
//! counter_rng::uniform2), an approximate key in float from the top 32 bits of each uniform, and the
//! exact double key (row_common.hpp gumbel_key) only for entries the approximation cannot rule out.
inline void gumbel_chunk(vf z, std::size_t e0, std::size_t n, const row_job& job, std::uint32_t position,
                         gumbel_state& g) noexcept {
  constexpr std::uint64_t lo = 0xffffffffull;
  vq c0 = vq{} + job.sequence, c1 = vq{} + job.step, c2 = vq{} + position, c3;
  for (int j = 0; j < lanes / 2; ++j) c3[j] = static_cast<std::uint64_t>(e0 / 2 + static_cast<std::size_t>(j)) & lo;
  for (int r = 0; r < 10; ++r) {
    const vq p0 = mul_lo32(c0, 0xD2511F53u);
    const vq p1 = mul_lo32(c2, 0xCD9E8D57u);
    c0 = (p1 >> 32) ^ c1 ^ g.keys[2 * r];
    c1 = p1 & lo;
    c2 = (p0 >> 32) ^ c3 ^ g.keys[2 * r + 1];
    c3 = p0 & lo;
  }
  // Lane 2j holds the top word of the first uniform of counter j (entry e0 + 2j), lane 2j+1 that of
  // the second (entry e0 + 2j + 1): U ~ x * 2^-32 and 1 - U ~ ~x * 2^-32.
  const vu x = (vu)(c0 | (c2 << 32));
  const vu nx = ~x;
  const vf uf = __builtin_convertvector((vi)(x >> 1), vf) * 4.656612873e-10f;   // 2^-31
  const vf yf = __builtin_convertvector((vi)(nx >> 1), vf) * 4.656612873e-10f;
  // E = -log U: for U > 1 - 2^-6 from the series y (1 + y/2 + y^2/3 + y^3/4 + y^4/5), y = 1 - U
  // (truncation < 1e-10 relative), else from log U.
  const vf e_series = yf * (1.0f + yf * (0.5f + yf * (0.333333333f + yf * (0.25f + yf * 0.2f))));
  const vf e_log = -vlog(select((vi)(x < 0x00001000u), splat(0.5f), uf));
  const vf e = select((vi)(nx < (1u << 26)), e_series, e_log);
  const vf key = z * g.inv_t - vlog(select((vi)(nx < 0x00001000u), splat(1.0f), e));
  // Uniforms within 2^-20 of 0 or 1 have too few bits in the top word: decide them exactly.
  const vi force = (vi)((x < 0x00001000u) | (nx < 0x00001000u));
  const vi cand = ((vi)(key >= g.threshold) | force) & (vi)(z > -std::numeric_limits<float>::infinity());
  if (!any(cand)) return;
  for (int j = 0; j < lanes; ++j) {
    const std::size_t v = e0 + static_cast<std::size_t>(j);
    if (!cand[j] || v >= n) continue;
    const double u = job.rng.uniform(rng_stream::token, job.sequence, job.step, position, static_cast<std::uint32_t>(v));
    const double k = gumbel_key(static_cast<double>(z[j]), job.inv_t, u);
    if (g.token == no_token || k > g.best) {
      g.best = k;
      g.token = static_cast<token_id>(v);
      g.threshold = filter_threshold(k);
    }
  }
}

//! Top-1 / top-2 update of the scalar reference (logit_stats.hpp): strict comparisons keep the lower
//! index on ties; the index tests admit -inf entries while fewer than two entries were seen.
inline void top2_update(vector_accum& a, float z, std::int64_t i) noexcept {
  if (a.i1 < 0 || z > a.v1) {
    a.v2 = a.v1, a.i2 = a.i1;
    a.v1 = z, a.i1 = i;
  } else if (a.i2 < 0 || z > a.v2) {
    a.v2 = z, a.i2 = i;
  }
}

//! Per-entry Gumbel-max over block b of a row (the second level of the draw): the vector filter of
//! `gumbel_chunk` with exact double keys for the entries it keeps. `buf` holds block_size floats.
template <class T>
[[nodiscard]] token_id block_gumbel(const T* row, std::size_t n, std::size_t b, const row_job& job,
                                    std::uint32_t position, float* buf) noexcept {
  const std::size_t b0 = b * block_size;
  const std::size_t nb = n - b0 < block_size ? n - b0 : block_size;
  const std::size_t np = (nb + lanes - 1) / lanes * lanes;
  const float* z = buf;
  if constexpr (std::is_same_v<T, float>) {
    if (nb == block_size) z = row + b0;
  }
  if (z == buf) {
    for (std::size_t i = 0; i < nb; ++i) buf[i] = static_cast<float>(row[b0 + i]);
    for (std::size_t i = nb; i < np; ++i) buf[i] = -std::numeric_limits<float>::infinity();
  }
  gumbel_state g;
  const auto k = token_stream_key(job.rng);
  for (std::uint32_t r = 0; r < 10; ++r) {
    g.keys[2 * r] = k[0] + r * 0x9E3779B9u;
    g.keys[2 * r + 1] = k[1] + r * 0xBB67AE85u;
  }
  g.inv_t = static_cast<float>(job.inv_t);
  for (std::size_t i = 0; i < np; i += lanes) gumbel_chunk(load(z + i), b0 + i, n, job, position, g);
  return g.token;
}

//! The two-level Gumbel draw (detail/block_gumbel.hpp) of a row whose maximum is m, from the block
//! masses of the pass: l~_b = (blk_m[b] - m) / T + log blk_s[b] approximates the exact log-mass l_b
//! to within 3e-5 (float exponentials, float sums of <= 256 terms per lane, the float z - m and
//! 1/T), so |l~_b - l_b| < delta = 1e-3 with a wide margin. The exact winner b* has
//! l~_b* + G_b* >= best~ - 2 delta; when that admits one block it is b*, otherwise the exact l_b of
//! the admitted blocks decide (ties to the lower block), as the scalar path does. Then the
//! per-entry draw in b* only.
template <class T>
[[nodiscard]] token_id sample_two_level(const T* row, std::size_t n, const row_job& job, std::uint32_t position,
                                        double m, const float* blk_m, const double* blk_s, float* buf) noexcept {
  constexpr double ninf = -std::numeric_limits<double>::infinity();
  constexpr double delta = 1e-3;
  const std::size_t blocks = (n + block_size - 1) / block_size;
  const gumbel_keying key = keying_of(job, position);
  double keys[max_sample_blocks];  // block keys: approximate mass, exact noise
  double best = ninf;
  for (std::size_t b = 0; b < blocks; b += 2) {
    // Blocks 2i and 2i + 1 share one Philox counter (block_uniform_index(2i) is even).
    const auto u = key.rng.uniform2(rng_stream::token, key.sequence, key.step, key.position,
                                    block_uniform_index(b) / 2);
    for (std::size_t j = 0; j < 2 && b + j < blocks; ++j) {
      const double s = blk_s[b + j];
      double kb = ninf;
      if (s > 0.0) {
        const double l = (static_cast<double>(blk_m[b + j]) - m) * job.inv_t + std::log(s);
        kb = l - std::log(-std::log(u[j]));
      }
      keys[b + j] = kb;
      best = kb > best ? kb : best;
    }
  }
  if (best == ninf) return no_token;
  std::size_t chosen = blocks, admitted = 0;
  for (std::size_t b = 0; b < blocks; ++b) {
    if (keys[b] >= best - 2.0 * delta) {
      if (admitted++ == 0) chosen = b;
    }
  }
  if (admitted > 1) {
    const double y_max = std::fma(m, job.inv_t, 0.0);
    const auto y = [&](std::size_t v) { return tempered_value(row, v, job.inv_t); };
    double exact_best = ninf;
    chosen = blocks;
    for (std::size_t b = 0; b < blocks; ++b) {
      if (!(keys[b] >= best - 2.0 * delta)) continue;
      const std::size_t end = (b + 1) * block_size < n ? (b + 1) * block_size : n;
      const double kb = block_log_mass(b * block_size, end, y_max, y) + block_noise(key, b);
      if (chosen == blocks || kb > exact_best) {
        exact_best = kb;
        chosen = b;
      }
    }
  }
  return block_gumbel(row, n, chosen, job, position, buf);
}

//! One row: blocks of `block_size` elements, each read from memory once (16-bit formats are
//! widened into an L1-resident buffer that the later sweeps of the block reread).
template <class T>
[[nodiscard]] row_choice process_row(const T* row, const row_job& job, std::uint32_t position) noexcept {
  const std::size_t n = job.vocab;
  constexpr float ninf = -std::numeric_limits<float>::infinity();
  constexpr float pinf = std::numeric_limits<float>::infinity();
  vector_accum acc;
  // Top-2 is seeded by the scalar rule until two entries are seen; blocks then only look at entries
  // above the running second best.
  std::size_t top_from = 0;
  for (; top_from < n && acc.i2 < 0; ++top_from) {
    const float z = static_cast<float>(row[top_from]);
    if (std::isnan(z) || z == pinf) return row_choice{};
    top2_update(acc, z, static_cast<std::int64_t>(top_from));
  }
  const bool sample = job.temperature > 0.0;
  const bool tempered = sample && job.inv_t != 1.0;
  const float inv_tf = static_cast<float>(job.inv_t < 3.0e38 ? job.inv_t : 3.0e38);
  // The block masses of the two-level draw come from the float sums below, accurate to ~3e-5 in
  // log-mass. Rows where that does not hold take the exact scalar draw: T below ~1e-30 (the float
  // keys could overflow), more than max_sample_blocks blocks, and (tested after the pass) rows whose
  // tempered maximum |m / T| >= 1e10, where the double rounding of y_v = z_v / T itself exceeds it.
  const bool exact_gumbel = sample && (job.inv_t > 1e30 || n > max_sample_blocks * block_size);
  double s_lane[lanes] = {}, t_lane[lanes] = {}, ts_lane[lanes] = {}, tt_lane[lanes] = {};
  alignas(64) float buf[block_size];
  // Per block (two-level draw): the running maximum its sums are relative to, and its sampling mass
  // sum_v exp((z_v - blk_m) / T) (0: no finite entry).
  float blk_m[max_sample_blocks];
  double blk_s[max_sample_blocks];
  const bool keep_blocks = sample && !exact_gumbel;

  for (std::size_t b0 = 0; b0 < n; b0 += block_size) {
    const std::size_t nb = n - b0 < block_size ? n - b0 : block_size;
    const std::size_t np = (nb + lanes - 1) / lanes * lanes;
    const float* z = buf;
    // Sweep 1: block maximum (NaN is ignored here and caught by the sums below), widening 16-bit
    // formats into `buf`; a partial block is padded with -inf, which every sweep ignores.
    vf mx0 = splat(ninf), mx1 = splat(ninf);
    if constexpr (std::is_same_v<T, float>) {
      if (nb == block_size) {
        z = row + b0;
      } else {
        std::memcpy(buf, row + b0, nb * sizeof(float));
        for (std::size_t i = nb; i < np; ++i) buf[i] = ninf;
      }
      std::size_t i = 0;
      for (; i + 2 * lanes <= np; i += 2 * lanes) {
        const vf a = load(z + i), b = load(z + i + lanes);
        mx0 = select(mx0 < a, a, mx0);
        mx1 = select(mx1 < b, b, mx1);
      }
      if (i < np) {
        const vf a = load(z + i);
        mx0 = select(mx0 < a, a, mx0);
      }
    } else {
      std::size_t i = 0;
      for (; i + lanes <= nb; i += lanes) {
        const vf a = load(row + b0 + i);
        store(buf + i, a);
        mx0 = select(mx0 < a, a, mx0);
      }
      if (i < nb) {
        for (std::size_t k = i; k < nb; ++k) buf[k] = static_cast<float>(row[b0 + k]);
        for (std::size_t k = nb; k < np; ++k) buf[k] = ninf;
        const vf a = load(buf + i);
        mx0 = select(mx0 < a, a, mx0);
      }
    }
    const float bm = hmax(select(mx0 < mx1, mx1, mx0));
    if (bm == pinf) return row_choice{};
    if (!(bm > ninf)) {
      // Only -inf or NaN entries: nothing to add; NaN must still be reported.
      for (std::size_t i = 0; i < nb; ++i)
        if (std::isnan(z[i])) return row_choice{};
      if (keep_blocks) blk_s[b0 / block_size] = 0.0;
      continue;
    }
    // Sweep 2 (rare): top-2 among entries above the running second best.
    if (bm > acc.v2 && b0 + nb > top_from) {
      for (std::size_t i = 0; i < np; i += lanes) {
        const vf a = load(z + i);
        const vi gt = (vi)(a > acc.v2);
        if (!any(gt)) continue;
        for (int j = 0; j < lanes; ++j) {
          const std::size_t v = b0 + i + static_cast<std::size_t>(j);
          if (gt[j] && v >= top_from && v < n) top2_update(acc, a[j], static_cast<std::int64_t>(v));
        }
      }
    }
    // New maximum: rescale the sums, s' = r s and t' = r (t + s (m - m')) with r = exp(m - m');
    // the c entries that were equal to m move into s_rest.
    if (bm > acc.m) {
      if (acc.m > ninf) {
        const double dm = static_cast<double>(acc.m) - static_cast<double>(bm);
        const double r = std::exp(dm);
        for (int j = 0; j < lanes; ++j) {
          t_lane[j] = r * (t_lane[j] + s_lane[j] * dm);
          s_lane[j] *= r;
        }
        s_lane[0] += acc.c * r;
        t_lane[0] += acc.c * r * dm;
        if (tempered) {
          const double dmt = dm * job.inv_t;
          const double rt = std::exp(dmt);
          for (int j = 0; j < lanes; ++j) {
            tt_lane[j] = rt * (tt_lane[j] + ts_lane[j] * dmt);
            ts_lane[j] *= rt;
          }
          ts_lane[0] += acc.c * rt;
          tt_lane[0] += acc.c * rt * dmt;
        }
      }
      acc.m = bm;
      acc.c = 0.0;
    }
    // Sweep 3: exponential sums in float over the block, added to double lane sums afterwards.
    block_sums bs;
    const bool has_max = bm == acc.m;
    // The block after next (distance 2 measured best: bench/RESULTS.md), up to the row's end.
    const std::size_t pf0 = b0 + nb + block_size < n ? b0 + nb + block_size : n;
    const char* pf = reinterpret_cast<const char*>(row + pf0);
    const char* pf_end = reinterpret_cast<const char*>(row + (pf0 + block_size < n ? pf0 + block_size : n));
    if (tempered) {
      if (has_max) sum_block<true, true>(z, np, acc.m, inv_tf, bs, pf, pf_end);
      else sum_block<false, true>(z, np, acc.m, inv_tf, bs, pf, pf_end);
    } else {
      if (has_max) sum_block<true, false>(z, np, acc.m, inv_tf, bs, pf, pf_end);
      else sum_block<false, false>(z, np, acc.m, inv_tf, bs, pf, pf_end);
    }
    const vf fs = bs.s, ft = bs.t, fts = bs.ts, ftt = bs.tt;
    const vi cnt = bs.cnt;
    double block_c = 0.0, block_mass = 0.0;
    for (int j = 0; j < lanes; ++j) {
      s_lane[j] += static_cast<double>(fs[j]);
      t_lane[j] += static_cast<double>(ft[j]);
      block_c += static_cast<double>(cnt[j]);
    }
    acc.c += block_c;
    if (tempered) {
      for (int j = 0; j < lanes; ++j) {
        ts_lane[j] += static_cast<double>(fts[j]);
        tt_lane[j] += static_cast<double>(ftt[j]);
      }
    }
    if (keep_blocks) {
      // The block's sampling mass relative to acc.m: the entries equal to it count 1 each.
      for (int j = 0; j < lanes; ++j) block_mass += static_cast<double>(tempered ? fts[j] : fs[j]);
      blk_m[b0 / block_size] = acc.m;
      blk_s[b0 / block_size] = block_mass + block_c;
    }
  }
  for (int j = 0; j < lanes; ++j) {
    acc.s_rest += s_lane[j];
    acc.t += t_lane[j];
    acc.ts_rest += ts_lane[j];
    acc.tt += tt_lane[j];
  }
  if (std::isnan(acc.s_rest) || std::isnan(acc.t)) acc.bad = true;
  if (sample && !acc.bad && acc.m > ninf) {
    const double m = acc.m;
    acc.sampled = exact_gumbel || !(std::fabs(m * job.inv_t) < 1e10)
                      ? scalar_gumbel(row, n, job, m, position)
                      : sample_two_level(row, n, job, position, m, blk_m, blk_s, buf);
  }
  return finish_row(acc, row, n, job);
}

//! Rows [begin, end) of `job` (the per-task entry point of this instruction set).
template <class T>
void process_rows(const row_job& job, std::size_t begin, std::size_t end) noexcept {
  const T* base = static_cast<const T*>(job.logits);
  for (std::size_t i = begin; i < end; ++i) {
    const std::size_t r = job.rows[i];
    store_result(job, i, process_row(base + r * job.vocab, job, position_of(job, r)));
  }
}

//! mul_lo32 for the position uniforms: the 32 x 32 -> 64-bit unsigned multiply instruction on every
//! x86 width (on AVX-512 too: the native 64-bit multiply vpmullq is three micro-ops on Intel cores
//! and made this loop latency-bound).
inline vq mul32(vq a, std::uint32_t c) noexcept {
#if MDLM_KERNELS_X86 && MDLM_DETAIL_KERNEL_WIDTH == 16
  // The maskz form (all 8 lanes): the plain intrinsic starts from an undefined vector, which GCC 12
  // reports as maybe-uninitialized.
  return (vq)_mm512_maskz_mul_epu32(0xff, (__m512i)a, _mm512_set1_epi64(static_cast<long long>(c)));
#else
  return mul_lo32(a, c);
#endif
}

//! out[i] = counter_rng::uniform2(stream, sequence, step, position of candidate i, 0)[half] for
//! i < n (row_common.hpp `position_uniform_job`): Philox4x32-10 on lanes / 2 counters per vector,
//! two vectors at a time (independent chains), the same integer arithmetic and the same double
//! conversion as uniform2, so bit for bit its numbers.
inline void position_uniforms(const position_uniform_job& job, double* out) noexcept {
  constexpr int q = lanes / 2;
  constexpr std::uint64_t lo = 0xffffffffull;
  std::size_t i = 0;
  for (; i + 2 * q <= job.n; i += 2 * q) {
    std::uint64_t pos[2 * q];
    for (int j = 0; j < 2 * q; ++j) pos[j] = job_position(job, i + static_cast<std::size_t>(j));
    vq c0[2], c1[2], c2[2], c3[2];
    MDLM_DETAIL_UNROLL for (int v = 0; v < 2; ++v) {
      c0[v] = vq{} + job.sequence;
      c1[v] = vq{} + job.step;
      std::memcpy(&c2[v], pos + v * q, sizeof(vq));
      c3[v] = vq{};
    }
    for (int r = 0; r < 10; ++r) {
      MDLM_DETAIL_UNROLL for (int v = 0; v < 2; ++v) {
        const vq p0 = mul32(c0[v], 0xD2511F53u);
        const vq p1 = mul32(c2[v], 0xCD9E8D57u);
        c0[v] = (p1 >> 32) ^ c1[v] ^ job.keys[2 * r];
        c1[v] = p1 & lo;
        c2[v] = (p0 >> 32) ^ c3[v] ^ job.keys[2 * r + 1];
        c3[v] = p0 & lo;
      }
    }
    MDLM_DETAIL_UNROLL for (int v = 0; v < 2; ++v) {
      const vq w = job.half == 0 ? ((c0[v] << 32) | c1[v]) >> 11 : ((c2[v] << 32) | c3[v]) >> 11;
      for (int j = 0; j < q; ++j) out[i + static_cast<std::size_t>(v * q + j)] = uniform_of_bits(w[j]);
    }
  }
  for (; i < job.n; ++i) out[i] = scalar_position_uniform(job, i);
}

}  // namespace mdlm::detail::MDLM_DETAIL_KERNEL_NS

#endif
