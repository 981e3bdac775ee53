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
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "mdlm/detail/traits.hpp"
#include "mdlm/kernels/detail/isa_variants.hpp"
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
  std::vector<std::size_t> bins;     //!< working space for policies (bucket counts of a lazy order)
  std::vector<double> uniforms;      //!< working space for policies (per-candidate random numbers)
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
    bins.reserve(n);
    uniforms.reserve(n);
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
//! partial sort on an index scratch; `scratch` must have capacity >= candidates. The reference for
//! `top_k` (below), and its path when a key is NaN.
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

//! Appends to `out` the i < n with keep(i), ascending, without a branch on keep(i): every slot is
//! written and kept or not, for tests that are true and false about equally often (a mispredicted
//! branch per candidate otherwise). `out` must have capacity >= out.size() + n.
template <class Keep>
void append_where(std::vector<std::size_t>& out, std::size_t n, Keep&& keep) {
  const std::size_t base = out.size();
  out.resize(base + n);
  std::size_t* const kept = out.data() + base;
  std::size_t n_kept = 0;
  for (std::size_t i = 0; i < n; ++i) {
    kept[n_kept] = i;
    n_kept += keep(i) ? 1 : 0;
  }
  out.resize(base + n_kept);
}

//! The uniform number `half` (0 or 1) of each candidate's cell (position stream, sequence, step,
//! position) -- ctx.rng.uniform(rng_stream::position, ctx.sequence, ctx.step, position, half), bit
//! for bit -- into `out.uniforms` (returned), by the vectorised Philox of the kernels
//! (isa_variants.hpp `position_uniforms`). `out.uniforms` must have capacity >= candidates.
inline const double* candidate_uniforms(const step_context& ctx, std::span<const position_info> cand, unsigned half,
                                        selection& out) noexcept {
  out.uniforms.resize(cand.size());
  if (!cand.empty())
    position_uniforms(ctx.rng, rng_stream::position, ctx.sequence, static_cast<std::uint32_t>(ctx.step),
                      reinterpret_cast<const std::byte*>(cand.data()) + offsetof(position_info, position),
                      sizeof(position_info), cand.size(), half, out.uniforms.data());
  return out.uniforms.data();
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

//! Prepares a binary heap of candidate indices on `scratch` (keys in `keys`) that `pop_ascending`
//! empties in the order `ascending_order` gives. Both vectors must have capacity >= n.
inline void ascending_heap(std::size_t n, std::vector<std::size_t>& scratch, const std::vector<double>& keys) {
  scratch.clear();
  for (std::size_t i = 0; i < n; ++i) scratch.push_back(i);
  std::make_heap(scratch.begin(), scratch.end(), comes_after(keys));
}

//! The next index of the order prepared by `ascending_heap`. Precondition: `scratch` not empty.
[[nodiscard]] inline std::size_t pop_ascending(std::vector<std::size_t>& scratch, const std::vector<double>& keys) {
  std::pop_heap(scratch.begin(), scratch.end(), comes_after(keys));
  const std::size_t i = scratch.back();
  scratch.pop_back();
  return i;
}

//! A lazy ascending order of per-candidate keys, ties to the lower index (the order
//! `ascending_order` gives), for policies that need only a prefix of it whose length they learn
//! while reading it (MED, EB-Sampler, Fast-dLLM factor, top-k). `prepare` stores the keys in
//! `selection::keys` and counts them in n / 2 equal-width buckets between the smallest and the
//! largest key (`selection::bins`). `pop` then brings in the next chunk of buckets (about `hint`
//! keys at first, four times as many each time after): one pass over the keys distributes the
//! indices of the chunk over their buckets (`selection::scratch`), and each bucket is sorted when
//! the order reaches it. The bucket of a key is nondecreasing in the key (a subtraction and a
//! multiplication by a positive number, each correctly rounded, then truncation), so equal keys
//! share a bucket and buckets come in key order. Cost: O(n) for the counts, O(n) per chunk (a few)
//! and the sorts of the buckets read: O(n + p) for a prefix of p when the keys spread over their
//! range, O(n log n) at worst, when one bucket holds most keys. Fewer than 64 keys, all keys equal
//! or a range that overflows use the binary heap of `ascending_heap` (the same order); so does a
//! NaN key, where the order is the heap's, as these policies always had (`has_nan`). The
//! selection's vectors must have capacity >= n (selection::reserve), so nothing allocates.
class ascending_prefix {
 public:
  explicit ascending_prefix(selection& s) noexcept : keys_(s.keys), order_(s.scratch), bins_(s.bins) {}

  //! Computes key(i) for the n candidates and counts them per bucket; `hint` is the prefix length
  //! the caller expects to read (the first chunk's size).
  template <class Key>
  void prepare(std::size_t n, Key&& key, std::size_t hint = 32) {
    keys_.resize(n);
    double* const keys = keys_.data();
    double lo = std::numeric_limits<double>::infinity(), hi = -lo;
    bool nan = false;
    for (std::size_t i = 0; i < n; ++i) {
      const double k = key(i);
      keys[i] = k;
      lo = k < lo ? k : lo;
      hi = k > hi ? k : hi;
      nan |= k != k;
    }
    nan_ = nan;
    left_ = n;
    nb_ = n / 2;
    lo_ = lo;
    scale_ = static_cast<double>(nb_) / (hi - lo);
    heap_ = nan || n < 64 || !(hi > lo) || !std::isfinite(hi - lo) || !std::isfinite(scale_);
    if (heap_) {
      ascending_heap(n, order_, keys_);
      return;
    }
    bins_.assign(nb_, 0);
    std::size_t* const bins = bins_.data();
    for (std::size_t i = 0; i < n; ++i) ++bins[bin(keys[i])];
    order_.resize(n);
    next_ = bucket_end_ = end_ = current_ = bucket_ = 0;
    chunk_ = hint > 0 ? hint : 1;
  }

  [[nodiscard]] bool empty() const noexcept { return left_ == 0; }
  //! Whether a key was NaN (the order is then the heap's).
  [[nodiscard]] bool has_nan() const noexcept { return nan_; }

  //! The next index of the order. Precondition: !empty().
  [[nodiscard]] std::size_t pop() noexcept {
    --left_;
    if (heap_) return pop_ascending(order_, keys_);
    if (next_ == bucket_end_) {
      if (next_ == end_) next_chunk();
      do bucket_end_ = bins_[current_++];  // the next non-empty bucket of the chunk
      while (bucket_end_ == next_);
      sort_bucket(next_, bucket_end_);
    }
    return order_[next_++];
  }

 private:
  [[nodiscard]] std::size_t bin(double k) const noexcept {
    // In [0, nb_ (1 + 2^-52)]: the signed conversion is exact and cheaper than the unsigned one.
    const auto b = static_cast<std::size_t>(static_cast<std::int64_t>((k - lo_) * scale_));
    return b < nb_ ? b : nb_ - 1;
  }
  //! Distributes the indices of the next buckets (at least chunk_ keys, or the rest) over their
  //! buckets in order_ after the previous chunk (ascending index within a bucket); bins_[b] becomes
  //! the end of bucket b there. Precondition: keys are left.
  void next_chunk() noexcept {
    const std::size_t first = bucket_;
    std::size_t count = 0;
    while (bucket_ < nb_ && count < chunk_) count += bins_[bucket_++];
    chunk_ *= 4;
    std::size_t* const bins = bins_.data();
    for (std::size_t b = first, at = end_; b < bucket_; ++b) {  // counts -> first slots
      const std::size_t c = bins[b];
      bins[b] = at;
      at += c;
    }
    const std::size_t width = bucket_ - first;
    const double* const keys = keys_.data();
    std::size_t* const order = order_.data();
    for (std::size_t i = 0, n = keys_.size(); i < n; ++i) {
      const std::size_t b = bin(keys[i]);
      if (b - first < width) order[bins[b]++] = i;  // unsigned: b in [first, bucket_)
    }
    end_ += count;
    current_ = first;
  }
  //! Sorts order_[begin, end) by (key, index); the indices are ascending there.
  void sort_bucket(std::size_t begin, std::size_t end) noexcept {
    const double* const keys = keys_.data();
    std::size_t* const order = order_.data();
    if (end - begin > 16) {
      std::sort(order + begin, order + end,
                [keys](std::size_t a, std::size_t b) { return keys[a] < keys[b] || (keys[a] == keys[b] && a < b); });
      return;
    }
    for (std::size_t j = begin + 1; j < end; ++j) {  // stable insertion sort: ties keep index order
      const std::size_t x = order[j];
      std::size_t m = j;
      for (; m > begin && keys[x] < keys[order[m - 1]]; --m) order[m] = order[m - 1];
      order[m] = x;
    }
  }

  std::vector<double>& keys_;
  std::vector<std::size_t>& order_;
  std::vector<std::size_t>& bins_;
  std::size_t left_ = 0, nb_ = 0, chunk_ = 1;
  std::size_t next_ = 0;        // next slot of order_ to hand out
  std::size_t bucket_end_ = 0;  // end of the bucket being handed out
  std::size_t end_ = 0;         // end of the chunks distributed so far
  std::size_t current_ = 0;     // next bucket of the current chunk
  std::size_t bucket_ = 0;      // first bucket not distributed yet
  double lo_ = 0.0, scale_ = 0.0;
  bool heap_ = true, nan_ = false;
};

//! Appends to `out.unmask` the indices of the `k` candidates with the largest `key(i)`, best first,
//! ties to the lower index: the result of `top_k_indices`, from an `ascending_prefix` of -key read
//! to length k (O(n + k log k) on spread keys). With a NaN key it is `top_k_indices` itself (keys in
//! `out.keys`), so that even then the result is the one the policies always gave.
template <class Key>
void top_k(std::size_t n, std::size_t k, Key&& key, selection& out) {
  if (k > n) k = n;
  if (k == 0) return;
  ascending_prefix ranked(out);
  ranked.prepare(n, [&](std::size_t i) { return -key(i); }, k);
  if (ranked.has_nan()) {
    for (std::size_t i = 0; i < n; ++i) out.keys[i] = key(i);
    top_k_indices(n, k, [&](std::size_t i) { return out.keys[i]; }, out.scratch, out.unmask);
    return;
  }
  for (std::size_t r = 0; r < k; ++r) out.unmask.push_back(ranked.pop());
}

}  // namespace detail

}  // namespace mdlm
