// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! The `ConditionalModel` abstraction every mdlm algorithm is written against.
//!
//! A masked diffusion language model (MDLM) maps a partly masked sequence to the conditional
//! distribution p(x_i | unmasked tokens) at every position (paper arXiv 2510.19990, section 3). mdlm
//! sees it through three small requirements, each a named concept so that a type that misses one gets
//! a message naming it:
//!
//! * `has_vocabulary<M>`:   `m.vocab_size()` -- the (padded) logit row width V, convertible to
//!   `std::size_t`;
//! * `has_mask_token<M>`:   `m.mask_token()` -- the id (in [0, V)) that marks a masked position;
//! * `produces_logits<M>`:  `m.logits(std::span<const token_id> tokens, std::span<float> out)` fills
//!   `out[i*V + v]` with the logit of token v at position i given every non-mask token of `tokens`.
//!   Rows of unmasked positions are unspecified. `out.size()` must equal `tokens.size() * V`.
//!
//! Logits are unnormalised log-probabilities: algorithms only use softmax(row). `-inf` bans a
//! token; NaN is an error that mdlm reports (see `logit_stats::valid`).

#include <concepts>
#include <cstddef>
#include <span>

#include "mdlm/types.hpp"

namespace mdlm {

//! Requirement 1 of ConditionalModel: `m.vocab_size()` returns the logit row width V.
template <class M>
concept has_vocabulary = requires(const M& m) {
  { m.vocab_size() } -> std::convertible_to<std::size_t>;
};

//! Requirement 2 of ConditionalModel: `m.mask_token()` returns the mask token id.
template <class M>
concept has_mask_token = requires(const M& m) {
  { m.mask_token() } -> std::convertible_to<token_id>;
};

//! Requirement 3 of ConditionalModel: `m.logits(tokens, out)` fills `tokens.size() * V` floats.
template <class M>
concept produces_logits = requires(M& m, std::span<const token_id> tokens, std::span<float> out) {
  m.logits(tokens, out);
};

//! A masked diffusion language model as mdlm sees it: vocabulary size, mask token, and the
//! per-position conditional logits of a partly masked sequence. See the file comment for the contract.
template <class M>
concept ConditionalModel = has_vocabulary<M> && has_mask_token<M> && produces_logits<M>;

//! Requirement of BatchedConditionalModel: `m.batch_logits(tokens, batch, out)` evaluates `batch`
//! sequences of equal length `tokens.size() / batch` (row-major, sequence b at
//! `tokens[b*L .. (b+1)*L)`) in one call and writes `out[(b*L + i)*V + v]`.
template <class M>
concept produces_batch_logits =
    requires(M& m, std::span<const token_id> tokens, std::size_t batch, std::span<float> out) {
      m.batch_logits(tokens, batch, out);
    };

//! A ConditionalModel that also evaluates several sequences of equal length in one call, so engines
//! can batch canvases. Each sequence's rows must equal what `logits` returns for it alone.
template <class M>
concept BatchedConditionalModel = ConditionalModel<M> && produces_batch_logits<M>;

//! Requirement of ExactConditionalModel: `m.logits(tokens, std::span<double>)` -- the same
//! conditionals in double precision (exact reference models provide it, so bounds can be checked to
//! machine precision).
template <class M>
concept produces_exact_logits = requires(M& m, std::span<const token_id> tokens, std::span<double> out) {
  m.logits(tokens, out);
};

//! A ConditionalModel whose conditionals are also available in double precision.
template <class M>
concept ExactConditionalModel = ConditionalModel<M> && produces_exact_logits<M>;

//! Checks `M` against ConditionalModel one requirement at a time, so a failing type gets a sentence
//! naming what is missing rather than a concept-satisfaction dump. Use right after a model's
//! definition: `static_assert(mdlm::check_conditional_model<my_model>());`.
template <class M>
consteval bool check_conditional_model() {
  static_assert(has_vocabulary<M>, "mdlm: a ConditionalModel needs `std::size_t vocab_size() const`");
  static_assert(has_mask_token<M>, "mdlm: a ConditionalModel needs `token_id mask_token() const`");
  static_assert(produces_logits<M>,
                "mdlm: a ConditionalModel needs `logits(std::span<const token_id>, std::span<float>)`");
  return ConditionalModel<M>;
}

}  // namespace mdlm
