// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! `mdlm::reference::hmm`: a hidden Markov model as an exact masked diffusion model for long
//! sequences (L = 64, 256, ...), where explicit joint tables cannot be stored.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <span>
#include <vector>

#include <xtensor/xarray.hpp>

#include "mdlm/concepts.hpp"
#include "mdlm/reference/detail/model_support.hpp"
#include "mdlm/reference/random.hpp"
#include "mdlm/rng.hpp"
#include "mdlm/types.hpp"

namespace mdlm::reference {

//! A hidden Markov model with K hidden states, V symbols and L positions:
//! p(x) = sum_z pi(z_0) B(z_0, x_0) prod_{i>0} A(z_{i-1}, z_i) B(z_i, x_i).
//!
//! As a masked diffusion model its vocabulary has V + 1 ids; id V is the mask token. `logits` returns
//! the exact conditionals p(x_i = v | observed tokens) at every masked position for ANY set of
//! observed positions, by one forward-backward pass in which a masked position emits with
//! probability 1 (its symbol is marginalised). Everything runs in log space (log-sum-exp), so
//! zero parameters are exact `-inf` and nothing underflows; in addition the forward and backward
//! messages are renormalised at every position (their log-sum-exp over states is subtracted and, for
//! the forward pass, accumulated into log p(s)). Without that, the messages grow like -L in
//! magnitude and each log-sum-exp adds a rounding error proportional to that magnitude, so the
//! conditionals of a 256-token sequence would carry errors of ~1e-11 instead of ~1e-14.
//!
//! Cost per `logits` call: O(L K^2 + L K V) time, O(L K) scratch. Immutable after construction;
//! concurrent queries are safe.
class hmm {
 public:
  static constexpr std::size_t max_states = std::size_t{1} << 12;  //!< largest K accepted
  static constexpr std::size_t max_vocab = std::size_t{1} << 24;   //!< largest V accepted
  static constexpr std::size_t max_length = std::size_t{1} << 20;  //!< largest L accepted
  //! Largest joint `conditional_joint` computes: V^|A| <= 2^20 entries.
  static constexpr std::size_t max_joint_entries = std::size_t{1} << 20;

  //! An HMM from explicit parameters. K = `initial.size()`, V = `emission.size() / K`.
  //! @param initial     K weights of the first hidden state.
  //! @param transition  K*K weights, row-major, row = from-state: `transition[i*K + j]` ~ p(j | i).
  //! @param emission    K*V weights, row-major: `emission[k*V + v]` ~ p(v | state k).
  //! @param length      L >= 1 positions.
  //! Weights must be finite and >= 0 (zeros allowed); each of `initial`, every transition row and
  //! every emission row is divided by its sum, which must be positive.
  //! @throws std::invalid_argument naming the bad value (sizes, limits, negative / NaN / infinite
  //!         weights, a row summing to 0).
  hmm(std::span<const double> initial, std::span<const double> transition, std::span<const double> emission,
      std::size_t length)
      : states_{initial.size()}, length_{length} {
    const std::size_t k = states_;
    detail::require(k >= 1, "hmm: initial.size() = ", k, " must be >= 1 (the number of states)");
    detail::require(k <= max_states, "hmm: states = ", k, " exceeds max_states = ", max_states);
    detail::require(length >= 1, "hmm: length = ", length, " must be >= 1");
    detail::require(length <= max_length, "hmm: length = ", length, " exceeds max_length = ", max_length);
    detail::require(transition.size() == k * k, "hmm: transition.size() = ", transition.size(),
                    " must equal states^2 = ", k * k);
    detail::require(!emission.empty() && emission.size() % k == 0, "hmm: emission.size() = ", emission.size(),
                    " must be a positive multiple of states = ", k);
    vocab_ = emission.size() / k;
    detail::require(vocab_ <= max_vocab, "hmm: vocab = ", vocab_, " exceeds max_vocab = ", max_vocab);
    detail::validate_nonnegative("hmm", "initial", initial);
    detail::validate_nonnegative("hmm", "transition", transition);
    detail::validate_nonnegative("hmm", "emission", emission);
    initial_ = normalised_rows(initial, 1, k, "initial");
    transition_ = normalised_rows(transition, k, k, "transition");
    emission_ = normalised_rows(emission, k, vocab_, "emission");
    log_initial_ = logs(initial_);
    log_transition_ = logs(transition_);
    log_emission_ = logs(emission_);
  }

