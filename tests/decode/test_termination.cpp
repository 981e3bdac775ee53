// SPDX-License-Identifier: MIT
// Termination whatever the model returns (issue 13): models that choose the mask id always, at
// random, or return NaN at random steps, over every policy, schedule, block length and token choice.
// Every decode must end within its bound on model calls (decode.hpp: `steps` for scheduled runs,
// masked + region length + 1 for adaptive ones), scheduled runs with exactly `steps` calls, and the
// mask id, when chosen, must leave its position masked as the references do.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "decode/toy_models.hpp"
#include "mdlm/mdlm.hpp"
#include "support/property.hpp"

namespace {

constexpr float nan_f = std::numeric_limits<float>::quiet_NaN();

//! How an adversarial model treats the mask id.
enum class adversary {
  always_mask,  // the mask id is the only finite entry of every row
  random_mask,  // at random calls and positions the mask id is the argmax
  random_nan,   // ordinary rows, but NaN rows at random calls
  mixed,        // random mask argmaxes and, rarely, a NaN row
};

//! A deterministic adversarial model: rows depend on (position, call index, seed), so a run is
//! reproducible; `vocab` >= 128 exercises the SIMD kernels path of decode.
mdlm::test::function_model adversarial_model(adversary kind, std::size_t vocab, std::uint64_t seed) {
  mdlm::test::function_model m;
  m.vocab = vocab;
  m.mask = static_cast<mdlm::token_id>(vocab - 1);
  auto call = std::make_shared<std::size_t>(0);
  std::size_t length_seen = 0;
  m.row_fn = [=](std::size_t pos, std::span<const mdlm::token_id> t, std::span<float> out) mutable {
    if (pos == 0) ++*call;  // row 0 comes first in every call
    length_seen = t.size();
    const mdlm::counter_rng rng{seed};
    const auto c = static_cast<std::uint32_t>(*call);
    const auto p = static_cast<std::uint32_t>(pos);
    for (std::size_t v = 0; v < out.size(); ++v)
      out[v] = static_cast<float>(2.0 * rng.uniform(mdlm::rng_stream::user, c, p, static_cast<std::uint32_t>(v)));
    const double u = rng.uniform(mdlm::rng_stream::user, c, p, static_cast<std::uint32_t>(out.size()));
    const bool mask_wins = kind == adversary::always_mask ||
                           ((kind == adversary::random_mask || kind == adversary::mixed) && u < 0.4);
    if (mask_wins) out[out.size() - 1] = 12.0f;  // mass ~1 on the mask id: argmax and almost every sample
    if (kind == adversary::always_mask)  // every other id banned: greedy and sampled choices are the mask id
      for (std::size_t v = 0; v + 1 < out.size(); ++v) out[v] = -std::numeric_limits<float>::infinity();
    const double w = rng.uniform(mdlm::rng_stream::user, c, 0x10000u, 0);
    if ((kind == adversary::random_nan && w < 0.15) || (kind == adversary::mixed && w < 0.03)) out[0] = nan_f;
  };
  return m;
}

//! Every policy family with its schedules, by index (so that rapidcheck can draw one).
constexpr std::size_t policy_count = 16;

template <class F>
void with_policy(std::size_t i, F&& f) {
  using mdlm::count_schedule;
  using mdlm::score_kind;
  switch (i) {
    case 0: return f(mdlm::fixed_count{});  // LLaDA low_confidence
    case 1: return f(mdlm::fixed_count{.score = score_kind::random});
    case 2: return f(mdlm::fixed_count{.score = score_kind::tempered_confidence, .schedule = count_schedule::dream_timesteps});
    case 3: return f(mdlm::fixed_count{.score = score_kind::margin, .schedule = count_schedule::dream_timesteps});
    case 4: return f(mdlm::fixed_count{.score = score_kind::neg_entropy, .schedule = count_schedule::dream_timesteps,
                                       .alg_temp = 0.5});
    case 5: return f(mdlm::dream_origin{});
    case 6: return f(mdlm::fixed_count{.score = score_kind::neg_entropy, .schedule = count_schedule::per_step, .per_step = 2});
    case 7: return f(mdlm::fixed_count{.score = score_kind::left_to_right, .schedule = count_schedule::per_step});
    case 8: return f(mdlm::med{});
    case 9: return f(mdlm::med{.lambda = std::numeric_limits<double>::infinity(), .k_max = 3});
    case 10: return f(mdlm::eb_sampler{.gamma = 0.5});
    case 11: return f(mdlm::eb_sampler{.gamma = 0.1, .order = mdlm::eb_order::confidence});
    case 12: return f(mdlm::fast_dllm_threshold{});
    case 13: return f(mdlm::fast_dllm_factor{});
    case 14: return f(mdlm::klass{});
    default: return f(mdlm::klass{.fallback_steps_per_block = 2});
  }
}

struct run_case {
  adversary kind = adversary::always_mask;
  std::size_t vocab = 6, gen = 6, blocks = 1, steps_factor = 1, policy = 0;
  bool sampled = false;
  std::uint64_t seed = 1;
};

std::string describe(const run_case& c) {
  return mdlm::detail::concat("adversary ", static_cast<int>(c.kind), ", V ", c.vocab, ", gen ", c.gen, ", blocks ",
                              c.blocks, ", steps x", c.steps_factor, ", policy ", c.policy, ", sampled ", c.sampled,
                              ", seed ", c.seed);
}

//! Runs one case and checks the termination contract; returns a description of the first violation.
std::string check_case(const run_case& rc_case) {
  std::string failure;
  with_policy(rc_case.policy, [&](auto policy) {
    auto m = adversarial_model(rc_case.kind, rc_case.vocab, rc_case.seed);
    const std::vector<mdlm::token_id> prompt{0, 1};
    const auto c = mdlm::make_canvas(prompt, rc_case.gen, m.mask);
    mdlm::decode_options<decltype(policy)> opt{.policy = policy};
    opt.block_length = rc_case.gen / rc_case.blocks;
    opt.choice.temperature = rc_case.sampled ? 1.0 : 0.0;
    const bool scheduled = policy.scheduled();
    // Scheduled: 0 = the default (one step per position) or a multiple of the blocks.
    opt.steps = scheduled ? (rc_case.steps_factor == 0 ? 0 : rc_case.blocks * rc_case.steps_factor) : 0;
    const std::size_t steps = opt.steps > 0 ? opt.steps : (scheduled ? rc_case.gen : 0);
    const std::size_t bound = scheduled ? steps : rc_case.gen + rc_case.gen + 1;
    const auto r = mdlm::decode(m, c, opt, mdlm::counter_rng{rc_case.seed});
    const std::size_t left =
        static_cast<std::size_t>(std::count(r.tokens.begin() + 2, r.tokens.end(), m.mask));
    auto fail = [&](const std::string& what) {
      if (failure.empty())
        failure = describe(rc_case) + ": " + what + " (status " + mdlm::to_string(r.status) + ", NFE " +
                  std::to_string(r.nfe) + ", bound " + std::to_string(bound) + ")";
    };
    if (r.nfe > bound) fail("more model calls than the bound");
    if (m.calls != r.nfe) fail("model calls differ from NFE");
    if (r.masked_left != left) fail("masked_left differs from the masks in the output");
    for (std::size_t p = 2; p < r.tokens.size(); ++p)
      if ((r.tokens[p] == m.mask) != (r.unmask_step[p] < 0)) fail("a masked position has an unmask step, or vice versa");
    switch (r.status) {
      case mdlm::decode_status::completed:
        if (left != 0) fail("completed with masks left");
        if (scheduled && r.nfe != steps) fail("a scheduled run did not make exactly `steps` calls");
        break;
      case mdlm::decode_status::incomplete:
        if (!scheduled || left == 0 || r.nfe != steps) fail("incomplete outside a finished schedule");
        break;
      case mdlm::decode_status::no_progress:
        if (scheduled || left == 0) fail("no_progress on a scheduled or finished run");
        break;
      case mdlm::decode_status::invalid_logits:
        if (rc_case.kind == adversary::always_mask || rc_case.kind == adversary::random_mask) fail("invalid logits");
        if (r.message.find("step " + std::to_string(r.error_step)) == std::string::npos) fail("message without the step");
        break;
      default: fail("unexpected status");
    }
    if (rc_case.kind == adversary::always_mask && left != rc_case.gen) fail("a position left the mask");
  });
  return failure;
}

}  // namespace

