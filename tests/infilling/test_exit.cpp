// SPDX-License-Identifier: MIT
// Early exit on H_UB < gamma composed with MED, EB-Sampler and fixed-count policies (adaptive and
// scheduled, blocks, batches), the answer-complete rule, and Prophet's phase thresholds.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "decode/toy_models.hpp"
#include "mdlm/mdlm.hpp"
#include "mdlm/reference/hmm.hpp"

namespace {

// Records, at every call, the canvas and the H_UB / argmax of the masked answer positions.
struct call_recorder {
  mdlm::token_span answer;
  std::vector<std::vector<mdlm::token_id>> states{};
  std::vector<double> h_ub{};
  std::vector<std::vector<mdlm::token_id>> argmax{};  // per call, per answer index (no_token if unmasked)
  void on_logits(mdlm::step_event& e) {
    states.emplace_back(e.tokens.begin(), e.tokens.end());
    double h = 0.0;
    std::vector<mdlm::token_id> am(answer.size(), mdlm::no_token);
    for (std::size_t p = answer.begin; p < answer.end; ++p) {
      if (e.tokens[p] != e.mask) continue;
      const auto s = mdlm::compute_logit_stats(e.row(p));
      h += s.entropy;
      am[p - answer.begin] = s.top1;
    }
    h_ub.push_back(h);
    argmax.push_back(am);
  }
};

const auto hmm_model = mdlm::reference::hmm::random(4, 3, 15, 31, 0.2);

mdlm::reasoning_template hmm_template(std::uint32_t seq = 0) {
  // [prompt 1][reasoning 10][delimiter 1][answer 3]: region of 14 = 2 blocks of 7.
  return mdlm::make_template({.prompt = {0}, .reasoning_length = 10, .delimiter = {1}, .answer_length = 3},
                             hmm_model.mask_token(), seq);
}

// Runs `opt` without exit to get the H_UB trajectory, picks a gamma that fires in the middle of the
// run, and checks the exit run against the rules.
template <class Policy>
void check_composition(const mdlm::decode_options<Policy>& opt, std::uint64_t seed) {
  const auto t = hmm_template(static_cast<std::uint32_t>(seed));
  const auto mask = hmm_model.mask_token();
  call_recorder full{t.spans.answer};
  const auto base = mdlm::decode(hmm_model, t.canvas, opt, mdlm::counter_rng{seed}, full);
  REQUIRE(base.status == mdlm::decode_status::completed);
  // First k >= 1 with a new strict running minimum of H_UB over calls whose answer was still masked.
  std::size_t k = 0;
  double run_min = full.h_ub[0];
  for (std::size_t s = 1; s < full.h_ub.size(); ++s) {
    if (full.h_ub[s] < run_min && full.h_ub[s] > 0.0) {
      k = s;
      break;
    }
    run_min = std::min(run_min, full.h_ub[s]);
  }
  REQUIRE(k > 0);
  const double gamma = 0.5 * (full.h_ub[k] + run_min);

  call_recorder rec{t.spans.answer};
  mdlm::early_exit exit(t, gamma);
  const auto r = mdlm::decode(hmm_model, t.canvas, opt, mdlm::counter_rng{seed}, rec, exit);
  const auto& res = exit.result();
  REQUIRE(res.exited);
  CHECK(r.status == mdlm::decode_status::stopped);
  CHECK(res.nfe == r.nfe);
  CHECK(res.exit_step + 1 == r.nfe);
  CHECK(r.nfe < base.nfe);
  // The trajectory is the recorded one, and identical to the run without exit up to the exit.
  REQUIRE(res.h_ub.size() == r.nfe);
  for (std::size_t s = 0; s < r.nfe; ++s) {
    CHECK(res.h_ub[s] == rec.h_ub[s]);
    CHECK(res.h_ub[s] == full.h_ub[s]);
    CHECK(rec.states[s] == full.states[s]);
  }
  for (std::size_t s = 0; s < res.exit_step; ++s) CHECK(res.h_ub[s] >= gamma);
  if (res.reason == mdlm::exit_reason::bound) {
    CHECK(res.exit_step == k);
    CHECK(res.h_ub[k] < gamma);
    // Every answer position decided at the exit step holds the argmax of that call's row.
    for (std::size_t p = t.spans.answer.begin; p < t.spans.answer.end; ++p)
      if (r.unmask_step[p] == static_cast<std::int32_t>(k))
        CHECK(r.tokens[p] == rec.argmax[k][p - t.spans.answer.begin]);
    CHECK(res.answer_filled >= 1);
  } else {
    CHECK(res.reason == mdlm::exit_reason::answer_complete);
    CHECK(res.answer_filled == 0);
  }
  // The answer is complete; the rest of the reasoning is skipped.
  for (std::size_t p = t.spans.answer.begin; p < t.spans.answer.end; ++p) CHECK(r.tokens[p] != mask);
  std::size_t left = 0;
  for (std::size_t p = t.spans.reasoning.begin; p < t.spans.reasoning.end; ++p) left += r.tokens[p] == mask;
  CHECK(res.reasoning_left_masked == left);
  CHECK(left > 0);
  // Positions decided before the exit step match the run without exit.
  for (std::size_t p = 0; p < r.tokens.size(); ++p)
    if (r.unmask_step[p] >= 0 && r.unmask_step[p] < static_cast<std::int32_t>(res.exit_step)) {
      CHECK(r.tokens[p] == base.tokens[p]);
      CHECK(r.unmask_step[p] == base.unmask_step[p]);
    }
}

}  // namespace

