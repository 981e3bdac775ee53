// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! Exact output distributions of `mdlm::decode` on exact toy models (issue 3, item 6).
//!
//! `exact_output_distribution(model, canvas, options)` enumerates every trajectory of the decode
//! loop (include/mdlm/decode.hpp) for a policy + token choice and returns the exact probability of
//! every output sequence. It runs a forward dynamic program over loop states (canvas tokens plus the
//! loop's block bookkeeping), merging identical states with their probabilities added, one layer per
//! model call. Each state is expanded the way `decode`'s session expands it:
//!
//!  1. the model's rows of the masked positions of the current block give every candidate's token
//!     distribution (`mdlm::token_distribution`, i.e. the exact law of `choose_token`: one-hot on the
//!     argmax at T = 0, softmax of the tempered, top-p / top-k filtered row otherwise) and, for each
//!     possible token, the `position_info` that `choose_token` would report (`mdlm::describe_choice`);
//!  2. every joint token choice of the candidates (product of their token distributions) is
//!     enumerated FIRST, so that policies that rank by the sampled token (LLaDA low_confidence at
//!     T > 0, Dream maskgit_plus, Fast-dLLM) see exactly the candidates they would see in `decode`;
//!  3. for each token choice the policy's own `select` is called with a `step_context` built like
//!     the session's; random selections are enumerated with their exact probabilities (see
//!     `enumerate_selections` below), deterministic ones are called once;
//!  4. the selected positions are written, re-masks applied, and the block bookkeeping advanced
//!     exactly as `decode_session::advance` does (adaptive and scheduled step modes, blocks).
//!
//! The same program also runs the *exact process* with the same position sets: at each state the
//! positions A_t are drawn from the policy's selection law (for token-dependent policies, the law of
//! the selection marginalised over the sampler's token choice), and x_{A_t} is drawn from the model's
//! exact joint conditional p(x_A | unmasked) (`model.conditional_joint`). Under that process it
//! accumulates the trajectory bound
//!     B = E_p[ sum_t ( sum_{i in A_t} H_i - max_{i in A_t} H_i ) ]
//! (H_i: the entropy of position i's conditional, as the policy sees it). For a token-independent
//! selection and ancestral sampling (T = 1, no filtering), the chain rule of KL gives
//!     KL(p_out || q_out) <= KL(p_traj || q_traj) = E_p[ sum_t KL(p(x_A | s) || prod_i p(x_i | s)) ] <= B,
//! the per-step inequality being EB-Sampler's bound (bounds.hpp); MED keeps B <= lambda * L and EB
//! keeps B <= gamma * E_p[steps]. With one position per step every term is 0 and the sampler's
//! output is exactly the model's joint given the prompt (docs/samplers.md, "Exactness at one token
//! per step").
//!
//! Cost: the number of states grows like (V + 1)^m for m masked positions and each state costs
//! prod_i |support_i| policy calls, so this is for toy canvases (m <= 6 or so, V <= 4). The limits in
//! `exact_decode_options` turn a runaway enumeration into std::invalid_argument.

#include <algorithm>
#include <cmath>
#include <compare>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <span>
#include <utility>
#include <vector>

#include "mdlm/bounds.hpp"
#include "mdlm/canvas.hpp"
#include "mdlm/concepts.hpp"
#include "mdlm/decode.hpp"
#include "mdlm/detail/errors.hpp"
#include "mdlm/logit_stats.hpp"
#include "mdlm/policies/fixed_count.hpp"
#include "mdlm/policies/med.hpp"
#include "mdlm/policy.hpp"
#include "mdlm/rng.hpp"
#include "mdlm/token_choice.hpp"
#include "mdlm/types.hpp"

namespace mdlm::reference {

//! Which logits the enumeration feeds the token choice and the policy.
enum class logit_precision {
  //! The model's double-precision conditionals (`ExactConditionalModel`): the exact distribution of
  //! the sampler on the model itself (default).
  exact,
  //! The float rows `mdlm::decode` receives (`model.logits(tokens, std::span<float>)`): the exact
  //! distribution of what `decode` does on this model, rounding of the rows included (use this to
  //! compare with Monte Carlo runs of `decode`).
  as_decode,
};

//! Options of `exact_output_distribution`. Every limit must be >= 1.
struct exact_decode_options {
  logit_precision precision = logit_precision::exact;  //!< see `logit_precision`
  //! Also run the exact process and compute the trajectory bound (needs
  //! `model.conditional_joint(tokens, positions)`, which joint_table and hmm have; ignored for models
  //! without it). Default true.
  bool exact_process = true;
  //! Largest number of distinct loop states (summed over all steps) of one program; default 2^18.
  std::size_t max_states = std::size_t{1} << 18;
  //! Largest number of branches of one state: joint token choices of the candidates, and separately
  //! the random selections of one token choice; default 2^16.
  std::size_t max_branches = std::size_t{1} << 16;
  //! Largest number of model calls of a trajectory; default 4096 (re-masking policies could cycle).
  std::size_t max_steps = 4096;
  //! Also return the joint law of (output, per-position unmask step), `exact_decode_result::
  //! trajectories`, to compare with `decode_result::unmask_step` (states then merge only when their
  //! unmask steps agree too, so the enumeration grows). Default false.
  bool track_unmask_steps = false;

