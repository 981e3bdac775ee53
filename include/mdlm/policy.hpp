// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! The unmasking-policy interface: which masked positions to unmask (or re-mask) at a step.
//!
//! A policy is a plain aggregate with a member
//!     `void select(const step_context& ctx, std::span<const position_info> candidates, selection& out) const`
//! (stateless policies), or, for stateful policies (KLASS, credit decoding), a nested `state_type`,
//! `state_type make_state(const decode_setup&) const` and
//!     `void select(const step_context&, std::span<const position_info>, state_type&, selection&) const`.
//! `candidates` are the masked positions of the current block in ascending position order, with the
//! token already chosen (token_choice.hpp). `select` appends candidate indices to `out.unmask` and
//! may append canvas positions to `out.remask` (ReMDM-style re-masking). It must not allocate:
//! `out`'s vectors are reserved to the canvas length by the decode loop. Every policy also has
//! `validate()`, called before the first model call, throwing std::invalid_argument on bad
//! parameters, and `scheduled()`: true when the policy follows a step schedule (LLaDA, Dream), which
//! then requires `decode_options::steps > 0`.
//!
//! `step_context::logits` holds the call's raw rows only when the model returned logits; a policy
//! that reads only the candidates (every built-in one but KLASS) declares
//! `static constexpr bool reads_logit_rows = false;` so that decode can use a row-statistics model
//! (row_model.hpp). A policy may also declare extra rows, like observers
//! (`add_rows(const row_query&, std::vector<std::size_t>&) const`, observer.hpp).

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "mdlm/detail/traits.hpp"
#include "mdlm/kernels/detail/row_common.hpp"
#include "mdlm/rng.hpp"
#include "mdlm/token_choice.hpp"
#include "mdlm/types.hpp"

namespace mdlm {

//! Static facts of a decode run, handed to stateful policies when their state is created.
struct decode_setup {
  std::size_t length = 0;         //!< canvas length L
  std::size_t vocab = 0;          //!< logit row width V
  std::size_t region_begin = 0;   //!< generation region
  std::size_t region_end = 0;
  std::size_t block_length = 0;   //!< semi-autoregressive block length (region length = one block)
  std::size_t steps = 0;          //!< scheduled model calls, 0 = adaptive
  token_id mask = 0;              //!< mask token id
};

//! What a policy sees at one step.
struct step_context {
  std::size_t step = 0;                  //!< 0-based step = model calls made before this one
  std::size_t block = 0;                 //!< 0-based block index
  std::size_t step_in_block = 0;         //!< 0-based step within the block
  std::size_t steps_per_block = 0;       //!< scheduled steps per block, 0 = adaptive
  std::size_t total_steps = 0;           //!< decode_options::steps (0 = adaptive)
  std::size_t block_begin = 0;           //!< current block [block_begin, block_end)
  std::size_t block_end = 0;
  std::size_t block_masked_at_start = 0; //!< masks in the block when it started (LLaDA's M)
  std::size_t masked_total = 0;          //!< masks in the whole generation region now (Dream's N)
  std::uint32_t sequence = 0;            //!< the canvas's random-number key
  counter_rng rng{};                     //!< the run's generator (use rng_stream::position)
  std::span<const token_id> tokens{};    //!< the canvas before this step's update
  std::span<const float> logits{};       //!< all rows of this call, row-major L x V
  std::size_t vocab = 0;                 //!< V
  token_id mask = 0;                     //!< mask token id
  //! Canvas positions whose statistics this step computed (ascending; the candidates and declared
  //! rows) and their statistics, as observers see them (observer.hpp).
  std::span<const std::size_t> row_positions{};
  std::span<const row_choice> row_stats{};

