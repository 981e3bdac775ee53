// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! The decode loop: `mdlm::decode(model, canvas, options, rng, observers...)` and its batched form.
//!
//! One model call per step. At each step the loop computes the statistics and the chosen token of
//! every masked position of the current semi-autoregressive block, asks the unmasking policy which
//! to unmask (or re-mask), writes them, and notifies the observers. Blocks of `block_length`
//! positions tile the generation region and are completed left to right: block length 1 is
//! left-to-right decoding, block length = region length is pure any-order decoding.
//!
//! Step modes:
//!   * adaptive (`steps == 0` with an adaptive policy): a block is stepped until it has no mask; NFE
//!     counts the calls (MED, EB-Sampler, Fast-dLLM, KLASS, fixed k per step);
//!   * scheduled (`policy.scheduled()`: LLaDA / Dream schedules, Dream origin): each of the B blocks
//!     gets exactly steps / B model calls, no-op steps included, so NFE = steps as in the reference
//!     samplers. `steps == 0` means one step per generated position (steps = region length, the
//!     reference scripts' default).
//!
//! The mask id as a chosen token (a model's argmax or sample can be the mask id itself):
//!   * scheduled runs follow the references (LLaDA generate.py, Dream diffusion_generate): the mask
//!     id is written back, so the position stays masked, is not counted as decoded, and stays a
//!     candidate at later steps -- also in later blocks, since candidates of a scheduled step are
//!     the masked positions from the start of the region to the end of the current block, as
//!     upstream's confidence is -inf only beyond the current block. The run still makes exactly
//!     `steps` calls; if masks are left at the end the status is `incomplete` and
//!     `decode_result::masked_left` says how many;
//!   * adaptive runs do the same (the position stays masked), and a step that changes nothing is
//!     idle. An adaptive run may spend at most `region length` idle steps in total; one more ends it
//!     with `no_progress`. So an adaptive run without re-masking makes at most
//!     masked + region length + 1 calls, whatever the model returns.
//!   * In every mode `decode_options::max_nfe` (0 = automatic: `steps` for scheduled runs,
//!     masked + region length + 1 for adaptive runs) is a hard cap: a run that reaches it with
//!     masks left ends with `step_limit`.
//! A canvas with no mask in its generation region returns at once with NFE 0.
//!
//! Determinism: every random number is keyed by (seed, stream, canvas.sequence, step, position,
//! index), so a canvas gives bit-identical output alone or inside any batch, for any thread count.
//!
//! Errors: bad options or canvases throw std::invalid_argument before the first model call. A model
//! row that is invalid (NaN, +inf, all -inf) stops the loop with status `invalid_logits` and a
//! message naming the step and position; the tokens decoded so far are kept.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "mdlm/canvas.hpp"
#include "mdlm/concepts.hpp"
#include "mdlm/detail/errors.hpp"
#include "mdlm/kernels/batched_stats.hpp"
#include "mdlm/kernels/thread_pool.hpp"
#include "mdlm/logit_stats.hpp"
#include "mdlm/observer.hpp"
#include "mdlm/policy.hpp"
#include "mdlm/rng.hpp"
#include "mdlm/token_choice.hpp"

