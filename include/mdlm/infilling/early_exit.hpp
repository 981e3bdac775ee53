// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! Early exit on the answer-entropy bound (arXiv 2510.19990, section 4.1): with a reasoning template,
//! after every model call compute
//!
//!     H_UB = sum over the answer positions still masked at that call of H(a_j | c, r_unmasked)   (eq. 3)
//!
//! which bounds the joint entropy H(a | c, r_unmasked) of the answer; when H_UB < gamma (strict), write
//! the argmax of every still-masked answer position from that same call and stop, skipping the rest
//! of the reasoning. It is a decode observer, so it composes with every policy, block length and step
//! mode: `mdlm::decode(model, t.canvas, options, rng, exit)`.
//!
//! Timing within a step: H_UB is computed in `on_logits` from the call's rows over the answer positions
//! masked when the call was made; the policy's selection for that step is then applied as usual (it
//! is work of the same call), and in `on_step` the observer fills the answer positions that are still
//! masked with their argmax from the same rows and stops the loop. Two further rules:
//!   * once the answer span has no mask left after a step (e.g. an any-order policy decoded it), the
//!     bound of the next call would be 0 < gamma, so the observer stops right away instead of spending
//!     that call (`exit_reason::answer_complete`);
//!   * an exit is only taken when masks remain in the generation region; if the step decoded the last
//!     mask, the run simply completes (nothing is skipped, `exited` stays false).
//! Paper settings (table 2): gamma = 0.1 for LLaDA on GSM8K with one-token entropy decoding or MED
//! lambda = 0.2 (NFE 256 -> 77 with MED + exit), 0.3 on MATH500, 0.7 for Dream.

#include <cmath>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "mdlm/detail/errors.hpp"
#include "mdlm/infilling/template.hpp"
#include "mdlm/logit_stats.hpp"
#include "mdlm/observer.hpp"
#include "mdlm/types.hpp"

namespace mdlm {

//! Why an exit observer stopped the loop.
enum class exit_reason {
  none,             //!< it did not stop the loop
  bound,            //!< the exit test fired (H_UB < gamma, or Prophet's gap >= tau)
  answer_complete,  //!< the answer span had no mask left after a step
  invalid_logits,   //!< the model returned an invalid row at an answer position (see `message`)
};

//! What the early-exit observer saw for one canvas.
struct early_exit_result {
  bool exited = false;               //!< true when the observer stopped the loop (reason bound / complete)
  exit_reason reason = exit_reason::none;  //!< why it stopped
  std::size_t exit_step = 0;         //!< 0-based step of the call whose rows decided the exit
  std::size_t nfe = 0;               //!< model calls seen (exit_step + 1 after an exit)
  //! H_UB of every call, in nats, over the answer positions masked when the call was made.
  std::vector<double> h_ub;
  std::size_t answer_filled = 0;           //!< answer positions written with their argmax at the exit
  std::size_t reasoning_left_masked = 0;   //!< reasoning positions still masked after the exit
  std::string message;                     //!< set when reason is invalid_logits
};

//! The early-exit observer. One object serves one canvas or a whole batch (`decode_batch`): results
//! are kept per `step_event::batch_index`. Reuse across runs needs `reset()`.
class early_exit {
 public:
  //! Early exit for `t` (or for every canvas of a batch built with the same spans).
  //! @param t      the template (its spans must fit its canvas; the answer span must be non-empty)
  //! @param gamma  exit threshold in nats, > 0 (default 0.1, the paper's LLaDA GSM8K setting); +inf
  //!               exits at the first call
  //! @throws std::invalid_argument naming gamma (<= 0 or NaN) or the offending span.
  explicit early_exit(const reasoning_template& t, double gamma = 0.1) : gamma_(gamma), shared_(true) {
    validate_gamma(gamma);
    validate_spans(t.spans, t.canvas.size());
    spans_.push_back(t.spans);
    lengths_.push_back(t.canvas.size());
    states_.resize(1);
  }

  //! Early exit for a batch of templates: canvas b of `decode_batch` uses `batch[b]`'s spans.
  //! @throws std::invalid_argument for an empty batch, a bad gamma or bad spans (naming the template).
  early_exit(std::span<const reasoning_template> batch, double gamma) : gamma_(gamma), shared_(false) {
    validate_gamma(gamma);
    detail::require(!batch.empty(), "the batch of templates is empty");
    for (const auto& t : batch) {
      validate_spans(t.spans, t.canvas.size());
      spans_.push_back(t.spans);
      lengths_.push_back(t.canvas.size());
    }
    states_.resize(batch.size());
  }

  //! The threshold gamma.
  [[nodiscard]] double gamma() const noexcept { return gamma_; }