  //! A random HMM: the initial distribution, every transition row and every emission row drawn from
  //! the symmetric Dirichlet(alpha). Deterministic in `seed` on every platform (stream
  //! `rng_stream::model`, sequence 1).
  //! @throws std::invalid_argument for sizes 0 or over the limits, or alpha not finite and > 0.
  [[nodiscard]] static hmm random(std::size_t states, std::size_t vocab, std::size_t length, std::uint64_t seed,
                                  double alpha = 1.0) {
    detail::require(states >= 1 && states <= max_states, "hmm::random: states = ", states,
                    " must be in [1, ", max_states, "]");
    detail::require(vocab >= 1 && vocab <= max_vocab, "hmm::random: vocab = ", vocab, " must be in [1, ",
                    max_vocab, "]");
    detail::require(std::isfinite(alpha) && alpha > 0.0, "hmm::random: alpha = ", alpha, " must be finite and > 0");
    sequential_rng rng{seed, rng_stream::model, 1};
    std::vector<double> initial = sample_dirichlet(states, alpha, rng);
    std::vector<double> transition, emission;
    transition.reserve(states * states);
    emission.reserve(states * vocab);
    for (std::size_t i = 0; i < states; ++i) {
      const auto row = sample_dirichlet(states, alpha, rng);
      transition.insert(transition.end(), row.begin(), row.end());
    }
    for (std::size_t i = 0; i < states; ++i) {
      const auto row = sample_dirichlet(vocab, alpha, rng);
      emission.insert(emission.end(), row.begin(), row.end());
    }
    return hmm{initial, transition, emission, length};
  }

  //! Logit row width V + 1 (symbols 0..V-1 plus the mask token).
  [[nodiscard]] std::size_t vocab_size() const noexcept { return vocab_ + 1; }
  //! Number of symbols V.
  [[nodiscard]] std::size_t base_vocab() const noexcept { return vocab_; }
  //! The mask token, id V.
  [[nodiscard]] token_id mask_token() const noexcept { return static_cast<token_id>(vocab_); }
  //! Sequence length L.
  [[nodiscard]] std::size_t length() const noexcept { return length_; }
  //! Number of hidden states K.
  [[nodiscard]] std::size_t states() const noexcept { return states_; }
  //! Normalised initial distribution (K).
  [[nodiscard]] std::span<const double> initial() const noexcept { return initial_; }
  //! Normalised transition matrix (K*K, row = from-state).
  [[nodiscard]] std::span<const double> transition() const noexcept { return transition_; }
  //! Normalised emission matrix (K*V, row = state).
  [[nodiscard]] std::span<const double> emission() const noexcept { return emission_; }

  //! Exact conditional logits: `out[i*(V+1) + v] = log p(x_i = v | non-mask tokens)` for masked i and
  //! v < V; entry V (the mask) is `-inf`; rows of unmasked positions hold the log one-hot of their
  //! token. If the evidence has probability 0, every masked row is all `-inf`.
  //! One forward-backward pass: O(L K^2 + L K V).
  //! @throws std::invalid_argument if `tokens.size() != L`, an id is outside [0, V], or
  //!         `out.size() != L * (V+1)`.
  void logits(std::span<const token_id> tokens, std::span<float> out) const { fill_logits(tokens, out); }
  //! Same as the float overload, in double precision (`ExactConditionalModel`).
  void logits(std::span<const token_id> tokens, std::span<double> out) const { fill_logits(tokens, out); }

  //! `batch` sequences of length L at `tokens[b*L .. (b+1)*L)`, rows written to
  //! `out[(b*L + i)*(V+1) + v]`; each sequence's rows equal what `logits` returns for it alone.
  void batch_logits(std::span<const token_id> tokens, std::size_t batch, std::span<float> out) const {
    fill_batch(tokens, batch, out);
  }
  //! Double-precision batch overload.
  void batch_logits(std::span<const token_id> tokens, std::size_t batch, std::span<double> out) const {
    fill_batch(tokens, batch, out);
  }

