// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! Counter-based random numbers: Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as
//! 1, 2, 3", SC 2011), the generator cuRAND and FlashInfer use.
//!
//! Determinism contract: every random number mdlm draws is a pure function of
//! (seed, stream, sequence, step, position, index). The same seed therefore gives bit-identical
//! results whatever the batch size, the order in which canvases or positions are processed and the
//! number of threads.

#include <array>
#include <cstdint>

namespace mdlm {

namespace detail {
[[nodiscard]] constexpr std::uint64_t splitmix64(std::uint64_t x) noexcept {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
}  // namespace detail

//! The Philox4x32-10 block function: 128-bit counter + 64-bit key -> 128 random bits.
[[nodiscard]] constexpr std::array<std::uint32_t, 4> philox4x32(std::array<std::uint32_t, 4> ctr,
                                                                std::array<std::uint32_t, 2> key) noexcept {
  constexpr std::uint32_t m0 = 0xD2511F53u, m1 = 0xCD9E8D57u;
  constexpr std::uint32_t w0 = 0x9E3779B9u, w1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    const std::uint64_t p0 = std::uint64_t{m0} * ctr[0];
    const std::uint64_t p1 = std::uint64_t{m1} * ctr[2];
    ctr = {static_cast<std::uint32_t>(p1 >> 32) ^ ctr[1] ^ key[0], static_cast<std::uint32_t>(p1),
           static_cast<std::uint32_t>(p0 >> 32) ^ ctr[3] ^ key[1], static_cast<std::uint32_t>(p0)};
    key[0] += w0;
    key[1] += w1;
  }
  return ctr;
}

//! Named random streams, so that different uses of randomness never share numbers.
enum class rng_stream : std::uint32_t {
  token = 0,      //!< token choice (Gumbel noise, categorical draws)
  position = 1,   //!< position selection (random order, Dream origin, alg_temp)
  model = 2,      //!< random model construction (reference models, checkpoints)
  user = 3,       //!< free for callers
};

//! Counter-based generator: uniform doubles keyed by (seed, stream, sequence, step, position, index).
//! A plain value type; copying it copies the seed. All members are `noexcept` and allocation-free.
struct counter_rng {
  std::uint64_t seed = 0;  //!< the user's seed

  //! 128 random bits for one counter value.
  [[nodiscard]] constexpr std::array<std::uint32_t, 4> bits(rng_stream stream, std::uint32_t sequence,
                                                            std::uint32_t step, std::uint32_t position,
                                                            std::uint32_t index) const noexcept {
    const std::uint64_t k = detail::splitmix64(seed ^ (0xA5A5A5A5ull * (static_cast<std::uint64_t>(stream) + 1)));
    return philox4x32({sequence, step, position, index},
                      {static_cast<std::uint32_t>(k), static_cast<std::uint32_t>(k >> 32)});
  }

  //! Two independent uniforms in the open interval (0, 1) with 53 random bits each.
  [[nodiscard]] constexpr std::array<double, 2> uniform2(rng_stream stream, std::uint32_t sequence,
                                                         std::uint32_t step, std::uint32_t position,
                                                         std::uint32_t index) const noexcept {
    const auto b = bits(stream, sequence, step, position, index);
    const std::uint64_t a = ((std::uint64_t{b[0]} << 32) | b[1]) >> 11;
    const std::uint64_t c = ((std::uint64_t{b[2]} << 32) | b[3]) >> 11;
    constexpr double scale = 1.0 / 9007199254740992.0;  // 2^-53
    // (k + 0.5) * 2^-53 lies strictly inside (0, 1): log(u) and log(-log(u)) stay finite.
    return {(static_cast<double>(a) + 0.5) * scale, (static_cast<double>(c) + 0.5) * scale};
  }

  //! The uniform number number `index` of the (stream, sequence, step, position) cell, in (0, 1).
  [[nodiscard]] constexpr double uniform(rng_stream stream, std::uint32_t sequence, std::uint32_t step,
                                         std::uint32_t position, std::uint32_t index = 0) const noexcept {
    return uniform2(stream, sequence, step, position, index / 2)[index % 2];
  }
};

//! A sequential uniform generator over one (stream, sequence) cell of a counter_rng, for code that
//! needs a stream of numbers (building random models, Monte Carlo tests). Deterministic in `seed`.
class sequential_rng {
 public:
  constexpr explicit sequential_rng(std::uint64_t seed, rng_stream stream = rng_stream::user,
                                    std::uint32_t sequence = 0) noexcept
      : rng_{seed}, stream_{stream}, sequence_{sequence} {}

  //! Next uniform double in (0, 1).
  constexpr double uniform() noexcept {
    if (have_spare_) {
      have_spare_ = false;
      return spare_;
    }
    const auto u = rng_.uniform2(stream_, sequence_, static_cast<std::uint32_t>(counter_ >> 32),
                                 0u, static_cast<std::uint32_t>(counter_));
    ++counter_;
    spare_ = u[1];
    have_spare_ = true;
    return u[0];
  }

 private:
  counter_rng rng_;
  rng_stream stream_;
  std::uint32_t sequence_;
  std::uint64_t counter_ = 0;
  double spare_ = 0.0;
  bool have_spare_ = false;
};

}  // namespace mdlm