  //! Throws std::invalid_argument naming a limit that is 0.
  void validate() const {
    detail::require(max_states >= 1, "max_states = ", max_states, " must be >= 1");
    detail::require(max_branches >= 1, "max_branches = ", max_branches, " must be >= 1");
    detail::require(max_steps >= 1, "max_steps = ", max_steps, " must be >= 1");
  }
};

//! One output sequence (the whole canvas) and its probability.
struct sequence_probability {
  std::vector<token_id> tokens;  //!< the final canvas
  double probability = 0.0;      //!< its exact probability
  friend bool operator==(const sequence_probability&, const sequence_probability&) = default;
};

//! One output with the step at which each position was unmasked (`decode_result::unmask_step`).
struct trajectory_probability {
  std::vector<token_id> tokens;           //!< the final canvas
  std::vector<std::int32_t> unmask_step;  //!< per position, as `decode_result::unmask_step`
  double probability = 0.0;               //!< exact probability of the pair
  friend bool operator==(const trajectory_probability&, const trajectory_probability&) = default;
};

//! A distribution over output sequences: sorted by `tokens` (lexicographic), each sequence once,
//! zero-probability sequences omitted. Masses sum to 1 minus the mass of runs that did not complete.
using output_distribution = std::vector<sequence_probability>;

//! The result of `exact_output_distribution`.
struct exact_decode_result {
  output_distribution outputs;        //!< q_out: the sampler's output distribution (completed or incomplete runs)
  //! Mass of runs that return no output: no_progress, step_limit or invalid_logits (a schedule that
  //! leaves masks, status `incomplete`, is an output: its canvas, masks included, is in `outputs`).
  double incomplete_probability = 0;
  double expected_nfe = 0;            //!< E_q[number of model calls]
  std::size_t states = 0;             //!< distinct loop states enumerated for the sampler
  //! With `track_unmask_steps`: the law of (output, unmask steps) of completed runs, sorted by
  //! (tokens, unmask_step); empty otherwise.
  std::vector<trajectory_probability> trajectories;
  bool has_exact_process = false;     //!< true when the fields below were computed
  output_distribution exact_outputs;  //!< p_out: the exact process's output distribution
  double exact_incomplete_probability = 0;  //!< mass of exact-process runs that did not complete
  //! E_p[sum_t (sum_{i in A_t} H_i - max_{i in A_t} H_i)] under the exact process, in nats.
  double trajectory_bound = 0;
  double exact_expected_steps = 0;    //!< E_p[number of model calls]
};

//! Requirement of the exact process and of `model_output_distribution`: the model's exact joint
//! conditional of a set of masked positions.
//!
//!     auto j = m.conditional_joint(std::span<const token_id> tokens, std::span<const std::size_t> a);
//!
//! returns p(x_a | every non-mask token of `tokens`) for the masked positions a = (a_1, ..., a_k)
//! (other masked positions marginalised) as a dense row-major array of k axes, one per position in
//! the order given, each of extent S (the number of symbols; token ids 0..S-1, the mask excluded):
//! `j.shape()[0]` is S (when k > 0), `j.size()` is S^k, and `j.data()[e]` is the probability of the
//! symbols whose base-S digits, most significant first, spell e. k = 0 gives one entry, 1 (or 0
//! for an impossible prompt). `joint_table` and `hmm` (reference/joint_table.hpp, reference/hmm.hpp)
//! return an `xt::xarray<double>` of this shape.
template <class M>
concept has_conditional_joint = requires(const M& m, std::span<const token_id> t, std::span<const std::size_t> a) {
  { m.conditional_joint(t, a).shape()[0] } -> std::convertible_to<std::size_t>;
  { m.conditional_joint(t, a).size() } -> std::convertible_to<std::size_t>;
  { m.conditional_joint(t, a).data()[0] } -> std::convertible_to<double>;
};

//! Checks `M` against what `model_output_distribution` and the exact process of
//! `exact_output_distribution` need, one requirement at a time with a readable message:
//! `static_assert(mdlm::reference::check_joint_model<my_model>());`.
template <class M>
consteval bool check_joint_model() {
  static_assert(check_conditional_model<M>());
  static_assert(produces_exact_logits<M>,
                "mdlm::reference: an exact model needs `logits(std::span<const token_id>, std::span<double>)`");
  static_assert(has_conditional_joint<M>,
                "mdlm::reference: an exact model needs `conditional_joint(std::span<const token_id>, "
                "std::span<const std::size_t>)` returning a row-major array with shape()[0] = symbols, size() and "
                "data() (see has_conditional_joint)");
  return ExactConditionalModel<M> && has_conditional_joint<M>;
}

namespace detail {

using mdlm::detail::require;

//! A state of the decode loop between two model calls: the canvas and `decode_session`'s block
//! bookkeeping (block index, step within the block, masks at the block's start, idle steps).
struct loop_key {
  std::vector<token_id> tokens;
  std::vector<std::int32_t> unmask_step;  // empty unless unmask steps are tracked
  std::size_t block = 0;
  std::size_t step_in_block = 0;
  std::size_t block_masked_at_start = 0;
  std::size_t idle_steps = 0;
  friend auto operator<=>(const loop_key&, const loop_key&) = default;
  friend bool operator==(const loop_key&, const loop_key&) = default;
};

//! How a state ends: still running, an output (`completed`; `incomplete` = a schedule that left
//! masks, which decode also returns as its output), or no output (no progress / step limit).
enum class loop_status { running, completed, incomplete, no_progress };

//! `decode_session`'s block bookkeeping (enter_block / advance), as pure functions of a loop_key.
struct loop_rules {
  std::size_t region_begin = 0, region_end = 0, block_length = 0, blocks = 0, steps = 0, steps_per_block = 0;
  std::size_t max_nfe = 0;
  token_id mask = 0;