namespace mdlm {

//! How `decode` computes the per-position statistics and token choice of a step.
enum class stats_path {
  //! The one-pass SIMD kernels of kernels/batched_stats.hpp (the default): statistics, greedy or
  //! Gumbel-max token and the tempered quantities in one read of each masked row, rows spread over
  //! `decode_options::pool`. Top-k / top-p filters take the kernels' statistics and then the slower
  //! sorting path of token_choice.hpp. Tokens equal the reference path's exactly; the statistics
  //! agree with it to ~1e-6 relative (tests/kernels). Rows narrower than
  //! `detail::kernels_min_vocab` entries (exact reference models, toy models) take the reference
  //! path: a vector pass has nothing to gain there, and such decodes then equal the reference bit
  //! for bit, ties between equal confidences included.
  kernels,
  //! `compute_logit_stats` + `choose_token` per row in double precision, one row after another: the
  //! reference the kernels are tested against.
  scalar_reference,
};

//! Options of a decode run. `Policy` is any `unmasking_policy` (policies/*.hpp).
template <class Policy>
struct decode_options {
  Policy policy{};               //!< which positions to unmask each step
  token_choice choice{};         //!< which token to write (default greedy)
  std::size_t block_length = 0;  //!< semi-autoregressive block length; 0 = the whole region
  //! Model calls of a scheduled policy (must be a multiple of the number of blocks); 0 (default) =
  //! one call per generated position for scheduled policies. Adaptive policies with steps > 0 get
  //! steps / blocks calls per block, like scheduled ones; 0 = adaptive.
  std::size_t steps = 0;
  stats_path path = stats_path::kernels;  //!< statistics / token-choice implementation (default kernels)
  //! Threads for the statistics kernels (kernels/thread_pool.hpp), owned by the caller; nullptr
  //! (default) = the calling thread. Results do not depend on it.
  thread_pool* pool = nullptr;
  //! Hard cap on model calls: a run that reaches it with masks left ends with
  //! `decode_status::step_limit`. 0 (default) = automatic: the number of scheduled steps, or for
  //! adaptive runs masked positions + region length + 1 (the most an adaptive run can need, see the
  //! file comment). Re-masking policies that need more set it explicitly.
  std::size_t max_nfe = 0;
};

//! How a decode run ended.
enum class decode_status {
  completed,       //!< every mask of the generation region was decoded
  stopped,         //!< an observer stopped the loop
  invalid_logits,  //!< the model returned an invalid row (see `decode_result::message`)
  //! an adaptive run spent more idle steps (steps that changed nothing: the mask id chosen, or
  //! nothing selected) than the region has positions
  no_progress,
  //! a scheduled run made its `steps` calls with masks left (the model chose the mask id, which the
  //! references write back); `decode_result::masked_left` > 0
  incomplete,
  //! the run reached `decode_options::max_nfe` model calls with masks left
  step_limit,
};

//! The status's name, as the tools print it ("completed", "stopped", ...).
[[nodiscard]] constexpr const char* to_string(decode_status s) noexcept {
  switch (s) {
    case decode_status::completed: return "completed";
    case decode_status::stopped: return "stopped";
    case decode_status::invalid_logits: return "invalid_logits";
    case decode_status::no_progress: return "no_progress";
    case decode_status::incomplete: return "incomplete";
    case decode_status::step_limit: return "step_limit";
  }
  return "unknown";
}

//! The outcome of decoding one canvas.
struct decode_result {
  std::vector<token_id> tokens;            //!< the final canvas
  std::size_t nfe = 0;                     //!< number of model calls
  //! Per canvas position: the 0-based step whose model call decided it; -1 for positions that
  //! were not masked at the start or are still masked.
  std::vector<std::int32_t> unmask_step;
  decode_status status = decode_status::completed;
  //! Masked positions left in the generation region at the end (0 when completed).
  std::size_t masked_left = 0;
  std::string message;                     //!< set unless status is completed or stopped
  std::size_t error_step = 0;              //!< step of the invalid row
  std::size_t error_position = 0;          //!< position of the invalid row

