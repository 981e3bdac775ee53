// SPDX-License-Identifier: MIT
// The decode loop: step modes, blocks, NFE conventions, determinism across batching, observers,
// stateful and re-masking policies, and errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "decode/toy_models.hpp"
#include "mdlm/mdlm.hpp"

namespace {
constexpr float ninf = -std::numeric_limits<float>::infinity();
constexpr mdlm::token_id mask = 4;

// A model over V = 5 (id 4 = mask) whose rows depend on the position and on the number of
// unmasked tokens, so that decoding order matters.
mdlm::test::function_model context_model() {
  mdlm::test::function_model m;
  m.vocab = 5;
  m.mask = mask;
  m.row_fn = [](std::size_t pos, std::span<const mdlm::token_id> t, std::span<float> out) {
    std::size_t known = 0;
    for (auto x : t) known += x != mask;
    for (std::size_t v = 0; v < 4; ++v)
      out[v] = static_cast<float>(std::sin(0.7 * static_cast<double>(pos * 4 + v) + 0.3 * static_cast<double>(known)) *
                                  (1.0 + 0.2 * static_cast<double>(pos)));
    out[4] = ninf;
  };
  return m;
}

const std::vector<mdlm::token_id> prompt{0, 1, 2};

template <class P>
mdlm::decode_result run(const mdlm::decode_options<P>& opt, std::size_t gen = 8, std::uint32_t seq = 0,
                        std::uint64_t seed = 1) {
  auto m = context_model();
  return mdlm::decode(m, mdlm::make_canvas(prompt, gen, mask, seq), opt, mdlm::counter_rng{seed});
}

std::size_t max_step_in(const mdlm::decode_result& r, std::size_t b, std::size_t e) {
  std::int32_t mx = -1;
  for (std::size_t p = b; p < e; ++p) mx = std::max(mx, r.unmask_step[p]);
  return static_cast<std::size_t>(mx);
}
std::size_t min_step_in(const mdlm::decode_result& r, std::size_t b, std::size_t e) {
  std::int32_t mn = std::numeric_limits<std::int32_t>::max();
  for (std::size_t p = b; p < e; ++p) mn = std::min(mn, r.unmask_step[p]);
  return static_cast<std::size_t>(mn);
}
}  // namespace

TEST_CASE("a canvas with no masks returns at once with NFE 0", "[decode][loop]") {
  auto m = context_model();
  mdlm::canvas c{.tokens = {0, 1, 2, 3}, .region_begin = 2, .region_end = 4};
  const auto r = mdlm::decode(m, c, mdlm::decode_options<mdlm::med>{}, mdlm::counter_rng{1});
  CHECK(r.nfe == 0);
  CHECK(m.calls == 0);
  CHECK(r.status == mdlm::decode_status::completed);
  CHECK(r.tokens == c.tokens);
}

TEST_CASE("LLaDA schedule: NFE = steps, blocks completed left to right", "[decode][loop][llada]") {
  const mdlm::decode_options<mdlm::fixed_count> opt{.block_length = 4, .steps = 4};
  const auto r = run(opt);
  REQUIRE(r.status == mdlm::decode_status::completed);
  CHECK(r.nfe == 4);
  // Two steps per block, 2 tokens per step.
  CHECK(max_step_in(r, 3, 7) == 1);
  CHECK(min_step_in(r, 7, 11) == 2);
  for (std::size_t p = 3; p < 11; ++p) CHECK(r.tokens[p] != mask);
  for (std::size_t p = 0; p < 3; ++p) CHECK(r.unmask_step[p] == -1);
  // M = 3 masks in S = 4 steps gives counts 1, 1, 1, 0 and still 4 model calls.
  const auto r2 = run(mdlm::decode_options<mdlm::fixed_count>{.steps = 4}, 3);
  CHECK(r2.nfe == 4);
  CHECK(r2.status == mdlm::decode_status::completed);
}