  [[nodiscard]] std::size_t block_begin(const loop_key& k) const noexcept {
    return region_begin + k.block * block_length;
  }
  [[nodiscard]] std::size_t block_end(const loop_key& k) const noexcept { return block_begin(k) + block_length; }
  //! First candidate position: as decode_session::candidates_begin.
  [[nodiscard]] std::size_t candidates_begin(const loop_key& k) const noexcept {
    return steps > 0 ? region_begin : block_begin(k);
  }
  [[nodiscard]] std::size_t masks_in(const loop_key& k, std::size_t b, std::size_t e) const noexcept {
    return static_cast<std::size_t>(std::count(k.tokens.begin() + static_cast<std::ptrdiff_t>(b),
                                               k.tokens.begin() + static_cast<std::ptrdiff_t>(e), mask));
  }

  loop_status enter_block(loop_key& k, std::size_t b) const noexcept {
    for (;; ++b) {
      if (b >= blocks)
        return masks_in(k, region_begin, region_end) == 0 ? loop_status::completed : loop_status::incomplete;
      k.block = b;
      k.block_masked_at_start = masks_in(k, block_begin(k), block_end(k));
      k.step_in_block = 0;
      if (k.block_masked_at_start > 0 || steps_per_block > 0) return loop_status::running;
    }
  }