TEST_CASE("early exit composes with MED", "[infilling][exit][med]") {
  check_composition(mdlm::decode_options<mdlm::med>{.policy = {.lambda = 0.2}}, 1);
  check_composition(mdlm::decode_options<mdlm::med>{.policy = {.lambda = 0.2}, .block_length = 7}, 2);
  check_composition(mdlm::decode_options<mdlm::med>{.policy = {.lambda = 0.0}, .choice = {.temperature = 1.0}}, 3);
}

TEST_CASE("early exit composes with EB-Sampler", "[infilling][exit][eb]") {
  check_composition(mdlm::decode_options<mdlm::eb_sampler>{.policy = {.gamma = 0.05}}, 4);
  check_composition(mdlm::decode_options<mdlm::eb_sampler>{.policy = {.gamma = 0.05}, .block_length = 7}, 5);
}

TEST_CASE("early exit composes with fixed-count policies (adaptive and scheduled)", "[infilling][exit][fixed]") {
  check_composition(mdlm::decode_options<mdlm::fixed_count>{.policy = {.score = mdlm::score_kind::neg_entropy,
                                                                        .schedule = mdlm::count_schedule::per_step}},
                    6);
  check_composition(mdlm::decode_options<mdlm::fixed_count>{.block_length = 7, .steps = 14}, 7);
  check_composition(mdlm::decode_options<mdlm::fixed_count>{.policy = {.score = mdlm::score_kind::left_to_right,
                                                                        .schedule = mdlm::count_schedule::per_step}},
                    8);
}

TEST_CASE("early exit in a batch equals early exit alone", "[infilling][exit][batch]") {
  std::vector<mdlm::reasoning_template> ts;
  for (std::uint32_t s = 0; s < 4; ++s) ts.push_back(hmm_template(s));
  const auto canvases = mdlm::batch_canvases(ts);
  const mdlm::decode_options<mdlm::med> opt{.policy = {.lambda = 0.3}, .choice = {.temperature = 1.0}};
  mdlm::early_exit batch_exit(ts, 0.3);
  const auto rs = mdlm::decode_batch(hmm_model, std::span<const mdlm::canvas>(canvases), opt, mdlm::counter_rng{9},
                                     batch_exit);
  mdlm::early_exit shared_exit(ts[0], 0.3);  // one spans object for every batch index
  const auto rs2 = mdlm::decode_batch(hmm_model, std::span<const mdlm::canvas>(canvases), opt, mdlm::counter_rng{9},
                                      shared_exit);
  for (std::size_t b = 0; b < ts.size(); ++b) {
    mdlm::early_exit alone(ts[b], 0.3);
    const auto r = mdlm::decode(hmm_model, ts[b].canvas, opt, mdlm::counter_rng{9}, alone);
    CHECK(r.tokens == rs[b].tokens);
    CHECK(r.nfe == rs[b].nfe);
    CHECK(alone.result().h_ub == batch_exit.result(b).h_ub);
    CHECK(alone.result().exit_step == batch_exit.result(b).exit_step);
    CHECK(alone.result().exited == batch_exit.result(b).exited);
    CHECK(rs2[b].tokens == rs[b].tokens);
    CHECK(shared_exit.result(b).h_ub == batch_exit.result(b).h_ub);
  }
  // reset() clears the results for another run.
  batch_exit.reset();
  CHECK(batch_exit.result(0).h_ub.empty());
}