TEST_CASE("Dream schedule: whole canvas, NFE = steps, last step takes all", "[decode][loop][dream]") {
  const mdlm::decode_options<mdlm::fixed_count> opt{
      .policy = {.score = mdlm::score_kind::neg_entropy, .schedule = mdlm::count_schedule::dream_timesteps},
      .steps = 8};
  const auto r = run(opt);
  CHECK(r.nfe == 8);
  CHECK(r.status == mdlm::decode_status::completed);
  // Step 0 unmasks int(8 * (1 - s/t)) = int(8 * 0.1249) = 0 positions.
  for (std::size_t p = 3; p < 11; ++p) CHECK(r.unmask_step[p] >= 1);
  const auto o = run(mdlm::decode_options<mdlm::dream_origin>{.steps = 5});
  CHECK(o.nfe == 5);
  CHECK(o.status == mdlm::decode_status::completed);
}

TEST_CASE("block length 1 is left to right; adaptive NFE counts calls", "[decode][loop][blocks]") {
  const auto r = run(mdlm::decode_options<mdlm::med>{.policy = {.lambda = 10.0, .k_max = 8}, .block_length = 1});
  CHECK(r.nfe == 8);
  for (std::size_t p = 3; p < 11; ++p) CHECK(r.unmask_step[p] == static_cast<std::int32_t>(p - 3));
  // With a huge lambda and k_max covering the region, MED unmasks everything in one call.
  const auto all = run(mdlm::decode_options<mdlm::med>{.policy = {.lambda = 10.0, .k_max = 8}});
  CHECK(all.nfe == 1);
  // lambda = 0: one token per call.
  const auto one = run(mdlm::decode_options<mdlm::med>{.policy = {.lambda = 0.0}});
  CHECK(one.nfe == 8);
  const auto fixed2 = run(mdlm::decode_options<mdlm::fixed_count>{
      .policy = {.score = mdlm::score_kind::neg_entropy, .schedule = mdlm::count_schedule::per_step, .per_step = 2}});
  CHECK(fixed2.nfe == 4);
}

TEST_CASE("a batch gives bit-identical results to separate runs", "[decode][loop][determinism]") {
  const mdlm::decode_options<mdlm::fixed_count> opt{
      .policy = {.score = mdlm::score_kind::random, .schedule = mdlm::count_schedule::per_step, .per_step = 1},
      .choice = {.temperature = 1.0, .top_p = 0.9},
      .block_length = 4};
  std::vector<mdlm::canvas> canvases;
  for (std::uint32_t s = 0; s < 4; ++s) canvases.push_back(mdlm::make_canvas(prompt, 8, mask, s));
  auto m = context_model();
  const auto batch = mdlm::decode_batch(m, std::span<const mdlm::canvas>(canvases), opt, mdlm::counter_rng{42});
  REQUIRE(batch.size() == 4);
  bool any_differ = false;
  for (std::uint32_t s = 0; s < 4; ++s) {
    const auto alone = run(opt, 8, s, 42);
    CHECK(alone.tokens == batch[s].tokens);
    CHECK(alone.unmask_step == batch[s].unmask_step);
    CHECK(alone.nfe == batch[s].nfe);
    any_differ = any_differ || batch[s].tokens != batch[0].tokens;
  }
  CHECK(any_differ);  // different sequences draw different numbers
  // A batch in another order gives the same per-canvas results.
  std::vector<mdlm::canvas> reversed(canvases.rbegin(), canvases.rend());
  const auto rb = mdlm::decode_batch(m, std::span<const mdlm::canvas>(reversed), opt, mdlm::counter_rng{42});
  for (std::size_t i = 0; i < 4; ++i) CHECK(rb[i].tokens == batch[3 - i].tokens);
  // Adaptive policies finish canvases at different steps; the batch shrinks and stays identical.
  const mdlm::decode_options<mdlm::med> med_opt{.policy = {.lambda = 0.9, .k_max = 3}, .choice = {.temperature = 1.0}};
  const auto mb = mdlm::decode_batch(m, std::span<const mdlm::canvas>(canvases), med_opt, mdlm::counter_rng{3});
  for (std::uint32_t s = 0; s < 4; ++s) CHECK(run(med_opt, 8, s, 3).tokens == mb[s].tokens);
}

