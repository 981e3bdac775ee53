// SPDX-License-Identifier: MIT
// Posterior sampling given an answer: with a token-independent policy at one position per step and
// ancestral sampling, the decoded reasoning is distributed exactly as the Bayes posterior p(r | c, a)
// of the joint table. The output distribution is enumerated over the decode's branches (the policy
// picks the position, every token with positive probability is a branch), and the real sampler is
// checked against the same posterior by a chi-square test at a fixed false-failure rate.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <vector>

#include "mdlm/mdlm.hpp"
#include "mdlm/reference/joint_table.hpp"

namespace {

using table = mdlm::reference::joint_table;
using outcome_map = std::map<std::vector<mdlm::token_id>, double>;

// Enumerates every branch of a decode of `c` with `opt` (one position per step, chosen by the policy
// independently of the tokens), weighting each by the exact probability `token_distribution` gives the
// chosen token from the double-precision rows. Records the order of positions of the first branch.
template <class Policy>
void enumerate_decode(const table& model, const mdlm::canvas& c, const mdlm::decode_options<Policy>& opt,
                      mdlm::counter_rng rng, std::vector<mdlm::token_id>& tokens, std::size_t step, double weight,
                      std::size_t masked_at_start, outcome_map& out, std::vector<std::size_t>& order) {
  const auto mask = model.mask_token();
  const std::size_t vocab = model.vocab_size();
  std::vector<std::size_t> masked;
  for (std::size_t p = c.region_begin; p < c.region_end; ++p)
    if (tokens[p] == mask) masked.push_back(p);
  if (masked.empty()) {
    out[tokens] += weight;
    return;
  }
  std::vector<double> rows(tokens.size() * vocab);
  model.logits(tokens, std::span<double>(rows));
  std::vector<mdlm::position_info> cand;
  for (std::size_t p : masked) {
    const auto row = std::span<const double>(rows).subspan(p * vocab, vocab);
    cand.push_back(mdlm::describe_choice(row, opt.choice, mdlm::compute_logit_stats(row).top1, p));
  }
  const mdlm::step_context ctx{.step = step,
                               .step_in_block = step,
                               .block_begin = c.region_begin,
                               .block_end = c.region_end,
                               .block_masked_at_start = masked_at_start,
                               .masked_total = masked.size(),
                               .sequence = c.sequence,
                               .rng = rng,
                               .tokens = tokens,
                               .vocab = vocab,
                               .mask = mask};
  mdlm::selection sel;
  sel.reserve(tokens.size());
  opt.policy.select(ctx, cand, sel);
  REQUIRE(sel.unmask.size() == 1);
  const std::size_t p = cand[sel.unmask[0]].position;
  if (order.size() == step) order.push_back(p);
  const auto dist = mdlm::token_distribution(std::span<const double>(rows).subspan(p * vocab, vocab), opt.choice);
  for (std::size_t v = 0; v < vocab; ++v) {
    if (dist[v] == 0.0) continue;
    tokens[p] = static_cast<mdlm::token_id>(v);
    enumerate_decode(model, c, opt, rng, tokens, step + 1, weight * dist[v], masked_at_start, out, order);
    tokens[p] = mask;
  }
}

// The Bayes posterior p(r | c, a) of the reasoning span by enumeration of the table.
outcome_map bayes_posterior(const table& model, const mdlm::reasoning_template& post) {
  outcome_map out;
  const std::size_t v = model.base_vocab();
  const std::size_t r = post.spans.reasoning.size();
  std::size_t count = 1;
  for (std::size_t i = 0; i < r; ++i) count *= v;
  double total = 0.0;
  auto tokens = post.canvas.tokens;
  for (std::size_t k = 0; k < count; ++k) {
    std::size_t rest = k;
    for (std::size_t i = r; i > 0; --i) tokens[post.spans.reasoning.begin + i - 1] = static_cast<mdlm::token_id>(rest % v), rest /= v;
    const double p = model.probability(tokens);
    out[tokens] = p;
    total += p;
  }
  for (auto& [k, p] : out) p /= total;
  return out;
}

}  // namespace

