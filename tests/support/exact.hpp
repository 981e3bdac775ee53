// SPDX-License-Identifier: MIT
#pragma once
// Naive, independent reference computations for the exact tests: brute-force sums over a full joint
// given as a flat row-major vector, entropies, and random evidence / subsets drawn from a seeded
// generator (so that a rapidcheck counterexample's few integers determine the whole case).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <span>
#include <utility>
#include <vector>

#include "mdlm/rng.hpp"
#include "mdlm/types.hpp"

namespace mdlm::test {

//! Uniform integers from a seeded `mdlm::sequential_rng`.
struct case_rng {
  sequential_rng rng;
  explicit case_rng(std::uint64_t seed) : rng{seed, rng_stream::user, 7} {}
  //! Uniform in [0, n).
  std::size_t below(std::size_t n) {
    const auto k = static_cast<std::size_t>(rng.uniform() * static_cast<double>(n));
    return k < n ? k : n - 1;
  }
  double uniform() { return rng.uniform(); }
};

//! A partly masked sequence of length L over V symbols (mask id V): each position is masked with
//! probability `mask_rate`; at least one position is masked when `force_mask`.
inline std::vector<token_id> random_tokens(case_rng& r, std::size_t vocab, std::size_t length, double mask_rate,
                                           bool force_mask = true) {
  std::vector<token_id> t(length);
  for (auto& x : t)
    x = r.uniform() < mask_rate ? static_cast<token_id>(vocab) : static_cast<token_id>(r.below(vocab));
  if (force_mask) t[r.below(length)] = static_cast<token_id>(vocab);
  return t;
}

//! The masked positions of `tokens`.
inline std::vector<std::size_t> masked_positions(std::span<const token_id> tokens, token_id mask) {
  std::vector<std::size_t> m;
  for (std::size_t i = 0; i < tokens.size(); ++i)
    if (tokens[i] == mask) m.push_back(i);
  return m;
}

//! A random non-empty subset of `from` (size at most `max_size`) in random order.
inline std::vector<std::size_t> random_subset(case_rng& r, std::vector<std::size_t> from, std::size_t max_size) {
  for (std::size_t i = from.size(); i > 1; --i) std::swap(from[i - 1], from[r.below(i)]);  // Fisher-Yates
  const std::size_t limit = std::min(max_size, from.size());
  from.resize(1 + r.below(limit));
  return from;
}

//! Brute force: p(x_A, s) for every assignment of A (row-major over `positions` in the given order),
//! unnormalised, by visiting every entry of the flat joint `p` (V^L, position 0 most significant) and
//! decoding its digits. `evidence` receives p(s).
inline std::vector<double> naive_joint(std::span<const double> p, std::size_t vocab, std::size_t length,
                                       std::span<const token_id> tokens, std::span<const std::size_t> positions,
                                       double& evidence) {
  std::size_t out_size = 1;
  for (std::size_t k = 0; k < positions.size(); ++k) out_size *= vocab;
  std::vector<double> out(out_size, 0.0);
  std::vector<std::size_t> digits(length);
  evidence = 0.0;
  for (std::size_t index = 0; index < p.size(); ++index) {
    std::size_t rest = index;
    for (std::size_t i = length; i > 0; --i) digits[i - 1] = rest % vocab, rest /= vocab;
    bool agrees = true;
    for (std::size_t i = 0; i < length; ++i)
      if (tokens[i] != static_cast<token_id>(vocab) && static_cast<std::size_t>(tokens[i]) != digits[i]) agrees = false;
    if (!agrees) continue;
    std::size_t j = 0;
    for (std::size_t pos : positions) j = j * vocab + digits[pos];
    out[j] += p[index];
    evidence += p[index];
  }
  return out;
}

//! Normalised brute-force conditional joint p(x_A | s) (all zeros if p(s) = 0).
inline std::vector<double> naive_conditional_joint(std::span<const double> p, std::size_t vocab, std::size_t length,
                                                   std::span<const token_id> tokens,
                                                   std::span<const std::size_t> positions) {
  double evidence = 0.0;
  auto out = naive_joint(p, vocab, length, tokens, positions, evidence);
  if (evidence > 0.0)
    for (auto& x : out) x /= evidence;
  return out;
}

//! Shannon entropy -sum p log p in nats (0 log 0 = 0).
inline double entropy(std::span<const double> p) {
  double h = 0.0;
  for (double x : p)
    if (x > 0.0) h -= x * std::log(x);
  return h;
}

//! KL(p || q) = sum p log(p / q) in nats (terms with p = 0 vanish).
inline double kl_divergence(std::span<const double> p, std::span<const double> q) {
  double kl = 0.0;
  for (std::size_t i = 0; i < p.size(); ++i)
    if (p[i] > 0.0) kl += p[i] * std::log(p[i] / q[i]);
  return kl;
}

}  // namespace mdlm::test
