// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! Fixed-count unmasking: k positions per step, ranked by a score, with LLaDA's per-block schedule,
//! Dream's timestep schedule or a constant k (the paper's sigma_{ENTROPY,k}, arXiv 2510.19990
//! table 1).

#include <cmath>
#include <cstddef>
#include <span>

#include "mdlm/detail/errors.hpp"
#include "mdlm/policy.hpp"
#include "mdlm/schedules/dream.hpp"
#include "mdlm/schedules/llada.hpp"

namespace mdlm {

//! The score a fixed-count policy ranks candidates by (higher is unmasked first; ties to the lower
//! position).
enum class score_kind {
  confidence,           //!< p(x0) under softmax(z): LLaDA `low_confidence` (ML-GSAI/LLaDA generate.py)
  tempered_confidence,  //!< p(x0) under the sampling distribution: Dream `maskgit_plus`
  margin,               //!< p_(1) - p_(2) of the sampling distribution: Dream `topk_margin`
  neg_entropy,          //!< -H of the sampling distribution: Dream `entropy`, sigma_ENTROPY
  random,               //!< a uniform number per position: LLaDA `random` (a uniformly random k-subset)
  left_to_right,        //!< -position: the leftmost masked positions first
};

//! How many positions a fixed-count policy unmasks per step.
enum class count_schedule {
  per_step,         //!< a constant `per_step` per model call until the block is done (adaptive NFE)
  llada_blocks,     //!< LLaDA `get_num_transfer_tokens` over `steps / blocks` steps per block
  dream_timesteps,  //!< Dream: int(N (1 - s/t)) of the N masked positions, all at the last step
};

//! Unmask a fixed number of positions per step, chosen by `score`. Sources: LLaDA generate.py
//! (low_confidence, random), Dream generation_utils.py (maskgit_plus, topk_margin, entropy,
//! alg_temp); shared/spec/samplers.md sections 5-7. Defaults: LLaDA low_confidence.
struct fixed_count {
  score_kind score = score_kind::confidence;            //!< ranking score
  count_schedule schedule = count_schedule::llada_blocks;  //!< counts per step
  std::size_t per_step = 1;    //!< k for `count_schedule::per_step` (>= 1)
  double eps = 1e-3;           //!< Dream's final timestep, in (0, 1)
  //! Dream `alg_temp`: 0 (default) = deterministic top-k; > 0 = positions sampled without
  //! replacement from softmax(score / alg_temp), drawn by the equivalent Gumbel-top-k.
  double alg_temp = 0.0;

  void validate() const {
    detail::require(schedule != count_schedule::per_step || per_step >= 1, "per_step = ", per_step,
                    " must be >= 1");
    detail::require(eps > 0.0 && eps < 1.0, "eps = ", eps, " must lie in (0, 1)");
    detail::require(std::isfinite(alg_temp) && alg_temp >= 0.0, "alg_temp = ", alg_temp,
                    " must be finite and >= 0");
  }
  [[nodiscard]] bool scheduled() const noexcept { return schedule != count_schedule::per_step; }
  //! Reads only the candidates (policy.hpp): usable with row-statistics models.
  static constexpr bool reads_logit_rows = false;

  //! Number of positions to unmask at this step (before clamping to the candidates).
  [[nodiscard]] std::size_t count(const step_context& ctx) const noexcept {
    switch (schedule) {
      case count_schedule::per_step: return per_step;
      case count_schedule::llada_blocks:
        // decode never calls past the schedule (step_in_block < steps_per_block).
        return llada_transfer_count(ctx.block_masked_at_start, ctx.steps_per_block, ctx.step_in_block);
      case count_schedule::dream_timesteps:
        return dream_transfer_count(ctx.masked_total, ctx.total_steps, static_cast<float>(eps), ctx.step);
    }
    return 0;
  }

  //! The score of candidate `c` (higher first).
  [[nodiscard]] double key(const step_context& ctx, const position_info& c) const noexcept {
    switch (score) {
      case score_kind::confidence: return key_as<score_kind::confidence>(ctx, c);
      case score_kind::tempered_confidence: return key_as<score_kind::tempered_confidence>(ctx, c);
      case score_kind::margin: return key_as<score_kind::margin>(ctx, c);
      case score_kind::neg_entropy: return key_as<score_kind::neg_entropy>(ctx, c);
      case score_kind::random: return key_as<score_kind::random>(ctx, c);
      case score_kind::left_to_right: return key_as<score_kind::left_to_right>(ctx, c);
    }
    return 0.0;
  }

