// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! Internals shared by every instruction-set variant of the row kernels: the job description, the
//! exact Gumbel key, the scalar double-precision path and the assembly of a row's result from the
//! vector accumulators.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>

#include "mdlm/detail/block_gumbel.hpp"
#include "mdlm/kernels/half.hpp"
#include "mdlm/logit_stats.hpp"
#include "mdlm/rng.hpp"
#include "mdlm/types.hpp"

namespace mdlm {

//! Statistics and chosen token of one logit row, from one pass over the row
//! (kernels/batched_stats.hpp). With temperature T = 0 the token is the argmax (ties to the lower id)
//! and every "tempered" field equals its plain counterpart; with T > 0 the token is the Gumbel-max
//! sample of softmax(z / T) and the tempered fields describe softmax(z / T). When `stats.valid` is
//! false (NaN, +inf, every entry -inf) `token` is `no_token` and the doubles are NaN.
struct row_choice {
  logit_stats stats{};                                                //!< statistics of softmax(z)
  token_id token = no_token;                                          //!< the chosen token x0
  double prob = std::numeric_limits<double>::quiet_NaN();             //!< softmax(z)[x0]: LLaDA confidence
  double tempered_prob = std::numeric_limits<double>::quiet_NaN();    //!< softmax(z/T)[x0]: Dream maskgit_plus
  double tempered_entropy = std::numeric_limits<double>::quiet_NaN(); //!< H(softmax(z/T)) in nats
  double tempered_margin = std::numeric_limits<double>::quiet_NaN();  //!< p_(1) - p_(2) of softmax(z/T)
  //! KL(p_t || p_{t-1}) of the position (kl_history.hpp) when the request asked for it
  //! (`row_request::kl`); NaN otherwise.
  double kl = std::numeric_limits<double>::quiet_NaN();
};

namespace detail {

//! The entry of `stats` for canvas position `pos`, where stats[i] belongs to positions[i]
//! (ascending), or nullptr when `pos` is not among them. O(log n). Shared by step_event and
//! step_context (`stats_at`).
[[nodiscard]] inline const row_choice* row_stats_at(std::span<const std::size_t> positions,
                                                    std::span<const row_choice> stats, std::size_t pos) noexcept {
  const auto it = std::lower_bound(positions.begin(), positions.end(), pos);
  if (it == positions.end() || *it != pos) return nullptr;
  return &stats[static_cast<std::size_t>(it - positions.begin())];
}

//! The Gumbel-max key of token v: z_v * (1/T) - log(-log U_v), in double precision as LLaDA's
//! `add_gumbel_noise` requires (shared/spec/samplers.md section 5.1); the same key as
//! token_choice.hpp's `gumbel_argmax` over the tempered values z * (1/T).
//! The product is formed by `std::fma(z, inv_t, 0.0)`, which rounds it exactly once, so that no
//! compiler can contract `z * inv_t - g` into one fused multiply-add: every code path (scalar,
//! vector, the slower top-k/top-p path) then gets bit-identical keys and hence the same token.
[[nodiscard]] inline double gumbel_key(double z, double inv_t, double u) noexcept {
  return std::fma(z, inv_t, 0.0) - std::log(-std::log(u));
}

//! The 64-bit Philox key of `rng_stream::token` for `rng` (as `counter_rng::bits` derives it).
[[nodiscard]] constexpr std::array<std::uint32_t, 2> token_stream_key(const counter_rng& rng) noexcept {
  const std::uint64_t k =
      splitmix64(rng.seed ^ (0xA5A5A5A5ull * (static_cast<std::uint64_t>(rng_stream::token) + 1)));
  return {static_cast<std::uint32_t>(k), static_cast<std::uint32_t>(k >> 32)};
}

//! One batch of position uniforms (`position_uniforms`, isa_variants.hpp): the uniform `half`
//! (0 or 1) of counter (sequence, step, position, 0) of a stream for n positions read with a stride.
struct position_uniform_job {
  std::array<std::uint32_t, 20> keys{};  //!< Philox round keys (k0, k1) per round
  counter_rng rng{};
  rng_stream stream = rng_stream::position;
  std::uint32_t sequence = 0, step = 0;
  const std::byte* positions = nullptr;  //!< the i-th position is the std::size_t at positions + i * stride
  std::size_t stride = sizeof(std::size_t);  //!< in bytes
  std::size_t n = 0;
  unsigned half = 0;
};

//! (w + 0.5) 2^-53 for the 53-bit integer w: the conversion of counter_rng::uniform2.
[[nodiscard]] inline double uniform_of_bits(std::uint64_t w) noexcept {
  constexpr double scale = 1.0 / 9007199254740992.0;  // 2^-53
  return (static_cast<double>(static_cast<std::int64_t>(w)) + 0.5) * scale;
}

//! The i-th position of `job` (read as bytes: the positions are members of larger records).
[[nodiscard]] inline std::uint32_t job_position(const position_uniform_job& job, std::size_t i) noexcept {
  std::size_t p = 0;
  std::memcpy(&p, job.positions + i * job.stride, sizeof p);
  return static_cast<std::uint32_t>(p);
}

//! The i-th uniform of `job` by the scalar generator.
[[nodiscard]] inline double scalar_position_uniform(const position_uniform_job& job, std::size_t i) noexcept {
  return job.rng.uniform2(job.stream, job.sequence, job.step, job_position(job, i), 0)[job.half];
}

//! Element formats of a logit buffer.
enum class logit_format : std::uint8_t { f32, bf16, f16 };

template <class T>
inline constexpr logit_format format_of = logit_format::f32;
template <>
inline constexpr logit_format format_of<bf16> = logit_format::bf16;
template <>
inline constexpr logit_format format_of<fp16> = logit_format::f16;

//! One batched call: rows `rows[i]` of the R x V matrix at `logits` go to `out[i]`.
struct row_job {
  const void* logits = nullptr;   //!< R x V elements of `format`, row-major
  logit_format format = logit_format::f32;
  std::size_t vocab = 0;          //!< V
  const std::size_t* rows = nullptr;
  row_choice* out = nullptr;
  double temperature = 0.0;       //!< T >= 0
  double inv_t = 1.0;             //!< 1/T (1 when T = 0)
  counter_rng rng{};
  std::uint32_t sequence = 0;
  std::uint32_t step = 0;
  logit_stats* stats_out = nullptr;   //!< when set, only the statistics are stored, here
  bool has_position_override = false; //!< when set, every row uses `position_override` as position
  std::uint32_t position_override = 0;
};

//! The position that keys the random numbers of row `r`.
[[nodiscard]] inline std::uint32_t position_of(const row_job& job, std::size_t r) noexcept {
  return job.has_position_override ? job.position_override : static_cast<std::uint32_t>(r);
}

//! Stores the result of the i-th requested row.
inline void store_result(const row_job& job, std::size_t i, const row_choice& c) noexcept {
  if (job.stats_out != nullptr) job.stats_out[i] = c.stats;
  else job.out[i] = c;
}

//! Float value of one element of any supported format.
template <class T>
[[nodiscard]] inline double element_value(const T& x) noexcept {
  return static_cast<double>(static_cast<float>(x));
}

//! Sums of one row relative to its maximum m, in double precision (the scalar path). The entries
//! equal to m are counted in `c`; the others add e = exp(d), d = z - m, to `rest` and e * d to `t`
//! (and exp(d / T), (d / T) exp(d / T) to the tempered sums). Keeping the c exact ones out of `rest`
//! lets log s = log c + log1p(rest / c) and hence the entropy of a nearly one-hot row keep full
//! relative precision, where s = c + rest alone would round `rest` away.
struct row_moments {
  double c = 0.0, rest = 0.0, t = 0.0;
  double t_rest = 0.0, t_t = 0.0;  //!< tempered `rest` and `t`
};

//! Second pass of the scalar path over a row whose maximum finite entry is m.
template <class T>
[[nodiscard]] row_moments scalar_moments(const T* row, std::size_t n, double m, double inv_t, bool tempered) noexcept {
  row_moments r;
  for (std::size_t v = 0; v < n; ++v) {
    const double z = element_value(row[v]);
    if (z == -std::numeric_limits<double>::infinity()) continue;
    if (z == m) {
      r.c += 1.0;
      continue;
    }
    const double d = z - m;
    const double e = std::exp(d);
    r.rest += e;
    r.t += e * d;
    if (tempered) {
      const double dt = d * inv_t;
      const double et = std::exp(dt);
      r.t_rest += et;
      r.t_t += et * dt;
    }
  }
  return r;
}

//! log s and the entropy log s - t / s from a row's count of maxima, rest sum and t sum.
[[nodiscard]] inline double log_sum(double c, double rest) noexcept { return std::log(c) + std::log1p(rest / c); }
[[nodiscard]] inline double entropy_of(double log_s, double c, double rest, double t) noexcept {
  const double h = log_s - t / (c + rest);
  return h > 0.0 ? h : 0.0;  // clamp rounding below 0, as compute_logit_stats does
}

//! The chosen token's plain and tempered quantities, given the row's statistics, its maximum m,
//! log s = log sum exp(z - m) (`log_s`), the same for softmax(z / T) relative to m / T (`log_ts`)
//! and the tempered entropy. Fills every field
//! of `out` except `stats` and `token`, which the caller has set (stats valid, token finite).
template <class T>
void set_choice_quantities(const T* row, const row_job& job, double m, double log_s, double log_ts,
                           double tempered_entropy, row_choice& out) noexcept {
  const logit_stats& st = out.stats;
  const double ztok = element_value(row[static_cast<std::size_t>(out.token)]);
  out.prob = std::exp((ztok - m) - log_s);
  const bool tempered = job.temperature > 0.0 && job.inv_t != 1.0;
  if (!tempered) {
    out.tempered_prob = out.prob;
    out.tempered_entropy = st.entropy;
    out.tempered_margin = st.margin();
    return;
  }
  out.tempered_entropy = tempered_entropy;
  out.tempered_prob = std::exp((ztok - m) * job.inv_t - log_ts);
  const double p1 = std::exp((element_value(row[static_cast<std::size_t>(st.top1)]) - m) * job.inv_t - log_ts);
  double p2 = 0.0;
  if (st.top2 != no_token) {
    const double z2 = element_value(row[static_cast<std::size_t>(st.top2)]);
    if (z2 != -std::numeric_limits<double>::infinity()) p2 = std::exp((z2 - m) * job.inv_t - log_ts);
  }
  out.tempered_margin = p1 - p2;
}

//! Completes `out` (stats.top1/top2 and valid set, token set) from a row's moments relative to m.
//! `keep_stats`: the statistics are already final (only the tempered quantities are computed).
template <class T>
void finish_from_moments(const T* row, const row_job& job, double m, const row_moments& r, bool keep_stats,
                         row_choice& out) noexcept {
  logit_stats& st = out.stats;
  const double log_s = log_sum(r.c, r.rest);
  if (!keep_stats) {
    st.log_normalizer = m + log_s;
    st.entropy = entropy_of(log_s, r.c, r.rest, r.t);
    st.top1_logprob = (element_value(row[static_cast<std::size_t>(st.top1)]) - m) - log_s;
    if (st.top2 != no_token) {
      const double z2 = element_value(row[static_cast<std::size_t>(st.top2)]);
      st.top2_logprob = z2 == -std::numeric_limits<double>::infinity() ? z2 : (z2 - m) - log_s;
    }
  }
  const double log_ts = log_sum(r.c, r.t_rest);
  set_choice_quantities(row, job, m, log_s, log_ts, entropy_of(log_ts, r.c, r.t_rest, r.t_t), out);
}

//! The tempered value y_v = z_v * (1/T) of entry v, rounded once (-inf stays -inf): the values
//! token_choice.hpp's `transform_row` forms, so both paths draw from the same numbers.
template <class T>
[[nodiscard]] inline double tempered_value(const T* row, std::size_t v, double inv_t) noexcept {
  return std::fma(element_value(row[v]), inv_t, 0.0);
}

//! The keying of row `position` of `job` for detail/block_gumbel.hpp.
[[nodiscard]] inline gumbel_keying keying_of(const row_job& job, std::uint32_t position) noexcept {
  return gumbel_keying{job.rng, job.sequence, job.step, position};
}

//! The sampled token of a row whose maximum finite entry is m: the two-level Gumbel-max draw of
//! detail/block_gumbel.hpp in double precision (the definition every vector variant reproduces).
template <class T>
[[nodiscard]] token_id scalar_gumbel(const T* row, std::size_t n, const row_job& job, double m,
                                     std::uint32_t position) noexcept {
  return two_level_gumbel(n, std::fma(m, job.inv_t, 0.0), keying_of(job, position),
                          [&](std::size_t v) { return tempered_value(row, v, job.inv_t); });
}

//! The scalar path: one row in double precision in two passes (top-2, validity and maximum; then
//! the moments of `scalar_moments`) and the exact two-level Gumbel draw. It is the `simd_isa::scalar` variant
//! and the fallback of the vector variants for rows whose entropy is too small for float
//! exponentials (see `finish_row`).
template <class T>
[[nodiscard]] row_choice scalar_row(const T* row, std::size_t n, const row_job& job, std::uint32_t position) noexcept {
  row_choice out;
  const double ninf = -std::numeric_limits<double>::infinity();
  double v1 = ninf, v2 = ninf;
  std::ptrdiff_t i1 = -1, i2 = -1;
  for (std::size_t i = 0; i < n; ++i) {
    const double z = element_value(row[i]);
    if (std::isnan(z) || z == -ninf) return out;
    // Top-2 by (value desc, index asc), the rule of compute_logit_stats.
    if (i1 < 0 || z > v1) {
      v2 = v1, i2 = i1;
      v1 = z, i1 = static_cast<std::ptrdiff_t>(i);
    } else if (i2 < 0 || z > v2) {
      v2 = z, i2 = static_cast<std::ptrdiff_t>(i);
    }
  }
  if (i1 < 0 || v1 == ninf) return out;
  out.stats.top1 = static_cast<token_id>(i1);
  if (i2 >= 0) out.stats.top2 = static_cast<token_id>(i2);
  out.stats.valid = true;
  const bool tempered = job.temperature > 0.0 && job.inv_t != 1.0;
  const row_moments r = scalar_moments(row, n, v1, job.inv_t, tempered);
  out.token = job.temperature > 0.0 ? scalar_gumbel(row, n, job, v1, position) : out.stats.top1;
  finish_from_moments(row, job, v1, r, false, out);
  return out;
}

//! What a vector variant accumulates over one row, combined in a fixed lane order.
//!
//! Scheme (online softmax per block): m is the running maximum; every entry contributes
//! e = exp(z - m) to s and e * (z - m) to t. The c entries equal to m contribute exactly 1 and 0;
//! they are counted in `c` and kept out of `s_rest`, so that s = c + s_rest with s_rest computed to
//! full relative precision even when it is tiny (a nearly one-hot row), which the entropy
//! H = log s - t/s = log c + log1p(s_rest/c) - t/s needs. The tempered sums use (z - m)/T.
struct vector_accum {
  bool bad = false;        //!< NaN or +inf seen
  float m = -std::numeric_limits<float>::infinity();
  double c = 0.0;          //!< entries equal to m
  double s_rest = 0.0, t = 0.0;
  double ts_rest = 0.0, tt = 0.0;
  float v1 = -std::numeric_limits<float>::infinity(), v2 = -std::numeric_limits<float>::infinity();
  std::int64_t i1 = -1, i2 = -1;
  token_id sampled = no_token;  //!< Gumbel-max token (T > 0)
};

//! Assembles a row's result from `acc`. Rows whose entropy is below the float-exponential floor
//! (entries more than 87 nats below the maximum are flushed by the float exponential, a relative
//! change of at most V * 1.1e-36 / H) are recomputed by the scalar path, so every result agrees with
//! the double-precision reference to ~1e-6 relative.
template <class T>
[[nodiscard]] row_choice finish_row(const vector_accum& acc, const T* row, std::size_t n,
                                    const row_job& job) noexcept {
  row_choice out;
  if (acc.bad || acc.m == -std::numeric_limits<float>::infinity() || acc.c < 1.0) return out;
  const double m = acc.m;
  const double log_s = std::log(acc.c) + std::log1p(acc.s_rest / acc.c);
  const double s = acc.c + acc.s_rest;
  const double h = log_s - acc.t / s;
  const double floor_h = static_cast<double>(n) * 1.1e-30;
  logit_stats& st = out.stats;
  st.log_normalizer = m + log_s;
  st.entropy = h > 0.0 ? h : 0.0;
  st.top1 = static_cast<token_id>(acc.i1);
  st.top1_logprob = (static_cast<double>(acc.v1) - m) - log_s;
  if (acc.i2 >= 0) {
    st.top2 = static_cast<token_id>(acc.i2);
    st.top2_logprob = acc.v2 == -std::numeric_limits<float>::infinity()
                          ? -std::numeric_limits<double>::infinity()
                          : (static_cast<double>(acc.v2) - m) - log_s;
  }
  st.valid = true;
  out.token = job.temperature > 0.0 ? acc.sampled : st.top1;
  const bool tempered = job.temperature > 0.0 && job.inv_t != 1.0;
  double log_ts = log_s, ht = h;
  if (tempered) {
    log_ts = std::log(acc.c) + std::log1p(acc.ts_rest / acc.c);
    ht = log_ts - acc.tt / (acc.c + acc.ts_rest);
  }
  if (h < floor_h || (tempered && ht < floor_h)) {
    // Nearly one-hot row: redo in double what the float exponentials cannot resolve (the
    // statistics only when their own entropy is below the floor, so that `batched_logit_stats` and
    // `choose_rows` agree bit for bit); the sampled token is kept.
    const row_moments r = scalar_moments(row, n, m, job.inv_t, tempered);
    finish_from_moments(row, job, m, r, h >= floor_h, out);
    return out;
  }
  set_choice_quantities(row, job, m, log_s, log_ts, ht > 0.0 ? ht : 0.0, out);
  return out;
}

}  // namespace detail
}  // namespace mdlm
