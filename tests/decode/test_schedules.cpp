// SPDX-License-Identifier: MIT
// Check vectors of shared/spec/samplers.md section 19 for the LLaDA and Dream schedules.
#include <catch2/catch.hpp>

#include <numeric>
#include <vector>

#include "mdlm/schedules/dream.hpp"
#include "mdlm/schedules/llada.hpp"

namespace {
std::vector<std::size_t> dream_counts(std::size_t masks, std::size_t steps) {
  std::vector<std::size_t> out;
  std::size_t left = masks;
  for (std::size_t i = 0; i < steps; ++i) {
    const std::size_t k = std::min(left, mdlm::dream_transfer_count(left, steps, 1e-3f, i));
    out.push_back(k);
    left -= k;
  }
  return out;
}
std::vector<std::size_t> llada_counts(std::size_t m, std::size_t s) {
  std::vector<std::size_t> out(s);
  mdlm::llada_num_transfer_tokens(m, out);
  return out;
}
}  // namespace

TEST_CASE("Dream schedule: 256 masks in 256 steps is [0, 1 x 254, 2]", "[decode][schedules][dream]") {
  const auto c = dream_counts(256, 256);
  REQUIRE(c.size() == 256);
  CHECK(c.front() == 0);
  CHECK(c.back() == 2);
  CHECK(std::count(c.begin(), c.end(), 1u) == 254);
  CHECK(std::accumulate(c.begin(), c.end(), std::size_t{0}) == 256);
}

TEST_CASE("Dream schedule: 256 masks in 128 steps is [1, 2 x 126, 3]", "[decode][schedules][dream]") {
  const auto c = dream_counts(256, 128);
  REQUIRE(c.size() == 128);
  CHECK(c.front() == 1);
  CHECK(c.back() == 3);
  CHECK(std::count(c.begin(), c.end(), 2u) == 126);
  CHECK(std::accumulate(c.begin(), c.end(), std::size_t{0}) == 256);
}

TEST_CASE("Dream float32 linspace endpoints", "[decode][schedules][dream]") {
  CHECK(mdlm::dream_timestep(256, 1e-3f, 0) == 1.0f);
  CHECK(mdlm::dream_timestep(256, 1e-3f, 256) == 1e-3f);
  CHECK(mdlm::dream_transfer_fraction(256, 1e-3f, 255) == 1.0f);
}

TEST_CASE("LLaDA get_num_transfer_tokens check vectors", "[decode][schedules][llada]") {
  CHECK(llada_counts(32, 32) == std::vector<std::size_t>(32, 1));
  CHECK(llada_counts(32, 8) == std::vector<std::size_t>(8, 4));
  CHECK(llada_counts(10, 4) == std::vector<std::size_t>{3, 3, 2, 2});
  CHECK(llada_counts(3, 4) == std::vector<std::size_t>{1, 1, 1, 0});
  CHECK(mdlm::llada_transfer_count(10, 4, 4) == 0);
  CHECK(mdlm::llada_transfer_count(10, 0, 0) == 0);
}
