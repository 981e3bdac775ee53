// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! Answer scoring, eq. 4 of arXiv 2510.19990: how likely a (partial) reasoning trace makes a known
//! answer, read from the model's conditionals at the masked answer block, with no external verifier:
//!
//!     phi(r_unmasked | c, a*) = sum_{j in answer} log p(a_j = a*_j | c, r_unmasked)
//!
//! and, from the same model call, the answer-entropy bound H_UB = sum_j H(a_j | c, r_unmasked) (eq. 3).
//! phi is the log of the product of the answer marginals, not the log of the joint p(a* | c, r): the
//! model exposes marginals only. It is `-inf` when some answer token has probability 0.

#include <cmath>
#include <cstddef>
#include <span>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "mdlm/concepts.hpp"
#include "mdlm/detail/errors.hpp"
#include "mdlm/infilling/template.hpp"
#include "mdlm/logit_stats.hpp"
#include "mdlm/types.hpp"

namespace mdlm {

//! phi (eq. 4) and H_UB (eq. 3) of one answer given one canvas state, from one model call.
struct answer_evaluation {
  double phi = 0.0;   //!< sum_j log p(a_j = a*_j | c, r_unmasked) (<= 0; -inf if a token is impossible)
  double h_ub = 0.0;  //!< sum_j H(a_j | c, r_unmasked) in nats
};

namespace detail {

//! Logit rows of a model in the widest precision it offers: double for ExactConditionalModel (so
//! exact reference models give phi to machine precision), float otherwise.
template <class Model>
using row_real = std::conditional_t<ExactConditionalModel<Model>, double, float>;

//! Validates token ids against a vocabulary.
inline void require_tokens_in_vocab(std::span<const token_id> tokens, std::size_t vocab, const char* what) {
  for (std::size_t i = 0; i < tokens.size(); ++i)
    require(tokens[i] >= 0 && static_cast<std::size_t>(tokens[i]) < vocab, what, " token ", tokens[i],
            " at index ", i, " is outside the model vocabulary [0, ", vocab, ")");
}

//! Validates an answer for a span: its length, no mask token, ids inside the vocabulary.
inline void require_answer(std::span<const token_id> answer, token_span span, token_id mask, std::size_t vocab) {
  require(answer.size() == span.size(), "answer length ", answer.size(), " differs from the answer span length ",
          span.size());
  require_no_mask(answer, "answer", mask);
  require_tokens_in_vocab(answer, vocab, "answer");
}

//! phi and H_UB from the rows of a call whose answer block was masked.
template <class Real>
answer_evaluation evaluate_rows(std::span<const Real> logits, std::size_t vocab, token_span span,
                                std::span<const token_id> answer) {
  answer_evaluation out;
  for (std::size_t j = 0; j < span.size(); ++j) {
    const std::size_t p = span.begin + j;
    const auto row = logits.subspan(p * vocab, vocab);
    const logit_stats s = compute_logit_stats(row);
    if (!s.valid)
      throw std::runtime_error(concat("the model returned an invalid logit row (NaN, +inf or all -inf) at answer "
                                      "position ", p));
    out.phi += static_cast<double>(row[static_cast<std::size_t>(answer[j])]) - s.log_normalizer;
    out.h_ub += s.entropy;
  }
  return out;
}

}  // namespace detail

//! phi (eq. 4) and H_UB (eq. 3) of `answer` given the canvas state `tokens`: the answer span of
//! `tokens` is replaced by masks (whatever it held), the model is called once, and the answer rows
//! are read. Other masked positions (the not yet decoded reasoning) stay masked: they are
//! marginalised by the model. Exact models (`ExactConditionalModel`) are read in double precision.
//! @param model   any ConditionalModel
//! @param tokens  a canvas state (prompt, partial reasoning, delimiter, anything in the answer span)
//! @param spans   the template's spans (only `answer` is read; all spans must fit `tokens`)
//! @param answer  the known answer a*, `spans.answer.size()` tokens, none the mask token
//! @throws std::invalid_argument naming the bad value (span outside the canvas or overlapping, answer
//!         length differing from the span, an answer token equal to the mask token or outside the
//!         vocabulary, a token outside the vocabulary); std::runtime_error when the model returns an
//!         invalid row (NaN, +inf, all -inf) at an answer position.
template <ConditionalModel Model>
[[nodiscard]] answer_evaluation evaluate_answer(Model& model, std::span<const token_id> tokens,
                                                const template_spans& spans, std::span<const token_id> answer) {
  const auto vocab = static_cast<std::size_t>(model.vocab_size());
  const auto mask = static_cast<token_id>(model.mask_token());
  validate_spans(spans, tokens.size());
  detail::require_answer(answer, spans.answer, mask, vocab);
  detail::require_tokens_in_vocab(tokens, vocab, "canvas");
  std::vector<token_id> masked(tokens.begin(), tokens.end());
  for (std::size_t p = spans.answer.begin; p < spans.answer.end; ++p) masked[p] = mask;
  std::vector<detail::row_real<Model>> logits(masked.size() * vocab);
  model.logits(std::span<const token_id>(masked), std::span<detail::row_real<Model>>(logits));
  return detail::evaluate_rows(std::span<const detail::row_real<Model>>(logits), vocab, spans.answer, answer);
}

//! phi (eq. 4) alone; see `evaluate_answer`.
template <ConditionalModel Model>
[[nodiscard]] double answer_score(Model& model, std::span<const token_id> tokens, const template_spans& spans,
                                  std::span<const token_id> answer) {
  return evaluate_answer(model, tokens, spans, answer).phi;
}

}  // namespace mdlm
