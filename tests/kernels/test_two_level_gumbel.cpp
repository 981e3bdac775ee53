// SPDX-License-Identifier: MIT
// The two-level Gumbel-max draw (detail/block_gumbel.hpp) of the sampled token: every vector
// variant, every element type, the scalar path and token_choice.hpp's `choose_token` give the same
// token on rows of many blocks, also where two blocks' keys are built to agree to within the float
// error of the block masses (so that the exact double masses decide); and the draws follow
// softmax(z / T) token by token and block by block (chi-square, fixed seeds, false-failure rate
// 1e-6 per check).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <span>
#include <utility>
#include <vector>

#include "mdlm/detail/block_gumbel.hpp"
#include "mdlm/kernels/batched_stats.hpp"
#include "mdlm/token_choice.hpp"
#include "support/chi_square.hpp"

namespace {

constexpr double false_failure_rate = 1e-6;
constexpr std::size_t block = mdlm::detail::gumbel_block;

std::vector<mdlm::simd_isa> runnable_isas() {
  std::vector<mdlm::simd_isa> out;
  for (auto isa : {mdlm::simd_isa::scalar, mdlm::simd_isa::baseline, mdlm::simd_isa::avx2, mdlm::simd_isa::avx512})
    if (mdlm::isa_supported(isa)) out.push_back(isa);
  return out;
}

template <class T>
T convert(float x) {
  if constexpr (std::is_same_v<T, float>) return x;
  else return T::from_float(x);
}

//! choose_token's token (the double-precision generic path) for the row as the kernels read it.
template <class T>
mdlm::token_id generic_token(const std::vector<T>& row, double temperature, mdlm::counter_rng rng, std::uint32_t step,
                             std::uint32_t position) {
  std::vector<double> z(row.size());
  for (std::size_t v = 0; v < row.size(); ++v) z[v] = static_cast<double>(static_cast<float>(row[v]));
  mdlm::detail::choice_scratch scratch;
  scratch.reserve(z.size());
  const auto stats = mdlm::compute_logit_stats(std::span<const double>(z));
  return mdlm::choose_token(std::span<const double>(z), stats, mdlm::token_choice{.temperature = temperature}, rng,
                            0, step, position, scratch)
      .token;
}

//! Rows of V entries of several shapes: spread over every block, one dominant block, whole blocks
//! at -inf, a few peaks in far-apart blocks.
std::vector<float> make_row(std::mt19937_64& gen, int kind, std::size_t v) {
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> row(v);
  for (auto& x : row) x = normal(gen);
  const float ninf = -std::numeric_limits<float>::infinity();
  switch (kind) {
    case 1:  // the mass of one block dominates
      for (std::size_t i = block; i < std::min(v, 2 * block); ++i) row[i] += 6.0f;
      break;
    case 2:  // every other block is banned
      for (std::size_t i = 0; i < v; ++i)
        if ((i / block) % 2 == 1) row[i] = ninf;
      break;
    case 3:  // a few peaks far apart over a flat floor
      for (auto& x : row) x = -20.0f + 0.01f * x;
      for (std::size_t i = 7; i < v; i += 3 * block + 11) row[i] = 3.0f;
      break;
    default: break;
  }
  return row;
}

template <class T>
void check_paths_agree(std::size_t v, double temperature, int rows_per_kind) {
  std::mt19937_64 gen(20261202 + v);
  const mdlm::counter_rng rng{4242};
  for (int kind = 0; kind < 4; ++kind) {
    for (int r = 0; r < rows_per_kind; ++r) {
      const auto f = make_row(gen, kind, v);
      std::vector<T> row(v);
      for (std::size_t i = 0; i < v; ++i) row[i] = convert<T>(f[i]);
      const auto step = static_cast<std::uint32_t>(r);
      const auto position = static_cast<std::uint32_t>(kind * 7 + 3);
      const mdlm::token_id want = generic_token(row, temperature, rng, step, position);
      REQUIRE(want != mdlm::no_token);
      for (auto isa : runnable_isas()) {
        INFO("V " << v << " T " << temperature << " kind " << kind << " row " << r << " isa " << mdlm::to_string(isa));
        const auto got = mdlm::choose_row(std::span<const T>(row),
                                          {.temperature = temperature, .rng = rng, .step = step, .isa = isa}, position);
        CHECK(got.token == want);
      }
    }
  }
}

}  // namespace

TEMPLATE_TEST_CASE("two-level draw: every variant and the generic path give the same token", "[kernels][gumbel]", float,
                   mdlm::bf16, mdlm::fp16) {
  for (std::size_t v : {std::size_t{1023}, std::size_t{1025}, std::size_t{4099}, std::size_t{32000}})
    for (double t : {1.0, 0.7, 1.6, 0.05}) check_paths_agree<TestType>(v, t, v > 10000 ? 6 : 20);
  check_paths_agree<TestType>(152064, 0.8, 2);
}