  //! True when the run ended as intended: every mask decoded, or an observer stopped it. False for
  //! invalid logits, no progress, a step limit, and an `incomplete` schedule (masks left).
  [[nodiscard]] bool ok() const noexcept {
    return status == decode_status::completed || status == decode_status::stopped;
  }
};

namespace detail {

//! Narrowest logit row for which `stats_path::kernels` calls the vector kernels (see stats_path).
inline constexpr std::size_t kernels_min_vocab = 128;

template <class Policy>
struct policy_state {
  using type = std::monostate;
};
template <stateful_policy Policy>
struct policy_state<Policy> {
  using type = typename Policy::state_type;
};

//! Block length and number of steps a run uses (options resolved against the canvas).
struct decode_plan {
  std::size_t block_length = 0;  //!< the block length (region length for block_length = 0)
  std::size_t steps = 0;         //!< scheduled steps; 0 = adaptive
};

//! Validates options against a canvas and a model vocabulary; returns the plan the run follows.
template <class Policy>
decode_plan validate_decode(const canvas& c, const decode_options<Policy>& opt, std::size_t vocab, token_id mask) {
  opt.policy.validate();
  opt.choice.validate();
  require(vocab > 0, "model vocabulary size = 0");
  require(c.vocab_size == 0 || c.vocab_size == vocab, "canvas vocabulary size ", c.vocab_size,
          " differs from the model vocabulary size ", vocab);
  require(mask >= 0 && static_cast<std::size_t>(mask) < vocab, "mask token ", mask,
          " is outside the model vocabulary [0, ", vocab, ")");
  require(c.region_begin <= c.region_end && c.region_end <= c.tokens.size(), "generation region [",
          c.region_begin, ", ", c.region_end, ") does not fit a canvas of ", c.tokens.size(), " tokens");
  require(c.region_end > c.region_begin, "the generation region is empty");
  for (std::size_t i = 0; i < c.tokens.size(); ++i) {
    const token_id t = c.tokens[i];
    require(t >= 0 && static_cast<std::size_t>(t) < vocab, "token ", t, " at position ", i,
            " is outside the model vocabulary [0, ", vocab, ")");
    require(t != mask || (i >= c.region_begin && i < c.region_end), "position ", i,
            " outside the generation region holds the mask token ", mask);
  }
  const std::size_t region = c.region_length();
  const std::size_t block = opt.block_length == 0 ? region : opt.block_length;
  require(block <= region && region % block == 0, "block_length = ", opt.block_length,
          " does not divide the generation length ", region);
  const std::size_t blocks = region / block;
  // A scheduled policy without steps takes one step per generated position (region is a multiple of
  // the number of blocks, so this always divides).
  const std::size_t steps = opt.steps > 0 ? opt.steps : (opt.policy.scheduled() ? region : 0);
  if (steps > 0)
    require(steps % blocks == 0, "steps = ", steps, " is not divisible by the number of blocks ", blocks,
            " (generation length ", region, " / block_length ", block, ")");
  return {block, steps};
}

//! The per-canvas state machine of the decode loop; `decode` and `decode_batch` drive it.
template <class Policy>
class decode_session {
 public:
  decode_session(const canvas& c, const decode_options<Policy>& opt, counter_rng rng, std::size_t vocab,
                 token_id mask, std::size_t batch_index)
      : opt_(opt), rng_(rng), vocab_(vocab), mask_(mask), batch_index_(batch_index), sequence_(c.sequence) {
    const decode_plan plan = validate_decode(c, opt, vocab, mask);
    block_length_ = plan.block_length;
    steps_ = plan.steps;
    result_.tokens = c.tokens;
    result_.unmask_step.assign(c.tokens.size(), -1);
    region_begin_ = c.region_begin;
    region_end_ = c.region_end;
    blocks_ = c.region_length() / block_length_;
    steps_per_block_ = steps_ / blocks_;
    initially_masked_.assign(c.tokens.size(), 0);
    for (std::size_t p = region_begin_; p < region_end_; ++p)
      if (c.tokens[p] == mask) initially_masked_[p] = 1, ++masked_total_;
    max_nfe_ = opt.max_nfe > 0 ? opt.max_nfe : (steps_ > 0 ? steps_ : masked_total_ + c.region_length() + 1);
    if constexpr (stateful_policy<Policy>) {
      state_.emplace(opt.policy.make_state(decode_setup{c.tokens.size(), vocab, region_begin_, region_end_,
                                                        block_length_, steps_, mask}));
    }
    // Scheduled steps may see masks left in earlier blocks: up to the whole region is a candidate.
    const std::size_t max_candidates = steps_ > 0 ? c.region_length() : block_length_;
    candidates_.reserve(max_candidates);
    rows_.reserve(max_candidates);
    choices_.reserve(max_candidates);
    sel_.reserve(c.tokens.size());
    scratch_.reserve(vocab);
    done_ = masked_total_ == 0;
    if (!done_) enter_block(0);
  }

  [[nodiscard]] bool done() const noexcept { return done_; }
  [[nodiscard]] std::span<const token_id> tokens() const noexcept { return result_.tokens; }
  [[nodiscard]] std::size_t length() const noexcept { return result_.tokens.size(); }
  //! The most model calls this run can make (`decode_options::max_nfe` resolved).
  [[nodiscard]] std::size_t max_nfe() const noexcept { return max_nfe_; }