  //! The statistics of canvas position `pos` at this call, or nullptr when the step did not compute
  //! them (declare the row with `add_rows`). O(log rows).
  [[nodiscard]] const row_choice* stats_at(std::size_t pos) const noexcept {
    return detail::row_stats_at(row_positions, row_stats, pos);
  }
};

//! A policy's decision: candidate indices to unmask and canvas positions to re-mask.
struct selection {
  std::vector<std::size_t> unmask;   //!< indices into the candidate span
  std::vector<std::size_t> remask;   //!< canvas positions set back to the mask token
  std::vector<std::size_t> scratch;  //!< working space for policies (sorting candidate indices)
  std::vector<double> keys;          //!< working space for policies (per-candidate keys)
  void clear() noexcept {
    unmask.clear();
    remask.clear();
  }
  //! Reserves every vector to `n` entries so that steps never allocate.
  void reserve(std::size_t n) {
    unmask.reserve(n);
    remask.reserve(n);
    scratch.reserve(n);
    keys.reserve(n);
  }
};

//! Requirement shared by every policy: parameter validation and the schedule flag.
template <class P>
concept validated_policy = requires(const P& p) {
  p.validate();
  { p.scheduled() } -> std::convertible_to<bool>;
};

//! A stateless unmasking policy.
template <class P>
concept stateless_policy = validated_policy<P> &&
    requires(const P& p, const step_context& ctx, std::span<const position_info> c, selection& out) {
      p.select(ctx, c, out);
    };

//! A stateful unmasking policy (its state lives per canvas, created by `make_state`).
template <class P>
concept stateful_policy = validated_policy<P> &&
    requires(const P& p, const decode_setup& setup, const step_context& ctx, std::span<const position_info> c,
             selection& out) {
      typename P::state_type;
      { p.make_state(setup) } -> std::same_as<typename P::state_type>;
      requires requires(typename P::state_type& st) { p.select(ctx, c, st, out); };
    };

//! Anything `decode` accepts as a policy.
template <class P>
concept unmasking_policy = stateless_policy<P> || stateful_policy<P>;

namespace detail {

//! Appends to `out` the indices of the `k` candidates with the largest `key(i)`, ties to the lower
//! position (candidates are in ascending position order, so to the lower index). O(n log n) via
//! partial sort on an index scratch; `scratch` must have capacity >= candidates.
template <class Key>
void top_k_indices(std::size_t n, std::size_t k, Key&& key, std::vector<std::size_t>& scratch,
                   std::vector<std::size_t>& out) {
  if (k > n) k = n;
  if (k == 0) return;
  scratch.clear();
  for (std::size_t i = 0; i < n; ++i) scratch.push_back(i);
  const auto better = [&](std::size_t a, std::size_t b) {
    const double ka = key(a), kb = key(b);
    return ka > kb || (ka == kb && a < b);
  };
  std::partial_sort(scratch.begin(), scratch.begin() + static_cast<std::ptrdiff_t>(k), scratch.end(), better);
  for (std::size_t r = 0; r < k; ++r) out.push_back(scratch[r]);
}

//! Sorts candidate indices by ascending `key(i)`, ties to the lower index, into `scratch`.
template <class Key>
void ascending_order(std::size_t n, Key&& key, std::vector<std::size_t>& scratch) {
  scratch.clear();
  for (std::size_t i = 0; i < n; ++i) scratch.push_back(i);
  std::sort(scratch.begin(), scratch.end(), [&](std::size_t a, std::size_t b) {
    const double ka = key(a), kb = key(b);
    return ka < kb || (ka == kb && a < b);
  });
}

//! Heap order for `ascending_heap`: true when candidate `a` comes after `b` (larger key, or equal
//! key and larger index).
[[nodiscard]] inline auto comes_after(const std::vector<double>& keys) noexcept {
  return [&keys](std::size_t a, std::size_t b) { return keys[a] > keys[b] || (keys[a] == keys[b] && a > b); };
}

//! Prepares a lazy ascending order of `key(i)` (ties to the lower index) for policies that usually
//! need only a short prefix (MED, EB-Sampler, Fast-dLLM factor): keys go to `keys`, a binary heap of
//! indices to `scratch`, and `pop_ascending` then yields the indices in the order `ascending_order`
//! gives. The first p indices cost O(L + p log L) instead of a full O(L log L) sort. Both vectors
//! must have capacity >= n (selection::reserve), so nothing allocates.
template <class Key>
void ascending_heap(std::size_t n, Key&& key, std::vector<std::size_t>& scratch, std::vector<double>& keys) {
  keys.clear();
  scratch.clear();
  for (std::size_t i = 0; i < n; ++i) {
    keys.push_back(key(i));
    scratch.push_back(i);
  }
  std::make_heap(scratch.begin(), scratch.end(), comes_after(keys));
}

//! The next index of the order prepared by `ascending_heap`. Precondition: `scratch` not empty.
[[nodiscard]] inline std::size_t pop_ascending(std::vector<std::size_t>& scratch, const std::vector<double>& keys) {
  std::pop_heap(scratch.begin(), scratch.end(), comes_after(keys));
  const std::size_t i = scratch.back();
  scratch.pop_back();
  return i;
}

}  // namespace detail

}  // namespace mdlm