TEST_CASE("NaN logits stop the loop with an error naming step and position", "[decode][loop][errors]") {
  auto m = context_model();
  auto inner = m.row_fn;
  m.row_fn = [inner](std::size_t pos, std::span<const mdlm::token_id> t, std::span<float> out) {
    inner(pos, t, out);
    std::size_t known = 0;
    for (auto x : t) known += x != mask;
    if (pos == 9 && known >= 5) out[1] = std::numeric_limits<float>::quiet_NaN();
  };
  const auto r = mdlm::decode(m, mdlm::make_canvas(prompt, 8, mask),
                              mdlm::decode_options<mdlm::fixed_count>{.policy = {.score = mdlm::score_kind::left_to_right,
                                                                                 .schedule = mdlm::count_schedule::per_step}},
                              mdlm::counter_rng{1});
  CHECK(r.status == mdlm::decode_status::invalid_logits);
  CHECK_FALSE(r.ok());
  CHECK(r.error_step == 2);
  CHECK(r.error_position == 9);
  CHECK_THAT(r.message, Catch::Matchers::Contains("step 2") && Catch::Matchers::Contains("position 9"));
  CHECK(r.tokens[3] != mask);  // tokens decoded before the error are kept
  CHECK(r.tokens[4] != mask);
}

TEST_CASE("bad options and canvases throw before any model call", "[decode][loop][errors]") {
  using Catch::Matchers::Contains;
  auto m = context_model();
  const auto c = mdlm::make_canvas(prompt, 8, mask);
  auto call = [&](auto opt, const mdlm::canvas& cv) { (void)mdlm::decode(m, cv, opt, mdlm::counter_rng{1}); };
  CHECK_THROWS_WITH(call(mdlm::decode_options<mdlm::med>{.block_length = 3}, c), Contains("block_length = 3"));
  CHECK_THROWS_WITH(call(mdlm::decode_options<mdlm::fixed_count>{.block_length = 4, .steps = 3}, c),
                    Contains("steps = 3"));
  CHECK_THROWS_WITH(call(mdlm::decode_options<mdlm::med>{.policy = {.lambda = -1.0}}, c), Contains("lambda = -1"));
  CHECK_THROWS_WITH(call(mdlm::decode_options<mdlm::eb_sampler>{.policy = {.gamma = -0.5}}, c), Contains("gamma = -0.5"));
  CHECK_THROWS_WITH(call(mdlm::decode_options<mdlm::med>{.choice = {.top_p = 1.5}}, c), Contains("top_p = 1.5"));
  auto bad = c;
  bad.tokens[1] = 7;
  CHECK_THROWS_WITH(call(mdlm::decode_options<mdlm::med>{}, bad), Contains("token 7 at position 1"));
  bad = c;
  bad.tokens[0] = mask;
  CHECK_THROWS_WITH(call(mdlm::decode_options<mdlm::med>{}, bad), Contains("position 0"));
  bad = c;
  bad.vocab_size = 6;
  CHECK_THROWS_WITH(call(mdlm::decode_options<mdlm::med>{}, bad), Contains("canvas vocabulary size 6"));
  const std::vector<mdlm::token_id> masked_prompt{0, mask};
  CHECK_THROWS_WITH(mdlm::make_canvas(masked_prompt, 4, mask), Contains("prompt token 1"));
  CHECK_THROWS_WITH(mdlm::make_canvas(prompt, 0, mask), Contains("gen_length = 0"));
  CHECK(m.calls == 0);
  std::vector<mdlm::canvas> uneven{c, mdlm::make_canvas(prompt, 4, mask)};
  CHECK_THROWS_WITH(
      (void)mdlm::decode_batch(m, std::span<const mdlm::canvas>(uneven), mdlm::decode_options<mdlm::med>{}, mdlm::counter_rng{1}),
      Contains("canvas 1 has length 7"));
}

