// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! Classifier-free guidance for masked diffusion models, as in LLaDA's generate.py (`cfg_scale`).
//!
//! Each call evaluates the canvas x (conditional logits z_c) and a copy x_u whose prompt positions
//! are all set to the mask token (unconditional logits z_u), and returns
//!     z = z_u + (s + 1) * (z_c - z_u)
//! (ML-GSAI/LLaDA generate.py; Nie et al., arXiv 2502.09992). With a BatchedConditionalModel both
//! sequences go through one `batch_logits` call of twice the batch, as upstream does, so the decode
//! loop still counts one model call (NFE) per step. Scale s = 0 returns z_c up to float rounding at
//! twice the cost; LLaDA skips guidance when cfg_scale = 0, so do not wrap the model then.
//!
//! Model interfaces: the guidance combines two forwards' logits entry by entry before any
//! statistic, so this adapter needs the wrapped model's logits and provides logits only: a decode
//! through it takes the logits interface (`decode_result::interface` says so). An engine that
//! evaluates both forwards on a device applies the combination there and exposes the result through
//! its own `row_choices` (row_model.hpp) instead of wrapping.

#include <cmath>
#include <cstddef>
#include <span>
#include <vector>

#include "mdlm/concepts.hpp"
#include "mdlm/detail/errors.hpp"
#include "mdlm/types.hpp"

namespace mdlm {

//! `model` under classifier-free guidance with scale `scale` for a prompt of `prompt_length` tokens
//! (positions [0, prompt_length) of every sequence are masked in the unconditional copy; LLaDA counts
//! left padding as prompt). Holds a reference: `model` must outlive the adapter. Buffers grow on
//! the first call and are reused, so steady-state calls do not allocate.
template <ConditionalModel M>
class cfg_model {
 public:
  //! @throws std::invalid_argument if `scale` is negative or not finite.
  cfg_model(M& model, double scale, std::size_t prompt_length)
      : model_{&model}, scale_{scale}, prompt_length_{prompt_length} {
    detail::require(std::isfinite(scale) && scale >= 0.0, "cfg scale = ", scale, " must be finite and >= 0");
  }

  [[nodiscard]] std::size_t vocab_size() const { return model_->vocab_size(); }
  [[nodiscard]] token_id mask_token() const { return model_->mask_token(); }
  [[nodiscard]] double scale() const noexcept { return scale_; }
  [[nodiscard]] std::size_t prompt_length() const noexcept { return prompt_length_; }

  //! @throws std::invalid_argument if the sequence is shorter than the prompt or `out` is not L*V.
  void logits(std::span<const token_id> tokens, std::span<float> out) { batch_logits_impl(tokens, 1, out); }

  //! `batch` sequences of equal length; one call of 2*batch sequences to the wrapped model.
  void batch_logits(std::span<const token_id> tokens, std::size_t batch, std::span<float> out)
    requires BatchedConditionalModel<M>
  {
    batch_logits_impl(tokens, batch, out);
  }

 private:
  void batch_logits_impl(std::span<const token_id> tokens, std::size_t batch, std::span<float> out) {
    const std::size_t v = model_->vocab_size();
    detail::require(batch >= 1 && tokens.size() % batch == 0, "cfg: batch = ", batch,
                    " does not divide the token count ", tokens.size());
    const std::size_t len = tokens.size() / batch;
    detail::require(prompt_length_ <= len, "cfg: prompt_length = ", prompt_length_, " exceeds the sequence length ", len);
    detail::require(out.size() == tokens.size() * v, "cfg: output size ", out.size(), " != ", tokens.size() * v);
    // [x_0 .. x_{B-1} ; x_u0 .. x_u{B-1}]: the conditional rows then the unconditional ones.
    both_.assign(tokens.begin(), tokens.end());
    both_.insert(both_.end(), tokens.begin(), tokens.end());
    for (std::size_t b = 0; b < batch; ++b)
      for (std::size_t i = 0; i < prompt_length_; ++i) both_[(batch + b) * len + i] = model_->mask_token();
    rows_.resize(2 * tokens.size() * v);
    if constexpr (BatchedConditionalModel<M>) {
      model_->batch_logits(both_, 2 * batch, rows_);
    } else {
      model_->logits(std::span<const token_id>(both_).first(len), std::span<float>(rows_).first(len * v));
      model_->logits(std::span<const token_id>(both_).subspan(len, len), std::span<float>(rows_).subspan(len * v, len * v));
    }
    const float w = static_cast<float>(scale_ + 1.0);
    const std::size_t n = tokens.size() * v;
    for (std::size_t k = 0; k < n; ++k) {
      const float zc = rows_[k], zu = rows_[n + k];
      // Where both are equal (in particular both -inf for a banned or mask token) the guided logit
      // is that value: computing zu + w * (zc - zu) would give -inf - -inf = NaN.
      out[k] = zc == zu ? zc : zu + w * (zc - zu);
    }
  }

  M* model_;
  double scale_;
  std::size_t prompt_length_;
  std::vector<token_id> both_;
  std::vector<float> rows_;
};

}  // namespace mdlm
