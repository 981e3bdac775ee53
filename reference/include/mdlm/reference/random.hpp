// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! Platform-independent random variates for building random reference models: standard normal
//! (Marsaglia polar method), log-Gamma (Marsaglia & Tsang 2000) and Dirichlet.
//!
//! The `<random>` distributions are implementation-defined (libstdc++, libc++ and MSVC draw different
//! numbers from the same engine), so the reference models use these samplers on top of
//! `mdlm::sequential_rng`. They use only +, *, /, `std::sqrt` (correctly rounded by IEEE 754) and
//! `std::log` / `std::exp`, so a seed gives the same model on every conforming platform up to the
//! last-bit accuracy of the math library's `log` and `exp`.

#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

#include "mdlm/detail/errors.hpp"
#include "mdlm/rng.hpp"

namespace mdlm::reference {

//! A standard normal variate by the Marsaglia polar method (rejection from the unit disc; needs no
//! trigonometric functions). Consumes an even number of uniforms; the second normal of each accepted
//! pair is discarded so that every call depends only on the generator's state.
[[nodiscard]] inline double sample_standard_normal(sequential_rng& rng) noexcept {
  for (;;) {
    const double u = 2.0 * rng.uniform() - 1.0;
    const double v = 2.0 * rng.uniform() - 1.0;
    const double s = u * u + v * v;
    if (s >= 1.0 || s == 0.0) continue;
    return u * std::sqrt(-2.0 * std::log(s) / s);
  }
}

//! log X for X ~ Gamma(alpha, 1), by Marsaglia & Tsang, "A simple method for generating gamma
//! variables" (ACM TOMS 26(3), 2000).
//!
//! Returned in log space because for small alpha (e.g. 0.01) X itself underflows to 0: for alpha < 1
//! the method draws Gamma(alpha + 1) and multiplies by U^(1/alpha), whose logarithm log(U)/alpha is
//! representable even where U^(1/alpha) is not.
//! Precondition: alpha finite and > 0 (checked by `sample_dirichlet`, not here).
[[nodiscard]] inline double sample_log_gamma(double alpha, sequential_rng& rng) noexcept {
  double log_boost = 0.0;
  if (alpha < 1.0) {
    log_boost = std::log(rng.uniform()) / alpha;
    alpha += 1.0;
  }
  const double d = alpha - 1.0 / 3.0;
  const double c = 1.0 / std::sqrt(9.0 * d);
  for (;;) {
    const double x = sample_standard_normal(rng);
    const double t = 1.0 + c * x;
    if (t <= 0.0) continue;
    const double v = t * t * t;
    const double u = rng.uniform();
    // Squeeze test first (cheap), then the exact log acceptance test.
    if (u < 1.0 - 0.0331 * (x * x) * (x * x) ||
        std::log(u) < 0.5 * x * x + d * (1.0 - v + std::log(v))) {
      return std::log(d) + std::log(v) + log_boost;
    }
  }
}

//! A draw from the symmetric Dirichlet(alpha, ..., alpha) on n categories: normalised Gamma(alpha)
//! variates. Small alpha (0.1) gives peaked vectors, large alpha (10) nearly uniform ones.
//!
//! Normalisation is done in log space (subtract the largest log-Gamma before exponentiating), so the
//! largest entry is always positive and the vector sums to 1 up to rounding; entries far below the
//! largest may round to exactly 0, which every reference model accepts.
//! @throws std::invalid_argument if `n` is 0 or `alpha` is not finite and > 0.
[[nodiscard]] inline std::vector<double> sample_dirichlet(std::size_t n, double alpha, sequential_rng& rng) {
  detail::require(n >= 1, "sample_dirichlet: n = ", n, " must be >= 1");
  detail::require(std::isfinite(alpha) && alpha > 0.0, "sample_dirichlet: alpha = ", alpha,
                  " must be finite and > 0");
  std::vector<double> out(n);
  double max_log = -std::numeric_limits<double>::infinity();
  for (auto& x : out) {
    x = sample_log_gamma(alpha, rng);
    if (x > max_log) max_log = x;
  }
  double sum = 0.0;
  for (auto& x : out) {
    x = std::exp(x - max_log);
    sum += x;
  }
  for (auto& x : out) x /= sum;
  return out;
}

}  // namespace mdlm::reference