namespace {
struct stop_after {
  std::size_t n;
  std::size_t seen = 0;
  mdlm::observer_action on_step(mdlm::step_event& e) {
    ++seen;
    CHECK(e.nfe == seen);
    return seen >= n ? mdlm::observer_action::stop : mdlm::observer_action::proceed;
  }
};
struct fill_last_on_logits {
  mdlm::observer_action on_logits(mdlm::step_event& e) {
    e.tokens[e.region_end - 1] = 0;  // an observer may write tokens, e.g. an answer
    return mdlm::observer_action::proceed;
  }
};
}  // namespace

TEST_CASE("observers see every step, can stop the loop and can write tokens", "[decode][loop][observers]") {
  auto m = context_model();
  const auto c = mdlm::make_canvas(prompt, 8, mask);
  const mdlm::decode_options<mdlm::med> opt{.policy = {.lambda = 0.0}};
  stop_after stop{3};
  std::size_t lambda_calls = 0;
  auto counter = [&](const mdlm::step_event& e) {
    ++lambda_calls;
    CHECK(e.unmasked.size() == 1);
    CHECK(e.candidates.size() == 8 - e.step);
  };
  const auto r = mdlm::decode(m, c, opt, mdlm::counter_rng{1}, counter, stop);
  CHECK(r.status == mdlm::decode_status::stopped);
  CHECK(r.nfe == 3);
  CHECK(lambda_calls == 3);
  CHECK(std::count(r.tokens.begin(), r.tokens.end(), mask) == 5);

  fill_last_on_logits fill;
  const auto w = mdlm::decode(m, c, opt, mdlm::counter_rng{1}, fill);
  CHECK(w.tokens[10] == 0);
  CHECK(w.unmask_step[10] == 0);
  CHECK(w.nfe == 7);
}

namespace {
// A ReMDM-style test policy: unmasks the leftmost masked position, and at step 2 re-masks the
// first decoded position, proving the loop supports re-masking without changes.
struct remask_once {
  void validate() const {}
  [[nodiscard]] bool scheduled() const { return false; }
  void select(const mdlm::step_context& ctx, std::span<const mdlm::position_info> c, mdlm::selection& out) const {
    if (!c.empty()) out.unmask.push_back(0);
    if (ctx.step == 2) out.remask.push_back(ctx.block_begin);
  }
};
static_assert(mdlm::unmasking_policy<remask_once>);
struct idle_policy {
  void validate() const {}
  [[nodiscard]] bool scheduled() const { return false; }
  void select(const mdlm::step_context&, std::span<const mdlm::position_info>, mdlm::selection&) const {}
};
}  // namespace

TEST_CASE("re-masking policies and no-progress detection", "[decode][loop][remask]") {
  const auto r = run(mdlm::decode_options<remask_once>{}, 4);
  CHECK(r.status == mdlm::decode_status::completed);
  CHECK(r.nfe == 5);  // one extra call to decode the re-masked position again
  CHECK(r.unmask_step[3] == 3);
  const auto idle = run(mdlm::decode_options<idle_policy>{}, 4);
  CHECK(idle.status == mdlm::decode_status::no_progress);
  CHECK_THAT(idle.message, Catch::Matchers::Contains("changed nothing in 5 steps"));
  CHECK(idle.nfe == 5);  // region length 4: the fifth idle step ends the run
  CHECK(idle.masked_left == 4);
}

TEST_CASE("default options are usable for every policy (scheduled ones take one step per position)",
          "[decode][loop]") {
  const auto r = run(mdlm::decode_options<mdlm::fixed_count>{});
  CHECK(r.status == mdlm::decode_status::completed);
  CHECK(r.nfe == 8);
  const auto d = run(mdlm::decode_options<mdlm::dream_origin>{});
  CHECK(d.status == mdlm::decode_status::completed);
  CHECK(d.nfe == 8);
  // The same as passing steps = gen_length explicitly.
  const auto e = run(mdlm::decode_options<mdlm::fixed_count>{.steps = 8});
  CHECK(e.tokens == r.tokens);
  CHECK(e.unmask_step == r.unmask_step);
}