  //! The result of canvas `batch_index` (0 for a single decode).
  //! @throws std::invalid_argument when no canvas with that index was seen (single-template form) or
  //!         the index exceeds the batch (the message names the index).
  [[nodiscard]] const early_exit_result& result(std::size_t batch_index = 0) const {
    detail::require(batch_index < states_.size(), "batch_index = ", batch_index, " has no result (",
                    states_.size(), " canvases seen)");
    return states_[batch_index].result;
  }

  //! Clears every result (for another decode run with the same object).
  void reset() {
    for (auto& s : states_) s = {};
  }

  //! Reads only row statistics (observer.hpp): usable with row-statistics models.
  static constexpr bool reads_logit_rows = false;

  //! The rows each call needs: the masked answer positions (their entropies and argmax).
  void add_rows(const row_query& q, std::vector<std::size_t>& rows) const {
    const token_span a = spans_for(q.batch_index).answer;
    for (std::size_t p = a.begin; p < a.end && p < q.tokens.size(); ++p)
      if (q.tokens[p] == q.mask) rows.push_back(p);
  }

  //! Computes H_UB of this call over the answer positions masked now (before the policy's update).
  observer_action on_logits(step_event& e) {
    state& st = state_for(e);
    const token_span a = spans_for(e.batch_index).answer;
    double h = 0.0;
    for (std::size_t p = a.begin; p < a.end; ++p) {
      if (e.tokens[p] != e.mask) continue;
      const row_choice* c = e.stats_at(p);
      if (c == nullptr || !c->stats.valid) return fail(st, e, p);
      h += c->stats.entropy;
    }
    st.result.h_ub.push_back(h);
    st.result.nfe = e.nfe;
    st.pending = h < gamma_;
    return observer_action::proceed;
  }

  //! After the policy's update: fills the still-masked answer positions and stops when H_UB < gamma,
  //! or stops when the answer span is complete.
  observer_action on_step(step_event& e) {
    state& st = state_for(e);
    const template_spans& sp = spans_for(e.batch_index);
    const bool fire = st.pending;
    st.pending = false;
    if (!masks_in(e, {e.region_begin, e.region_end})) return observer_action::proceed;
    if (fire) {
      std::size_t filled = 0;
      for (std::size_t p = sp.answer.begin; p < sp.answer.end; ++p) {
        if (e.tokens[p] != e.mask) continue;
        // Validity was checked in on_logits for every answer position masked at this call.
        e.tokens[p] = e.stats_at(p)->stats.top1;
        ++filled;
      }
      return finish(st, e, exit_reason::bound, filled, sp);
    }
    if (!masks_in(e, sp.answer)) return finish(st, e, exit_reason::answer_complete, 0, sp);
    return observer_action::proceed;
  }

 private:
  struct state {
    early_exit_result result{};
    bool pending = false;
  };

  static void validate_gamma(double gamma) {
    detail::require(!std::isnan(gamma) && gamma > 0.0, "gamma = ", gamma, " must be > 0");
  }

  [[nodiscard]] const template_spans& spans_for(std::size_t b) const noexcept {
    return shared_ || b >= spans_.size() ? spans_[0] : spans_[b];
  }

  state& state_for(const step_event& e) {
    const std::size_t b = e.batch_index;
    if (shared_ && b >= states_.size()) states_.resize(b + 1);
    detail::require(b < states_.size(), "early_exit: batch_index = ", b, " exceeds the batch of ", states_.size(),
                    " templates");
    const std::size_t len = shared_ ? lengths_[0] : lengths_[b];
    detail::require(e.tokens.size() == len, "early_exit: the canvas has ", e.tokens.size(),
                    " positions but the template has ", len);
    return states_[b];
  }

  static std::size_t masks_in(const step_event& e, token_span s) noexcept {
    std::size_t n = 0;
    for (std::size_t p = s.begin; p < s.end; ++p) n += e.tokens[p] == e.mask ? 1 : 0;
    return n;
  }

  static observer_action finish(state& st, const step_event& e, exit_reason why, std::size_t filled,
                                const template_spans& sp) {
    st.result.exited = true;
    st.result.reason = why;
    st.result.exit_step = e.step;
    st.result.answer_filled = filled;
    st.result.reasoning_left_masked = masks_in(e, sp.reasoning);
    return observer_action::stop;
  }

  static observer_action fail(state& st, const step_event& e, std::size_t p) {
    st.result.reason = exit_reason::invalid_logits;
    st.result.exit_step = e.step;
    st.result.nfe = e.nfe;
    st.result.message = detail::concat("the model returned an invalid logit row (NaN, +inf or all -inf) at step ",
                                       e.step, ", answer position ", p);
    return observer_action::stop;
  }

  double gamma_;
  bool shared_;
  std::vector<template_spans> spans_;
  std::vector<std::size_t> lengths_;
  std::vector<state> states_;
};

}  // namespace mdlm