  //! Processes one model call whose rows for this canvas are `logits` (L x V).
  template <class... Observers>
  void step(std::span<const float> logits, Observers&... observers) {
    const std::size_t step = result_.nfe++;
    auto& tok = result_.tokens;
    // Statistics and token choice for every masked position of the block.
    candidates_.clear();
    if (opt_.path == stats_path::scalar_reference || vocab_ < kernels_min_vocab) {
      for (std::size_t p = candidates_begin(); p < block_end_; ++p) {
        if (tok[p] != mask_) continue;
        const auto row = logits.subspan(p * vocab_, vocab_);
        const logit_stats s = compute_logit_stats(row);
        if (!s.valid) return fail_invalid(step, p);
        candidates_.push_back(choose_token(row, s, opt_.choice, rng_, sequence_, static_cast<std::uint32_t>(step),
                                           p, scratch_));
      }
    } else if (!kernel_choices(logits, step)) {
      return;
    }
    step_event ev{step, result_.nfe, block_, block_begin_, block_end_, region_begin_, region_end_, batch_index_,
                  sequence_, mask_, tok, logits, vocab_, candidates_, {}, {}};
    if constexpr (sizeof...(Observers) > 0) {
      bool stop = false;
      ((stop = (detail::notify_logits(observers, ev) == observer_action::stop) || stop), ...);
      record_observer_writes(step);
      if (stop) return finish(decode_status::stopped);
    }
    const step_context ctx{step,  block_,      step_in_block_, steps_per_block_, steps_,     block_begin_,
                           block_end_, block_masked_at_start_, masked_total_, sequence_,  rng_,
                           tok,   logits,      vocab_,         mask_};
    sel_.clear();
    if constexpr (stateful_policy<Policy>) opt_.policy.select(ctx, candidates_, *state_, sel_);
    else opt_.policy.select(ctx, candidates_, sel_);
    std::size_t changed = 0;
    // A candidate whose chosen token is the mask id is written back as the references do: it stays
    // masked (and a candidate later) and is not reported as unmasked.
    std::erase_if(sel_.unmask, [&](std::size_t i) { return candidates_[i].token == mask_; });
    for (std::size_t i : sel_.unmask) {
      const std::size_t p = candidates_[i].position;
      if (tok[p] != mask_) continue;
      tok[p] = candidates_[i].token;
      result_.unmask_step[p] = static_cast<std::int32_t>(step);
      --masked_total_;
      ++changed;
    }
    for (std::size_t p : sel_.remask) {
      if (p < region_begin_ || p >= region_end_ || tok[p] == mask_) continue;
      tok[p] = mask_;
      result_.unmask_step[p] = -1;
      ++masked_total_;
      ++changed;
    }
    if constexpr (sizeof...(Observers) > 0) {
      ev.unmasked = sel_.unmask;
      ev.remasked = sel_.remask;
      bool stop = false;
      ((stop = (detail::notify_step(observers, ev) == observer_action::stop) || stop), ...);
      changed += record_observer_writes(step);
      if (stop) return finish(decode_status::stopped);
    }
    if (changed == 0) ++idle_steps_;
    advance();
  }

  //! Moves the result out (call once, after `done()`).
  [[nodiscard]] decode_result take_result() && { return std::move(result_); }

 private:
  [[nodiscard]] std::size_t masks_in(std::size_t b, std::size_t e) const noexcept {
    return static_cast<std::size_t>(std::count(result_.tokens.begin() + static_cast<std::ptrdiff_t>(b),
                                               result_.tokens.begin() + static_cast<std::ptrdiff_t>(e), mask_));
  }

  //! First position whose mask is a candidate: the block's start, or for scheduled runs the
  //! region's start (masks a schedule left in earlier blocks stay candidates, as upstream).
  [[nodiscard]] std::size_t candidates_begin() const noexcept { return steps_ > 0 ? region_begin_ : block_begin_; }

  void enter_block(std::size_t b) {
    for (;; ++b) {
      if (b >= blocks_) return finish(masked_total_ == 0 ? decode_status::completed : decode_status::incomplete);
      block_ = b;
      block_begin_ = region_begin_ + b * block_length_;
      block_end_ = block_begin_ + block_length_;
      block_masked_at_start_ = masks_in(block_begin_, block_end_);
      step_in_block_ = 0;
      // Adaptive runs skip blocks with nothing to decode; scheduled runs spend their steps anyway.
      if (block_masked_at_start_ > 0 || steps_per_block_ > 0) return;
    }
  }