TEST_CASE("posterior sampling equals the Bayes posterior p(r | c, a) by enumeration", "[infilling][posterior][exact]") {
  // V = 3, L = 7: [prompt 1][reasoning 3][delimiter 1][answer 2], several tables and answers.
  for (std::uint64_t seed : {1u, 2u, 3u}) {
    const auto model = table::random(3, 7, seed == 3 ? 0.3 : 1.0, seed);
    const auto mask = model.mask_token();
    const auto t = mdlm::make_template({.prompt = {static_cast<mdlm::token_id>(seed % 3)}, .reasoning_length = 3,
                                        .delimiter = {1}, .answer_length = 2},
                                       mask, static_cast<std::uint32_t>(seed));
    for (const std::vector<mdlm::token_id>& answer : {std::vector<mdlm::token_id>{0, 2}, std::vector<mdlm::token_id>{2, 1}}) {
      const auto post = mdlm::posterior_template(t, answer, mask);
      const auto bayes = bayes_posterior(model, post);
      for (auto score : {mdlm::score_kind::left_to_right, mdlm::score_kind::random}) {
        const mdlm::decode_options<mdlm::fixed_count> opt{
            .policy = {.score = score, .schedule = mdlm::count_schedule::per_step, .per_step = 1},
            .choice = {.temperature = 1.0}};
        const mdlm::counter_rng rng{seed * 17};
        outcome_map enumerated;
        std::vector<std::size_t> order;
        auto tokens = post.canvas.tokens;
        enumerate_decode(model, post.canvas, opt, rng, tokens, 0, 1.0, 3, enumerated, order);
        double max_diff = 0.0, total = 0.0;
        for (const auto& [seq, p] : bayes) {
          const auto it = enumerated.find(seq);
          const double q = it == enumerated.end() ? 0.0 : it->second;
          max_diff = std::max(max_diff, std::abs(p - q));
        }
        for (const auto& [seq, q] : enumerated) total += q;
        CHECK(enumerated.size() <= bayes.size());
        CHECK(std::abs(total - 1.0) < 1e-12);
        CHECK(max_diff < 1e-12);
        // The enumerated branches follow the real loop: the decode unmasks positions in that order and
        // never touches the answer.
        const auto r = mdlm::decode(model, post.canvas, opt, rng);
        REQUIRE(r.status == mdlm::decode_status::completed);
        REQUIRE(order.size() == 3);
        for (std::size_t s = 0; s < 3; ++s) CHECK(r.unmask_step[order[s]] == static_cast<std::int32_t>(s));
        CHECK(r.tokens[5] == answer[0]);
        CHECK(r.tokens[6] == answer[1]);
        CHECK(enumerated.count(r.tokens) == 1);
      }
    }
  }
}

TEST_CASE("the real sampler matches the posterior (chi-square, fixed seed)", "[infilling][posterior][statistical]") {
  // 27 outcomes; the critical value 75.55 is the 1 - 1e-6 quantile of chi-square(26), so a correct
  // sampler fails this test with probability 1e-6 (and never, with the fixed seed, once it passes).
  const auto model = table::random(3, 7, 1.0, 1);
  const auto mask = model.mask_token();
  const std::vector<mdlm::token_id> answer{0, 2};
  std::vector<mdlm::reasoning_template> batch;
  constexpr std::uint32_t n = 6000;
  for (std::uint32_t s = 0; s < n; ++s)
    batch.push_back(mdlm::posterior_template(
        mdlm::make_template({.prompt = {1}, .reasoning_length = 3, .delimiter = {1}, .answer_length = 2}, mask, s),
        answer, mask));
  const auto bayes = bayes_posterior(model, batch[0]);
  const auto canvases = mdlm::batch_canvases(batch);
  const mdlm::decode_options<mdlm::fixed_count> opt{
      .policy = {.score = mdlm::score_kind::random, .schedule = mdlm::count_schedule::per_step, .per_step = 1},
      .choice = {.temperature = 1.0}};
  const auto results = mdlm::decode_batch(model, std::span<const mdlm::canvas>(canvases), opt, mdlm::counter_rng{99});
  std::map<std::vector<mdlm::token_id>, double> counts;
  for (const auto& r : results) counts[r.tokens] += 1.0;
  double chi2 = 0.0;
  for (const auto& [seq, p] : bayes) {
    const double expected = p * n;
    const double observed = counts.count(seq) ? counts[seq] : 0.0;
    chi2 += (observed - expected) * (observed - expected) / expected;
  }
  for (const auto& [seq, c] : counts) CHECK(bayes.count(seq) == 1);
  CHECK(chi2 < 75.55);
}
