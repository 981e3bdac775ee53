// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! Prophet-style early exit (arXiv 2508.19982; pixeli99/Prophet `generate_earlyexit.py`, rules in
//! shared/spec/samplers.md section 11), the peer of the H_UB exit: at every step, BEFORE the policy's
//! transfer, take the mean raw-logit gap g = z_(1) - z_(2) over the answer positions and exit when it
//! reaches a phase-dependent threshold,
//!
//!     progress = (step + 1) / steps          (Prophet counts global_step from 1)
//!     tau      = 7.5 if progress < 0.33;  5.0 if progress < 0.67;  2.5 otherwise
//!     if mean gap >= tau: write the argmax of EVERY masked position of the generation region; stop
//!
//! Differences from Prophet's code, both forced by mdlm's model contract: the answer positions are the
//! template's answer span (Prophet: 5 positions after a forced "The answer is"), and the mean runs over
//! the answer positions still masked, because a ConditionalModel's rows at unmasked positions are
//! unspecified (Prophet averages over its fixed window). When no answer position is masked the test
//! passes at once (the answer is decided). The gap is taken on the raw row, z[top1] - z[top2], in
//! double precision (+inf when the second-best token is banned).

#include <cmath>
#include <cstddef>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "mdlm/detail/errors.hpp"
#include "mdlm/infilling/early_exit.hpp"
#include "mdlm/infilling/template.hpp"
#include "mdlm/logit_stats.hpp"
#include "mdlm/observer.hpp"
#include "mdlm/types.hpp"

namespace mdlm {

//! Prophet's phase thresholds on the mean top-2 logit gap. Defaults: the released code's values.
struct prophet_thresholds {
  double early = 7.5;          //!< tau while progress < early_until
  double middle = 5.0;         //!< tau while early_until <= progress < middle_until
  double late = 2.5;           //!< tau from middle_until on
  double early_until = 0.33;   //!< first phase boundary on progress, in (0, middle_until]
  double middle_until = 0.67;  //!< second phase boundary on progress

  //! tau for a progress value (strict `<` at both boundaries, as Prophet).
  [[nodiscard]] double at(double progress) const noexcept {
    return progress < early_until ? early : progress < middle_until ? middle : late;
  }
  //! Throws std::invalid_argument naming the bad field (thresholds NaN, boundaries not
  //! 0 < early_until <= middle_until).
  void validate() const {
    detail::require(!std::isnan(early), "early = ", early, " must not be NaN");
    detail::require(!std::isnan(middle), "middle = ", middle, " must not be NaN");
    detail::require(!std::isnan(late), "late = ", late, " must not be NaN");
    detail::require(early_until > 0.0, "early_until = ", early_until, " must be > 0");
    detail::require(middle_until >= early_until, "middle_until = ", middle_until,
                    " must be >= early_until = ", early_until);
  }
};

//! What the Prophet observer saw for one canvas.
struct prophet_exit_result {
  bool exited = false;                     //!< true when the gap test stopped the loop
  exit_reason reason = exit_reason::none;  //!< bound (gap >= tau) or invalid_logits
  std::size_t exit_step = 0;               //!< 0-based step of the deciding call
  std::size_t nfe = 0;                     //!< model calls seen
  std::vector<double> mean_gap;            //!< mean raw-logit gap of every call (+inf: no answer mask)
  std::vector<double> threshold;           //!< tau of every call
  std::size_t filled = 0;                  //!< masked positions written with their argmax at the exit
  std::size_t reasoning_filled = 0;        //!< of those, reasoning positions
  std::string message;                     //!< set when reason is invalid_logits
};

//! The Prophet exit observer (an `on_logits` observer; one object per canvas or per batch, results per
//! `step_event::batch_index`).
class prophet_exit {
 public:
  //! @param t      the template (spans must fit its canvas, answer span non-empty)
  //! @param steps  the step budget progress is measured against: `decode_options::steps` for scheduled
  //!               policies (Prophet runs LLaDA with steps = 256), the NFE budget for adaptive ones
  //!               (e.g. the region length); must be > 0
  //! @param th     phase thresholds (defaults 7.5 / 5.0 / 2.5 at 0.33 / 0.67)
  //! @throws std::invalid_argument naming steps, a threshold field or a span.
  prophet_exit(const reasoning_template& t, std::size_t steps, prophet_thresholds th = {})
      : steps_(steps), th_(th) {
    detail::require(steps > 0, "steps = ", steps, " must be > 0");
    th.validate();
    validate_spans(t.spans, t.canvas.size());
    spans_ = t.spans;
    length_ = t.canvas.size();
    states_.resize(1);
  }

