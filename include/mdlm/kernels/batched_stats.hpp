// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! The fast selection path: statistics and token choice for many logit rows at once, one pass per
//! row, explicit SIMD, rows spread over a thread pool.
//!
//! For each requested row z (fp32, bf16 or fp16) one pass computes
//!   * `logit_stats` exactly as `compute_logit_stats` defines it (log-normalizer, entropy, top-1 and
//!     top-2 with ties to the lower id, `valid` false for NaN / +inf / all -inf);
//!   * the chosen token: argmax for temperature T = 0; for T > 0 a sample of softmax(z / T) by the
//!     two-level Gumbel-max draw of detail/block_gumbel.hpp (a Gumbel key per block of 1024 entries
//!     from the block masses this pass forms, then x0 = argmax_v z_v / T - log(-log U_v) inside the
//!     winning block only, with double-precision noise as LLaDA requires, shared/spec/samplers.md
//!     section 5.1), keyed by (sequence, step, position = the row index). It is the same token, bit
//!     for bit, as token_choice.hpp's `gumbel_argmax` draws for the same key: the float block masses
//!     (within 3e-5 of the exact log-mass) only rule blocks out, and blocks whose keys are within
//!     2e-3 of the best are decided by their exact double masses;
//!   * p(x0) under softmax(z) and under softmax(z / T), and the entropy and top-2 margin of
//!     softmax(z / T), so that no policy needs a second pass over the vocabulary.
//! Top-k / top-p filtering is not part of this pass: token_choice.hpp applies it on the slower path
//! (a sort of the row), which `decode` takes only when those filters are set.
//!
//! Numerics: exponentials in float (a degree-5 polynomial, 2.4e-7 relative) summed per block of
//! 1024 entries in float and across blocks in double, with the entries equal to the row maximum
//! counted apart, so that log s = log c + log1p(rest / c) keeps nearly one-hot rows' entropy and
//! log-probabilities to full relative precision; rows whose entropy is below ~V*1e-30 (where float
//! exponentials underflow) are recomputed in double. Results agree with a two-pass double-precision
//! reference to ~1e-6 relative; tests/kernels checks 1e-5 for every variant and element type.
//!
//! Determinism: each row is computed by one thread with a fixed lane and combine order, so the
//! results are bit-identical for every thread count and batch composition. Different instruction
//! sets (`simd_isa`) may differ in the last bits of the statistics; the sampled token is the same
//! on all of them (its keys are computed exactly in double).
//!
//! Instruction sets (kernels/simd.hpp): headers under include/mdlm need only the C++ standard
//! library, so the kernels are written with GCC / Clang vector extensions and compiled several
//! times inside target regions (AVX-512, AVX2 + FMA, the build's baseline), i.e. target-attribute
//! multi-versioning; the variant is picked once at run time from the CPU (`detected_isa`), with the
//! double-precision scalar path as the fallback for other compilers. No -march flag is needed.
//!
//! Cost: one read of the row (16-bit rows are widened block by block into an L1-resident buffer).
//! Sampling (T > 0) adds one Philox evaluation per two blocks, a re-read of the winning block with
//! its per-entry Philox keys (vectorised) and the exact double key only for the few entries a float
//! filter cannot rule out. Measured figures: bench/RESULTS.md.

#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>

#include "mdlm/detail/errors.hpp"
#include "mdlm/kernels/detail/isa_variants.hpp"
#include "mdlm/kernels/detail/row_common.hpp"
#include "mdlm/kernels/half.hpp"
#include "mdlm/kernels/simd.hpp"
#include "mdlm/kernels/thread_pool.hpp"
#include "mdlm/logit_stats.hpp"
#include "mdlm/rng.hpp"
#include "mdlm/token_choice.hpp"

