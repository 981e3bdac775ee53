// SPDX-License-Identifier: MIT
// Templates: layout and spans, the plain canvas, batches, posterior templates, and every bad input
// of the infilling API.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "mdlm/mdlm.hpp"
#include "mdlm/reference/joint_table.hpp"

namespace {
constexpr mdlm::token_id mask = 9;
using Catch::Matchers::Contains;

mdlm::reasoning_template sample_template(std::uint32_t seq = 0) {
  return mdlm::make_template({.prompt = {1, 2}, .reasoning_length = 3, .delimiter = {4, 5}, .answer_length = 2,
                              .suffix = {6}},
                             mask, seq);
}
}  // namespace

TEST_CASE("make_template lays out [prompt][R masks][delimiter][A masks][suffix]", "[infilling][template]") {
  const auto t = sample_template(7);
  const std::vector<mdlm::token_id> expected{1, 2, mask, mask, mask, 4, 5, mask, mask, 6};
  CHECK(t.canvas.tokens == expected);
  CHECK(t.spans.prompt == mdlm::token_span{0, 2});
  CHECK(t.spans.reasoning == mdlm::token_span{2, 5});
  CHECK(t.spans.delimiter == mdlm::token_span{5, 7});
  CHECK(t.spans.answer == mdlm::token_span{7, 9});
  CHECK(t.spans.suffix == mdlm::token_span{9, 10});
  CHECK(t.canvas.region_begin == 2);
  CHECK(t.canvas.region_end == 10);
  CHECK(t.canvas.sequence == 7);
  CHECK(t.canvas.masked_count(mask) == 5);
  CHECK_NOTHROW(mdlm::validate_spans(t.spans, t.canvas.size()));

  // Empty delimiter / suffix / reasoning ("forced answer") are allowed.
  const auto forced = mdlm::make_template({.prompt = {1}, .answer_length = 3}, mask);
  CHECK(forced.canvas.tokens == std::vector<mdlm::token_id>{1, mask, mask, mask});
  CHECK(forced.spans.reasoning.empty());
  CHECK(forced.spans.answer == mdlm::token_span{1, 4});
}

TEST_CASE("plain_template is make_canvas with the whole region as reasoning", "[infilling][template]") {
  const std::vector<mdlm::token_id> prompt{1, 2, 3};
  const auto p = mdlm::plain_template(prompt, 5, mask, 3);
  const auto c = mdlm::make_canvas(prompt, 5, mask, 3);
  CHECK(p.canvas.tokens == c.tokens);
  CHECK(p.canvas.region_begin == c.region_begin);
  CHECK(p.canvas.region_end == c.region_end);
  CHECK(p.canvas.sequence == 3);
  CHECK(p.spans.reasoning == mdlm::token_span{3, 8});
  CHECK(p.spans.answer.empty());
}

TEST_CASE("templates decode in a batch like alone", "[infilling][template][batch]") {
  const auto model = mdlm::reference::joint_table::random(3, 10, 0.5, 11);
  auto make = [](std::uint32_t seq) {
    return mdlm::make_template({.prompt = {1, 2}, .reasoning_length = 3, .delimiter = {0, 2}, .answer_length = 2,
                                .suffix = {1}},
                               3, seq);
  };
  const std::vector<mdlm::reasoning_template> ts{make(0), make(1), make(2)};
  const auto canvases = mdlm::batch_canvases(ts);
  const mdlm::decode_options<mdlm::med> opt{.policy = {.lambda = 0.3}, .choice = {.temperature = 1.0}};
  const auto batch = mdlm::decode_batch(model, std::span<const mdlm::canvas>(canvases), opt, mdlm::counter_rng{5});
  REQUIRE(batch.size() == 3);
  for (std::size_t b = 0; b < 3; ++b) {
    const auto alone = mdlm::decode(model, ts[b].canvas, opt, mdlm::counter_rng{5});
    CHECK(alone.tokens == batch[b].tokens);
    // Delimiter and suffix are never touched.
    CHECK(batch[b].tokens[5] == 0);
    CHECK(batch[b].tokens[6] == 2);
    CHECK(batch[b].tokens[9] == 1);
  }
  std::vector<mdlm::reasoning_template> uneven{make(0), mdlm::make_template({.answer_length = 1}, 3)};
  CHECK_THROWS_WITH(mdlm::batch_canvases(uneven), Contains("template 1 has length 1"));
}

