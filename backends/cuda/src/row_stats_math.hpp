// SPDX-License-Identifier: MIT
#pragma once
// The arithmetic of the device row-statistics kernels (row_stats.cu), as __host__ __device__
// functions in C++17 (nvcc compiles the .cu files as C++17): per-lane accumulation of a logit row's
// statistics, the merge of two lanes, the final statistics, Philox4x32-10 and the uniforms of
// mdlm::counter_rng, and the Gumbel-max key of one entry of the winning block of the two-level draw
// (include/mdlm/detail/block_gumbel.hpp `block_gumbel_argmax`).
//
// The kernels and the host emulation (row_stats_host.cpp, used by tests/cuda/test_row_stats_math.cpp
// and by `emulate_rows`) call exactly these functions in the same order, so the algorithm is tested
// against the CPU kernels without a GPU; only expf / exp / log differ between host and device
// libraries (a few ulp), which the statistics tolerate; the token choice compares double keys, so it
// differs only where two keys agree to within those few ulp.
//
// Numerical scheme of one row z (length V) at inverse temperature 1/T:
//   * every lane keeps the running maximum m, the count c of entries equal to m, rest = sum of
//     exp(z - m) over the others and t = sum of exp(z - m) (z - m), plus the tempered sums with
//     (z - m) / T over the entries the token filter keeps (z >= threshold); top-1 and top-2 by
//     (value descending, index ascending); lanes merge by rescaling to the larger maximum. Keeping
//     the c maximal entries apart gives log s = log c + log1p(rest / c), so nearly one-hot rows keep
//     their entropy to full relative precision, as the CPU kernels do;
//   * H = log s - t / s, log Z = m + log s, in double from the float sums.
#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernel_math.hpp"