  void select(const step_context& ctx, std::span<const position_info> cand, selection& out) const {
    // The score is a template argument of the ranking pass, so that the pass over the candidates
    // has no branch on it.
    switch (score) {
      case score_kind::confidence: return select_as<score_kind::confidence>(ctx, cand, out);
      case score_kind::tempered_confidence: return select_as<score_kind::tempered_confidence>(ctx, cand, out);
      case score_kind::margin: return select_as<score_kind::margin>(ctx, cand, out);
      case score_kind::neg_entropy: return select_as<score_kind::neg_entropy>(ctx, cand, out);
      case score_kind::random: return select_as<score_kind::random>(ctx, cand, out);
      case score_kind::left_to_right: return select_as<score_kind::left_to_right>(ctx, cand, out);
    }
  }

 private:
  template <score_kind S>
  [[nodiscard]] static double key_as(const step_context& ctx, const position_info& c) noexcept {
    if constexpr (S == score_kind::confidence) {
      return c.prob;
    } else if constexpr (S == score_kind::tempered_confidence) {
      return c.tempered_prob;
    } else if constexpr (S == score_kind::margin) {
      return c.tempered_margin;
    } else if constexpr (S == score_kind::neg_entropy) {
      return -c.tempered_entropy;
    } else if constexpr (S == score_kind::random) {
      return ctx.rng.uniform(rng_stream::position, ctx.sequence, static_cast<std::uint32_t>(ctx.step),
                             static_cast<std::uint32_t>(c.position));
    } else {
      return -static_cast<double>(c.position);
    }
  }

  template <score_kind S>
  void select_as(const step_context& ctx, std::span<const position_info> cand, selection& out) const {
    const std::size_t k = count(ctx);
    if (alg_temp <= 0.0) {
      if constexpr (S == score_kind::random) {
        // The scores (uniform 0 of each cell) all at once, by the vectorised Philox.
        const double* u = detail::candidate_uniforms(ctx, cand, 0, out);
        detail::top_k(cand.size(), k, [u](std::size_t i) { return u[i]; }, out);
      } else {
        detail::top_k(cand.size(), k, [&](std::size_t i) { return key_as<S>(ctx, cand[i]); }, out);
      }
      return;
    }
    // Gumbel-top-k: the top k of score/alg_temp + Gumbel noise is a sample without replacement from
    // softmax(score/alg_temp), as torch.multinomial(replacement=False) draws. The noise is uniform
    // 1 of each cell.
    const double* u = detail::candidate_uniforms(ctx, cand, 1, out);
    const auto noisy = [&](std::size_t i) { return key_as<S>(ctx, cand[i]) / alg_temp - std::log(-std::log(u[i])); };
    detail::top_k(cand.size(), k, noisy, out);
  }
};

//! Dream `origin`: each masked position is unmasked independently with probability 1 - s/t (1 at
//! the last step), Dream generation_utils.py `alg='origin'`. Default eps 1e-3 as in Dream's
//! generation_config.json.
struct dream_origin {
  double eps = 1e-3;  //!< Dream's final timestep, in (0, 1)

  void validate() const { detail::require(eps > 0.0 && eps < 1.0, "eps = ", eps, " must lie in (0, 1)"); }
  [[nodiscard]] bool scheduled() const noexcept { return true; }
  //! Reads only the candidates (policy.hpp): usable with row-statistics models.
  static constexpr bool reads_logit_rows = false;

  //! Probability that a masked position is unmasked at this step.
  [[nodiscard]] double transfer_probability(const step_context& ctx) const noexcept {
    return ctx.step < ctx.total_steps
               ? static_cast<double>(dream_transfer_fraction(ctx.total_steps, static_cast<float>(eps), ctx.step))
               : 1.0;
  }

  void select(const step_context& ctx, std::span<const position_info> cand, selection& out) const {
    const double p = transfer_probability(ctx);
    // Uniform 0 of each cell, all at once by the vectorised Philox.
    const double* u = detail::candidate_uniforms(ctx, cand, 0, out);
    detail::append_where(out.unmask, cand.size(), [&](std::size_t i) { return u[i] < p; });
  }
};

}  // namespace mdlm