TEST_CASE("posterior_template fills the answer and leaves the reasoning masked", "[infilling][posterior]") {
  const auto t = sample_template();
  const std::vector<mdlm::token_id> answer{7, 8};
  const auto post = mdlm::posterior_template(t, answer, mask);
  CHECK(post.canvas.tokens == std::vector<mdlm::token_id>{1, 2, mask, mask, mask, 4, 5, 7, 8, 6});
  CHECK(post.spans == t.spans);
  CHECK(post.canvas.masked_count(mask) == 3);
}

TEST_CASE("bad input names the offending value", "[infilling][errors]") {
  const auto t = sample_template();
  // Template builder.
  CHECK_THROWS_WITH(mdlm::make_template({.prompt = {1}, .reasoning_length = 2}, mask), Contains("answer_length = 0"));
  CHECK_THROWS_WITH(mdlm::make_template({.prompt = {1, mask}, .answer_length = 1}, mask),
                    Contains("prompt token 1 is the mask token 9"));
  CHECK_THROWS_WITH(mdlm::make_template({.delimiter = {mask}, .answer_length = 1}, mask),
                    Contains("delimiter token 0 is the mask token 9"));
  CHECK_THROWS_WITH(mdlm::make_template({.answer_length = 1, .suffix = {2, mask}}, mask),
                    Contains("suffix token 1 is the mask token 9"));
  // Spans outside the canvas, overlapping, reversed, empty answer.
  auto bad = t.spans;
  bad.answer = {8, 12};
  CHECK_THROWS_WITH(mdlm::validate_spans(bad, 10), Contains("answer span [8, 12) lies outside the canvas of 10"));
  bad = t.spans;
  bad.reasoning = {2, 6};
  CHECK_THROWS_WITH(mdlm::validate_spans(bad, 10), Contains("reasoning span [2, 6) overlaps delimiter span [5, 7)"));
  bad = t.spans;
  bad.answer = {4, 8};
  CHECK_THROWS_WITH(mdlm::validate_spans(bad, 10), Contains("overlaps answer span [4, 8)"));
  bad = t.spans;
  bad.suffix = {9, 8};
  CHECK_THROWS_WITH(mdlm::validate_spans(bad, 10), Contains("suffix span [9, 8) has begin > end"));
  bad = t.spans;
  bad.answer = {7, 7};
  CHECK_THROWS_WITH(mdlm::validate_spans(bad, 10), Contains("answer span [7, 7) is empty"));
  // Posterior answers.
  const std::vector<mdlm::token_id> short_answer{7};
  CHECK_THROWS_WITH(mdlm::posterior_template(t, short_answer, mask),
                    Contains("answer length 1 differs from the answer span length 2"));
  const std::vector<mdlm::token_id> masked_answer{7, mask};
  CHECK_THROWS_WITH(mdlm::posterior_template(t, masked_answer, mask), Contains("answer token 1 is the mask token 9"));
  auto shifted = t;
  shifted.spans.answer = {9, 11};
  CHECK_THROWS_WITH(mdlm::posterior_template(shifted, std::vector<mdlm::token_id>{1, 2}, mask),
                    Contains("answer span [9, 11)"));
  // Observers: gamma <= 0, NaN, Prophet steps and thresholds, empty answer (a plain canvas).
  CHECK_THROWS_WITH(mdlm::early_exit(t, 0.0), Contains("gamma = 0 must be > 0"));
  CHECK_THROWS_WITH(mdlm::early_exit(t, -0.5), Contains("gamma = -0.5"));
  CHECK_THROWS_WITH(mdlm::early_exit(t, std::numeric_limits<double>::quiet_NaN()), Contains("gamma = nan"));
  CHECK_THROWS_WITH(mdlm::early_exit(std::span<const mdlm::reasoning_template>{}, 0.1), Contains("empty"));
  const auto plain = mdlm::plain_template(std::vector<mdlm::token_id>{1}, 4, mask);
  CHECK_THROWS_WITH(mdlm::early_exit(plain, 0.1), Contains("answer span [5, 5) is empty"));
  CHECK_THROWS_WITH(mdlm::prophet_exit(t, 0), Contains("steps = 0"));
  CHECK_THROWS_WITH(mdlm::prophet_exit(t, 8, {.early_until = 0.0}), Contains("early_until = 0"));
  CHECK_THROWS_WITH(mdlm::prophet_exit(t, 8, {.early_until = 0.5, .middle_until = 0.4}), Contains("middle_until = 0.4"));
  CHECK_THROWS_WITH(mdlm::prophet_exit(t, 8, {.late = std::numeric_limits<double>::quiet_NaN()}), Contains("late = nan"));
  const mdlm::early_exit ee(t, 0.1);
  CHECK_THROWS_WITH(ee.result(3), Contains("batch_index = 3"));
}

