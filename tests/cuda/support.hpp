// SPDX-License-Identifier: MIT
#pragma once
// Helpers shared by the CUDA backend's tests: tiny checkpoint shapes, random canvases, the bf16
// error statistics of the parity checks, and running the mdlm tool as a process.
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "cpu/support.hpp"
#include "mdlm/cpu/make_checkpoint.hpp"
#include "mdlm/types.hpp"

namespace mdlm::test {

//! a and b agree to `rel` relative (values below 1e-12 in magnitude compare absolutely to rel * 1e-12).
inline bool close(double a, double b, double rel) {
  return a == b || std::abs(a - b) <= rel * std::max({1e-12, std::abs(a), std::abs(b)});
}

//! Log-probabilities and entropies near 0 (nearly one-hot rows): relative `rel` or absolute 1e-12.
//! An absolute error e of a log-probability is a relative error e of the probability, and the CPU
//! forms log p(top-1) = z_1 - log Z in double, which near log Z ~ 40 carries ~1e-14 of rounding
//! itself; no decision of a policy depends on entropies below 1e-12 nats.
inline bool close_log(double a, double b, double rel) { return close(a, b, rel) || std::abs(a - b) <= 1e-12; }

//! The dimensions of a tiny checkpoint (cpu::tiny_checkpoint_spec's fields that the tests vary).
struct tiny_shape {
  cpu::architecture arch = cpu::architecture::llada;
  std::size_t heads = 4, kv_heads = 4, d_model = 64, mlp = 96, layers = 2, vocab = 320;

  [[nodiscard]] cpu::tiny_checkpoint_spec spec(std::uint64_t seed) const {
    cpu::tiny_checkpoint_spec s;
    s.arch = arch;
    s.heads = heads;
    s.kv_heads = kv_heads;
    s.d_model = d_model;
    s.mlp = mlp;
    s.layers = layers;
    s.vocab = vocab;
    s.seed = seed;
    return s;
  }
};

//! n tokens, each the mask with probability 0.4, else uniform over the vocabulary.
inline std::vector<token_id> random_canvas(std::size_t n, std::size_t vocab, token_id mask, std::mt19937& rng) {
  std::uniform_int_distribution<int> tok(0, static_cast<int>(vocab) - 1);
  std::bernoulli_distribution masked(0.4);
  std::vector<token_id> t(n);
  for (auto& x : t) x = masked(rng) ? mask : tok(rng);
  return t;
}

//! Error of `got` against `ref`: relative RMS error and the largest |error| / (1 + |ref|).
struct error_stats {
  double rel_rms = 0.0, worst = 0.0;
};

inline error_stats compare_logits(const std::vector<float>& got, const std::vector<float>& ref) {
  double e2 = 0.0, r2 = 0.0, worst = 0.0;
  for (std::size_t i = 0; i < ref.size() && i < got.size(); ++i) {
    const double e = std::abs(static_cast<double>(got[i]) - ref[i]);
    e2 += e * e;
    r2 += static_cast<double>(ref[i]) * ref[i];
    worst = std::max(worst, e / (1.0 + std::abs(ref[i])));
  }
  return {std::sqrt(e2 / r2), worst};
}

}  // namespace mdlm::test