TEST_CASE("every decode terminates within its bound on adversarial models", "[decode][termination][property]") {
  mdlm::test::check_property("decode ends within max_nfe whatever the model returns", [] {
    run_case c;
    c.kind = static_cast<adversary>(*rc::gen::inRange(0, 4));
    c.vocab = *rc::gen::element<std::size_t>(3, 6, 130);  // 130: the SIMD kernels path
    c.blocks = *rc::gen::element<std::size_t>(1, 2, 3);
    c.gen = c.blocks * *rc::gen::inRange<std::size_t>(1, 5);
    c.steps_factor = *rc::gen::inRange<std::size_t>(0, 4);
    c.policy = *rc::gen::inRange<std::size_t>(0, policy_count);
    c.sampled = *rc::gen::arbitrary<bool>();
    c.seed = *rc::gen::inRange<std::uint64_t>(1, 1000000);
    const std::string failure = check_case(c);
    RC_ASSERT(failure == std::string());
  });
}

TEST_CASE("every policy family and schedule on every adversary, exhaustively", "[decode][termination]") {
  for (std::size_t policy = 0; policy < policy_count; ++policy)
    for (int kind = 0; kind < 4; ++kind)
      for (bool sampled : {false, true})
        for (std::size_t blocks : {1, 2}) {
          run_case c{.kind = static_cast<adversary>(kind), .vocab = 130, .gen = 6, .blocks = blocks,
                     .steps_factor = 0, .policy = policy, .sampled = sampled, .seed = 7};
          INFO(describe(c));
          CHECK(check_case(c) == std::string());
        }
}