TEST_CASE("two-level draw: blocks whose keys tie within the float error are decided exactly", "[kernels][gumbel]") {
  // Two blocks with the same contents but for a constant shift c, chosen so that block 1's key
  // l_1 + G_1 equals block 0's l_0 + G_0 up to eps: c = G_0 - G_1 + eps (l_1 = l_0 + c). The other
  // blocks are far below. |eps| <= 1e-6 is far inside the float masses' error, so the vector
  // variants must take the exact masses; the scalar path defines which block wins.
  const std::size_t v = 3 * block + 100;
  const mdlm::counter_rng rng{99};
  std::mt19937_64 gen(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::size_t won[2] = {0, 0};
  for (std::uint32_t step = 0; step < 400; ++step) {
    const mdlm::detail::gumbel_keying key{rng, 0, step, 5};
    const double g0 = mdlm::detail::block_noise(key, 0), g1 = mdlm::detail::block_noise(key, 1);
    const double eps = (step % 2 == 0 ? 1.0 : -1.0) * 1e-6 * static_cast<double>(step % 7);
    const double c = g0 - g1 + eps;
    if (std::fabs(c) > 8.0) continue;  // keep block 1's values within float range of block 0's
    std::vector<float> row(v, -60.0f);
    for (std::size_t i = 0; i < block; ++i) {
      row[i] = normal(gen);
      row[block + i] = static_cast<float>(static_cast<double>(row[i]) + c);
    }
    const mdlm::token_id want = generic_token(row, 1.0, rng, step, 5);
    REQUIRE(static_cast<std::size_t>(want) < 2 * block);
    won[static_cast<std::size_t>(want) / block] += 1;
    for (auto isa : runnable_isas()) {
      INFO("step " << step << " isa " << mdlm::to_string(isa));
      CHECK(mdlm::choose_row(std::span<const float>(row), {.temperature = 1.0, .rng = rng, .step = step, .isa = isa}, 5)
                .token == want);
    }
  }
  // Both blocks win a share of these near-ties (the test exercises both outcomes).
  CHECK(won[0] > 20);
  CHECK(won[1] > 20);
}

TEST_CASE("two-level draw follows softmax(z / T) over tokens and over blocks", "[kernels][gumbel]") {
  // V = 5 blocks minus 925 (a partial last block); the mass is spread so that every block and many
  // tokens have expected counts >= 5 among 60000 draws keyed by (step, position).
  const std::size_t v = 5 * block - 925;
  std::vector<float> row(v);
  for (std::size_t i = 0; i < v; ++i)
    row[i] = static_cast<float>(-0.004 * static_cast<double>(i % 997) + 1.5 * std::sin(0.37 * static_cast<double>(i)));
  for (double t : {1.0, 0.6}) {
    INFO("T " << t);
    std::vector<double> p(v);
    double mx = -std::numeric_limits<double>::infinity();
    for (float x : row) mx = std::max(mx, static_cast<double>(x) / t);
    double total = 0.0;
    for (std::size_t i = 0; i < v; ++i) total += (p[i] = std::exp(static_cast<double>(row[i]) / t - mx));
    std::vector<std::pair<std::size_t, double>> expected_tokens, expected_blocks;
    std::vector<double> block_p(5, 0.0);
    for (std::size_t i = 0; i < v; ++i) {
      expected_tokens.emplace_back(i, p[i] / total);
      block_p[i / block] += p[i] / total;
    }
    for (std::size_t b = 0; b < 5; ++b) expected_blocks.emplace_back(b, block_p[b]);
    const std::size_t draws = 60000;
    std::map<std::size_t, std::size_t> tokens, blocks;
    for (std::size_t d = 0; d < draws; ++d) {
      const auto c = mdlm::choose_row(std::span<const float>(row),
                                      {.temperature = t, .rng = mdlm::counter_rng{31}, .step = static_cast<std::uint32_t>(d / 8)},
                                      static_cast<std::uint32_t>(d % 8));
      REQUIRE(c.token != mdlm::no_token);
      ++tokens[static_cast<std::size_t>(c.token)];
      ++blocks[static_cast<std::size_t>(c.token) / block];
    }
    const auto rt = mdlm::test::chi_square(expected_tokens, tokens, draws);
    INFO("tokens: chi2 = " << rt.statistic << " df = " << rt.df << " p = " << rt.p_value);
    CHECK(rt.outside_support == 0);
    CHECK(rt.df >= 100.0);
    CHECK(rt.p_value >= false_failure_rate);
    const auto rb = mdlm::test::chi_square(expected_blocks, blocks, draws);
    INFO("blocks: chi2 = " << rb.statistic << " df = " << rb.df << " p = " << rb.p_value);
    CHECK(rb.df == 4.0);
    CHECK(rb.p_value >= false_failure_rate);
  }
}