  void advance() {
    ++step_in_block_;
    if (steps_per_block_ > 0) {
      // Scheduled: exactly steps_per_block calls per block, whatever is left masked.
      if (step_in_block_ >= steps_per_block_) enter_block(block_ + 1);
    } else if (masks_in(block_begin_, block_end_) == 0) {
      enter_block(block_ + 1);
    } else if (idle_steps_ > region_end_ - region_begin_) {
      result_.message = concat("the policy changed nothing in ", idle_steps_, " steps (the mask id chosen, or ",
                               "nothing selected), more than the ", region_end_ - region_begin_,
                               " positions of the region (step ", result_.nfe - 1, ")");
      return finish(decode_status::no_progress);
    }
    if (!done_ && result_.nfe >= max_nfe_) {
      result_.message = concat("max_nfe = ", max_nfe_, " model calls reached with ", masked_total_,
                               " masked positions left");
      finish(decode_status::step_limit);
    }
  }

  std::size_t record_observer_writes(std::size_t step) {
    std::size_t n = 0;
    masked_total_ = 0;
    for (std::size_t p = region_begin_; p < region_end_; ++p) {
      if (result_.tokens[p] == mask_) {
        ++masked_total_;
      } else if (initially_masked_[p] && result_.unmask_step[p] < 0) {
        result_.unmask_step[p] = static_cast<std::int32_t>(step);
        ++n;
      }
    }
    return n;
  }

  //! The kernels path of `step`: one batched call over the block's masked rows (row index =
  //! canvas position, which keys the Gumbel noise exactly as choose_token does). Returns false after
  //! reporting the first invalid row.
  bool kernel_choices(std::span<const float> logits, std::size_t step) {
    const auto& tok = result_.tokens;
    rows_.clear();
    for (std::size_t p = candidates_begin(); p < block_end_; ++p)
      if (tok[p] == mask_) rows_.push_back(p);
    choices_.resize(rows_.size());  // within the reserved capacity: no allocation
    const bool filtered = (opt_.choice.top_p && *opt_.choice.top_p < 1.0) || opt_.choice.top_k.has_value();
    const row_choice_options ko{.temperature = filtered ? 0.0 : opt_.choice.temperature,
                                .rng = rng_,
                                .sequence = sequence_,
                                .step = static_cast<std::uint32_t>(step)};
    choose_rows(logits, vocab_, std::span<const std::size_t>(rows_), std::span<row_choice>(choices_), ko, opt_.pool);
    for (std::size_t i = 0; i < rows_.size(); ++i) {
      const std::size_t p = rows_[i];
      const row_choice& c = choices_[i];
      if (!c.stats.valid) {
        fail_invalid(step, p);
        return false;
      }
      if (filtered) {
        // Top-k / top-p: the documented slower path (a sort of the row) with the kernels' statistics.
        candidates_.push_back(choose_token(logits.subspan(p * vocab_, vocab_), c.stats, opt_.choice, rng_, sequence_,
                                           static_cast<std::uint32_t>(step), p, scratch_));
      } else {
        candidates_.push_back(to_position_info(c, p));
      }
    }
    return true;
  }

  void fail_invalid(std::size_t step, std::size_t pos) {
    result_.error_step = step;
    result_.error_position = pos;
    result_.message = concat("the model returned an invalid logit row (NaN, +inf or all -inf) at step ", step,
                             ", position ", pos);
    finish(decode_status::invalid_logits);
  }

  void finish(decode_status s) {
    result_.status = s;
    result_.masked_left = masked_total_;
    if (s == decode_status::incomplete)
      result_.message = concat("the ", steps_, " scheduled steps ended with ", masked_total_,
                               " masked positions left (the model chose the mask id, which is written back)");
    done_ = true;
  }