TEST_CASE("scheduled runs write the mask id back and keep such positions as candidates", "[decode][termination]") {
  // V = 5 (id 4 = mask), prompt at 0-1, generation 2-5 in two blocks of 2, LLaDA's schedule with 4
  // steps: one transfer per call. Position p's token p % 4 has logit 3 - p/10 (lower positions more
  // confident); position 2 prefers the mask id (logit 9) in the first two calls.
  constexpr mdlm::token_id mask = 4;
  mdlm::test::function_model m;
  m.vocab = 5;
  m.mask = mask;
  auto calls = std::make_shared<int>(0);
  m.row_fn = [calls](std::size_t pos, std::span<const mdlm::token_id>, std::span<float> out) {
    if (pos == 0) ++*calls;
    for (std::size_t v = 0; v < 4; ++v) out[v] = v == pos % 4 ? 3.0f - 0.1f * static_cast<float>(pos) : 0.0f;
    out[4] = pos == 2 && *calls <= 2 ? 9.0f : -std::numeric_limits<float>::infinity();
  };
  const auto c = mdlm::make_canvas(std::vector<mdlm::token_id>{0, 1}, 4, mask);
  const auto r = mdlm::decode(m, c, mdlm::decode_options<mdlm::fixed_count>{.block_length = 2, .steps = 4},
                              mdlm::counter_rng{1});
  // Calls 0 and 1 (block 0): position 2 is the most confident and writes the mask id back, twice.
  // Calls 2 and 3 (block 1): candidates are the masks of positions 2..5, as upstream's confidence is
  // -inf only beyond the current block; the leftover positions 2 and 3 are the most confident.
  CHECK(r.nfe == 4);
  CHECK(m.calls == 4);
  CHECK(r.unmask_step == std::vector<std::int32_t>{-1, -1, 2, 3, -1, -1});
  CHECK(r.tokens == std::vector<mdlm::token_id>{0, 1, 2, 3, mask, mask});
  CHECK(r.status == mdlm::decode_status::incomplete);
  CHECK_FALSE(r.ok());
  CHECK(r.masked_left == 2);
  CHECK_THAT(r.message, Catch::Matchers::Contains("2 masked positions left"));
}

