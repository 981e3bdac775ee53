// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! LLaDA's `confidence_eos_eot_inf` option, quirk included, as a policy adapter.
//!
//! ML-GSAI/LLaDA generate.py, after the token x0 is chosen, executes the equivalent of
//! `zn[:, :, EOS] = -inf; z[:, :, EoT] = -inf`, where zn is the Gumbel-perturbed copy of z. The
//! confidence softmax(z)[x0] is therefore 0 when x0 is EoT (126348), and 0 when x0 is EOS (126081)
//! only at temperature 0, where zn and z are the same tensor (shared/spec/samplers.md §6; LLaDA issue
//! #137). x0 itself is kept. Only the untempered confidence (`position_info::prob`, the score of
//! `fixed_count` with `score_kind::confidence` and of the Fast-dLLM policies) is changed.

#include <cstddef>
#include <span>
#include <variant>
#include <vector>

#include "mdlm/policy.hpp"
#include "mdlm/token_choice.hpp"
#include "mdlm/types.hpp"

namespace mdlm {

namespace detail {
//! The state of a wrapped policy: its `state_type`, or an empty placeholder for stateless ones.
template <class P>
struct wrapped_state {
  using type = std::monostate;
};
template <stateful_policy P>
struct wrapped_state<P> {
  using type = typename P::state_type;
};
}  // namespace detail

//! Wraps `policy` so that it sees confidence 0 for candidates whose chosen token is `eot`, and for
//! those whose chosen token is `eos` when `greedy` is true. Set `greedy` to
//! `decode_options::choice.temperature == 0` to reproduce upstream exactly; `eos = no_token` or
//! `eot = no_token` disables that half. Defaults are LLaDA-8B's ids.
template <unmasking_policy Policy>
struct llada_eos_confidence {
  Policy policy{};          //!< the wrapped policy
  token_id eos = 126081;    //!< LLaDA `<|endoftext|>`
  token_id eot = 126348;    //!< LLaDA `<|eot_id|>`
  bool greedy = true;       //!< temperature == 0: then EOS confidence is zeroed as well

  //! Per-canvas state: the modified candidate list (reserved once, so steps do not allocate) and
  //! the wrapped policy's own state when it has one.
  struct state_type {
    std::vector<position_info> candidates;
    [[no_unique_address]] typename detail::wrapped_state<Policy>::type inner{};
  };

  void validate() const { policy.validate(); }
  [[nodiscard]] bool scheduled() const { return policy.scheduled(); }
  //! Reads logit rows exactly when the wrapped policy does (it only rescales candidates' confidence).
  static constexpr bool reads_logit_rows = detail::reads_logit_rows<Policy>();

  [[nodiscard]] state_type make_state(const decode_setup& setup) const {
    state_type st;
    st.candidates.reserve(setup.length);
    if constexpr (stateful_policy<Policy>) st.inner = policy.make_state(setup);
    return st;
  }

  void select(const step_context& ctx, std::span<const position_info> candidates, state_type& st, selection& out) const {
    st.candidates.assign(candidates.begin(), candidates.end());
    for (position_info& c : st.candidates)
      if ((eot != no_token && c.token == eot) || (greedy && eos != no_token && c.token == eos)) c.prob = 0.0;
    if constexpr (stateful_policy<Policy>) policy.select(ctx, st.candidates, st.inner, out);
    else policy.select(ctx, st.candidates, out);
  }
};

}  // namespace mdlm
