// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! Decoding analytics of arXiv 2510.19990, appendix B, table 8: how autoregressive a finished decode
//! was. For every unmask (position p decided at step s) the leftmost masked position at step s is
//! l(s) = min { q : q was masked when call s was made }; the table reports the fraction of unmasks with
//! p = l(s), the mean distance p - l(s), the number of non-EOS tokens generated and the step at which
//! the answer appears.
//!
//! The analytics are computed from the starting canvas and `decode_result::unmask_step` (the step
//! that decided each position), so they describe runs without re-masking exactly; for re-masking
//! policies they see the final decision of each position only. Positions written by an observer (e.g.
//! the early-exit fill) count as unmasked at the step of the write.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

#include "mdlm/canvas.hpp"
#include "mdlm/decode.hpp"
#include "mdlm/detail/errors.hpp"
#include "mdlm/infilling/template.hpp"
#include "mdlm/types.hpp"

namespace mdlm {

//! What `analyze_decoding` counts. Defaults: no answer span, no EOS (every unmask counted).
struct analytics_options {
  token_span answer{};       //!< the answer span (empty: no answer step is reported)
  token_id eos = no_token;   //!< EOS id; unmasks that wrote EOS are left out (the paper's "non-EOS"); no_token = none
};

//! Table 8 of arXiv 2510.19990 for one decode.
struct decoding_analytics {
  std::size_t unmasks = 0;                 //!< counted unmasks (decided positions whose token is not EOS)
  std::size_t leftmost_unmasks = 0;        //!< of those, made at the leftmost masked position
  double leftmost_fraction = 0.0;          //!< leftmost_unmasks / unmasks (0 when nothing was counted)
  double mean_distance_from_leftmost = 0.0;//!< mean of p - l(s) over counted unmasks (0 when none)
  std::size_t non_eos_tokens = 0;          //!< generated positions (masked at the start) holding a non-EOS token at the end
  //! The 0-based step whose update completed the answer span (the latest unmask step over it); empty
  //! when the span is empty, had no mask at the start, or is still incomplete.
  std::optional<std::size_t> answer_step{};
};

//! Computes the table-8 analytics of `result`, a decode of `start`.
//! @param start   the canvas as it was handed to `decode` (its masks in the generation region are the
//!                generated positions)
//! @param result  the finished decode of `start`
//! @param mask    the model's mask token
//! @param opt     answer span and EOS id
//! @throws std::invalid_argument naming the value when `result` does not match `start` (token or
//!         unmask_step count), the generation region does not fit, or the answer span lies outside the
//!         canvas.
[[nodiscard]] inline decoding_analytics analyze_decoding(const canvas& start, const decode_result& result, token_id mask,
                                                         const analytics_options& opt = {}) {
  const std::size_t n = start.size();
  detail::require(result.tokens.size() == n, "the result has ", result.tokens.size(),
                  " tokens but the starting canvas has ", n);
  detail::require(result.unmask_step.size() == n, "the result has ", result.unmask_step.size(),
                  " unmask steps but the starting canvas has ", n, " positions");
  detail::require(start.region_begin <= start.region_end && start.region_end <= n, "generation region [",
                  start.region_begin, ", ", start.region_end, ") does not fit a canvas of ", n, " tokens");
  detail::require_span_inside(opt.answer, "answer", n);

  decoding_analytics out;
  // first_at[s] = the lowest generated position decided at step s; never_decided = the lowest generated
  // position still masked. l(s) = min(first_at[s..], never_decided), a suffix minimum.
  constexpr std::size_t none = std::numeric_limits<std::size_t>::max();
  std::size_t steps = 0;
  for (std::size_t p = start.region_begin; p < start.region_end; ++p)
    if (start.tokens[p] == mask && result.unmask_step[p] >= 0)
      steps = std::max(steps, static_cast<std::size_t>(result.unmask_step[p]) + 1);
  std::vector<std::size_t> leftmost(steps + 1, none);
  for (std::size_t p = start.region_begin; p < start.region_end; ++p) {
    if (start.tokens[p] != mask) continue;
    const std::int32_t s = result.unmask_step[p];
    const std::size_t slot = s >= 0 ? static_cast<std::size_t>(s) : steps;
    leftmost[slot] = std::min(leftmost[slot], p);
    if (result.tokens[p] != mask && result.tokens[p] != opt.eos) ++out.non_eos_tokens;
  }
  for (std::size_t s = steps; s > 0; --s) leftmost[s - 1] = std::min(leftmost[s - 1], leftmost[s]);

  double distance = 0.0;
  for (std::size_t p = start.region_begin; p < start.region_end; ++p) {
    if (start.tokens[p] != mask || result.unmask_step[p] < 0) continue;
    if (result.tokens[p] == opt.eos) continue;
    const std::size_t l = leftmost[static_cast<std::size_t>(result.unmask_step[p])];
    ++out.unmasks;
    if (p == l) ++out.leftmost_unmasks;
    distance += static_cast<double>(p - l);
  }
  if (out.unmasks > 0) {
    out.leftmost_fraction = static_cast<double>(out.leftmost_unmasks) / static_cast<double>(out.unmasks);
    out.mean_distance_from_leftmost = distance / static_cast<double>(out.unmasks);
  }

  bool any_masked = false, complete = true;
  std::size_t last = 0;
  for (std::size_t p = opt.answer.begin; p < opt.answer.end; ++p) {
    if (start.tokens[p] != mask) continue;
    any_masked = true;
    if (result.tokens[p] == mask || result.unmask_step[p] < 0) {
      complete = false;
      break;
    }
    last = std::max(last, static_cast<std::size_t>(result.unmask_step[p]));
  }
  if (any_masked && complete) out.answer_step = last;
  return out;
}

//! The analytics of a decode of template `t` (its answer span is used).
[[nodiscard]] inline decoding_analytics analyze_decoding(const reasoning_template& t, const decode_result& result,
                                                         token_id mask, token_id eos = no_token) {
  return analyze_decoding(t.canvas, result, mask, analytics_options{.answer = t.spans.answer, .eos = eos});
}

}  // namespace mdlm
