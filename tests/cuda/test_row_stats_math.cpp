// SPDX-License-Identifier: MIT
// The device row-statistics algorithm (backends/cuda/src/row_stats_kernels.hpp) run on the host by
// the same code the kernels run, against the CPU path (mdlm::compute_row_choices): statistics to
// 1e-5 relative, identical greedy tokens, and sampled tokens by the same two-level draw (issue 14,
// include/mdlm/detail/block_gumbel.hpp). No GPU.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

#include "mdlm/mdlm.hpp"
#include "row_stats_kernels.hpp"
#include "support.hpp"

namespace {

using namespace mdlm::cuda;
using mdlm::test::close;
using mdlm::test::close_log;

struct host_exec {
  template <class F>
  void for_threads(F&& f) {
    for (int t = 0; t < rows::threads; ++t) f(t);
  }
};

//! A random matrix of `n` rows: normal logits of scale `scale`, some -inf entries, and special rows
//! (nearly one-hot, all equal, a NaN, every entry -inf).
std::vector<float> matrix(std::size_t n, std::size_t vocab, std::uint64_t seed, double scale) {
  mdlm::sequential_rng r(seed);
  std::vector<float> z(n * vocab);
  for (auto& x : z) {
    const double u1 = r.uniform(), u2 = r.uniform();
    x = static_cast<float>(scale * std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
  }
  for (std::size_t i = 0; i < vocab; i += 97) z[i] = -std::numeric_limits<float>::infinity();  // row 0: banned entries
  if (n > 2) z[2 * vocab + 5] = 40.0f;                                                        // row 2: nearly one-hot
  if (n > 3) std::fill(z.begin() + static_cast<std::ptrdiff_t>(3 * vocab), z.begin() + static_cast<std::ptrdiff_t>(4 * vocab), 0.5f);
  if (n > 4) z[4 * vocab + 77] = std::numeric_limits<float>::quiet_NaN();
  if (n > 5)
    std::fill(z.begin() + static_cast<std::ptrdiff_t>(5 * vocab), z.begin() + static_cast<std::ptrdiff_t>(6 * vocab),
              -std::numeric_limits<float>::infinity());
  return z;
}



template <class T>
void compare(const std::vector<T>& z, std::size_t n, std::size_t vocab, const mdlm::token_choice& choice, bool sampled_equal) {
  rows::launch_params p;
  p.logits = z.data();
  p.type = std::is_same_v<T, float> ? rows::dtype::f32 : std::is_same_v<T, mdlm::bf16> ? rows::dtype::bf16 : rows::dtype::f16;
  p.vocab = static_cast<std::int64_t>(vocab);
  p.ld = static_cast<std::int64_t>(vocab);
  p.sampled = choice.temperature > 0.0;
  p.inv_t = choice.temperature > 0.0 ? 1.0 / choice.temperature : 1.0;
  p.top_k = choice.top_k ? static_cast<int>(*choice.top_k) : 0;
  p.top_p = choice.top_p.value_or(1.0);
  const mdlm::counter_rng rng{20261201};
  rows::token_key(rng.seed, p.key0, p.key1);
  std::vector<std::size_t> positions(n);
  for (std::size_t i = 0; i < n; ++i) positions[i] = i;
  mdlm::row_request req{.rows = positions, .choice = choice, .rng = rng, .sequence = 4, .step = 9};
  std::vector<mdlm::row_choice> want(n);
  mdlm::detail::choice_scratch scratch;
  scratch.reserve(vocab);
  mdlm::compute_row_choices(std::span<const T>(z), vocab, req, std::span<mdlm::row_choice>(want), nullptr, scratch);
  auto b = std::make_unique<rows::block_scratch>();
  host_exec ex;
  for (std::size_t i = 0; i < n; ++i) {
    rows::process_row(ex, *b, p, rows::row_job{static_cast<std::int64_t>(i), static_cast<std::uint32_t>(i), 4, 9});
    const rows::row_out& o = b->out;
    const mdlm::row_choice& w = want[i];
    INFO("V " << vocab << ", row " << i << ", T " << choice.temperature << ", top_k " << choice.top_k.value_or(0)
              << ", top_p " << choice.top_p.value_or(1.0));
    REQUIRE((o.valid != 0) == w.stats.valid);
    if (!w.stats.valid) continue;
    CHECK(o.top1 == w.stats.top1);
    CHECK(o.top2 == w.stats.top2);
    CHECK(close(o.log_normalizer, w.stats.log_normalizer, 1e-5));
    CHECK(close_log(o.entropy, w.stats.entropy, 1e-5));
    INFO("top1_logprob " << o.top1_logprob << " vs " << w.stats.top1_logprob << "; tempered_entropy " << o.tempered_entropy << " vs " << w.tempered_entropy << "; tempered_margin " << o.tempered_margin << " vs " << w.tempered_margin);
    CHECK(close_log(o.top1_logprob, w.stats.top1_logprob, 1e-5));
    if (choice.temperature == 0.0 || sampled_equal) {
      CHECK(o.token == w.token);
      if (o.token == w.token) {
        CHECK(close(o.prob, w.prob, 1e-5));
        CHECK(close(o.tempered_prob, w.tempered_prob, 1e-5));
      }
    }
    CHECK(close_log(o.tempered_entropy, w.tempered_entropy, 1e-5));
    CHECK(close(o.tempered_margin, w.tempered_margin, 1e-5));
  }
}

}  // namespace

TEST_CASE("device Philox and uniforms equal mdlm::counter_rng bit for bit", "[cuda][math][row_stats]") {
  for (std::uint64_t seed : {0ull, 1ull, 20261201ull, ~0ull}) {
    std::uint32_t k0 = 0, k1 = 0;
    rows::token_key(seed, k0, k1);
    const mdlm::counter_rng rng{seed};
    for (std::uint32_t i = 0; i < 2000; i += 7) {
      const double want = rng.uniform(mdlm::rng_stream::token, i * 3u, i + 1u, 5u * i, i * 13u + (i % 2));
      CHECK(rows::token_uniform(k0, k1, i * 3u, i + 1u, 5u * i, i * 13u + (i % 2)) == want);
    }
  }
}

TEST_CASE("device row statistics (host run): statistics and greedy tokens equal the CPU path",
          "[cuda][math][row_stats]") {
  for (std::size_t vocab : {32000, 126464, 152064}) {
    const auto z = matrix(7, vocab, vocab, 3.0);
    compare(z, 7, vocab, {}, true);
    std::vector<mdlm::bf16> zb(z.begin(), z.end());
    compare(zb, 7, vocab, {}, true);
  }
  const auto z = matrix(6, 32000, 5, 2.0);
  std::vector<mdlm::fp16> zh(z.begin(), z.end());
  compare(zh, 6, 32000, {}, true);
}

TEST_CASE("device row statistics (host run): sampled tokens by the same two-level Gumbel-max draw as the CPU",
          "[cuda][math][row_stats]") {
  for (std::size_t vocab : {32000, 126464, 152064})
    for (double t : {1.0, 0.7, 1.6}) {
      const auto z = matrix(8, vocab, vocab + 1, 2.0);
      compare(z, 8, vocab, {.temperature = t}, true);
    }
  const auto z = matrix(6, 32000, 7, 2.0);
  std::vector<mdlm::bf16> zb(z.begin(), z.end());
  compare(zb, 6, 32000, {.temperature = 1.0}, true);
  // Sharp rows (T = 0.05: one block holds nearly all the mass), fp16, and a vocabulary of one
  // partial block and of one block plus one entry.
  std::vector<mdlm::fp16> zh(z.begin(), z.end());
  compare(zh, 6, 32000, {.temperature = 0.05}, true);
  for (std::size_t vocab : {1000, 1025}) compare(matrix(4, vocab, vocab, 2.0), 4, vocab, {.temperature = 0.9}, true);
}

TEST_CASE("device row statistics (host run): top-k and top-p thresholds as the CPU's sorting path",
          "[cuda][math][row_stats]") {
  // Rows 0-2 (normal with banned entries, normal, nearly one-hot): an all-equal row would tie at the
  // nucleus boundary, where the device keeps every tied entry (row_stats.hpp).
  const auto z = matrix(3, 32000, 11, 2.5);
  for (const auto& choice : {mdlm::token_choice{.top_k = 1}, mdlm::token_choice{.temperature = 1.0, .top_k = 40},
                             mdlm::token_choice{.temperature = 0.8, .top_p = 0.9},
                             mdlm::token_choice{.temperature = 1.2, .top_p = 0.5, .top_k = 7},
                             mdlm::token_choice{.top_p = 0.3}})
    compare(z, 3, 32000, choice, true);
}

TEST_CASE("device row statistics (host run): KLASS's KL equals kl_to_previous over successive calls",
          "[cuda][math][row_stats]") {
  const std::size_t n = 6, vocab = 32000;
  std::vector<float> prev_dev(n * vocab, 0.0f), prev_cpu(n * vocab, 0.0f);
  rows::launch_params p;
  p.vocab = static_cast<std::int64_t>(vocab);
  p.ld = static_cast<std::int64_t>(vocab);
  auto b = std::make_unique<rows::block_scratch>();
  host_exec ex;
  for (std::uint64_t call = 0; call < 3; ++call) {
    const auto z = matrix(n, vocab, 100 + call, 1.0 + 0.5 * static_cast<double>(call));
    p.logits = z.data();
    for (std::size_t i = 0; i < n; ++i) {
      INFO("call " << call << ", row " << i);
      rows::row_job job{static_cast<std::int64_t>(i), static_cast<std::uint32_t>(i), 0, static_cast<std::uint32_t>(call),
                        prev_dev.data() + i * vocab};
      rows::process_row(ex, *b, p, job);
      const double want = mdlm::kl_to_previous(std::span<const float>(z).subspan(i * vocab, vocab),
                                               std::span<float>(prev_cpu).subspan(i * vocab, vocab));
      CHECK(close_log(b->out.kl, want, 1e-6));
      for (std::size_t v = 0; v < vocab; v += 401) CHECK(close_log(prev_dev[i * vocab + v], prev_cpu[i * vocab + v], 1e-5));
    }
  }
  // Without a buffer the field stays NaN.
  const auto z = matrix(1, vocab, 7, 1.0);
  p.logits = z.data();
  rows::process_row(ex, *b, p, rows::row_job{0, 0, 0, 0});
  CHECK(std::isnan(b->out.kl));
}