  //! log p(x) of a full sequence (no mask tokens); `-inf` for probability 0.
  [[nodiscard]] double log_probability(std::span<const token_id> sequence) const {
    detail::validate_sequence("hmm", sequence, length_, vocab_);
    return forward(sequence, nullptr);
  }

  //! log p(observed tokens), masked positions marginalised; `-inf` when impossible.
  [[nodiscard]] double log_evidence(std::span<const token_id> tokens) const {
    detail::validate_tokens("hmm", tokens, length_, vocab_);
    return forward(tokens, nullptr);
  }

  //! The exact joint p(x_A | s) of the masked positions A = `positions` (axes in the given order)
  //! given the non-mask tokens s; masked positions outside A are marginalised. Shape (V, ..., V) with
  //! |A| axes; an empty A gives a 0-dimensional array holding 1.
  //!
  //! Method: with A sorted, a_1 < ... < a_m, the chain rule over A in position order gives
  //! p(x_A, s) = sum_z alpha_{a_1}(z_1) B(z_1, x_{a_1}) T_1(z_1, z_2) B(z_2, x_{a_2}) ... beta_{a_m}(z_m),
  //! where alpha/beta are the forward/backward messages of s and T_k is the transfer between a_k and
  //! a_{k+1} through the positions in between. The V^m assignments are enumerated depth first, one
  //! K x K message update per tree node, then normalised (their sum is p(s)). Cost O(L K^3 + K^2 V^m).
  //! @throws std::invalid_argument for invalid tokens, a position out of range / unmasked / repeated,
  //!         V^|A| > `max_joint_entries`, or evidence of probability 0.
  [[nodiscard]] xt::xarray<double> conditional_joint(std::span<const token_id> tokens,
                                                     std::span<const std::size_t> positions) const {
    detail::validate_tokens("hmm", tokens, length_, vocab_);
    detail::validate_positions("hmm", tokens, positions, mask_token());
    const std::size_t m = positions.size();
    std::size_t entries = 1;
    for (std::size_t k = 0; k < m; ++k) {
      detail::require(entries <= max_joint_entries / vocab_, "hmm: vocab^|A| = ", vocab_, "^", m,
                      " exceeds max_joint_entries = ", max_joint_entries);
      entries *= vocab_;
    }
    const std::size_t kk = states_;
    std::vector<double> alpha(length_ * kk), beta(length_ * kk);
    const double log_z = forward(tokens, &alpha);
    detail::require(log_z > detail::neg_inf, "hmm: the evidence has probability 0; conditionals are undefined");
    backward(tokens, beta);

    // Leaves are first stored as log p(x_A, s) up to one constant shared by all assignments (the
    // messages are normalised per position and each transfer matrix by its maximum), then
    // exponentiated relative to their maximum and normalised by their sum.
    xt::xarray<double> out = xt::xarray<double>::from_shape(std::vector<std::size_t>(m, vocab_));
    if (m == 0) {
      out.data()[0] = 1.0;
      return out;
    }
    // Sorted positions and, for each, its stride in the output (row-major over the given order).
    std::vector<std::size_t> order(m);
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return positions[a] < positions[b]; });
    std::vector<std::size_t> given_stride(m);
    for (std::size_t k = m, s = 1; k > 0; --k, s *= vocab_) given_stride[k - 1] = s;
    std::vector<std::size_t> pos(m), stride(m);
    for (std::size_t j = 0; j < m; ++j) pos[j] = positions[order[j]], stride[j] = given_stride[order[j]];

    // Transfer matrices between consecutive sorted positions: trans[j](a, b) = log p(z_{pos[j+1]} = b,
    // observed tokens strictly between | z_{pos[j]} = a) + const.
    std::vector<std::vector<double>> trans(m > 0 ? m - 1 : 0);
    for (std::size_t j = 0; j + 1 < m; ++j) trans[j] = transfer(tokens, pos[j], pos[j + 1]);

