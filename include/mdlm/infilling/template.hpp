// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! Reasoning-as-infilling templates (arXiv 2510.19990, section 4.1): the canvas
//! `[prompt][R reasoning masks][delimiter][A answer masks][suffix]` and the spans of its parts.
//!
//! Pre-filling the output with a delimiter between a reasoning block and an answer block makes the
//! model's conditionals over the answer positions visible while it reasons: the early-exit and
//! Prophet observers, posterior sampling and answer scoring of this folder all read the spans
//! recorded here. The generation region of the canvas is everything after the prompt (reasoning,
//! delimiter, answer, suffix); the delimiter and suffix are pre-filled tokens inside it, so the decode
//! loop never touches them. The paper's math setup (section 5.1): delimiter "The answer is \boxed{",
//! 10 answer tokens, generation length 256 with block length 32.

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "mdlm/canvas.hpp"
#include "mdlm/detail/errors.hpp"
#include "mdlm/types.hpp"

namespace mdlm {

//! A half-open range [begin, end) of canvas positions.
struct token_span {
  std::size_t begin = 0;  //!< first position
  std::size_t end = 0;    //!< one past the last position

  [[nodiscard]] constexpr std::size_t size() const noexcept { return end - begin; }
  [[nodiscard]] constexpr bool empty() const noexcept { return end == begin; }
  [[nodiscard]] constexpr bool contains(std::size_t p) const noexcept { return p >= begin && p < end; }
  friend constexpr bool operator==(const token_span&, const token_span&) = default;
};

//! Where the parts of a template lie in its canvas. Empty parts are empty spans at the position where
//! the part would start.
struct template_spans {
  token_span prompt{};     //!< the prompt (context c, with the delimiter)
  token_span reasoning{};  //!< the reasoning block r (masks when built)
  token_span delimiter{};  //!< the answer delimiter, e.g. "The answer is \boxed{"
  token_span answer{};     //!< the answer block a (masks when built)
  token_span suffix{};     //!< optional tokens after the answer, e.g. "}" and EOS
  friend constexpr bool operator==(const template_spans&, const template_spans&) = default;
};

//! What to build: the parts of `[prompt][reasoning masks][delimiter][answer masks][suffix]`.
//! Defaults: no prompt, delimiter or suffix, and no reasoning or answer positions (an answer length of
//! at least 1 is required by `make_template`).
struct template_layout {
  std::vector<token_id> prompt{};     //!< prompt tokens (no mask token)
  std::size_t reasoning_length = 0;   //!< R: reasoning masks (0 = answer directly, "forced answer")
  std::vector<token_id> delimiter{};  //!< answer delimiter tokens (no mask token), may be empty
  std::size_t answer_length = 0;      //!< A >= 1: answer masks (the paper uses 10)
  std::vector<token_id> suffix{};     //!< tokens after the answer (no mask token), may be empty
};

//! A built template: the canvas to decode and the spans of its parts.
struct reasoning_template {
  mdlm::canvas canvas{};  //!< tokens, generation region = everything after the prompt, sequence key
  template_spans spans{}; //!< where prompt, reasoning, delimiter, answer and suffix lie
};

namespace detail {

inline void require_no_mask(std::span<const token_id> tokens, const char* what, token_id mask) {
  for (std::size_t i = 0; i < tokens.size(); ++i)
    require(tokens[i] != mask, what, " token ", i, " is the mask token ", mask);
}

//! Checks that `s` lies inside a canvas of `length` positions and is well formed.
inline void require_span_inside(token_span s, const char* what, std::size_t length) {
  require(s.begin <= s.end, what, " span [", s.begin, ", ", s.end, ") has begin > end");
  require(s.end <= length, what, " span [", s.begin, ", ", s.end, ") lies outside the canvas of ", length,
          " positions");
}

inline void require_disjoint(token_span a, const char* an, token_span b, const char* bn) {
  require(a.empty() || b.empty() || a.end <= b.begin || b.end <= a.begin, an, " span [", a.begin, ", ", a.end,
          ") overlaps ", bn, " span [", b.begin, ", ", b.end, ")");
}

}  // namespace detail

//! Checks `spans` against a canvas of `length` positions: every span inside the canvas, no two
//! non-empty spans overlapping, and a non-empty answer span.
//! @throws std::invalid_argument naming the offending span and its bounds.
inline void validate_spans(const template_spans& spans, std::size_t length) {
  const token_span parts[5] = {spans.prompt, spans.reasoning, spans.delimiter, spans.answer, spans.suffix};
  const char* names[5] = {"prompt", "reasoning", "delimiter", "answer", "suffix"};
  for (std::size_t i = 0; i < 5; ++i) detail::require_span_inside(parts[i], names[i], length);
  for (std::size_t i = 0; i < 5; ++i)
    for (std::size_t j = i + 1; j < 5; ++j) detail::require_disjoint(parts[i], names[i], parts[j], names[j]);
  detail::require(!spans.answer.empty(), "answer span [", spans.answer.begin, ", ", spans.answer.end,
                  ") is empty");
}

//! Builds `[prompt][R masks][delimiter][A masks][suffix]` and records the spans. The generation region
//! is [prompt size, canvas size): with semi-autoregressive blocks, choose R so that the region length
//! R + |delimiter| + A + |suffix| is a multiple of the block length (the paper: 256 = 8 x 32).
//! @param layout    the parts (see `template_layout`)
//! @param mask      the model's mask token
//! @param sequence  the canvas's random-number key (distinct per canvas of a batch)
//! @throws std::invalid_argument when `answer_length` is 0 or a prompt / delimiter / suffix token is the
//!         mask token (the message names the part, the index and the mask id).
[[nodiscard]] inline reasoning_template make_template(const template_layout& layout, token_id mask,
                                                      std::uint32_t sequence = 0) {
  detail::require(layout.answer_length >= 1, "answer_length = ", layout.answer_length, " must be >= 1");
  detail::require_no_mask(layout.prompt, "prompt", mask);
  detail::require_no_mask(layout.delimiter, "delimiter", mask);
  detail::require_no_mask(layout.suffix, "suffix", mask);
  reasoning_template t;
  auto& tok = t.canvas.tokens;
  tok.reserve(layout.prompt.size() + layout.reasoning_length + layout.delimiter.size() + layout.answer_length +
              layout.suffix.size());
  auto append = [&](std::span<const token_id> part) {
    const token_span s{tok.size(), tok.size() + part.size()};
    tok.insert(tok.end(), part.begin(), part.end());
    return s;
  };
  auto append_masks = [&](std::size_t n) {
    const token_span s{tok.size(), tok.size() + n};
    tok.insert(tok.end(), n, mask);
    return s;
  };
  t.spans.prompt = append(layout.prompt);
  t.spans.reasoning = append_masks(layout.reasoning_length);
  t.spans.delimiter = append(layout.delimiter);
  t.spans.answer = append_masks(layout.answer_length);
  t.spans.suffix = append(layout.suffix);
  t.canvas.region_begin = t.spans.prompt.end;
  t.canvas.region_end = tok.size();
  t.canvas.sequence = sequence;
  return t;
}

//! The plain canvas `[prompt][gen_length masks]` (no template) for comparison, as a
//! `reasoning_template` whose reasoning span is the whole generation region and whose delimiter,
//! answer and suffix spans are empty (at the end of the canvas). Same canvas as `make_canvas`.
//! @throws std::invalid_argument as `make_canvas` (gen_length 0, a mask token in the prompt).
[[nodiscard]] inline reasoning_template plain_template(std::span<const token_id> prompt, std::size_t gen_length,
                                                       token_id mask, std::uint32_t sequence = 0) {
  reasoning_template t;
  t.canvas = make_canvas(prompt, gen_length, mask, sequence);
  const std::size_t n = t.canvas.size();
  t.spans.prompt = {0, prompt.size()};
  t.spans.reasoning = {prompt.size(), n};
  t.spans.delimiter = {n, n};
  t.spans.answer = {n, n};
  t.spans.suffix = {n, n};
  return t;
}

//! The canvases of a batch of templates, in order, for `decode_batch`. Sequence keys are kept as built
//! (give each template its own `sequence` for independent random numbers).
//! @throws std::invalid_argument when the templates differ in length (a batch needs equal lengths).
[[nodiscard]] inline std::vector<canvas> batch_canvases(std::span<const reasoning_template> templates) {
  std::vector<canvas> out;
  out.reserve(templates.size());
  for (std::size_t b = 0; b < templates.size(); ++b) {
    detail::require(templates[b].canvas.size() == templates[0].canvas.size(), "template ", b, " has length ",
                    templates[b].canvas.size(), " but template 0 has length ", templates[0].canvas.size(),
                    ": a batch needs equal lengths");
    out.push_back(templates[b].canvas);
  }
  return out;
}

}  // namespace mdlm
