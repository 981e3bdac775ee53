// SPDX-License-Identifier: MIT
#pragma once
// Small hand-made ConditionalModels for the decode tests.
#include <cmath>
#include <cstddef>
#include <functional>
#include <limits>
#include <span>
#include <vector>

#include "mdlm/concepts.hpp"
#include "mdlm/detail/errors.hpp"

namespace mdlm::test {

//! A model whose logit rows are a fixed function of (position, tokens): `row_fn(pos, tokens, row)`.
struct function_model {
  std::size_t vocab = 4;
  token_id mask = 3;
  std::function<void(std::size_t, std::span<const token_id>, std::span<float>)> row_fn;
  std::size_t calls = 0;

  [[nodiscard]] std::size_t vocab_size() const { return vocab; }
  [[nodiscard]] token_id mask_token() const { return mask; }
  void logits(std::span<const token_id> tokens, std::span<float> out) {
    detail::require(out.size() == tokens.size() * vocab, "output size ", out.size(), " != L*V");
    ++calls;
    for (std::size_t i = 0; i < tokens.size(); ++i) row_fn(i, tokens, out.subspan(i * vocab, vocab));
  }
  void batch_logits(std::span<const token_id> tokens, std::size_t batch, std::span<float> out) {
    const std::size_t len = tokens.size() / batch;
    for (std::size_t b = 0; b < batch; ++b)
      logits(tokens.subspan(b * len, len), out.subspan(b * len * vocab, len * vocab));
    calls -= batch - 1;  // one batched call counts once
  }
};
static_assert(mdlm::check_conditional_model<function_model>());
static_assert(mdlm::BatchedConditionalModel<function_model>);

//! Independent positions: row of position i is the fixed vector `rows[i]` whatever the tokens.
inline function_model independent_model(std::vector<std::vector<float>> rows, token_id mask) {
  function_model m;
  m.vocab = rows.empty() ? 1 : rows[0].size();
  m.mask = mask;
  m.row_fn = [rows](std::size_t pos, std::span<const token_id>, std::span<float> out) {
    for (std::size_t v = 0; v < out.size(); ++v) out[v] = rows[pos][v];
  };
  return m;
}

}  // namespace mdlm::test