TEST_CASE("thresholds accept +inf as 'always' and reject NaN; messages print doubles shortest", "[decode][loop][errors]") {
  using Catch::Matchers::Contains;
  constexpr double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const auto all = run(mdlm::decode_options<mdlm::med>{.policy = {.lambda = inf, .k_max = 3}});
  CHECK(all.nfe == 3);  // 8 positions, 3 per step: the k_max cap is the only limit
  CHECK(run(mdlm::decode_options<mdlm::eb_sampler>{.policy = {.gamma = inf}}).nfe == 1);  // the whole block
  CHECK(run(mdlm::decode_options<mdlm::fast_dllm_factor>{.policy = {.factor = inf}}).nfe == 1);
  CHECK(run(mdlm::decode_options<mdlm::klass>{.policy = {.kl_threshold = inf, .confidence_threshold = 0.0}}).ok());
  CHECK_THROWS_WITH(mdlm::med{.lambda = nan}.validate(), Contains("lambda = nan"));
  CHECK_THROWS_WITH(mdlm::eb_sampler{.gamma = nan}.validate(), Contains("gamma = nan"));
  CHECK_THROWS_WITH(mdlm::med{.lambda = -0.1}.validate(), Contains("lambda = -0.1 must be"));
  CHECK_THROWS_WITH(mdlm::eb_sampler{.gamma = -1e-300}.validate(), Contains("gamma = -1e-300 must be"));
  CHECK(mdlm::detail::concat(0.1f, " ", 2.5, " ", -inf) == "0.1 2.5 -inf");
}

TEST_CASE("KLASS (stateful): unmasks stable confident positions together", "[decode][loop][klass]") {
  static_assert(mdlm::stateful_policy<mdlm::klass>);
  // Position-only rows: the KL between consecutive calls is 0 after the first call, so with h = 2 a
  // position is stable from its third call on; then every confident one is ready at once.
  std::vector<std::vector<float>> rows(8, std::vector<float>{4.0f, 0.0f, 0.0f, 0.0f, ninf});
  rows[5] = {0.1f, 0.0f, 0.0f, 0.0f, ninf};  // unconfident
  auto m = mdlm::test::independent_model(rows, mask);
  const auto c = mdlm::make_canvas(std::vector<mdlm::token_id>{0, 1, 2}, 5, mask);
  const auto r = mdlm::decode(m, c, mdlm::decode_options<mdlm::klass>{.policy = {.confidence_threshold = 0.9}},
                              mdlm::counter_rng{1});
  CHECK(r.status == mdlm::decode_status::completed);
  // Calls 0 and 1: nothing stable -> fallback one token (most confident, lowest position). Call 2:
  // positions 6 and 7 are stable and confident together. Call 3: position 5 via the fallback.
  CHECK(r.unmask_step[3] == 0);
  CHECK(r.unmask_step[4] == 1);
  CHECK(r.unmask_step[6] == 2);
  CHECK(r.unmask_step[7] == 2);
  CHECK(r.unmask_step[5] == 3);
  CHECK(r.nfe == 4);
  // The strict operator: with tau_c equal to the confidence nothing is ever ready.
  const auto s4 = mdlm::compute_logit_stats(std::span<const float>(rows[3]));
  const double p4 = std::exp(4.0 - s4.log_normalizer);  // exactly the confidence decode computes
  const auto strict = mdlm::decode(m, c, mdlm::decode_options<mdlm::klass>{.policy = {.confidence_threshold = p4}},
                                   mdlm::counter_rng{1});
  CHECK(strict.nfe == 5);
  const auto loose = mdlm::decode(
      m, c, mdlm::decode_options<mdlm::klass>{.policy = {.confidence_threshold = p4, .strict_confidence = false}},
      mdlm::counter_rng{1});
  CHECK(loose.nfe == 4);
}
