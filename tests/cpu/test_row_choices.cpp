// SPDX-License-Identifier: MIT
// The CPU backend's row-statistics interface (issue 14): the head evaluated for the requested rows
// only gives bitwise the same logits rows, hence the same row_choice, as a full call; decode takes
// the same decisions on it as on logits, single and batched; bad requests are rejected.
#include <bit>
#include <catch2/catch.hpp>
#include <cstring>
#include <vector>

#include "mdlm/cpu/make_checkpoint.hpp"
#include "mdlm/cpu/model.hpp"
#include "mdlm/mdlm.hpp"
#include "support.hpp"

using Catch::Matchers::Contains;
using namespace mdlm::cpu;

namespace {

bool same_bits(const mdlm::row_choice& a, const mdlm::row_choice& b) {
  auto eq = [](double x, double y) { return std::bit_cast<std::uint64_t>(x) == std::bit_cast<std::uint64_t>(y); };
  return a.token == b.token && a.stats.valid == b.stats.valid && a.stats.top1 == b.stats.top1 &&
         a.stats.top2 == b.stats.top2 && eq(a.stats.entropy, b.stats.entropy) &&
         eq(a.stats.log_normalizer, b.stats.log_normalizer) && eq(a.prob, b.prob) &&
         eq(a.tempered_prob, b.tempered_prob) && eq(a.tempered_entropy, b.tempered_entropy);
}

model tiny(architecture arch, const std::filesystem::path& dir, std::size_t vocab = 320) {
  tiny_checkpoint_spec spec;
  spec.arch = arch;
  spec.kv_heads = 2;
  spec.vocab = vocab;
  spec.seed = 5;
  write_tiny_checkpoint(spec, dir);
  return model::load(dir, {.threads = 2});
}

}  // namespace