namespace mdlm {

//! The logit element types the kernels read: float, bf16 and fp16 (kernels/half.hpp).
template <class T>
concept logit_element = std::same_as<T, float> || std::same_as<T, bf16> || std::same_as<T, fp16>;

//! Options of `choose_rows`. Defaults: greedy (T = 0), best instruction set.
struct row_choice_options {
  //! Temperature T >= 0: 0 (default) = argmax, > 0 = a sample of softmax(z / T) (two-level Gumbel-max).
  double temperature = 0.0;
  counter_rng rng{};            //!< the run's generator (its seed); only used when T > 0
  std::uint32_t sequence = 0;   //!< random-number key of the canvas
  std::uint32_t step = 0;       //!< random-number key of the step
  //! Instruction set; `best` (default) = the fastest this CPU supports. Tests force the others.
  simd_isa isa = simd_isa::best;
};

namespace detail {

template <class T>
void validate_rows(std::span<const T> logits, std::size_t vocab, std::span<const std::size_t> rows,
                   std::size_t out_size, simd_isa isa) {
  require(vocab >= 1, "vocab = ", vocab, " must be >= 1");
  require(logits.size() % vocab == 0, "logits.size() = ", logits.size(), " is not a multiple of vocab = ", vocab);
  require(out_size == rows.size(), "out.size() = ", out_size, " differs from rows.size() = ", rows.size());
  require(isa_supported(isa), "isa = ", to_string(isa), " is not supported by this CPU or build");
  const std::size_t n_rows = logits.size() / vocab;
  for (std::size_t i = 0; i < rows.size(); ++i)
    require(rows[i] < n_rows && rows[i] <= std::numeric_limits<std::uint32_t>::max(), "rows[", i, "] = ", rows[i],
            " is outside the ", n_rows, " rows of logits");
}

struct rows_task {
  rows_fn fn;
  const row_job* job;
};

inline void run_rows(rows_fn fn, const row_job& job, std::size_t n, thread_pool* pool) noexcept {
  if (pool == nullptr || pool->size() == 1 || n < 2) {
    fn(job, 0, n);
    return;
  }
  rows_task task{fn, &job};
  pool->run(
      n,
      [](void* ctx, std::size_t i) noexcept {
        const auto* t = static_cast<const rows_task*>(ctx);
        t->fn(*t->job, i, i + 1);
      },
      &task);
}

template <class T>
[[nodiscard]] row_job make_job(std::span<const T> logits, std::size_t vocab, std::span<const std::size_t> rows,
                               const row_choice_options& options) noexcept {
  row_job job;
  job.logits = logits.data();
  job.format = format_of<T>;
  job.vocab = vocab;
  job.rows = rows.data();
  job.temperature = options.temperature;
  job.inv_t = options.temperature > 0.0 ? 1.0 / options.temperature : 1.0;
  job.rng = options.rng;
  job.sequence = options.sequence;
  job.step = options.step;
  return job;
}

}  // namespace detail

//! Statistics and chosen token of the rows `rows` of the R x V row-major matrix `logits`
//! (R = logits.size() / vocab): `out[i]` describes row `rows[i]`, whose index is also the position
//! that keys its random numbers. Rows are spread over `pool` (nullptr = the calling thread);
//! results do not depend on the pool size. See the file comment for the formulas.
//! @throws std::invalid_argument (naming the value) when vocab is 0, logits.size() is not a
//!         multiple of vocab, out.size() != rows.size(), a row index is out of range, the temperature
//!         is negative or not finite, or options.isa is not supported here.
//! Allocation-free; the row loop itself never throws.
template <logit_element T>
void choose_rows(std::span<const T> logits, std::size_t vocab, std::span<const std::size_t> rows,
                 std::span<row_choice> out, const row_choice_options& options = {}, thread_pool* pool = nullptr) {
  detail::validate_rows(logits, vocab, rows, out.size(), options.isa);
  detail::require(std::isfinite(options.temperature) && options.temperature >= 0.0,
                  "temperature = ", options.temperature, " must be finite and >= 0");
  detail::row_job job = detail::make_job(logits, vocab, rows, options);
  job.out = out.data();
  detail::run_rows(detail::rows_function<T>(resolve_isa(options.isa)), job, rows.size(), pool);
}

//! `logit_stats` of the rows `rows` of `logits` (R x V, row-major) into `out` (same length as
//! `rows`): the batched, vectorised `compute_logit_stats`. Same validation, threading and
//! determinism as `choose_rows`.
template <logit_element T>
void batched_logit_stats(std::span<const T> logits, std::size_t vocab, std::span<const std::size_t> rows,
                         std::span<logit_stats> out, thread_pool* pool = nullptr, simd_isa isa = simd_isa::best) {
  detail::validate_rows(logits, vocab, rows, out.size(), isa);
  row_choice_options options;
  options.isa = isa;
  detail::row_job job = detail::make_job(logits, vocab, rows, options);
  job.stats_out = out.data();
  detail::run_rows(detail::rows_function<T>(resolve_isa(isa)), job, rows.size(), pool);
}

//! The `position_info` (token_choice.hpp) that the unmasking policies consume, from a valid row's
//! kernel result at canvas position `position`: the same fields `choose_token` fills for a choice
//! without top-k / top-p.
[[nodiscard]] inline position_info to_position_info(const row_choice& c, std::size_t position) noexcept {
  position_info info;
  info.position = position;
  info.token = c.token;
  info.prob = c.prob;
  info.tempered_prob = c.tempered_prob;
  info.entropy = c.stats.entropy;
  info.tempered_entropy = c.tempered_entropy;
  info.margin = c.stats.margin();
  info.tempered_margin = c.tempered_margin;
  info.stats = c.stats;
  return info;
}

//! One row: `choose_rows` for a single row at canvas position `position`.
template <logit_element T>
[[nodiscard]] row_choice choose_row(std::span<const T> row, const row_choice_options& options = {},
                                    std::uint32_t position = 0) {
  detail::require(!row.empty(), "row is empty: a logit row needs at least one entry");
  detail::require(isa_supported(options.isa), "isa = ", to_string(options.isa), " is not supported by this CPU or build");
  detail::require(std::isfinite(options.temperature) && options.temperature >= 0.0,
                  "temperature = ", options.temperature, " must be finite and >= 0");
  const std::size_t index = 0;
  detail::row_job job = detail::make_job(row, row.size(), std::span<const std::size_t>(&index, 1), options);
  // The position keys the random numbers; the row itself is row 0 of a one-row matrix.
  row_choice out;
  job.out = &out;
  job.position_override = position;
  job.has_position_override = true;
  detail::rows_function<T>(resolve_isa(options.isa))(job, 0, 1);
  return out;
}

}  // namespace mdlm