namespace {
constexpr float ninf = -std::numeric_limits<float>::infinity();

// V = 4 (id 3 = mask). Template [0][6 reasoning][1][2 answer]; reasoning rows {0, 1, 2, -inf}
// (argmax 2, entropy ~0.83), answer rows chosen by the test.
mdlm::test::function_model toy(std::vector<float> a0, std::vector<float> a1) {
  mdlm::test::function_model m;
  m.vocab = 4;
  m.mask = 3;
  m.row_fn = [a0, a1](std::size_t pos, std::span<const mdlm::token_id>, std::span<float> out) {
    const std::vector<float>& row = pos == 8 ? a0 : pos == 9 ? a1 : std::vector<float>{0.0f, 1.0f, 2.0f, ninf};
    for (std::size_t v = 0; v < 4; ++v) out[v] = row[v];
  };
  return m;
}
const auto toy_template = mdlm::make_template({.prompt = {0}, .reasoning_length = 6, .delimiter = {1}, .answer_length = 2}, 3);
}  // namespace

TEST_CASE("early exit: strict threshold, answer-complete rule and nothing-left rule", "[infilling][exit]") {
  // Answer rows with low entropy: entropy decoding takes them first; then the answer is complete.
  // Identical rows at both answer positions, so their entropies are equal bit for bit (ties go to the
  // lower position).
  auto m = toy({6.0f, 0.0f, 0.0f, ninf}, {6.0f, 0.0f, 0.0f, ninf});
  const double h = mdlm::compute_logit_stats(std::span<const float>(std::vector<float>{6.0f, 0.0f, 0.0f, ninf})).entropy;
  const mdlm::decode_options<mdlm::med> one{.policy = {.lambda = 0.0}};
  {
    mdlm::early_exit exit(toy_template, 1e-9);
    const auto r = mdlm::decode(m, toy_template.canvas, one, mdlm::counter_rng{1}, exit);
    CHECK(exit.result().reason == mdlm::exit_reason::answer_complete);
    CHECK(exit.result().exit_step == 1);
    CHECK(r.nfe == 2);
    CHECK(exit.result().h_ub == std::vector<double>{2 * h, h});
    CHECK(exit.result().reasoning_left_masked == 6);
    CHECK(r.tokens[8] == 0);
    CHECK(r.tokens[9] == 0);
  }
  {
    // gamma exactly H_UB of the first call: strict < does not fire at step 0 but at step 1 (H_UB = h),
    // where the policy has just taken the last answer position (nothing to fill); slightly above
    // gamma fires at step 0.
    mdlm::early_exit at(toy_template, 2 * h);
    (void)mdlm::decode(m, toy_template.canvas, one, mdlm::counter_rng{1}, at);
    CHECK(at.result().reason == mdlm::exit_reason::bound);
    CHECK(at.result().exit_step == 1);
    CHECK(at.result().answer_filled == 0);
    mdlm::early_exit above(toy_template, std::nextafter(2 * h, 1.0));
    const auto r = mdlm::decode(m, toy_template.canvas, one, mdlm::counter_rng{1}, above);
    CHECK(above.result().reason == mdlm::exit_reason::bound);
    CHECK(above.result().exit_step == 0);
    CHECK(above.result().answer_filled == 1);  // the policy took position 8, the exit fills 9
    CHECK(r.nfe == 1);
    CHECK(r.tokens[9] == 0);
    CHECK(r.unmask_step[9] == 0);
  }
  {
    // A single call decodes everything (lambda covers all): nothing is skipped, the run completes.
    mdlm::early_exit exit(toy_template, 100.0);
    const auto r = mdlm::decode(m, toy_template.canvas, mdlm::decode_options<mdlm::med>{.policy = {.lambda = 5.0}},
                                mdlm::counter_rng{1}, exit);
    CHECK(r.status == mdlm::decode_status::completed);
    CHECK_FALSE(exit.result().exited);
    CHECK(exit.result().h_ub.size() == 1);
  }
  {
    // NaN in an answer row outside the current block: reported by the observer.
    auto bad = toy({std::numeric_limits<float>::quiet_NaN(), 0.0f, 0.0f, ninf}, {0.0f, 6.0f, 0.0f, ninf});
    mdlm::early_exit exit(toy_template, 0.1);
    const auto r = mdlm::decode(bad, toy_template.canvas, mdlm::decode_options<mdlm::med>{.block_length = 1},
                                mdlm::counter_rng{1}, exit);
    CHECK(r.status == mdlm::decode_status::stopped);
    CHECK(exit.result().reason == mdlm::exit_reason::invalid_logits);
    CHECK_THAT(exit.result().message, Catch::Matchers::Contains("step 0, answer position 8"));
  }
}