  const decode_options<Policy>& opt_;
  counter_rng rng_;
  std::size_t vocab_;
  token_id mask_;
  std::size_t batch_index_;
  std::uint32_t sequence_;
  decode_result result_;
  std::vector<char> initially_masked_;
  std::optional<typename policy_state<Policy>::type> state_;
  std::vector<position_info> candidates_;
  std::vector<std::size_t> rows_;        // kernels path: masked positions of the block
  std::vector<row_choice> choices_;      // kernels path: their statistics and tokens
  selection sel_;
  choice_scratch scratch_;
  std::size_t region_begin_ = 0, region_end_ = 0, block_length_ = 0, blocks_ = 0, steps_ = 0, steps_per_block_ = 0;
  std::size_t max_nfe_ = 0;
  std::size_t block_ = 0, block_begin_ = 0, block_end_ = 0, block_masked_at_start_ = 0, step_in_block_ = 0;
  std::size_t masked_total_ = 0;
  std::size_t idle_steps_ = 0;  // steps that changed nothing, in total (adaptive runs)
  bool done_ = false;
};

}  // namespace detail

//! Decodes one canvas with `model` (one model call per step; see the file comment).
//! @param model     any ConditionalModel
//! @param c         the canvas (its generation region is decoded; `c.sequence` keys the randomness)
//! @param options   policy, token choice, block length, steps
//! @param rng       the run's counter-based generator (its seed)
//! @param observers zero or more step observers (observer.hpp)
//! @throws std::invalid_argument on bad options/canvas (before any model call)
template <ConditionalModel Model, unmasking_policy Policy, class... Observers>
[[nodiscard]] decode_result decode(Model& model, const canvas& c, const decode_options<Policy>& options,
                                   counter_rng rng, Observers&&... observers) {
  static_assert((step_observer<std::remove_reference_t<Observers>> && ...),
                "mdlm::decode: each observer needs on_logits(step_event&), on_step(step_event&) or to be "
                "invocable with const step_event&");
  const std::size_t vocab = static_cast<std::size_t>(model.vocab_size());
  detail::decode_session<Policy> session(c, options, rng, vocab, static_cast<token_id>(model.mask_token()), 0);
  std::vector<float> logits(session.length() * vocab);
  while (!session.done()) {
    model.logits(session.tokens(), std::span<float>(logits));
    session.step(std::span<const float>(logits), observers...);
  }
  return std::move(session).take_result();
}

//! Decodes a batch of canvases of equal length with one `batch_logits` call per step over the
//! canvases still running. Each canvas's result is bit-identical to decoding it alone (given a
//! batch-invariant model), whatever the batch composition. Observers see `step_event::batch_index`.
template <BatchedConditionalModel Model, unmasking_policy Policy, class... Observers>
[[nodiscard]] std::vector<decode_result> decode_batch(Model& model, std::span<const canvas> canvases,
                                                      const decode_options<Policy>& options, counter_rng rng,
                                                      Observers&&... observers) {
  static_assert((step_observer<std::remove_reference_t<Observers>> && ...),
                "mdlm::decode_batch: each observer needs on_logits(step_event&), on_step(step_event&) or to be "
                "invocable with const step_event&");
  const std::size_t vocab = static_cast<std::size_t>(model.vocab_size());
  const auto mask = static_cast<token_id>(model.mask_token());
  std::vector<detail::decode_session<Policy>> sessions;
  sessions.reserve(canvases.size());
  const std::size_t length = canvases.empty() ? 0 : canvases[0].size();
  for (std::size_t b = 0; b < canvases.size(); ++b) {
    detail::require(canvases[b].size() == length, "canvas ", b, " has length ", canvases[b].size(),
                    " but canvas 0 has length ", length, ": a batch needs equal lengths");
    sessions.emplace_back(canvases[b], options, rng, vocab, mask, b);
  }
  std::vector<token_id> tokens(canvases.size() * length);
  std::vector<float> logits(canvases.size() * length * vocab);
  std::vector<std::size_t> active;
  active.reserve(canvases.size());
  for (;;) {
    active.clear();
    for (std::size_t b = 0; b < sessions.size(); ++b)
      if (!sessions[b].done()) active.push_back(b);
    if (active.empty()) break;
    for (std::size_t j = 0; j < active.size(); ++j) {
      const auto t = sessions[active[j]].tokens();
      std::copy(t.begin(), t.end(), tokens.begin() + static_cast<std::ptrdiff_t>(j * length));
    }
    model.batch_logits(std::span<const token_id>(tokens.data(), active.size() * length), active.size(),
                       std::span<float>(logits.data(), active.size() * length * vocab));
    for (std::size_t j = 0; j < active.size(); ++j)
      sessions[active[j]].step(std::span<const float>(logits.data() + j * length * vocab, length * vocab),
                               observers...);
  }
  std::vector<decode_result> results;
  results.reserve(sessions.size());
  for (auto& s : sessions) results.push_back(std::move(s).take_result());
  return results;
}

}  // namespace mdlm
