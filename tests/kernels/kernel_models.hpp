// SPDX-License-Identifier: MIT
#pragma once
// A deterministic, allocation-free ConditionalModel with a realistic vocabulary for the kernel tests
// and benchmarks: each row is a fixed random row of its position plus a term that depends on the
// neighbouring tokens, so decoding order matters.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "mdlm/rng.hpp"
#include "mdlm/types.hpp"

namespace mdlm::test {

struct table_model {
  std::size_t vocab = 300;
  token_id mask = 299;
  std::vector<float> base;  // L x V fixed rows
  std::size_t calls = 0;

  table_model(std::size_t length, std::size_t v, std::uint64_t seed, float scale = 3.0f) : vocab(v) {
    mask = static_cast<token_id>(v - 1);
    base.resize(length * v);
    sequential_rng g(seed);
    for (std::size_t i = 0; i < base.size(); ++i) {
      // Approximately normal (sum of uniforms), scaled; the mask token is banned.
      const double u = g.uniform() + g.uniform() + g.uniform() - 1.5;
      base[i] = (i % v) == static_cast<std::size_t>(mask) ? -std::numeric_limits<float>::infinity()
                                                          : static_cast<float>(u * 2.0) * scale;
    }
  }
  [[nodiscard]] std::size_t vocab_size() const noexcept { return vocab; }
  [[nodiscard]] token_id mask_token() const noexcept { return mask; }
  void logits(std::span<const token_id> tokens, std::span<float> out) noexcept {
    ++calls;
    const std::size_t len = tokens.size();
    for (std::size_t i = 0; i < len; ++i) {
      const token_id left = i > 0 ? tokens[i - 1] : mask;
      const float* b = base.data() + (i % (base.size() / vocab)) * vocab;
      float* o = out.data() + i * vocab;
      for (std::size_t v = 0; v < vocab; ++v) o[v] = b[v];
      // The left neighbour's token, once decoded, favours token (left + 1) mod (V - 1).
      if (left != mask) o[static_cast<std::size_t>(left + 1) % (vocab - 1)] += 2.5f;
    }
  }
  void batch_logits(std::span<const token_id> tokens, std::size_t batch, std::span<float> out) noexcept {
    const std::size_t len = tokens.size() / batch;
    for (std::size_t b = 0; b < batch; ++b)
      logits(tokens.subspan(b * len, len), out.subspan(b * len * vocab, len * vocab));
  }
};

}  // namespace mdlm::test
