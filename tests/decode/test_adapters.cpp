// SPDX-License-Identifier: MIT
// LLaDA generate.py options as adapters: banned tokens (logits_eos_inf), classifier-free guidance
// (cfg_scale) and the confidence_eos_eot_inf quirk.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <span>
#include <vector>

#include "decode/toy_models.hpp"
#include "mdlm/adapters/banned_tokens.hpp"
#include "mdlm/adapters/cfg.hpp"
#include "mdlm/adapters/eos_confidence.hpp"
#include "mdlm/decode.hpp"
#include "mdlm/policies/fixed_count.hpp"

using Catch::Matchers::Contains;

namespace {
constexpr float ninf = -std::numeric_limits<float>::infinity();
constexpr mdlm::token_id mask = 4;

// V = 5 (id 4 = mask). Rows depend on the position and on how many prompt positions (< 2) are
// unmasked, so the conditional and unconditional calls of guidance differ.
mdlm::test::function_model prompt_sensitive_model() {
  mdlm::test::function_model m;
  m.vocab = 5;
  m.mask = mask;
  m.row_fn = [](std::size_t pos, std::span<const mdlm::token_id> t, std::span<float> out) {
    const double seen = (t[0] != mask ? 1.0 : 0.0) + (t[1] != mask ? 0.5 : 0.0);
    for (std::size_t v = 0; v < 4; ++v)
      out[v] = static_cast<float>(std::cos(0.9 * static_cast<double>(pos * 4 + v)) * (1.0 + seen) + 0.1 * seen);
    out[4] = ninf;
  };
  return m;
}
}  // namespace

static_assert(mdlm::check_conditional_model<mdlm::banned_tokens_model<mdlm::test::function_model>>());
static_assert(mdlm::BatchedConditionalModel<mdlm::banned_tokens_model<mdlm::test::function_model>>);
static_assert(mdlm::check_conditional_model<mdlm::cfg_model<mdlm::test::function_model>>());
static_assert(mdlm::BatchedConditionalModel<mdlm::cfg_model<mdlm::test::function_model>>);

TEST_CASE("banned_tokens_model sets the banned logits to -inf and nothing else", "[decode][adapters]") {
  auto m = prompt_sensitive_model();
  const std::vector<mdlm::token_id> banned{2};
  mdlm::banned_tokens_model b(m, banned);
  const std::vector<mdlm::token_id> tokens{0, 1, mask, mask};
  std::vector<float> raw(4 * 5), out(4 * 5);
  m.logits(tokens, raw);
  b.logits(tokens, out);
  for (std::size_t i = 0; i < 4; ++i)
    for (std::size_t v = 0; v < 5; ++v) {
      if (v == 2) CHECK(out[i * 5 + v] == ninf);
      else CHECK(out[i * 5 + v] == raw[i * 5 + v]);
    }
  // Greedy decoding through the adapter never writes the banned token.
  const auto r = mdlm::decode(b, mdlm::make_canvas(std::vector<mdlm::token_id>{0, 1}, 10, mask),
                              mdlm::decode_options<mdlm::fixed_count>{.policy = {.schedule = mdlm::count_schedule::per_step}},
                              mdlm::counter_rng{1});
  REQUIRE(r.ok());
  for (std::size_t i = 2; i < r.tokens.size(); ++i) CHECK(r.tokens[i] != 2);
  const std::vector<mdlm::token_id> bad{5};
  CHECK_THROWS_WITH(mdlm::banned_tokens_model(m, bad), Contains("banned token id 5"));
}

TEST_CASE("cfg_model computes z_u + (s+1)(z_c - z_u) with the prompt masked in z_u", "[decode][adapters]") {
  auto m = prompt_sensitive_model();
  const std::vector<mdlm::token_id> tokens{0, 1, mask, 3, mask};
  const std::vector<mdlm::token_id> uncond{mask, mask, mask, 3, mask};
  std::vector<float> zc(25), zu(25), out(25);
  m.logits(tokens, zc);
  m.logits(uncond, zu);
  const double scale = 1.5;
  mdlm::cfg_model g(m, scale, 2);
  m.calls = 0;
  g.logits(tokens, out);
  CHECK(m.calls == 1);  // the batched model gets one call of two sequences
  for (std::size_t k = 0; k < 25; ++k) {
    if (zc[k] == ninf) {
      CHECK(out[k] == ninf);  // -inf stays -inf instead of -inf - -inf = NaN
    } else {
      const float expected = zu[k] + static_cast<float>(scale + 1.0) * (zc[k] - zu[k]);
      CHECK(out[k] == expected);
    }
  }
  // Batched calls equal separate ones, sequence by sequence.
  std::vector<mdlm::token_id> two(tokens);
  two.insert(two.end(), uncond.begin(), uncond.end());
  std::vector<float> both(50), second(25);
  g.batch_logits(two, 2, both);
  g.logits(uncond, second);
  for (std::size_t k = 0; k < 25; ++k) {
    CHECK(both[k] == out[k]);
    CHECK(both[25 + k] == second[k]);
  }
}

