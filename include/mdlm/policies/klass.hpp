// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! KLASS: KL-adaptive stability sampling (arXiv 2511.05664; shkim0116/KLASS
//! src/model/llada_klass.py and dream_klass.py). The stateful policy of mdlm: it remembers each
//! position's previous distribution and a rolling history of KL divergences.

#include <cmath>
#include <limits>
#include <cstddef>
#include <span>
#include <vector>

#include "mdlm/detail/errors.hpp"
#include "mdlm/kl_history.hpp"
#include "mdlm/observer.hpp"
#include "mdlm/policy.hpp"
#include "mdlm/schedules/llada.hpp"

namespace mdlm {

//! KLASS: with p_t = softmax(z_t) at every masked position and
//! KL_t(l) = sum_v p_t log((p_t + 1e-12) / (p_{t-1} + 1e-12)) (p_{-1} = 0, so the first KL is huge),
//! a position is *ready* when its last `history` KL values are all < kl_threshold, the block has run
//! at least history - 1 steps, and its confidence p_t(x0) > confidence_threshold (strict, the LLaDA
//! version; `strict_confidence = false` gives the Dream version's >=). Ready positions of the block
//! are all unmasked; when none is ready, the fallback unmasks the top-confidence positions: LLaDA's
//! per-block schedule count with `fallback_steps_per_block` steps (> 0), or one token (0, Dream).
//! The history is kept for every masked position of the generation region (shared across blocks).
//! Defaults: the LLaDA GSM8K script (tau_c 0.6, kappa 0.015, h 2).
//! Model interfaces: KLASS needs the KL at every masked position of the canvas each step. It
//! declares those rows (`add_rows`) and asks row-statistics models for `row_choice::kl`
//! (`requests_kl`), so on that interface the model computes KL_t where the logits are (the CPU
//! backend by the same `kl_to_previous` as here); on the logits interface the policy computes it
//! from the rows. Both give the same KL bit for bit on the CPU, hence the same decisions.
struct klass {
  static constexpr bool reads_logit_rows = false;
  static constexpr bool requests_kl = true;

  double kl_threshold = 0.015;          //!< kappa > 0; +inf = every position is stable
  double confidence_threshold = 0.6;    //!< tau_c in [0, 1]
  std::size_t history = 2;              //!< h >= 1
  bool strict_confidence = true;        //!< true: p > tau_c (LLaDA); false: p >= tau_c (Dream)
  std::size_t fallback_steps_per_block = 0;  //!< 0: fallback unmasks one token

  //! Per-canvas state: previous distributions (L x V, float; allocated at the first step on the
  //! logits interface, unused on the row-statistics one) and the KL history ring (L x h).
  struct state_type {
    std::size_t vocab = 0;
    std::vector<float> previous;        // p_{t-1} per position
    std::vector<double> kl;             // ring of the last h KL values per position
    std::vector<std::size_t> count;     // KL values recorded per position
  };

  void validate() const {
    detail::require(!std::isnan(kl_threshold) && kl_threshold > 0.0, "kl_threshold = ", kl_threshold,
                    " must be > 0 (+inf allowed)");
    detail::require(confidence_threshold >= 0.0 && confidence_threshold <= 1.0,
                    "confidence_threshold = ", confidence_threshold, " must lie in [0, 1]");
    detail::require(history >= 1, "history = ", history, " must be >= 1");
  }
  [[nodiscard]] bool scheduled() const noexcept { return false; }

  [[nodiscard]] state_type make_state(const decode_setup& setup) const {
    state_type st;
    st.vocab = setup.vocab;
    st.kl.assign(setup.length * history, 0.0);
    st.count.assign(setup.length, 0);
    return st;
  }

  //! Every masked position of the canvas, on the row-statistics interface: KLASS records their KL
  //! at every step (on the logits interface it computes the KL from the rows, so it declares none).
  void add_rows(const row_query& q, std::vector<std::size_t>& rows) const {
    if (q.logits) return;
    for (std::size_t p = 0; p < q.tokens.size(); ++p)
      if (q.tokens[p] == q.mask) rows.push_back(p);
  }
  //! Appends one KL value to the history of position `pos`.
  void record(state_type& st, std::size_t pos, double kl) const noexcept {
    const std::size_t n = st.count[pos];
    // The ring slot n mod h; a power-of-two h (the default 2) takes a mask instead of a division.
    const std::size_t slot = (history & (history - 1)) == 0 ? n & (history - 1) : n % history;
    st.kl[pos * history + slot] = kl;
    ++st.count[pos];
  }
  //! The KL of position `pos` at this step: from its logit row (logits interface) or from the
  //! model's `row_choice::kl` (row-statistics interface; NaN, so never stable, if it is missing).
  [[nodiscard]] double step_kl(const step_context& ctx, state_type& st, std::size_t pos) const {
    if (!ctx.logits.empty()) {
      if (st.previous.empty()) st.previous.assign(ctx.tokens.size() * st.vocab, 0.0f);
      return kl_to_previous(ctx.logits.subspan(pos * ctx.vocab, ctx.vocab),
                            std::span<float>(st.previous.data() + pos * st.vocab, st.vocab));
    }
    const row_choice* c = ctx.stats_at(pos);
    return c != nullptr ? c->kl : std::numeric_limits<double>::quiet_NaN();
  }

  [[nodiscard]] bool stable(const state_type& st, std::size_t pos) const noexcept {
    if (st.count[pos] < history) return false;
    for (std::size_t j = 0; j < history; ++j)
      if (!(st.kl[pos * history + j] < kl_threshold)) return false;
    return true;
  }

  void select(const step_context& ctx, std::span<const position_info> cand, state_type& st, selection& out) const {
    // Record this step's KL for every masked position of the canvas (history shared across blocks).
    if (!ctx.logits.empty()) {
      for (std::size_t pos = 0; pos < ctx.tokens.size(); ++pos)
        if (ctx.tokens[pos] == ctx.mask) record(st, pos, step_kl(ctx, st, pos));
    } else {
      // Row-statistics interface: the rows are ascending, as the masked positions, so one merged
      // walk finds each position's row (what `step_kl` finds by binary search).
      std::size_t r = 0;
      const std::size_t rows = ctx.row_positions.size();
      for (std::size_t pos = 0; pos < ctx.tokens.size(); ++pos) {
        if (ctx.tokens[pos] != ctx.mask) continue;
        while (r < rows && ctx.row_positions[r] < pos) ++r;
        record(st, pos, r < rows && ctx.row_positions[r] == pos ? ctx.row_stats[r].kl
                                                                 : std::numeric_limits<double>::quiet_NaN());
      }
    }
    if (cand.empty()) return;
    const bool warm = ctx.step_in_block + 1 >= history;
    if (warm) {
      detail::append_where(out.unmask, cand.size(), [&](std::size_t i) {
        const double c = cand[i].prob;
        const std::size_t pos = cand[i].position;
        bool ready = strict_confidence ? c > confidence_threshold : c >= confidence_threshold;
        ready &= st.count[pos] >= history;  // as `stable`, without its early exits
        for (std::size_t j = 0; j < history; ++j) ready &= st.kl[pos * history + j] < kl_threshold;
        return ready;
      });
    }
    if (!out.unmask.empty()) return;
    std::size_t k = 1;
    if (fallback_steps_per_block > 0 && ctx.step_in_block < fallback_steps_per_block)
      k = llada_transfer_count(ctx.block_masked_at_start, fallback_steps_per_block, ctx.step_in_block);
    detail::top_k(cand.size(), k, [&](std::size_t i) { return cand[i].prob; }, out);
  }
};

}  // namespace mdlm
