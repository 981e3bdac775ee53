// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! A model adapter that bans tokens: their logits become -inf at every position.
//!
//! This is LLaDA generate.py's `logits_eos_inf=True` (the EOS id 126081 banned before the token is
//! chosen, ML-GSAI/LLaDA), generalised to any list of ids; a banned token is never chosen and has
//! probability 0 in every statistic (entropy, confidence, margin).
//!
//! Both model interfaces: on a model with logits it overwrites the rows; on a row-statistics model
//! (row_model.hpp) it adds its ids to `row_request::banned`, so the ban happens where the logits
//! are (on the device, for the CUDA backend) and decode keeps the row-statistics path.

#include <cstddef>
#include <limits>
#include <span>
#include <vector>

#include "mdlm/concepts.hpp"
#include "mdlm/detail/errors.hpp"
#include "mdlm/row_model.hpp"
#include "mdlm/types.hpp"

namespace mdlm {

//! `model` with the logits of `banned` ids replaced by -inf. Holds a reference: `model` must outlive
//! the adapter. An empty list is a no-op. Batched when the wrapped model is; it has the interfaces
//! the wrapped model has.
template <decodable_model M>
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

  void logits(std::span<const token_id> tokens, std::span<float> out)
    requires ConditionalModel<M>
  {
    model_->logits(tokens, out);
    ban(out);
  }

  //! The wrapped model's row statistics with this adapter's ids added to `request.banned`.
  void row_choices(std::span<const token_id> tokens, const row_request& request, std::span<row_choice> out)
    requires RowStatisticsModel<M>
  {
    model_->row_choices(tokens, with_bans(request, merged_), out);
  }

  void batch_row_choices(std::span<const token_id> tokens, std::size_t batch, std::span<const row_request> requests,
                         std::span<row_choice> out)
    requires BatchedRowStatisticsModel<M>
  {
    requests_.assign(requests.begin(), requests.end());
    merged_batch_.resize(requests.size());
    for (std::size_t j = 0; j < requests_.size(); ++j) requests_[j] = with_bans(requests_[j], merged_batch_[j]);
    model_->batch_row_choices(tokens, batch, std::span<const row_request>(requests_), out);
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

  //! `request` with banned = its own list followed by this adapter's (kept in `buffer`).
  [[nodiscard]] row_request with_bans(const row_request& request, std::vector<token_id>& buffer) const {
    row_request r = request;
    if (request.banned.empty()) {
      r.banned = banned_;
      return r;
    }
    buffer.assign(request.banned.begin(), request.banned.end());
    buffer.insert(buffer.end(), banned_.begin(), banned_.end());
    r.banned = buffer;
    return r;
  }

  M* model_;
  std::vector<token_id> banned_;
  std::vector<token_id> merged_;        // request ids + ours, when the request has ids of its own
  std::vector<row_request> requests_;   // batch_row_choices: the requests with the bans added
  std::vector<std::vector<token_id>> merged_batch_;
};

}  // namespace mdlm