TEST_CASE("cfg_model: bad input names the value", "[decode][adapters]") {
  auto m = prompt_sensitive_model();
  CHECK_THROWS_WITH(mdlm::cfg_model(m, -0.5, 2), Contains("cfg scale = -0.5"));
  CHECK_THROWS_WITH(mdlm::cfg_model(m, std::nan(""), 2), Contains("cfg scale"));
  mdlm::cfg_model g(m, 1.0, 6);
  const std::vector<mdlm::token_id> tokens{0, 1, mask, mask};
  std::vector<float> out(20);
  CHECK_THROWS_WITH(g.logits(tokens, out), Contains("prompt_length = 6"));
  mdlm::cfg_model g2(m, 1.0, 2);
  std::vector<float> small(19);
  CHECK_THROWS_WITH(g2.logits(tokens, small), Contains("output size 19"));
}

TEST_CASE("cfg_model decodes deterministically and batches like separate runs", "[decode][adapters]") {
  auto m = prompt_sensitive_model();
  mdlm::cfg_model g(m, 2.0, 2);
  const std::vector<mdlm::token_id> prompt{0, 1};
  const mdlm::decode_options<mdlm::fixed_count> opt{.policy = {.schedule = mdlm::count_schedule::per_step, .per_step = 2},
                                                    .choice = {.temperature = 1.0}};
  std::vector<mdlm::canvas> cs;
  for (std::uint32_t s = 0; s < 3; ++s) cs.push_back(mdlm::make_canvas(prompt, 6, mask, s));
  const auto batch = mdlm::decode_batch(g, cs, opt, mdlm::counter_rng{9});
  for (std::uint32_t s = 0; s < 3; ++s) {
    const auto one = mdlm::decode(g, cs[s], opt, mdlm::counter_rng{9});
    CHECK(one.tokens == batch[s].tokens);
    CHECK(one.nfe == 3);
  }
}

TEST_CASE("llada_eos_confidence zeroes EoT confidence always and EOS confidence only when greedy",
          "[decode][adapters]") {
  // Independent positions over V = 5 (mask 4). Position 0 predicts token 0 with the highest
  // confidence; position 1 predicts token 1 a little less confidently; position 2 token 2.
  auto m = mdlm::test::independent_model({{6.f, 0.f, 0.f, 0.f, ninf}, {0.f, 5.f, 0.f, 0.f, ninf}, {0.f, 0.f, 4.f, 0.f, ninf}}, mask);
  const mdlm::canvas c{.tokens = {mask, mask, mask}, .region_begin = 0, .region_end = 3};
  const mdlm::fixed_count one{.score = mdlm::score_kind::confidence, .schedule = mdlm::count_schedule::per_step};
  auto first = [&](const auto& policy) {
    const auto r = mdlm::decode(m, c, mdlm::decode_options<std::decay_t<decltype(policy)>>{.policy = policy},
                                mdlm::counter_rng{1});
    REQUIRE(r.ok());
    for (std::size_t p = 0; p < 3; ++p)
      if (r.unmask_step[p] == 0) return p;
    return std::size_t{99};
  };
  CHECK(first(one) == 0);
  // Token 0 as EoT: its confidence becomes 0, so position 1 goes first.
  CHECK(first(mdlm::llada_eos_confidence<mdlm::fixed_count>{.policy = one, .eos = mdlm::no_token, .eot = 0}) == 1);
  // Token 0 as EOS: zeroed only when greedy (temperature 0, where upstream's zn aliases z).
  CHECK(first(mdlm::llada_eos_confidence<mdlm::fixed_count>{.policy = one, .eos = 0, .eot = mdlm::no_token, .greedy = true}) == 1);
  CHECK(first(mdlm::llada_eos_confidence<mdlm::fixed_count>{.policy = one, .eos = 0, .eot = mdlm::no_token, .greedy = false}) == 0);
  // Both ids: positions 0 and 1 zeroed; position 2 goes first. The tokens themselves are kept.
  const auto r = mdlm::decode(m, c,
                              mdlm::decode_options<mdlm::llada_eos_confidence<mdlm::fixed_count>>{
                                  .policy = {.policy = one, .eos = 1, .eot = 0}},
                              mdlm::counter_rng{1});
  CHECK(r.unmask_step[2] == 0);
  CHECK(r.tokens == std::vector<mdlm::token_id>{0, 1, 2});
}