TEST_CASE("adaptive runs: the mask id leaves the position masked and idle steps are bounded",
          "[decode][termination]") {
  constexpr mdlm::token_id mask = 4;
  // Position 3 always prefers the mask id; every other position has a clear token.
  mdlm::test::function_model m;
  m.vocab = 5;
  m.mask = mask;
  m.row_fn = [](std::size_t pos, std::span<const mdlm::token_id>, std::span<float> out) {
    for (std::size_t v = 0; v < 5; ++v) out[v] = v == pos % 4 ? 3.0f : 0.0f;
    if (pos == 3) out[4] = 3.5f;  // argmax, and the highest entropy: decided last
  };
  const auto c = mdlm::make_canvas(std::vector<mdlm::token_id>{0, 1}, 4, mask);
  const auto r = mdlm::decode(m, c, mdlm::decode_options<mdlm::med>{.policy = {.lambda = 0.0}}, mdlm::counter_rng{1});
  CHECK(r.status == mdlm::decode_status::no_progress);
  CHECK(r.masked_left == 1);
  CHECK(r.tokens[3] == mask);
  CHECK(r.unmask_step[3] == -1);
  // Three positions decoded in three calls; then position 3 (the only candidate) idles region + 1 = 5
  // times.
  CHECK(r.nfe == 3 + 5);
  CHECK(r.nfe <= c.masked_count(mask) + c.region_length() + 1);
  CHECK_THAT(r.message, Catch::Matchers::Contains("changed nothing"));
}

TEST_CASE("max_nfe caps any run with step_limit", "[decode][termination]") {
  auto m = adversarial_model(adversary::always_mask, 6, 3);
  const auto c = mdlm::make_canvas(std::vector<mdlm::token_id>{0}, 4, m.mask);
  mdlm::decode_options<mdlm::med> opt;
  opt.max_nfe = 2;
  const auto r = mdlm::decode(m, c, opt, mdlm::counter_rng{1});
  CHECK(r.status == mdlm::decode_status::step_limit);
  CHECK(r.nfe == 2);
  CHECK(r.masked_left == 4);
  CHECK_THAT(r.message, Catch::Matchers::Contains("max_nfe = 2"));
  mdlm::decode_options<mdlm::fixed_count> sched{.steps = 4};
  sched.max_nfe = 3;
  const auto s = mdlm::decode(m, c, sched, mdlm::counter_rng{1});
  CHECK(s.status == mdlm::decode_status::step_limit);
  CHECK(s.nfe == 3);
}

TEST_CASE("decode_batch gives each canvas its single-run result on adversarial models", "[decode][termination]") {
  for (std::size_t policy = 0; policy < policy_count; ++policy) {
    with_policy(policy, [&](auto p) {
      auto m = adversarial_model(adversary::random_mask, 130, 11);
      std::vector<mdlm::canvas> cs;
      for (std::uint32_t s = 0; s < 3; ++s) cs.push_back(mdlm::make_canvas(std::vector<mdlm::token_id>{0, 1}, 4, m.mask, s));
      mdlm::decode_options<decltype(p)> opt{.policy = p};
      opt.choice.temperature = 1.0;
      // The adversarial model keys its rows by the call index, which differs between batched and
      // single runs once canvases finish at different steps; compare with a batch of one instead.
      for (std::size_t b = 0; b < cs.size(); ++b) {
        auto m1 = adversarial_model(adversary::random_mask, 130, 11);
        auto m2 = adversarial_model(adversary::random_mask, 130, 11);
        const auto single = mdlm::decode(m1, cs[b], opt, mdlm::counter_rng{5});
        const auto batched = mdlm::decode_batch(m2, std::span<const mdlm::canvas>(&cs[b], 1), opt, mdlm::counter_rng{5});
        INFO("policy " << policy << ", canvas " << b);
        CHECK(batched[0].tokens == single.tokens);
        CHECK(batched[0].unmask_step == single.unmask_step);
        CHECK(batched[0].nfe == single.nfe);
        CHECK(batched[0].status == single.status);
      }
    });
  }
}
