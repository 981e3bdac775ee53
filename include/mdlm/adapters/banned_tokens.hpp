// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! A model adapter that bans tokens: their logits become -inf at every position.
//!
//! This is LLaDA generate.py's `logits_eos_inf=True` (the EOS id 126081 banned before the token is
//! chosen, ML-GSAI/LLaDA), generalised to any list of ids; a banned token is never chosen and has
//! probability 0 in every statistic (entropy, confidence, margin).

#include <cstddef>
#include <limits>
#include <span>
#include <vector>

#include "mdlm/concepts.hpp"
#include "mdlm/detail/errors.hpp"
#include "mdlm/types.hpp"

namespace mdlm {

//! `model` with the logits of `banned` ids replaced by -inf. Holds a reference: `model` must outlive
//! the adapter. An empty list is a no-op. Batched when the wrapped model is.
template <ConditionalModel M>
class banned_tokens_model {
 public:
  //! @throws std::invalid_argument if an id lies outside [0, V).
  banned_tokens_model(M& model, std::span<const token_id> banned) : model_{&model}, banned_(banned.begin(), banned.end()) {
    const std::size_t v = model.vocab_size();
    for (token_id t : banned_)
      detail::require(t >= 0 && static_cast<std::size_t>(t) < v, "banned token id ", t, " outside [0, ", v, ")");
  }

  [[nodiscard]] std::size_t vocab_size() const { return model_->vocab_size(); }
  [[nodiscard]] token_id mask_token() const { return model_->mask_token(); }
  [[nodiscard]] std::span<const token_id> banned() const noexcept { return banned_; }

  void logits(std::span<const token_id> tokens, std::span<float> out) {
    model_->logits(tokens, out);
    ban(out);
  }

  void batch_logits(std::span<const token_id> tokens, std::size_t batch, std::span<float> out)
    requires BatchedConditionalModel<M>
  {
    model_->batch_logits(tokens, batch, out);
    ban(out);
  }

 private:
  void ban(std::span<float> out) const noexcept {
    const std::size_t v = model_->vocab_size();
    for (std::size_t row = 0; row + v <= out.size(); row += v)
      for (token_id t : banned_) out[row + static_cast<std::size_t>(t)] = -std::numeric_limits<float>::infinity();
  }

  M* model_;
  std::vector<token_id> banned_;
};

}  // namespace mdlm