  //! The result of canvas `batch_index`.
  //! @throws std::invalid_argument naming an index that was never seen.
  [[nodiscard]] const prophet_exit_result& result(std::size_t batch_index = 0) const {
    detail::require(batch_index < states_.size(), "batch_index = ", batch_index, " has no result (",
                    states_.size(), " canvases seen)");
    return states_[batch_index];
  }

  //! Clears every result.
  void reset() {
    for (auto& s : states_) s = {};
  }

  //! Reads only row statistics (observer.hpp): usable with row-statistics models.
  static constexpr bool reads_logit_rows = false;

  //! The rows each call needs: every masked position of the region (an exit fills them all with
  //! their argmax; the answer rows also give the top-2 gap).
  void add_rows(const row_query& q, std::vector<std::size_t>& rows) const {
    for (std::size_t p = q.region_begin; p < q.region_end; ++p)
      if (q.tokens[p] == q.mask) rows.push_back(p);
  }

  //! The gap test of one call, before the policy's selection.
  observer_action on_logits(step_event& e) {
    if (e.batch_index >= states_.size()) states_.resize(e.batch_index + 1);
    prophet_exit_result& st = states_[e.batch_index];
    detail::require(e.tokens.size() == length_, "prophet_exit: the canvas has ", e.tokens.size(),
                    " positions but the template has ", length_);
    double sum = 0.0;
    std::size_t n = 0;
    for (std::size_t p = spans_.answer.begin; p < spans_.answer.end; ++p) {
      if (e.tokens[p] != e.mask) continue;
      const row_choice* c = e.stats_at(p);
      if (c == nullptr || !c->stats.valid) return fail(st, e, p);
      sum += c->stats.logit_gap();  // z_(1) - z_(2); +inf without a finite second-best logit
      ++n;
    }
    const double gap = n > 0 ? sum / static_cast<double>(n) : std::numeric_limits<double>::infinity();
    const double progress = static_cast<double>(e.step + 1) / static_cast<double>(steps_);
    const double tau = th_.at(progress);
    st.mean_gap.push_back(gap);
    st.threshold.push_back(tau);
    st.nfe = e.nfe;
    if (!(gap >= tau)) return observer_action::proceed;
    // Check every row first so that an invalid row leaves the canvas untouched.
    for (std::size_t p = e.region_begin; p < e.region_end; ++p) {
      if (e.tokens[p] != e.mask) continue;
      const row_choice* c = e.stats_at(p);
      if (c == nullptr || !c->stats.valid) return fail(st, e, p);
    }
    for (std::size_t p = e.region_begin; p < e.region_end; ++p) {
      if (e.tokens[p] != e.mask) continue;
      e.tokens[p] = e.stats_at(p)->stats.top1;
      ++st.filled;
      if (spans_.reasoning.contains(p)) ++st.reasoning_filled;
    }
    st.exited = true;
    st.reason = exit_reason::bound;
    st.exit_step = e.step;
    return observer_action::stop;
  }

 private:
  static observer_action fail(prophet_exit_result& st, const step_event& e, std::size_t p) {
    st.reason = exit_reason::invalid_logits;
    st.exit_step = e.step;
    st.nfe = e.nfe;
    st.message = detail::concat("the model returned an invalid logit row (NaN, +inf or all -inf) at step ", e.step,
                                ", position ", p);
    return observer_action::stop;
  }

  std::size_t steps_;
  prophet_thresholds th_;
  template_spans spans_;
  std::size_t length_ = 0;
  std::vector<prophet_exit_result> states_;
};

}  // namespace mdlm