  //! After step `step` (0-based) that changed `changed` positions.
  loop_status after_step(loop_key& k, std::size_t changed, std::size_t step) const noexcept {
    // Scheduled runs never read the idle count; keeping it 0 there lets more states merge.
    if (changed == 0 && steps_per_block == 0) ++k.idle_steps;
    ++k.step_in_block;
    loop_status st = loop_status::running;
    if (steps_per_block > 0) {
      if (k.step_in_block >= steps_per_block) st = enter_block(k, k.block + 1);
    } else if (masks_in(k, block_begin(k), block_end(k)) == 0) {
      st = enter_block(k, k.block + 1);
    } else if (k.idle_steps > region_end - region_begin) {
      return loop_status::no_progress;
    }
    if (st == loop_status::running && step + 1 >= max_nfe) return loop_status::no_progress;  // step_limit
    return st;
  }
};

//! A policy with its own exact selection law: `p.enumerate_selections(ctx, candidates, f)` calls
//! `f(const selection&, double probability)` once per possible selection (probabilities summing to 1).
//! This is the customisation point for user policies that draw random numbers.
template <class P>
concept enumerable_policy = requires(const P& p, const step_context& ctx, std::span<const position_info> c,
                                     void (*f)(const selection&, double)) {
  p.enumerate_selections(ctx, c, f);
};

inline void require_branches(std::size_t n, std::size_t limit, const char* what) {
  require(n <= limit, "exact_output_distribution: ", n, " ", what, " in one state exceed max_branches = ", limit);
}

//! Number of k-subsets of n, saturating at `cap` + 1.
[[nodiscard]] inline std::size_t binomial_capped(std::size_t n, std::size_t k, std::size_t cap) noexcept {
  if (k > n) return 0;
  k = std::min(k, n - k);
  double c = 1.0;
  for (std::size_t i = 1; i <= k; ++i) {
    c = c * static_cast<double>(n - k + i) / static_cast<double>(i);
    if (c > static_cast<double>(cap)) return cap + 1;
  }
  return static_cast<std::size_t>(std::llround(c));
}

//! Deterministic policies: the policy's own `select`, called once. The policy is called a second time
//! with a different random generator; a different answer means the policy draws random numbers that
//! this enumeration cannot see, which is refused.
template <class Policy, class F>
void deterministic_selection(const Policy& policy, const step_context& ctx, std::span<const position_info> cand,
                             selection& sel, selection& check, F&& f) {
  sel.clear();
  policy.select(ctx, cand, sel);
  step_context other = ctx;
  other.rng.seed = ~ctx.rng.seed;
  check.clear();
  policy.select(other, cand, check);
  require(sel.unmask == check.unmask && sel.remask == check.remask,
          "exact_output_distribution: the policy's selection at step ", ctx.step,
          " depends on the random generator; only fixed_count (random score, alg_temp), dream_origin and "
          "policies with enumerate_selections() may select at random");
  f(static_cast<const selection&>(sel), 1.0);
}

//! Any stateless policy: its own exact law when it provides one, else `deterministic_selection`.
template <class Policy, class F>
void enumerate_selections(const Policy& policy, const step_context& ctx, std::span<const position_info> cand,
                          selection& sel, selection& check, std::size_t, F&& f) {
  if constexpr (enumerable_policy<Policy>) policy.enumerate_selections(ctx, cand, f);
  else deterministic_selection(policy, ctx, cand, sel, check, f);
}

//! fixed_count: the random score (keys i.i.d. uniform) selects a uniformly random k-subset; alg_temp
//! > 0 samples k positions without replacement from softmax(key / alg_temp) (Plackett-Luce, the law
//! of the Gumbel-top-k that `select` draws); with the random score AND alg_temp > 0 the keys
//! u_i / alg_temp + Gumbel_i are still i.i.d., so the k-subset is again uniform. k and the keys come
//! from the policy's own `count` and `key`.
template <class F>
void enumerate_selections(const fixed_count& policy, const step_context& ctx, std::span<const position_info> cand,
                          selection& sel, selection& check, std::size_t max_branches, F&& f) {
  if (policy.score != score_kind::random && policy.alg_temp == 0.0) {
    deterministic_selection(policy, ctx, cand, sel, check, f);
    return;
  }
  const std::size_t n = cand.size();
  const std::size_t k = std::min(policy.count(ctx), n);
  sel.clear();
  if (k == 0 || k == n) {
    for (std::size_t i = 0; i < k; ++i) sel.unmask.push_back(i);
    f(static_cast<const selection&>(sel), 1.0);
    return;
  }
  if (policy.score == score_kind::random) {
    const std::size_t subsets = binomial_capped(n, k, max_branches);
    require_branches(subsets, max_branches, "random position subsets");
    const double p = 1.0 / static_cast<double>(subsets);
    std::vector<std::size_t> idx(k);
    for (std::size_t i = 0; i < k; ++i) idx[i] = i;
    for (;;) {
      sel.clear();
      sel.unmask.assign(idx.begin(), idx.end());
      f(static_cast<const selection&>(sel), p);
      std::size_t j = k;
      while (j > 0 && idx[j - 1] == n - k + j - 1) --j;
      if (j == 0) return;
      ++idx[j - 1];
      for (std::size_t i = j; i < k; ++i) idx[i] = idx[i - 1] + 1;
    }
  }
  // Plackett-Luce over ordered draws; weights relative to the largest key so exp never overflows.
  require(n <= 62, "exact_output_distribution: ", n, " candidates exceed 62 for alg_temp enumeration");
  std::size_t ordered = 1;
  for (std::size_t i = 0; i < k; ++i) {
    ordered *= n - i;
    require_branches(ordered, max_branches, "ordered alg_temp draws");
  }
  std::vector<double> w(n);
  double top = -std::numeric_limits<double>::infinity();
  for (std::size_t i = 0; i < n; ++i) top = std::max(top, policy.key(ctx, cand[i]));
  for (std::size_t i = 0; i < n; ++i) w[i] = std::exp((policy.key(ctx, cand[i]) - top) / policy.alg_temp);
  std::map<std::uint64_t, double> sets;
  const auto draw = [&](auto&& self, std::size_t depth, std::uint64_t used, double prob) -> void {
    if (depth == k) {
      sets[used] += prob;
      return;
    }
    double rest = 0.0;
    for (std::size_t i = 0; i < n; ++i)
      if (!(used >> i & 1u)) rest += w[i];
    for (std::size_t i = 0; i < n; ++i)
      if (!(used >> i & 1u) && w[i] > 0.0) self(self, depth + 1, used | (std::uint64_t{1} << i), prob * w[i] / rest);
  };
  draw(draw, 0, 0, 1.0);
  for (const auto& [bits, p] : sets) {
    sel.clear();
    for (std::size_t i = 0; i < n; ++i)
      if (bits >> i & 1u) sel.unmask.push_back(i);
    f(static_cast<const selection&>(sel), p);
  }
}

//! dream_origin: each candidate independently with the policy's own `transfer_probability(ctx)`.
template <class F>
void enumerate_selections(const dream_origin& policy, const step_context& ctx, std::span<const position_info> cand,
                          selection& sel, selection&, std::size_t max_branches, F&& f) {
  const std::size_t n = cand.size();
  const double p = policy.transfer_probability(ctx);
  sel.clear();
  if (p >= 1.0 || p <= 0.0 || n == 0) {
    if (p >= 1.0)
      for (std::size_t i = 0; i < n; ++i) sel.unmask.push_back(i);
    f(static_cast<const selection&>(sel), 1.0);
    return;
  }
  require(n <= 62, "exact_output_distribution: ", n, " candidates exceed 62 for dream_origin enumeration");
  require_branches(std::size_t{1} << n, max_branches, "dream_origin subsets");
  for (std::uint64_t bits = 0; bits < (std::uint64_t{1} << n); ++bits) {
    sel.clear();
    double prob = 1.0;
    for (std::size_t i = 0; i < n; ++i) {
      if (bits >> i & 1u) {
        sel.unmask.push_back(i);
        prob *= p;
      } else {
        prob *= 1.0 - p;
      }
    }
    if (prob > 0.0) f(static_cast<const selection&>(sel), prob);
  }
}

//! Writes a policy's selection into `tokens` exactly as `decode_session::step` does; returns the
//! number of changed positions.
inline std::size_t apply_selection(loop_key& k, std::span<const position_info> cand, const selection& s,
                                   std::size_t region_begin, std::size_t region_end, token_id mask,
                                   std::size_t step) {
  auto& tokens = k.tokens;
  const bool track = !k.unmask_step.empty();
  std::size_t changed = 0;
  for (std::size_t i : s.unmask) {
    const std::size_t p = cand[i].position;
    if (tokens[p] != mask || cand[i].token == mask) continue;  // the mask id is written back: no change
    tokens[p] = cand[i].token;
    if (track) k.unmask_step[p] = static_cast<std::int32_t>(step);
    ++changed;
  }
  for (std::size_t p : s.remask) {
    if (p < region_begin || p >= region_end || tokens[p] == mask) continue;
    tokens[p] = mask;
    if (track) k.unmask_step[p] = -1;
    ++changed;
  }
  return changed;
}

//! The per-state expansion shared by the sampler and the exact-process programs. `Real` is the type
//! of the rows the token choice and the policy see (double: exact; float: as decode).
template <class Real, class Model, class Policy>
class state_expander {
 public:
  state_expander(Model& model, const decode_options<Policy>& opt, const exact_decode_options& eopt,
                 const loop_rules& rules, std::size_t vocab, std::uint32_t sequence)
      : model_(model), opt_(opt), eopt_(eopt), rules_(rules), vocab_(vocab), sequence_(sequence) {}