TEST_CASE("Prophet: phase thresholds 7.5 / 5.0 / 2.5 at progress 0.33 / 0.67, gap >= tau", "[infilling][prophet]") {
  const mdlm::prophet_thresholds th;
  CHECK(th.at(0.0) == 7.5);
  CHECK(th.at(32.0 / 100.0) == 7.5);
  CHECK(th.at(33.0 / 100.0) == 5.0);  // progress < 0.33 is strict
  CHECK(th.at(66.0 / 100.0) == 5.0);
  CHECK(th.at(67.0 / 100.0) == 2.5);
  CHECK(th.at(1.0) == 2.5);

  // Left to right, one per step: steps 0-5 decode the reasoning, 6-7 the answer. steps = 9 gives
  // progress (s+1)/9: s = 0, 1 -> 7.5; s = 2..5 -> 5.0; s >= 6 -> 2.5.
  const mdlm::decode_options<mdlm::fixed_count> ltr{
      .policy = {.score = mdlm::score_kind::left_to_right, .schedule = mdlm::count_schedule::per_step}};
  auto run = [&](float gap0, float gap1, mdlm::prophet_exit& obs) {
    auto m = toy({gap0, 0.0f, -1.0f, ninf}, {0.0f, gap1, -2.0f, ninf});
    return mdlm::decode(m, toy_template.canvas, ltr, mdlm::counter_rng{1}, obs);
  };
  {
    mdlm::prophet_exit p(toy_template, 9);
    const auto r = run(5.0f, 5.0f, p);  // gap exactly 5.0: fires at the first middle-phase step
    REQUIRE(p.result().exited);
    CHECK(p.result().exit_step == 2);
    CHECK(r.nfe == 3);
    CHECK(p.result().threshold == std::vector<double>{7.5, 7.5, 5.0});
    CHECK(p.result().mean_gap == std::vector<double>{5.0, 5.0, 5.0});
    // Fill happens before the policy's transfer: positions 3..6 and both answer positions from call 2.
    CHECK(p.result().filled == 6);
    CHECK(p.result().reasoning_filled == 4);
    CHECK(r.unmask_step[1] == 0);
    CHECK(r.unmask_step[2] == 1);
    for (std::size_t q = 3; q <= 6; ++q) {
      CHECK(r.tokens[q] == 2);
      CHECK(r.unmask_step[q] == 2);
    }
    CHECK(r.tokens[8] == 0);
    CHECK(r.tokens[9] == 1);
  }
  {
    // Mean over the masked answer positions: (8 + 2) / 2 = 5 >= 5.
    mdlm::prophet_exit p(toy_template, 9);
    (void)run(8.0f, 2.0f, p);
    CHECK(p.result().exit_step == 2);
  }
  {
    mdlm::prophet_exit p(toy_template, 9);
    (void)run(4.999f, 4.999f, p);  // below 5.0: waits for the late phase at step 6
    CHECK(p.result().exit_step == 6);
    CHECK(p.result().reasoning_filled == 0);
    CHECK(p.result().filled == 2);
  }
  {
    mdlm::prophet_exit p(toy_template, 9);
    const auto r = run(2.4f, 2.4f, p);  // never reaches 2.5: the run completes
    CHECK_FALSE(p.result().exited);
    CHECK(r.status == mdlm::decode_status::completed);
    CHECK(r.nfe == 8);
    CHECK(p.result().mean_gap.size() == 8);
  }
  {
    // Custom thresholds.
    mdlm::prophet_exit p(toy_template, 9, {.early = 1.0});
    (void)run(2.0f, 2.0f, p);
    CHECK(p.result().exit_step == 0);
  }
}
