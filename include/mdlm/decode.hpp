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
#include "mdlm/row_choices.hpp"
#include "mdlm/row_model.hpp"
#include "mdlm/token_choice.hpp"

namespace mdlm {

//! Which model interface a decode run uses (row_model.hpp).
enum class model_interface {
  //! The row-statistics interface when the model provides it and the policy and every observer
  //! read only statistics (`reads_logit_rows = false`); the logits otherwise. The default.
  automatic,
  //! Always `logits` / `batch_logits` (the model must be a ConditionalModel).
  logits,
  //! Always `row_choices` / `batch_row_choices`; std::invalid_argument naming the reason when the
  //! model lacks it or the policy or an observer reads logit rows.
  row_choices,
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
  stats_path path = stats_path::kernels;  //!< statistics / token-choice method on host rows (default kernels)
  //! Model interface (default automatic: row statistics whenever the model and the observers allow;
  //! `decode_result::interface` says which was used and `interface_note` why not row statistics).
  model_interface interface = model_interface::automatic;
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
  //! The model interface the run used (never `automatic`).
  model_interface interface = model_interface::logits;
  //! Why the run used logits although the model also provides row statistics (empty otherwise): the
  //! fallback to the slower path is never silent.
  std::string interface_note;

  //! True when the run ended as intended: every mask decoded, or an observer stopped it. False for
  //! invalid logits, no progress, a step limit, and an `incomplete` schedule (masks left).
  [[nodiscard]] bool ok() const noexcept {
    return status == decode_status::completed || status == decode_status::stopped;
  }
};

namespace detail {

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
    rows_.reserve(c.tokens.size());
    extra_rows_.reserve(2 * c.tokens.size());
    choices_.resize(c.tokens.size());  // the most rows a step can request
    candidates_.reserve(c.tokens.size());
    sel_.reserve(c.tokens.size());
    scratch_.reserve(vocab);
    request_.choice = opt.choice;
    request_.rng = rng;
    request_.sequence = sequence_;
    request_.path = opt.path;
    request_.kl = detail::requests_kl<Policy>();
    done_ = masked_total_ == 0;
    if (!done_) enter_block(0);
  }

  [[nodiscard]] bool done() const noexcept { return done_; }
  //! Whether the model calls of this run return logit rows (told to `add_rows` in row_query::logits).
  void set_logits_interface(bool logits) noexcept { logits_interface_ = logits; }
  [[nodiscard]] std::span<const token_id> tokens() const noexcept { return result_.tokens; }
  [[nodiscard]] std::size_t length() const noexcept { return result_.tokens.size(); }
  //! The most model calls this run can make (`decode_options::max_nfe` resolved).
  [[nodiscard]] std::size_t max_nfe() const noexcept { return max_nfe_; }
  //! Scratch space of the host-rows path (compute_row_choices).
  [[nodiscard]] choice_scratch& scratch() noexcept { return scratch_; }
  //! The session's own buffer for the next call's row choices (request().rows.size() entries).
  [[nodiscard]] std::span<row_choice> choice_buffer() noexcept {
    return std::span<row_choice>(choices_.data(), rows_.size());
  }

  //! The rows the next call needs (the masked candidates of the step, plus the rows the policy and
  //! the observers declare, ascending, unique) and how to choose their tokens. Allocation-free.
  template <class... Observers>
  const row_request& prepare(const Observers&... observers) {
    rows_.clear();
    for (std::size_t p = candidates_begin(); p < block_end_; ++p)
      if (result_.tokens[p] == mask_) rows_.push_back(p);
    constexpr bool declared = declares_rows<Policy> || (declares_rows<Observers> || ...);
    if constexpr (declared) {
      extra_rows_.clear();
      const row_query q{result_.nfe, batch_index_, region_begin_, region_end_, block_begin_,
                        block_end_,  mask_,        result_.tokens, logits_interface_};
      if constexpr (declares_rows<Policy>) opt_.policy.add_rows(q, extra_rows_);
      (add_declared_rows(observers, q), ...);
      for (std::size_t p : extra_rows_)
        if (p < result_.tokens.size()) rows_.push_back(p);
      std::sort(rows_.begin(), rows_.end());
      rows_.erase(std::unique(rows_.begin(), rows_.end()), rows_.end());
    }
    request_.rows = rows_;
    request_.step = static_cast<std::uint32_t>(result_.nfe);
    return request_;
  }