  //! Computes the rows and candidates of state `k`; false when a candidate row is invalid (decode
  //! then stops with invalid_logits).
  bool prepare(const loop_key& k) {
    const std::size_t n = k.tokens.size() * vocab_;
    rows_.resize(n);
    float_rows_.resize(n);
    model_.logits(std::span<const token_id>(k.tokens), std::span<Real>(rows_));
    if constexpr (std::same_as<Real, float>) {
      float_rows_ = rows_;
    } else {
      for (std::size_t i = 0; i < n; ++i) float_rows_[i] = static_cast<float>(rows_[i]);
    }
    choices_.clear();
    probs_.clear();
    for (std::size_t p = rules_.candidates_begin(k); p < rules_.block_end(k); ++p) {
      if (k.tokens[p] != rules_.mask) continue;
      const std::span<const Real> row(rows_.data() + p * vocab_, vocab_);
      if (!compute_logit_stats(row).valid) return false;
      const std::vector<double> dist = token_distribution(row, opt_.choice);
      std::vector<position_info> infos;
      std::vector<double> probs;
      for (std::size_t v = 0; v < vocab_; ++v) {
        if (!(dist[v] > 0.0)) continue;
        infos.push_back(describe_choice(row, opt_.choice, static_cast<token_id>(v), p));
        probs.push_back(dist[v]);
      }
      choices_.push_back(std::move(infos));
      probs_.push_back(std::move(probs));
    }
    std::size_t combos = 1;
    for (const auto& c : choices_) {
      combos *= c.size();
      require_branches(combos, eopt_.max_branches, "joint token choices");
    }
    return true;
  }

  //! Entropy of candidate `j` (independent of its token).
  [[nodiscard]] double entropy(std::size_t j) const noexcept { return choices_[j][0].entropy; }
  [[nodiscard]] std::size_t candidates() const noexcept { return choices_.size(); }
  [[nodiscard]] std::size_t position(std::size_t j) const noexcept { return choices_[j][0].position; }

