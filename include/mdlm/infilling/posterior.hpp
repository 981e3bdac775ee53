// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! Posterior sampling given an answer (arXiv 2510.19990, section 4.1, "Post-training MDLMs with
//! reasoning-as-infilling"): pre-fill the answer block with a known answer a and decode the reasoning
//! block only, which samples r ~ p(r | c, a).
//!
//! Exactness: with a policy whose choice of position does not depend on the tokens (e.g.
//! `fixed_count` with `score_kind::left_to_right` or `score_kind::random`), one position per step and
//! ancestral sampling (`token_choice::temperature = 1`), every step draws from the exact conditional
//! p(r_i | c, a, r decoded so far), so by the chain rule the decoded reasoning is distributed as the
//! Bayes posterior p(r | c, a) of a consistent model. Multi-token policies (MED, EB) sample from a
//! product of marginals at each step, within their KL bound (eq. 5).

#include <cstddef>
#include <span>

#include "mdlm/detail/errors.hpp"
#include "mdlm/infilling/template.hpp"
#include "mdlm/types.hpp"

namespace mdlm {

//! A copy of `t` whose answer span holds `answer`: the canvas for posterior sampling. Decoding it
//! fills only the reasoning block (answer, delimiter and suffix are pre-filled tokens).
//! @param t       a template from `make_template` (its answer span must lie inside its canvas)
//! @param answer  the answer tokens, exactly `t.spans.answer.size()` of them, none the mask token
//! @param mask    the model's mask token
//! @throws std::invalid_argument naming the value: a length differing from the answer span, an answer
//!         token equal to the mask token, or spans that do not fit the canvas.
[[nodiscard]] inline reasoning_template posterior_template(const reasoning_template& t,
                                                           std::span<const token_id> answer, token_id mask) {
  validate_spans(t.spans, t.canvas.size());
  detail::require(answer.size() == t.spans.answer.size(), "answer length ", answer.size(),
                  " differs from the answer span length ", t.spans.answer.size());
  detail::require_no_mask(answer, "answer", mask);
  reasoning_template out = t;
  for (std::size_t j = 0; j < answer.size(); ++j) out.canvas.tokens[t.spans.answer.begin + j] = answer[j];
  return out;
}

}  // namespace mdlm
