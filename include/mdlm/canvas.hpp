// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! The canvas: the token sequence being decoded and its generation region.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "mdlm/detail/errors.hpp"
#include "mdlm/types.hpp"

namespace mdlm {

//! A sequence under decoding: `tokens` holds the prompt, the generation region and anything after
//! it; positions equal to the model's mask token are masked. Only masks inside the generation
//! region [region_begin, region_end) are decoded; semi-autoregressive blocks tile that region.
//! `sequence` keys the random numbers of this canvas (see rng.hpp), so a canvas decoded alone or
//! inside a batch draws the same numbers.
struct canvas {
  std::vector<token_id> tokens;   //!< prompt + generation region (+ suffix)
  std::size_t region_begin = 0;   //!< first position of the generation region
  std::size_t region_end = 0;     //!< one past the last position of the generation region
  std::uint32_t sequence = 0;     //!< random-number key of this canvas (default 0)
  //! The vocabulary size the tokens were produced for (e.g. by a tokenizer); when non-zero, decode
  //! checks it equals the model's. 0 (default) = not checked.
  std::size_t vocab_size = 0;

  //! Number of positions.
  [[nodiscard]] std::size_t size() const noexcept { return tokens.size(); }
  //! Length of the generation region.
  [[nodiscard]] std::size_t region_length() const noexcept { return region_end - region_begin; }
  //! Number of masked positions inside the generation region.
  [[nodiscard]] std::size_t masked_count(token_id mask) const noexcept {
    return static_cast<std::size_t>(std::count(tokens.begin() + static_cast<std::ptrdiff_t>(region_begin),
                                               tokens.begin() + static_cast<std::ptrdiff_t>(region_end), mask));
  }
};

//! The plain canvas `[prompt][gen_length masks]` (no template): the generation region is the masks.
//! Throws std::invalid_argument when `gen_length` is 0 or the prompt contains the mask token.
[[nodiscard]] inline canvas make_canvas(std::span<const token_id> prompt, std::size_t gen_length, token_id mask,
                                        std::uint32_t sequence = 0) {
  detail::require(gen_length > 0, "gen_length = 0: the generation region must not be empty");
  for (std::size_t i = 0; i < prompt.size(); ++i)
    detail::require(prompt[i] != mask, "prompt token ", i, " is the mask token ", mask);
  canvas c;
  c.tokens.reserve(prompt.size() + gen_length);
  c.tokens.assign(prompt.begin(), prompt.end());
  c.tokens.resize(prompt.size() + gen_length, mask);
  c.region_begin = prompt.size();
  c.region_end = c.tokens.size();
  c.sequence = sequence;
  return c;
}

}  // namespace mdlm