TEST_CASE("bad input to scoring, AUC and analytics names the offending value", "[infilling][errors]") {
  const auto model = mdlm::reference::joint_table::random(3, 7, 1.0, 3);
  const mdlm::token_id m = model.mask_token();  // 3
  const auto t = mdlm::make_template({.prompt = {0}, .reasoning_length = 3, .delimiter = {1}, .answer_length = 2}, m);
  auto mdl = model;
  const std::vector<mdlm::token_id> ok_answer{0, 1};
  CHECK_NOTHROW((void)mdlm::answer_score(mdl, t.canvas.tokens, t.spans, ok_answer));
  CHECK_THROWS_WITH((void)mdlm::answer_score(mdl, t.canvas.tokens, t.spans, std::vector<mdlm::token_id>{0, 1, 2}),
                    Contains("answer length 3 differs from the answer span length 2"));
  CHECK_THROWS_WITH((void)mdlm::answer_score(mdl, t.canvas.tokens, t.spans, std::vector<mdlm::token_id>{m, 1}),
                    Contains("answer token 0 is the mask token 3"));
  CHECK_THROWS_WITH((void)mdlm::answer_score(mdl, t.canvas.tokens, t.spans, std::vector<mdlm::token_id>{0, 8}),
                    Contains("answer token 8 at index 1 is outside the model vocabulary [0, 4)"));
  auto spans = t.spans;
  spans.answer = {6, 8};
  CHECK_THROWS_WITH((void)mdlm::answer_score(mdl, t.canvas.tokens, spans, ok_answer),
                    Contains("answer span [6, 8) lies outside the canvas of 7"));
  spans = t.spans;
  spans.answer = {3, 5};
  CHECK_THROWS_WITH((void)mdlm::answer_score(mdl, t.canvas.tokens, spans, ok_answer), Contains("overlaps"));
  CHECK_THROWS_WITH((void)mdlm::score_trace(mdl, t, std::vector<mdlm::token_id>{0, 1}, ok_answer),
                    Contains("trace length 2 differs from the reasoning span length 3"));
  CHECK_THROWS_WITH((void)mdlm::score_trace(mdl, t, std::vector<mdlm::token_id>{0, m, 1}, ok_answer),
                    Contains("trace token 1 is the mask token 3"));
  CHECK_THROWS_WITH((void)mdlm::score_trace(mdl, t, std::vector<mdlm::token_id>{0, 1, 1}, std::vector<mdlm::token_id>{2, m}),
                    Contains("answer token 1 is the mask token 3"));
  // AUC.
  const std::vector<double> some{1.0, 2.0}, none{};
  CHECK_THROWS_WITH(mdlm::auc(none, some), Contains("positives is empty"));
  CHECK_THROWS_WITH(mdlm::auc(some, none), Contains("negatives is empty"));
  const std::vector<double> with_nan{0.0, std::numeric_limits<double>::quiet_NaN()};
  CHECK_THROWS_WITH(mdlm::auc(some, with_nan), Contains("negative score 1 is NaN"));
  CHECK_THROWS_WITH(mdlm::auc(with_nan, some), Contains("positive score 1 is NaN"));
  // Analytics: a result that does not belong to the canvas, an answer span outside it.
  mdlm::decode_result r;
  r.tokens = {0, 1};
  r.unmask_step = {-1, -1};
  CHECK_THROWS_WITH((void)mdlm::analyze_decoding(t.canvas, r, m), Contains("the result has 2 tokens but the starting canvas has 7"));
  r.tokens = t.canvas.tokens;
  CHECK_THROWS_WITH((void)mdlm::analyze_decoding(t.canvas, r, m), Contains("2 unmask steps"));
  r.unmask_step.assign(7, -1);
  CHECK_THROWS_WITH((void)mdlm::analyze_decoding(t.canvas, r, m, {.answer = {5, 9}}),
                    Contains("answer span [5, 9) lies outside the canvas of 7"));
}