  //! The request made by the last `prepare`.
  [[nodiscard]] const row_request& request() const noexcept { return request_; }

  //! Processes one model call: `choices[i]` describes `request().rows[i]`; `logits` holds the
  //! call's L x V rows on the logits interface and is empty on the row-statistics interface.
  template <class... Observers>
  void step(std::span<const row_choice> choices, std::span<const float> logits, Observers&... observers) {
    const std::size_t step = result_.nfe++;
    auto& tok = result_.tokens;
    // The candidates: the requested rows that are masked positions of [candidates_begin, block_end).
    candidates_.clear();
    const std::size_t cb = candidates_begin();
    for (std::size_t i = 0; i < rows_.size(); ++i) {
      const std::size_t p = rows_[i];
      if (p < cb || p >= block_end_ || tok[p] != mask_) continue;
      const row_choice& c = choices[i];
      if (!c.stats.valid) return fail_invalid(step, p);
      if (c.token < 0 || static_cast<std::size_t>(c.token) >= vocab_) return fail_token(step, p, c.token);
      candidates_.push_back(to_position_info(c, p));
    }
    const std::span<const std::size_t> row_positions(rows_);
    const std::span<const row_choice> row_stats = choices.first(rows_.size());
    step_event ev{step,      result_.nfe, block_,     block_begin_, block_end_, region_begin_,
                  region_end_, batch_index_, sequence_, mask_,      tok,        logits,
                  vocab_,    candidates_, {},        {},          row_positions, row_stats};
    if constexpr (sizeof...(Observers) > 0) {
      bool stop = false;
      ((stop = (detail::notify_logits(observers, ev) == observer_action::stop) || stop), ...);
      record_observer_writes(step);
      if (stop) return finish(decode_status::stopped);
    }
    const step_context ctx{step,       block_,        step_in_block_, steps_per_block_,
                           steps_,     block_begin_,  block_end_,     block_masked_at_start_,
                           masked_total_, sequence_, rng_,           tok,
                           logits,     vocab_,        mask_,          row_positions,
                           row_stats};
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

  void fail_invalid(std::size_t step, std::size_t pos) {
    result_.error_step = step;
    result_.error_position = pos;
    result_.message = concat("the model returned an invalid logit row (NaN, +inf or all -inf) at step ", step,
                             ", position ", pos);
    finish(decode_status::invalid_logits);
  }

  void fail_token(std::size_t step, std::size_t pos, token_id t) {
    result_.error_step = step;
    result_.error_position = pos;
    result_.message = concat("the model's row statistics at step ", step, ", position ", pos, " choose token ", t,
                             ", outside the vocabulary [0, ", vocab_, ")");
    finish(decode_status::invalid_logits);
  }

  template <class O>
  void add_declared_rows(const O& o, const row_query& q) {
    if constexpr (declares_rows<O>) o.add_rows(q, extra_rows_);
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
  std::vector<std::size_t> rows_;        // the rows of the coming / current call (ascending)
  std::vector<std::size_t> extra_rows_;  // rows declared by the policy and the observers
  std::vector<row_choice> choices_;      // the session's own buffer for their statistics
  row_request request_;
  selection sel_;
  choice_scratch scratch_;
  std::size_t region_begin_ = 0, region_end_ = 0, block_length_ = 0, blocks_ = 0, steps_ = 0, steps_per_block_ = 0;
  std::size_t max_nfe_ = 0;
  std::size_t block_ = 0, block_begin_ = 0, block_end_ = 0, block_masked_at_start_ = 0, step_in_block_ = 0;
  std::size_t masked_total_ = 0;
  std::size_t idle_steps_ = 0;  // steps that changed nothing, in total (adaptive runs)
  bool done_ = false;
  bool logits_interface_ = false;  // the calls return logit rows (row_query::logits)
};

}  // namespace detail

namespace detail {

//! Which interface a run uses: true = row statistics; `note` says why logits were used although
//! the model has row statistics. Throws std::invalid_argument for an impossible `model_interface`.
template <class Model, class Policy, class... Observers>
[[nodiscard]] bool use_row_interface(model_interface requested, std::string& note) {
  constexpr bool has_rows = RowStatisticsModel<Model>;
  constexpr bool has_logits = ConditionalModel<Model>;
  constexpr bool policy_reads = reads_logit_rows<Policy>();
  constexpr bool observer_reads = (reads_logit_rows<Observers>() || ...);
  const char* reader = policy_reads ? "the policy reads logit rows (it does not declare reads_logit_rows = false)"
                       : observer_reads
                           ? "an observer reads logit rows (it does not declare reads_logit_rows = false)"
                           : nullptr;
  switch (requested) {
    case model_interface::logits:
      require(has_logits, "model_interface::logits: the model has no logits(tokens, out)");
      if (has_rows) note = "decode_options::interface = model_interface::logits";
      return false;
    case model_interface::row_choices:
      require(has_rows, "model_interface::row_choices: the model has no row_choices(tokens, request, out)");
      require(reader == nullptr, "model_interface::row_choices: ", reader);
      return true;
    case model_interface::automatic: break;
  }
  if (!has_rows) return false;
  if (reader == nullptr) return true;
  require(has_logits, "the model provides only row statistics, but ", reader);
  note = reader;
  return false;
}

//! The statistics of one call of `session` from the logits `model` wrote into `logits`.
template <class Policy>
void choices_from_logits(decode_session<Policy>& session, std::span<const float> logits, std::size_t vocab,
                         std::span<row_choice> out, thread_pool* pool) {
  compute_row_choices(logits, vocab, session.request(), out, pool, session.scratch());
}

}  // namespace detail

//! Decodes one canvas with `model` (one model call per step; see the file comment).
//! @param model     a ConditionalModel (logits), a RowStatisticsModel (row_model.hpp), or both;
//!                  `options.interface` chooses, `decode_result::interface` reports the choice
//! @param c         the canvas (its generation region is decoded; `c.sequence` keys the randomness)
//! @param options   policy, token choice, block length, steps
//! @param rng       the run's counter-based generator (its seed)
//! @param observers zero or more step observers (observer.hpp)
//! @throws std::invalid_argument on bad options/canvas or an impossible interface (before any call)
template <decodable_model Model, unmasking_policy Policy, class... Observers>
[[nodiscard]] decode_result decode(Model& model, const canvas& c, const decode_options<Policy>& options,
                                   counter_rng rng, Observers&&... observers) {
  static_assert((step_observer<std::remove_reference_t<Observers>> && ...),
                "mdlm::decode: each observer needs on_logits(step_event&), on_step(step_event&) or to be "
                "invocable with const step_event&");
  std::string note;
  const bool rows = detail::use_row_interface<Model, Policy, std::remove_cvref_t<Observers>...>(options.interface, note);
  const std::size_t vocab = static_cast<std::size_t>(model.vocab_size());
  detail::decode_session<Policy> session(c, options, rng, vocab, static_cast<token_id>(model.mask_token()), 0);
  session.set_logits_interface(!rows);
  std::vector<float> logits(rows ? 0 : session.length() * vocab);
  while (!session.done()) {
    const row_request& request = session.prepare(observers...);
    const std::span<row_choice> out = session.choice_buffer();
    if (rows) {
      if constexpr (RowStatisticsModel<Model>) model.row_choices(session.tokens(), request, out);
    } else {
      if constexpr (ConditionalModel<Model>) {
        model.logits(session.tokens(), std::span<float>(logits));
        detail::choices_from_logits(session, std::span<const float>(logits), vocab, out, options.pool);
      }
    }
    session.step(std::span<const row_choice>(out), std::span<const float>(logits), observers...);
  }
  decode_result r = std::move(session).take_result();
  r.interface = rows ? model_interface::row_choices : model_interface::logits;
  r.interface_note = std::move(note);
  return r;
}

//! Anything `decode_batch` accepts: a BatchedConditionalModel or a RowStatisticsModel (one
//! `row_choices` call per canvas when it has no `batch_row_choices`).
template <class M>
concept batch_decodable_model = BatchedConditionalModel<M> || RowStatisticsModel<M>;

//! Decodes a batch of canvases of equal length with one model call per step (`batch_logits`, or
//! `batch_row_choices`) over the canvases still running. Each canvas's result is bit-identical to
//! decoding it alone (given a batch-invariant model), whatever the batch composition. Observers see
//! `step_event::batch_index`.
template <batch_decodable_model Model, unmasking_policy Policy, class... Observers>
[[nodiscard]] std::vector<decode_result> decode_batch(Model& model, std::span<const canvas> canvases,
                                                      const decode_options<Policy>& options, counter_rng rng,
                                                      Observers&&... observers) {
  static_assert((step_observer<std::remove_reference_t<Observers>> && ...),
                "mdlm::decode_batch: each observer needs on_logits(step_event&), on_step(step_event&) or to be "
                "invocable with const step_event&");
  std::string note;
  const bool rows = detail::use_row_interface<Model, Policy, std::remove_cvref_t<Observers>...>(options.interface, note);
  if (!rows)
    detail::require(BatchedConditionalModel<Model>,
                    "decode_batch on the logits interface needs batch_logits(tokens, batch, out)");
  const std::size_t vocab = static_cast<std::size_t>(model.vocab_size());
  const auto mask = static_cast<token_id>(model.mask_token());
  std::vector<detail::decode_session<Policy>> sessions;
  sessions.reserve(canvases.size());
  const std::size_t length = canvases.empty() ? 0 : canvases[0].size();
  for (std::size_t b = 0; b < canvases.size(); ++b) {
    detail::require(canvases[b].size() == length, "canvas ", b, " has length ", canvases[b].size(),
                    " but canvas 0 has length ", length, ": a batch needs equal lengths");
    sessions.emplace_back(canvases[b], options, rng, vocab, mask, b);
    sessions.back().set_logits_interface(!rows);
  }
  std::vector<token_id> tokens(canvases.size() * length);
  std::vector<float> logits(rows ? 0 : canvases.size() * length * vocab);
  std::vector<row_choice> choices(canvases.size() * length);
  std::vector<row_request> requests;
  requests.reserve(canvases.size());
  std::vector<std::size_t> active, offset;
  active.reserve(canvases.size());
  offset.reserve(canvases.size() + 1);
  for (;;) {
    active.clear();
    for (std::size_t b = 0; b < sessions.size(); ++b)
      if (!sessions[b].done()) active.push_back(b);
    if (active.empty()) break;
    requests.clear();
    offset.assign(1, 0);
    for (std::size_t j = 0; j < active.size(); ++j) {
      auto& s = sessions[active[j]];
      requests.push_back(s.prepare(observers...));
      offset.push_back(offset.back() + requests.back().rows.size());
      const auto t = s.tokens();
      std::copy(t.begin(), t.end(), tokens.begin() + static_cast<std::ptrdiff_t>(j * length));
    }
    const std::span<const token_id> batch_tokens(tokens.data(), active.size() * length);
    auto slice = [&](std::size_t j) { return std::span<row_choice>(choices.data() + offset[j], offset[j + 1] - offset[j]); };
    if (rows) {
      if constexpr (BatchedRowStatisticsModel<Model>) {
        model.batch_row_choices(batch_tokens, active.size(), std::span<const row_request>(requests),
                                std::span<row_choice>(choices.data(), offset.back()));
      } else if constexpr (RowStatisticsModel<Model>) {
        for (std::size_t j = 0; j < active.size(); ++j)
          model.row_choices(batch_tokens.subspan(j * length, length), requests[j], slice(j));
      }
    } else {
      if constexpr (BatchedConditionalModel<Model>) {
        model.batch_logits(batch_tokens, active.size(), std::span<float>(logits.data(), active.size() * length * vocab));
        for (std::size_t j = 0; j < active.size(); ++j)
          detail::choices_from_logits(sessions[active[j]],
                                      std::span<const float>(logits.data() + j * length * vocab, length * vocab), vocab,
                                      slice(j), options.pool);
      }
    }
    for (std::size_t j = 0; j < active.size(); ++j) {
      const std::span<const float> rows_j =
          rows ? std::span<const float>() : std::span<const float>(logits.data() + j * length * vocab, length * vocab);
      sessions[active[j]].step(std::span<const row_choice>(slice(j)), rows_j, observers...);
    }
  }
  std::vector<decode_result> results;
  results.reserve(sessions.size());
  for (auto& s : sessions) {
    results.push_back(std::move(s).take_result());
    results.back().interface = rows ? model_interface::row_choices : model_interface::logits;
    results.back().interface_note = note;
  }
  return results;
}

}  // namespace mdlm