TEST_CASE("cpu row_choices: requested rows only, bitwise equal to the full call", "[cpu][row_choices]") {
  const auto dir = mdlm::test::scratch_dir("row_choices");
  for (auto arch : {architecture::llada, architecture::dream}) {
    INFO("architecture " << architecture_name(arch));
    model m = tiny(arch, dir / std::string(architecture_name(arch)));
    const std::size_t vocab = m.vocab_size();
    std::vector<mdlm::token_id> tokens(37);
    for (std::size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<mdlm::token_id>((i * 37 + 11) % 290);
    for (std::size_t i = 20; i < 37; i += 2) tokens[i] = m.mask_token();
    std::vector<float> logits(tokens.size() * vocab);
    m.logits(tokens, logits);
    mdlm::detail::choice_scratch scratch;
    scratch.reserve(vocab);
    // Subsets of every size around the tile boundary, first and last rows, greedy and sampled.
    const std::vector<std::vector<std::size_t>> subsets{
        {0}, {36}, {3, 4, 5}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17}, {0, 17, 18, 35, 36}};
    for (const auto& rows : subsets) {
      for (double t : {0.0, 1.0}) {
        mdlm::row_request req{.rows = rows, .choice = {.temperature = t}, .rng = {7}, .sequence = 3, .step = 2};
        std::vector<mdlm::row_choice> got(rows.size()), want(rows.size());
        m.row_choices(tokens, req, got);
        mdlm::compute_row_choices(std::span<const float>(logits), vocab, req, std::span<mdlm::row_choice>(want), nullptr,
                                  scratch);
        for (std::size_t i = 0; i < rows.size(); ++i) {
          INFO("row " << rows[i] << " T " << t);
          CHECK(same_bits(got[i], want[i]));
        }
      }
    }
    // Banned ids: -inf before anything, at every requested row.
    const std::vector<mdlm::token_id> banned{0, 1, 2, 3, 4};
    std::vector<std::size_t> rows{20, 22, 24};
    mdlm::row_request req{.rows = rows, .banned = banned};
    std::vector<mdlm::row_choice> got(rows.size()), want(rows.size());
    m.row_choices(tokens, req, got);
    std::vector<float> banned_logits = logits;
    for (std::size_t r = 0; r < tokens.size(); ++r)
      for (auto b : banned) banned_logits[r * vocab + static_cast<std::size_t>(b)] = -std::numeric_limits<float>::infinity();
    mdlm::row_request plain{.rows = rows};
    mdlm::compute_row_choices(std::span<const float>(banned_logits), vocab, plain, std::span<mdlm::row_choice>(want),
                              nullptr, scratch);
    for (std::size_t i = 0; i < rows.size(); ++i) CHECK(same_bits(got[i], want[i]));
    // Bad requests name the value.
    const std::vector<std::size_t> unsorted{5, 3};
    std::vector<mdlm::row_choice> two(2);
    CHECK_THROWS_WITH(m.row_choices(tokens, {.rows = unsorted}, two), Contains("rows[1] = 3"));
    const std::vector<std::size_t> beyond{40};
    std::vector<mdlm::row_choice> one(1);
    CHECK_THROWS_WITH(m.row_choices(tokens, {.rows = beyond}, one), Contains("rows[0] = 40"));
    const std::vector<mdlm::token_id> bad_ban{400};
    CHECK_THROWS_WITH(m.row_choices(tokens, {.rows = rows, .banned = bad_ban}, got), Contains("banned token id 400"));
    CHECK_THROWS_WITH(m.row_choices(tokens, {.rows = rows}, one), Contains("out.size() = 1"));
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("cpu model: decode takes the same decisions on row statistics as on logits", "[cpu][row_choices]") {
  const auto scratch = mdlm::test::scratch_dir("row_decode");
  model m = tiny(architecture::llada, scratch / "llada");
  const auto prompt = std::vector<mdlm::token_id>{5, 6, 7};
  std::vector<mdlm::canvas> cs;
  for (std::uint32_t s = 0; s < 3; ++s) cs.push_back(mdlm::make_canvas(prompt, 16, m.mask_token(), s));
  auto both = [&](auto opt) {
    const auto rows = mdlm::decode(m, cs[0], opt, mdlm::counter_rng{11});
    auto lopt = opt;
    lopt.interface = mdlm::model_interface::logits;
    const auto logits = mdlm::decode(m, cs[0], lopt, mdlm::counter_rng{11});
    CHECK(rows.interface == mdlm::model_interface::row_choices);
    CHECK(rows.tokens == logits.tokens);
    CHECK(rows.unmask_step == logits.unmask_step);
    CHECK(rows.nfe == logits.nfe);
    const auto batch = mdlm::decode_batch(m, std::span<const mdlm::canvas>(cs), opt, mdlm::counter_rng{11});
    const auto lbatch = mdlm::decode_batch(m, std::span<const mdlm::canvas>(cs), lopt, mdlm::counter_rng{11});
    for (std::size_t b = 0; b < cs.size(); ++b) {
      CHECK(batch[b].tokens == lbatch[b].tokens);
      CHECK(batch[b].unmask_step == lbatch[b].unmask_step);
    }
    CHECK(batch[0].tokens == rows.tokens);
  };
  for (double t : {0.0, 0.9}) {
    both(mdlm::decode_options<mdlm::fixed_count>{.choice = {.temperature = t}, .block_length = 8, .steps = 8});
    both(mdlm::decode_options<mdlm::med>{.choice = {.temperature = t}, .block_length = 8});
    both(mdlm::decode_options<mdlm::eb_sampler>{.policy = {.gamma = 0.3}, .choice = {.temperature = t}});
    both(mdlm::decode_options<mdlm::fast_dllm_threshold>{.choice = {.temperature = t, .top_p = 0.9}});
    both(mdlm::decode_options<mdlm::fixed_count>{
        .policy = {.score = mdlm::score_kind::neg_entropy, .schedule = mdlm::count_schedule::dream_timesteps},
        .choice = {.temperature = t, .top_k = 5}});
    // KLASS: the KL comes from the model (row_request::kl) on one interface, from the rows on the other.
    both(mdlm::decode_options<mdlm::klass>{.policy = {.kl_threshold = 0.05, .confidence_threshold = 0.1},
                                           .choice = {.temperature = t},
                                           .block_length = 8});
  }
  std::filesystem::remove_all(scratch);
}