  //! Calls f(candidates, selection, probability) for every joint token choice and every selection.
  template <class F>
  void for_each_branch(std::size_t step, const loop_key& k, F&& f) {
    const std::size_t m = choices_.size();
    const step_context ctx{step,
                           k.block,
                           k.step_in_block,
                           rules_.steps_per_block,
                           rules_.steps,
                           rules_.block_begin(k),
                           rules_.block_end(k),
                           k.block_masked_at_start,
                           rules_.masks_in(k, rules_.region_begin, rules_.region_end),
                           sequence_,
                           counter_rng{0x6a09e667f3bcc908ull},
                           std::span<const token_id>(k.tokens),
                           std::span<const float>(float_rows_),
                           vocab_,
                           rules_.mask};
    digits_.assign(m, 0);
    cand_.resize(m);
    sel_.reserve(k.tokens.size());
    check_.reserve(k.tokens.size());
    for (;;) {
      double p = 1.0;
      for (std::size_t j = 0; j < m; ++j) {
        cand_[j] = choices_[j][digits_[j]];
        p *= probs_[j][digits_[j]];
      }
      const std::span<const position_info> cand(cand_);
      enumerate_selections(opt_.policy, ctx, cand, sel_, check_, eopt_.max_branches,
                           [&](const selection& s, double ps) { f(cand, s, p * ps); });
      std::size_t j = m;
      while (j > 0 && digits_[j - 1] + 1 == choices_[j - 1].size()) digits_[--j] = 0;
      if (j == 0) return;
      ++digits_[j - 1];
    }
  }