    // pre[j]: log p(z_{pos[j]}, x_{pos[0..j)}, s before pos[j]) + const (before the emission at
    // pos[j]); msg[j]: the same plus the log emission of the chosen symbol digits[j].
    std::vector<double> pre(m * kk), msg(m * kk), terms(kk);
    std::vector<std::size_t> digits(m, 0);
    std::copy_n(alpha.begin() + static_cast<std::ptrdiff_t>(pos[0] * kk), kk, pre.begin());
    auto emit = [&](std::size_t j) {
      for (std::size_t z = 0; z < kk; ++z) msg[j * kk + z] = pre[j * kk + z] + log_emission_[z * vocab_ + digits[j]];
    };
    auto propagate = [&](std::size_t j) {  // pre[j] from msg[j-1] through trans[j-1]
      const auto& t = trans[j - 1];
      for (std::size_t b = 0; b < kk; ++b) {
        for (std::size_t a = 0; a < kk; ++a) terms[a] = msg[(j - 1) * kk + a] + t[a * kk + b];
        pre[j * kk + b] = detail::log_sum_exp(terms);
      }
    };
    emit(0);
    for (std::size_t j = 1; j < m; ++j) propagate(j), emit(j);

    double* o = out.data();
    double max_log = detail::neg_inf;
    for (;;) {
      for (std::size_t z = 0; z < kk; ++z) terms[z] = msg[(m - 1) * kk + z] + beta[pos[m - 1] * kk + z];
      std::size_t index = 0;
      for (std::size_t j = 0; j < m; ++j) index += digits[j] * stride[j];
      o[index] = detail::log_sum_exp(terms);
      max_log = std::max(max_log, o[index]);
      // Advance the odometer (last sorted position fastest) and refresh the messages below it.
      std::size_t j = m;
      while (j > 0 && digits[j - 1] + 1 == vocab_) digits[--j] = 0;
      if (j == 0) break;
      ++digits[j - 1];
      emit(j - 1);
      for (std::size_t d = j; d < m; ++d) propagate(d), emit(d);
    }
    double total = 0.0;
    for (auto& x : out) total += (x = std::exp(x - max_log));
    for (auto& x : out) x /= total;
    return out;
  }

  //! The marginal p(x_position | s) (size V) of one masked position.
  //! @throws std::invalid_argument for invalid tokens, an out-of-range or unmasked position, or
  //!         evidence of probability 0.
  [[nodiscard]] std::vector<double> conditional(std::span<const token_id> tokens, std::size_t position) const {
    detail::validate_tokens("hmm", tokens, length_, vocab_);
    const std::size_t positions[1] = {position};
    detail::validate_positions("hmm", tokens, positions, mask_token());
    std::vector<double> alpha(length_ * states_), beta(length_ * states_);
    const double log_z = forward(tokens, &alpha);
    detail::require(log_z > detail::neg_inf, "hmm: the evidence has probability 0; conditionals are undefined");
    backward(tokens, beta);
    std::vector<double> row(vocab_), scratch(states_);
    posterior_row(alpha, beta, position, std::span<double>{row}, scratch);
    for (auto& x : row) x = std::exp(x);
    return row;
  }

 private:
  std::vector<double> normalised_rows(std::span<const double> w, std::size_t rows, std::size_t cols,
                                      const char* what) const {
    std::vector<double> out(w.begin(), w.end());
    for (std::size_t r = 0; r < rows; ++r) {
      double sum = 0.0;
      for (std::size_t c = 0; c < cols; ++c) sum += out[r * cols + c];
      detail::require(sum > 0.0, "hmm: ", what, " row ", r, " sums to ", sum, "; at least one entry must be > 0");
      for (std::size_t c = 0; c < cols; ++c) out[r * cols + c] /= sum;
    }
    return out;
  }

  static std::vector<double> logs(const std::vector<double>& p) {
    std::vector<double> out(p.size());
    for (std::size_t i = 0; i < p.size(); ++i) out[i] = std::log(p[i]);
    return out;
  }

  //! log emission of position i in state z: 0 for a masked position (its symbol is marginalised).
  [[nodiscard]] double log_emit(std::span<const token_id> tokens, std::size_t i, std::size_t z) const noexcept {
    return tokens[i] == mask_token() ? 0.0 : log_emission_[z * vocab_ + static_cast<std::size_t>(tokens[i])];
  }

  //! Subtracts the log-sum-exp of `x` from every entry and returns it (`-inf` leaves `x` unchanged).
  static double normalise_log(std::span<double> x) noexcept {
    const double c = detail::log_sum_exp(x);
    if (c > detail::neg_inf)
      for (auto& v : x) v -= c;
    return c;
  }

  //! Forward pass: alpha_i(z) = log p(z_i = z | observed x_{0..i}) (normalised over z); returns
  //! log p(observed) = sum_i log c_i, the per-position normalisers. Stores the messages in `alpha`
  //! (L*K) when given. Returns `-inf` as soon as the evidence is impossible (the messages are then
  //! unspecified).
  double forward(std::span<const token_id> tokens, std::vector<double>* alpha) const {
    const std::size_t kk = states_;
    std::vector<double> cur(kk), next(kk), terms(kk);
    for (std::size_t z = 0; z < kk; ++z) cur[z] = log_initial_[z] + log_emit(tokens, 0, z);
    double log_z = normalise_log(cur);
    if (alpha) std::copy(cur.begin(), cur.end(), alpha->begin());
    for (std::size_t i = 1; i < length_ && log_z > detail::neg_inf; ++i) {
      for (std::size_t b = 0; b < kk; ++b) {
        for (std::size_t a = 0; a < kk; ++a) terms[a] = cur[a] + log_transition_[a * kk + b];
        next[b] = detail::log_sum_exp(terms) + log_emit(tokens, i, b);
      }
      log_z += normalise_log(next);
      cur.swap(next);
      if (alpha) std::copy(cur.begin(), cur.end(), alpha->begin() + static_cast<std::ptrdiff_t>(i * kk));
    }
    return log_z;
  }

  //! Backward pass: beta_i(z) = log p(observed x_{i+1..L-1} | z_i = z) minus a per-position constant
  //! (each position normalised over z), into `beta` (L*K). Precondition: possible evidence.
  void backward(std::span<const token_id> tokens, std::vector<double>& beta) const {
    const std::size_t kk = states_;
    std::vector<double> terms(kk);
    std::fill(beta.end() - static_cast<std::ptrdiff_t>(kk), beta.end(), 0.0);
    for (std::size_t i = length_ - 1; i > 0; --i) {
      for (std::size_t a = 0; a < kk; ++a) {
        for (std::size_t b = 0; b < kk; ++b)
          terms[b] = log_transition_[a * kk + b] + log_emit(tokens, i, b) + beta[i * kk + b];
        beta[(i - 1) * kk + a] = detail::log_sum_exp(terms);
      }
      normalise_log(std::span<double>{beta.data() + (i - 1) * kk, kk});
    }
  }

  //! Writes log p(x_i = v | observed) for v < V into `row` (size V) from the forward/backward messages.
  //!
  //! Fast path: with gamma(z) = p(z_i = z | observed) scaled by its maximum, p(v) is the mixture
  //! sum_z gamma(z) B(z, v) in linear space (no exp per (z, v)). Terms dropped by the scaling are below
  //! e^-745 relative to the largest posterior state, so whenever the mixture is >= 1e-280 the result
  //! is exact to rounding; smaller values (e.g. when the most likely state cannot emit v) are
  //! recomputed exactly by a log-sum-exp over z.
  void posterior_row(const std::vector<double>& alpha, const std::vector<double>& beta, std::size_t i,
                     std::span<double> row, std::vector<double>& scratch) const {
    const std::size_t kk = states_;
    scratch.resize(3 * kk);
    const std::span<double> gamma{scratch.data(), kk}, scaled{scratch.data() + kk, kk},
        terms{scratch.data() + 2 * kk, kk};
    // gamma(z) = log p(z_i = z | observed): alpha + beta normalised over z at this position.
    for (std::size_t z = 0; z < kk; ++z) gamma[z] = alpha[i * kk + z] + beta[i * kk + z];
    normalise_log(gamma);
    double m = detail::neg_inf;
    for (std::size_t z = 0; z < kk; ++z) m = std::max(m, gamma[z]);
    for (std::size_t z = 0; z < kk; ++z) scaled[z] = std::exp(gamma[z] - m);
    std::fill(row.begin(), row.end(), 0.0);
    for (std::size_t z = 0; z < kk; ++z) {
      if (scaled[z] == 0.0) continue;
      const double* e = emission_.data() + z * vocab_;
      for (std::size_t v = 0; v < vocab_; ++v) row[v] += scaled[z] * e[v];
    }
    for (std::size_t v = 0; v < vocab_; ++v) {
      if (row[v] >= 1e-280) {
        row[v] = m + std::log(row[v]);
      } else {
        for (std::size_t z = 0; z < kk; ++z) terms[z] = gamma[z] + log_emission_[z * vocab_ + v];
        row[v] = detail::log_sum_exp(terms);
      }
    }
  }

  //! log transfer matrix between sorted positions a < b (both masked, in A): entry (s, t) is
  //! log p(z_b = t, observed tokens in (a, b) | z_a = s) up to a constant shared by all entries.
  //! O((b - a) K^3).
  [[nodiscard]] std::vector<double> transfer(std::span<const token_id> tokens, std::size_t a, std::size_t b) const {
    const std::size_t kk = states_;
    std::vector<double> cur(log_transition_), next(kk * kk), terms(kk);
    for (std::size_t t = a + 1; t < b; ++t) {
      for (std::size_t s = 0; s < kk; ++s) {
        for (std::size_t c = 0; c < kk; ++c) {
          for (std::size_t d = 0; d < kk; ++d)
            terms[d] = cur[s * kk + d] + log_emit(tokens, t, d) + log_transition_[d * kk + c];
          next[s * kk + c] = detail::log_sum_exp(terms);
        }
      }
      // A constant factor shared by all entries cancels in the normalised joint; subtracting the
      // maximum keeps the entries O(1) so long gaps add no magnitude-proportional rounding error.
      double mx = detail::neg_inf;
      for (double x : next) mx = std::max(mx, x);
      if (mx > detail::neg_inf)
        for (auto& x : next) x -= mx;
      cur.swap(next);
    }
    return cur;
  }

  template <class Real>
  void fill_logits(std::span<const token_id> tokens, std::span<Real> out) const {
    detail::validate_tokens("hmm", tokens, length_, vocab_);
    const std::size_t width = vocab_size();
    detail::validate_output("hmm", out.size(), length_, width);
    const std::size_t kk = states_;
    std::vector<double> alpha(length_ * kk), beta(length_ * kk), scratch(3 * kk), row(vocab_);
    const double log_z = forward(tokens, &alpha);
    const bool possible = log_z > detail::neg_inf;
    if (possible) backward(tokens, beta);
    for (std::size_t i = 0; i < length_; ++i) {
      const auto out_row = out.subspan(i * width, width);
      if (tokens[i] != mask_token()) {
        detail::write_one_hot_row(out_row, tokens[i]);
        continue;
      }
      if (possible) {
        posterior_row(alpha, beta, i, std::span<double>{row}, scratch);
        for (std::size_t v = 0; v < vocab_; ++v) out_row[v] = static_cast<Real>(row[v]);
      } else {
        // Impossible evidence: an all -inf row, reported invalid by compute_logit_stats.
        std::fill(out_row.begin(), out_row.end() - 1, -std::numeric_limits<Real>::infinity());
      }
      out_row[vocab_] = -std::numeric_limits<Real>::infinity();
    }
  }

  template <class Real>
  void fill_batch(std::span<const token_id> tokens, std::size_t batch, std::span<Real> out) const {
    const std::size_t width = vocab_size();
    detail::require(tokens.size() == batch * length_, "hmm: tokens.size() = ", tokens.size(), " must equal batch ",
                    batch, " * length ", length_, " = ", batch * length_);
    detail::validate_output("hmm", out.size(), batch * length_, width);
    for (std::size_t b = 0; b < batch; ++b)
      fill_logits(tokens.subspan(b * length_, length_), out.subspan(b * length_ * width, length_ * width));
  }

  std::size_t states_;
  std::size_t length_;
  std::size_t vocab_ = 0;
  std::vector<double> initial_, transition_, emission_;              // normalised probabilities
  std::vector<double> log_initial_, log_transition_, log_emission_;  // their logs (-inf for 0)
};

static_assert(check_conditional_model<hmm>());
static_assert(ConditionalModel<hmm> && BatchedConditionalModel<hmm> && ExactConditionalModel<hmm>);

}  // namespace mdlm::reference