namespace mdlm::cuda::rows {

//! Threads per block (one block per row) and warps per block of the row kernels. Fixed: the
//! reduction order depends on it, and the host emulation uses the same values.
inline constexpr int threads = 256;
inline constexpr int warps = threads / 32;
//! Entries per tile: the unit of the coalesced pass (warp w reads whole tiles).
inline constexpr std::int64_t tile = 1024;
//! Entries of a tile each lane of its warp reads (entries tile * t + j * 32 + lane).
inline constexpr int per_lane = static_cast<int>(tile / 32);
//! Largest vocabulary the kernels accept (token ids are int; far above any model's vocabulary).
inline constexpr std::int64_t max_vocab = std::int64_t{1} << 30;

// --- Philox4x32-10 and the uniforms of mdlm::counter_rng (rng.hpp), bit for bit --------------------

MDLM_HD std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

//! The Philox key of `rng_stream::token` (stream 0) for `seed`, as counter_rng::bits derives it.
MDLM_HD void token_key(std::uint64_t seed, std::uint32_t& k0, std::uint32_t& k1) {
  const std::uint64_t k = splitmix64(seed ^ (0xA5A5A5A5ull * 1ull));
  k0 = static_cast<std::uint32_t>(k);
  k1 = static_cast<std::uint32_t>(k >> 32);
}

MDLM_HD void philox4x32(std::uint32_t c[4], std::uint32_t k0, std::uint32_t k1) {
  for (int round = 0; round < 10; ++round) {
    const std::uint64_t p0 = std::uint64_t{0xD2511F53u} * c[0];
    const std::uint64_t p1 = std::uint64_t{0xCD9E8D57u} * c[2];
    const std::uint32_t n0 = static_cast<std::uint32_t>(p1 >> 32) ^ c[1] ^ k0;
    const std::uint32_t n1 = static_cast<std::uint32_t>(p1);
    const std::uint32_t n2 = static_cast<std::uint32_t>(p0 >> 32) ^ c[3] ^ k1;
    const std::uint32_t n3 = static_cast<std::uint32_t>(p0);
    c[0] = n0, c[1] = n1, c[2] = n2, c[3] = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
}

//! counter_rng::uniform(rng_stream::token, sequence, step, position, index) for the key (k0, k1).
MDLM_HD double token_uniform(std::uint32_t k0, std::uint32_t k1, std::uint32_t sequence, std::uint32_t step,
                             std::uint32_t position, std::uint32_t index) {
  std::uint32_t c[4] = {sequence, step, position, index / 2};
  philox4x32(c, k0, k1);
  const std::uint64_t a = (index % 2 == 0) ? (((std::uint64_t{c[0]} << 32) | c[1]) >> 11)
                                           : (((std::uint64_t{c[2]} << 32) | c[3]) >> 11);
  return (static_cast<double>(a) + 0.5) * (1.0 / 9007199254740992.0);
}

//! The counter index of block b's uniform in the two-level draw: 2^31 + b, above every entry's index
//! (detail/block_gumbel.hpp `block_uniform_index`).
MDLM_HD std::uint32_t block_uniform_index(std::int64_t b) { return 0x80000000u + static_cast<std::uint32_t>(b); }

//! The tempered value of the draw: z * (1/T) rounded once (the CPU's std::fma(z, inv_t, 0)).
MDLM_HD double tempered(float z, double inv_t) { return fma(static_cast<double>(z), inv_t, 0.0); }

// --- per-lane statistics ----------------------------------------------------------------------------

//! What one lane (or a merged set of lanes) knows about its entries.
struct lane_stats {
  float m;      //!< largest finite entry (-inf: none)
  float c;      //!< entries equal to m
  float rest;   //!< sum of exp(z - m) over finite entries below m
  float t;      //!< sum of exp(z - m) (z - m) over them
  float trest;  //!< tempered: sum of exp((z - m) / T) over kept entries below m
  float tt;     //!< tempered: sum of exp((z - m) / T) (z - m) / T over them
  float tc;     //!< kept entries equal to m (c, or 0 when the maximum is filtered out: never)
  float v1, v2; //!< top-1 / top-2 values
  int i1, i2;   //!< their indices (-1: none)
  int bad;      //!< a NaN or +inf entry was seen
};

MDLM_HD lane_stats lane_empty() {
  const float ninf = math::neg_inf();
  return {ninf, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, ninf, ninf, -1, -1, 0};
}

//! Top-2 update with (value descending, index ascending).
MDLM_HD bool ranks_before(float va, int ia, float vb, int ib) { return ib < 0 || va > vb || (va == vb && ia >= 0 && ia < ib); }

MDLM_HD void top2_add(lane_stats& s, float v, int i) {
  if (ranks_before(v, i, s.v1, s.i1)) {
    s.v2 = s.v1, s.i2 = s.i1;
    s.v1 = v, s.i1 = i;
  } else if (ranks_before(v, i, s.v2, s.i2)) {
    s.v2 = v, s.i2 = i;
  }
}

//! Adds entry `i` of value z; `kept` = the token filter keeps it (always true without top-k/top-p).
MDLM_HD void lane_add(lane_stats& s, float z, int i, float inv_t, bool kept) {
  if (z != z || z == -math::neg_inf()) {  // NaN or +inf
    s.bad = 1;
    return;
  }
  top2_add(s, z, i);
  if (z == math::neg_inf()) return;
  if (z > s.m) {
    if (s.m != math::neg_inf()) {
      const float d = s.m - z;  // < 0
      const float r = expf(d), rt = expf(d * inv_t);
      s.t = r * (s.t + d * (s.rest + s.c));
      s.rest = r * (s.rest + s.c);
      s.tt = rt * (s.tt + d * inv_t * (s.trest + s.tc));
      s.trest = rt * (s.trest + s.tc);
    }
    s.m = z;
    s.c = 1.0f;
    s.tc = kept ? 1.0f : 0.0f;
  } else if (z == s.m) {
    s.c += 1.0f;
    if (kept) s.tc += 1.0f;
  } else {
    const float d = z - s.m;
    const float e = expf(d);
    s.rest += e;
    s.t += e * d;
    if (kept) {
      const float et = expf(d * inv_t);
      s.trest += et;
      s.tt += et * d * inv_t;
    }
  }
}

//! The union of two lanes' entries (a first: ties of top-2 by index are order-independent).
MDLM_HD lane_stats lane_merge(lane_stats a, const lane_stats& b, float inv_t) {
  lane_stats out = a;
  out.bad = a.bad | b.bad;
  top2_add(out, b.v1, b.i1);
  top2_add(out, b.v2, b.i2);
  if (b.m == math::neg_inf()) return out;
  if (a.m == math::neg_inf()) {
    lane_stats r = b;
    r.bad = out.bad;
    r.v1 = out.v1, r.i1 = out.i1, r.v2 = out.v2, r.i2 = out.i2;
    return r;
  }
  const lane_stats& hi = a.m >= b.m ? a : b;
  const lane_stats& lo = a.m >= b.m ? b : a;
  out.m = hi.m;
  if (hi.m == lo.m) {
    out.c = hi.c + lo.c;
    out.rest = hi.rest + lo.rest;
    out.t = hi.t + lo.t;
    out.tc = hi.tc + lo.tc;
    out.trest = hi.trest + lo.trest;
    out.tt = hi.tt + lo.tt;
    return out;
  }
  const float d = lo.m - hi.m;  // < 0
  const float r = expf(d), rt = expf(d * inv_t);
  out.c = hi.c;
  out.rest = hi.rest + r * (lo.rest + lo.c);
  out.t = hi.t + r * (lo.t + d * (lo.rest + lo.c));
  out.tc = hi.tc;
  out.trest = hi.trest + rt * (lo.trest + lo.tc);
  out.tt = hi.tt + rt * (lo.tt + d * inv_t * (lo.trest + lo.tc));
  return out;
}

//! The statistics of a row, as mdlm::row_choice holds them (host converts; C++17 has no mdlm types).
struct row_out {
  double log_normalizer, entropy, top1_logprob, top2_logprob;
  double prob, tempered_prob, tempered_entropy, tempered_margin;
  double tempered_log_normalizer;  //!< log sum of exp(z / T) over kept entries (internal)
  double kl;                       //!< KL to the previous distribution (row_job::previous), else NaN
  int top1, top2, token, valid;
};

//! Finishes a row from its merged lanes. `tempered`: T > 0 or a filter; otherwise the tempered
//! fields equal the plain ones; `tau`: the filter threshold (entries z >= tau are kept; -inf: no
//! filter), so a top-2 below it has tempered probability 0. `token` is set to top-1 (greedy); sampled
//! rows overwrite it.
MDLM_HD row_out finish_row(const lane_stats& s, double inv_t, bool tempered_fields, float tau) {
  row_out o{};
  o.top1 = o.top2 = o.token = -1;
  o.kl = NAN;
  if (s.bad || s.m == math::neg_inf()) return o;  // invalid: NaN, +inf or every entry -inf
  const double m = s.m;
  const double log_s = log(static_cast<double>(s.c)) + log1p(static_cast<double>(s.rest) / s.c);
  o.log_normalizer = m + log_s;
  const double h = log_s - static_cast<double>(s.t) / (static_cast<double>(s.c) + s.rest);
  o.entropy = h > 0.0 ? h : 0.0;
  o.top1 = s.i1;
  o.top1_logprob = static_cast<double>(s.v1) - o.log_normalizer;
  o.top2 = s.i2;
  o.top2_logprob = (s.i2 < 0 || s.v2 == math::neg_inf()) ? -INFINITY : static_cast<double>(s.v2) - o.log_normalizer;
  o.token = s.i1;
  o.prob = exp(o.top1_logprob);
  if (tempered_fields) {
    const double tc = s.tc;
    const double tlog_s = log(tc) + log1p(static_cast<double>(s.trest) / tc);
    o.tempered_log_normalizer = m * inv_t + tlog_s;
    const double th = tlog_s - static_cast<double>(s.tt) / (tc + s.trest);
    o.tempered_entropy = th > 0.0 ? th : 0.0;
    const double p1 = exp(static_cast<double>(s.v1) * inv_t - o.tempered_log_normalizer);
    const double p2 = (o.top2_logprob == -INFINITY || !(s.v2 >= tau)) ? 0.0 : exp(static_cast<double>(s.v2) * inv_t - o.tempered_log_normalizer);
    o.tempered_prob = p1;
    o.tempered_margin = p1 - p2;
  } else {
    o.tempered_log_normalizer = o.log_normalizer;
    o.tempered_entropy = o.entropy;
    o.tempered_prob = o.prob;
    o.tempered_margin = o.prob - exp(o.top2_logprob);
  }
  o.valid = 1;
  return o;
}

//! The probabilities of a sampled token x with raw logit z: plain p(x) and tempered p_T(x).
MDLM_HD void set_token(row_out& o, int token, float z, double inv_t) {
  o.token = token;
  o.prob = exp(static_cast<double>(z) - o.log_normalizer);
  o.tempered_prob = exp(static_cast<double>(z) * inv_t - o.tempered_log_normalizer);
}

// --- the Gumbel-max key -------------------------------------------------------------------------------

//! The key of entry v: tempered(z) - log(-log U_v), as the CPU's `block_gumbel_argmax` (the product
//! z / T rounded once, then the double Gumbel value).
MDLM_HD double entry_key(float z, double inv_t, double u) { return tempered(z, inv_t) - log(-log(u)); }

//! Float keys compare as unsigned integers after this map (for the threshold search).
MDLM_HD std::uint32_t order_key(float x) {
  const std::uint32_t u = math::as_bits(x);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
MDLM_HD float from_order_key(std::uint32_t k) {
  return math::as_float((k & 0x80000000u) ? (k & 0x7FFFFFFFu) : ~k);
}

}  // namespace mdlm::cuda::rows