 private:
  Model& model_;
  const decode_options<Policy>& opt_;
  const exact_decode_options& eopt_;
  const loop_rules& rules_;
  std::size_t vocab_;
  std::uint32_t sequence_;
  std::vector<Real> rows_;
  std::vector<float> float_rows_;
  std::vector<std::vector<position_info>> choices_;
  std::vector<std::vector<double>> probs_;
  std::vector<std::size_t> digits_;
  std::vector<position_info> cand_;
  selection sel_, check_;
};

inline output_distribution to_distribution(const std::map<std::vector<token_id>, double>& m) {
  output_distribution out;
  out.reserve(m.size());
  for (const auto& [t, p] : m)
    if (p > 0.0) out.push_back({t, p});
  return out;
}

inline void require_sorted(const output_distribution& d, const char* name) {
  for (std::size_t i = 1; i < d.size(); ++i)
    require(d[i - 1].tokens < d[i].tokens, name, ": entry ", i,
            " is not in strictly ascending token order (an output_distribution is sorted and unique)");
}

template <class Real, class Model, class Policy>
void run_exact(Model& model, const canvas& c, const decode_options<Policy>& opt, const exact_decode_options& eopt,
               const loop_rules& rules, std::size_t vocab, exact_decode_result& res) {
  loop_key start;
  start.tokens = c.tokens;
  if (eopt.track_unmask_steps) start.unmask_step.assign(c.tokens.size(), -1);
  if (rules.masks_in(start, rules.region_begin, rules.region_end) == 0) {
    res.outputs = {{c.tokens, 1.0}};
    if (eopt.track_unmask_steps) res.trajectories = {{c.tokens, start.unmask_step, 1.0}};
    if (eopt.exact_process && has_conditional_joint<Model>) {
      res.has_exact_process = true;
      res.exact_outputs = res.outputs;
    }
    return;
  }
  rules.enter_block(start, 0);

  // The sampler: q.
  {
    state_expander<Real, Model, Policy> ex(model, opt, eopt, rules, vocab, c.sequence);
    std::map<loop_key, double> layer{{start, 1.0}}, next;
    std::map<std::vector<token_id>, double> outputs;
    std::map<std::pair<std::vector<token_id>, std::vector<std::int32_t>>, double> trajectories;
    for (std::size_t t = 0; !layer.empty(); ++t) {
      require(t < eopt.max_steps, "exact_output_distribution: a trajectory exceeded max_steps = ", eopt.max_steps,
              " model calls");
      next.clear();
      for (const auto& [key, prob] : layer) {
        res.expected_nfe += prob;
        if (!ex.prepare(key)) {
          res.incomplete_probability += prob;
          continue;
        }
        ex.for_each_branch(t, key, [&](std::span<const position_info> cand, const selection& s, double pb) {
          if (!(pb > 0.0)) return;
          loop_key nk = key;
          const std::size_t changed =
              apply_selection(nk, cand, s, rules.region_begin, rules.region_end, rules.mask, t);
          switch (rules.after_step(nk, changed, t)) {
            case loop_status::running: next[std::move(nk)] += prob * pb; break;
            case loop_status::completed:
            case loop_status::incomplete:
              outputs[nk.tokens] += prob * pb;
              if (!nk.unmask_step.empty()) trajectories[{nk.tokens, nk.unmask_step}] += prob * pb;
              break;
            case loop_status::no_progress: res.incomplete_probability += prob * pb; break;
          }
        });
      }
      res.states += next.size();
      require(res.states <= eopt.max_states, "exact_output_distribution: ", res.states,
              " loop states exceed max_states = ", eopt.max_states);
      layer.swap(next);
    }
    res.outputs = to_distribution(outputs);
    for (const auto& [key, p] : trajectories)
      if (p > 0.0) res.trajectories.push_back({key.first, key.second, p});
  }

  // The exact process with the same position sets: p.
  if constexpr (has_conditional_joint<Model>) {
    if (!eopt.exact_process) return;
    res.has_exact_process = true;
    state_expander<Real, Model, Policy> ex(model, opt, eopt, rules, vocab, c.sequence);
    loop_key exact_start = start;
    exact_start.unmask_step.clear();  // the exact process needs no unmask steps: merge more states
    std::map<loop_key, double> layer{{exact_start, 1.0}}, next;
    std::map<std::vector<token_id>, double> outputs;
    std::map<std::pair<std::vector<std::size_t>, std::vector<std::size_t>>, double> laws;
    std::size_t states = 0;
    for (std::size_t t = 0; !layer.empty(); ++t) {
      require(t < eopt.max_steps, "exact_output_distribution: a trajectory exceeded max_steps = ", eopt.max_steps,
              " model calls");
      next.clear();
      for (const auto& [key, prob] : layer) {
        res.exact_expected_steps += prob;
        if (!ex.prepare(key)) {
          res.exact_incomplete_probability += prob;
          continue;
        }
        // The law of (A_t, re-masked positions) at this state.
        laws.clear();
        ex.for_each_branch(t, key, [&](std::span<const position_info> cand, const selection& s, double pb) {
          if (!(pb > 0.0)) return;
          std::vector<std::size_t> a;
          for (std::size_t i : s.unmask) a.push_back(cand[i].position);
          std::sort(a.begin(), a.end());
          a.erase(std::unique(a.begin(), a.end()), a.end());
          laws[{std::move(a), s.remask}] += pb;
        });
        for (const auto& [sets, pa] : laws) {
          const auto& a = sets.first;
          std::vector<double> h;
          for (std::size_t pos : a)
            for (std::size_t j = 0; j < ex.candidates(); ++j)
              if (ex.position(j) == pos) h.push_back(ex.entropy(j));
          res.trajectory_bound += prob * pa * parallel_decoding_error_bound(h);
          const auto joint = model.conditional_joint(std::span<const token_id>(key.tokens),
                                                     std::span<const std::size_t>(a));
          const std::size_t symbols = a.empty() ? 1 : static_cast<std::size_t>(joint.shape()[0]);
          const std::size_t entries = static_cast<std::size_t>(joint.size());
          for (std::size_t e = 0; e < entries; ++e) {
            const double px = static_cast<double>(joint.data()[e]);
            if (!(px > 0.0)) continue;
            loop_key nk = key;
            std::size_t rest = e;
            for (std::size_t q = a.size(); q > 0; --q) {
              nk.tokens[a[q - 1]] = static_cast<token_id>(rest % symbols);
              rest /= symbols;
            }
            std::size_t changed = a.size();
            for (std::size_t pos : sets.second) {
              if (pos < rules.region_begin || pos >= rules.region_end || nk.tokens[pos] == rules.mask) continue;
              nk.tokens[pos] = rules.mask;
              ++changed;
            }
            const double pn = prob * pa * px;
            switch (rules.after_step(nk, changed, t)) {
              case loop_status::running: next[std::move(nk)] += pn; break;
              case loop_status::completed:
              case loop_status::incomplete: outputs[nk.tokens] += pn; break;
              case loop_status::no_progress: res.exact_incomplete_probability += pn; break;
            }
          }
        }
      }
      states += next.size();
      require(states <= eopt.max_states, "exact_output_distribution: ", states,
              " exact-process states exceed max_states = ", eopt.max_states);
      layer.swap(next);
    }
    res.exact_outputs = to_distribution(outputs);
  }
}

}  // namespace detail

//! The exact output distribution of `mdlm::decode(model, canvas, options, rng)` over its random
//! numbers, by enumeration (see the file comment), plus the exact process and its trajectory bound.
//!
//! @param model    an ExactConditionalModel (joint_table, hmm); its double rows (or float rows, see
//!                 `exact_decode_options::precision`) drive the token choice and the policy. With
//!                 `conditional_joint` it also gets the exact process and the trajectory bound.
//! @param c        the canvas, as for `decode` (`c.sequence` does not matter: every random draw is
//!                 enumerated)
//! @param options  the decode options (policy, token choice, block length, steps) exactly as passed
//!                 to `decode`. The policy must be stateless (KLASS's history would have to be part
//!                 of every state) and either deterministic given its step context, one of the random
//!                 policies enumerated here (`fixed_count` with the random score or alg_temp > 0,
//!                 `dream_origin`), or provide `enumerate_selections(ctx, candidates, f)`.
//! @param eopt     precision, exact process on/off, limits
//! @throws std::invalid_argument for everything `decode` rejects (same messages), a policy that
//!         draws random numbers it does not enumerate, a zero limit, or an enumeration above
//!         `max_states`, `max_branches` or `max_steps`; errors of the model propagate.
template <ExactConditionalModel Model, unmasking_policy Policy>
[[nodiscard]] exact_decode_result exact_output_distribution(Model& model, const canvas& c,
                                                            const decode_options<Policy>& options,
                                                            const exact_decode_options& eopt = {}) {
  static_assert(stateless_policy<Policy>,
                "mdlm::reference::exact_output_distribution: stateful policies (KLASS) are not enumerable "
                "because their state depends on the whole trajectory");
  eopt.validate();
  const std::size_t vocab = static_cast<std::size_t>(model.vocab_size());
  const auto mask = static_cast<token_id>(model.mask_token());
  const auto plan = mdlm::detail::validate_decode(c, options, vocab, mask);
  detail::loop_rules rules;
  rules.region_begin = c.region_begin;
  rules.region_end = c.region_end;
  rules.block_length = plan.block_length;
  rules.blocks = c.region_length() / plan.block_length;
  rules.steps = plan.steps;
  rules.steps_per_block = plan.steps / rules.blocks;
  rules.max_nfe = options.max_nfe > 0 ? options.max_nfe
                  : plan.steps > 0    ? plan.steps
                                      : c.masked_count(mask) + c.region_length() + 1;
  rules.mask = mask;
  exact_decode_result res;
  if (eopt.precision == logit_precision::exact) detail::run_exact<double>(model, c, options, eopt, rules, vocab, res);
  else detail::run_exact<float>(model, c, options, eopt, rules, vocab, res);
  return res;
}

//! The model's own joint distribution of the canvas given its unmasked tokens: p(x_M | unmasked) over
//! the masked positions M of the generation region, as an output_distribution of whole canvases
//! (what a sampler that is exact should output).
//! @throws std::invalid_argument for an invalid canvas (as `decode`) or an impossible prompt.
template <class Model>
[[nodiscard]] output_distribution model_output_distribution(Model& model, const canvas& c) {
  static_assert(check_joint_model<Model>());
  const std::size_t vocab = static_cast<std::size_t>(model.vocab_size());
  const auto mask = static_cast<token_id>(model.mask_token());
  mdlm::detail::validate_decode(c, decode_options<med>{}, vocab, mask);
  std::vector<std::size_t> masked;
  for (std::size_t p = c.region_begin; p < c.region_end; ++p)
    if (c.tokens[p] == mask) masked.push_back(p);
  const auto joint = model.conditional_joint(std::span<const token_id>(c.tokens), std::span<const std::size_t>(masked));
  const std::size_t symbols = masked.empty() ? 1 : static_cast<std::size_t>(joint.shape()[0]);
  std::map<std::vector<token_id>, double> out;
  std::vector<token_id> t = c.tokens;
  for (std::size_t e = 0; e < static_cast<std::size_t>(joint.size()); ++e) {
    std::size_t rest = e;
    for (std::size_t q = masked.size(); q > 0; --q) {
      t[masked[q - 1]] = static_cast<token_id>(rest % symbols);
      rest /= symbols;
    }
    out[t] += static_cast<double>(joint.data()[e]);
  }
  return detail::to_distribution(out);
}

//! Probability of `tokens` under `d` (0 when absent).
[[nodiscard]] inline double probability_of(const output_distribution& d, std::span<const token_id> tokens) {
  const auto it = std::lower_bound(d.begin(), d.end(), tokens, [](const sequence_probability& e, std::span<const token_id> t) {
    return std::lexicographical_compare(e.tokens.begin(), e.tokens.end(), t.begin(), t.end());
  });
  if (it == d.end() || !std::equal(it->tokens.begin(), it->tokens.end(), tokens.begin(), tokens.end())) return 0.0;
  return it->probability;
}

//! KL(p || q) = sum_x p(x) log(p(x) / q(x)) in nats; +inf when q(x) = 0 < p(x). Both must be sorted
//! output_distributions (throws std::invalid_argument naming the unsorted one).
[[nodiscard]] inline double kl_divergence(const output_distribution& p, const output_distribution& q) {
  detail::require_sorted(p, "kl_divergence: p");
  detail::require_sorted(q, "kl_divergence: q");
  double kl = 0.0;
  std::size_t j = 0;
  for (const auto& e : p) {
    while (j < q.size() && q[j].tokens < e.tokens) ++j;
    if (!(e.probability > 0.0)) continue;
    if (j == q.size() || q[j].tokens != e.tokens || !(q[j].probability > 0.0))
      return std::numeric_limits<double>::infinity();
    kl += e.probability * std::log(e.probability / q[j].probability);
  }
  return kl;
}

//! max_x |p(x) - q(x)| over the union of the supports. Both must be sorted output_distributions.
[[nodiscard]] inline double max_abs_difference(const output_distribution& p, const output_distribution& q) {
  detail::require_sorted(p, "max_abs_difference: p");
  detail::require_sorted(q, "max_abs_difference: q");
  double d = 0.0;
  std::size_t i = 0, j = 0;
  while (i < p.size() || j < q.size()) {
    if (j == q.size() || (i < p.size() && p[i].tokens < q[j].tokens)) {
      d = std::max(d, std::abs(p[i++].probability));
    } else if (i == p.size() || q[j].tokens < p[i].tokens) {
      d = std::max(d, std::abs(q[j++].probability));
    } else {
      d = std::max(d, std::abs(p[i++].probability - q[j++].probability));
    }
  }
  return d;
}

}  // namespace mdlm::reference
