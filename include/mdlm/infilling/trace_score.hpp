// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! Trace scoring, appendix E of arXiv 2510.19990: unmask a given reasoning trace left to right, one
//! position per step, and read the answer score phi (eq. 4) and the answer-entropy bound H_UB (eq. 3)
//! at every step. The paper averages phi over all steps and thresholds the average to separate traces
//! a judge rates correct from incorrect ones (AUC 0.74 for LLaDA, its fig. 6); `auc.hpp` measures such
//! a separation.

#include <cstddef>
#include <span>
#include <vector>

#include "mdlm/concepts.hpp"
#include "mdlm/detail/errors.hpp"
#include "mdlm/infilling/answer_score.hpp"
#include "mdlm/infilling/template.hpp"
#include "mdlm/types.hpp"

namespace mdlm {

//! The curves of one scored trace. Entry t (t = 0 .. R) is read with the first t reasoning tokens of
//! the trace unmasked and the rest of the reasoning block and the whole answer block masked: entry 0
//! is the prompt alone, entry R the complete trace.
struct trace_scores {
  std::vector<double> phi;   //!< phi_t = sum_j log p(a_j = a*_j | c, r_<t) (eq. 4), R + 1 entries
  std::vector<double> h_ub;  //!< H_UB_t = sum_j H(a_j | c, r_<t) (eq. 3), R + 1 entries
  double mean_phi = 0.0;     //!< average of `phi` (the paper's trace score)
  double mean_h_ub = 0.0;    //!< average of `h_ub`
};

//! Scores `trace` as a reasoning for `answer` under `model` (R + 1 model calls, R = reasoning length).
//! @param model   any ConditionalModel (exact models are read in double precision)
//! @param t       the template (prompt, delimiter and suffix are taken from its canvas)
//! @param trace   the complete reasoning, exactly `t.spans.reasoning.size()` tokens, none the mask token
//! @param answer  the known answer a*, exactly `t.spans.answer.size()` tokens, none the mask token
//! @throws std::invalid_argument naming the bad value (spans, trace or answer length, a mask token in
//!         the trace or answer, ids outside the vocabulary); std::runtime_error on an invalid model row
//!         at an answer position.
template <ConditionalModel Model>
[[nodiscard]] trace_scores score_trace(Model& model, const reasoning_template& t, std::span<const token_id> trace,
                                       std::span<const token_id> answer) {
  const auto vocab = static_cast<std::size_t>(model.vocab_size());
  const auto mask = static_cast<token_id>(model.mask_token());
  const template_spans& sp = t.spans;
  validate_spans(sp, t.canvas.size());
  detail::require(trace.size() == sp.reasoning.size(), "trace length ", trace.size(),
                  " differs from the reasoning span length ", sp.reasoning.size());
  detail::require_no_mask(trace, "trace", mask);
  detail::require_tokens_in_vocab(trace, vocab, "trace");
  detail::require_answer(answer, sp.answer, mask, vocab);
  detail::require_tokens_in_vocab(t.canvas.tokens, vocab, "canvas");

  std::vector<token_id> state = t.canvas.tokens;
  for (std::size_t p = sp.reasoning.begin; p < sp.reasoning.end; ++p) state[p] = mask;
  for (std::size_t p = sp.answer.begin; p < sp.answer.end; ++p) state[p] = mask;
  std::vector<detail::row_real<Model>> logits(state.size() * vocab);
  trace_scores out;
  out.phi.reserve(trace.size() + 1);
  out.h_ub.reserve(trace.size() + 1);
  for (std::size_t k = 0;; ++k) {
    model.logits(std::span<const token_id>(state), std::span<detail::row_real<Model>>(logits));
    const answer_evaluation e =
        detail::evaluate_rows(std::span<const detail::row_real<Model>>(logits), vocab, sp.answer, answer);
    out.phi.push_back(e.phi);
    out.h_ub.push_back(e.h_ub);
    out.mean_phi += e.phi;
    out.mean_h_ub += e.h_ub;
    if (k == trace.size()) break;
    state[sp.reasoning.begin + k] = trace[k];
  }
  out.mean_phi /= static_cast<double>(out.phi.size());
  out.mean_h_ub /= static_cast<double>(out.h_ub.size());
  return out;
}

}  // namespace mdlm
