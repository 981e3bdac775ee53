// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! Observers of the decode loop: per-step hooks that see the step, the canvas, the per-position
//! statistics and the chosen positions, and can stop the loop (early exit, trace scoring, streaming).
//!
//! An observer is any object with one or both of
//!   * `on_logits(step_event&)` -- called after the model call and token choice, BEFORE the policy's
//!     selection is applied (Prophet's exit test runs here);
//!   * `on_step(step_event&)`   -- called after the step's unmasking is applied (early exit on H_UB);
//! each returning `observer_action` (or void = proceed). A plain callable invocable with
//! `const step_event&` is an `on_step` observer. Observers may write tokens into `event.tokens`
//! (e.g. fill the answer block); the loop records such writes as unmasked at this step.
//!
//! Rows and logits. Every step computes the statistics and chosen token (`row_choice`) of its
//! candidates and of the rows observers declare with an optional member
//!     `void add_rows(const row_query& q, std::vector<std::size_t>& rows) const`
//! (push canvas positions; duplicates and order do not matter; at most the canvas length in total);
//! observers read them with `step_event::stats_at(pos)`. Those statistics are the same on both model
//! interfaces (row_model.hpp). The raw rows `step_event::logits` exist only when the model returned
//! logits: an observer that reads them declares nothing; one that reads only `stats_at`, candidates
//! and tokens declares `static constexpr bool reads_logit_rows = false;`, which lets decode use a
//! row-statistics model (decode.hpp, `model_interface`).

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>

#include <algorithm>
#include <vector>

#include "mdlm/detail/traits.hpp"
#include "mdlm/kernels/detail/row_common.hpp"
#include "mdlm/token_choice.hpp"
#include "mdlm/types.hpp"

namespace mdlm {

//! What an observer asks of the loop.
enum class observer_action { proceed, stop };

//! Everything an observer sees at one step.
struct step_event {
  std::size_t step = 0;                        //!< 0-based step (model call index)
  std::size_t nfe = 0;                         //!< model calls so far, this one included
  std::size_t block = 0;                       //!< current block index
  std::size_t block_begin = 0, block_end = 0;  //!< current block
  std::size_t region_begin = 0, region_end = 0;//!< generation region
  std::size_t batch_index = 0;                 //!< index of the canvas in its batch (0 alone)
  std::uint32_t sequence = 0;                  //!< the canvas's random-number key
  token_id mask = 0;                           //!< mask token id
  std::span<token_id> tokens{};                //!< the canvas (observers may write)
  std::span<const float> logits{};             //!< this call's rows, L x V
  std::size_t vocab = 0;                       //!< V
  std::span<const position_info> candidates{}; //!< masked positions of the block with chosen tokens
  std::span<const std::size_t> unmasked{};     //!< candidate indices unmasked this step (on_step)
  std::span<const std::size_t> remasked{};     //!< canvas positions re-masked this step (on_step)
  //! Canvas positions whose statistics this step computed (ascending): the candidates and the rows
  //! observers and the policy declared.
  std::span<const std::size_t> row_positions{};
  std::span<const row_choice> row_stats{};     //!< their statistics and chosen tokens, same order

  //! The logit row of canvas position `pos`. Precondition: the model returned logits
  //! (`logits` not empty; see the file comment).
  [[nodiscard]] std::span<const float> row(std::size_t pos) const noexcept { return logits.subspan(pos * vocab, vocab); }
  //! The statistics of canvas position `pos` at this call, or nullptr when the step did not compute
  //! them (declare the row with `add_rows`). O(log rows).
  [[nodiscard]] const row_choice* stats_at(std::size_t pos) const noexcept {
    return detail::row_stats_at(row_positions, row_stats, pos);
  }
};

//! What an observer's `add_rows` sees before a model call.
struct row_query {
  std::size_t step = 0;                          //!< 0-based step of the coming call
  std::size_t batch_index = 0;                   //!< index of the canvas in its batch
  std::size_t region_begin = 0, region_end = 0;  //!< generation region
  std::size_t block_begin = 0, block_end = 0;    //!< current block
  token_id mask = 0;                             //!< mask token id
  std::span<const token_id> tokens{};            //!< the canvas before the call
  //! The call returns logit rows (the logits interface): a part that can compute what it needs
  //! from `step_context::logits` / `step_event::logits` need not declare rows for statistics.
  bool logits = false;
};

namespace detail {

template <class O>
concept has_on_logits = requires(O& o, step_event& e) { o.on_logits(e); };
template <class O>
concept declares_rows = requires(const O& o, const row_query& q, std::vector<std::size_t>& rows) { o.add_rows(q, rows); };

template <class O>
concept has_on_step = requires(O& o, step_event& e) { o.on_step(e); };
template <class O>
concept callable_observer = std::invocable<O&, const step_event&> && !has_on_logits<O> && !has_on_step<O>;

template <class R>
[[nodiscard]] constexpr observer_action to_action(R&& r) noexcept {
  if constexpr (std::is_same_v<std::remove_cvref_t<R>, observer_action>) return r;
  else return observer_action::proceed;
}

template <class O>
[[nodiscard]] observer_action notify_logits(O& o, step_event& e) {
  if constexpr (has_on_logits<O>) {
    if constexpr (std::is_void_v<decltype(o.on_logits(e))>) {
      o.on_logits(e);
      return observer_action::proceed;
    } else {
      return to_action(o.on_logits(e));
    }
  } else {
    return observer_action::proceed;
  }
}

template <class O>
[[nodiscard]] observer_action notify_step(O& o, step_event& e) {
  if constexpr (has_on_step<O>) {
    if constexpr (std::is_void_v<decltype(o.on_step(e))>) {
      o.on_step(e);
      return observer_action::proceed;
    } else {
      return to_action(o.on_step(e));
    }
  } else if constexpr (callable_observer<O>) {
    if constexpr (std::is_void_v<std::invoke_result_t<O&, const step_event&>>) {
      o(static_cast<const step_event&>(e));
      return observer_action::proceed;
    } else {
      return to_action(o(static_cast<const step_event&>(e)));
    }
  } else {
    return observer_action::proceed;
  }
}

}  // namespace detail

//! Anything `decode` accepts as an observer.
template <class O>
concept step_observer = detail::has_on_logits<O> || detail::has_on_step<O> || detail::callable_observer<O>;

}  // namespace mdlm
