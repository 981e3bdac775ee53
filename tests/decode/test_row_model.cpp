// SPDX-License-Identifier: MIT
// The row-statistics model interface (row_model.hpp): decode takes the same decisions from
// `row_choices` as from `logits`, for every policy family, greedy and sampled, single and batched;
// it requests only the rows a step needs; the interface used is reported, never silently changed.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "decode/toy_models.hpp"
#include "mdlm/mdlm.hpp"

namespace {

constexpr float ninf = -std::numeric_limits<float>::infinity();

//! A model whose rows depend on position and context, V = `vocab` (mask = V - 1, never likely).
mdlm::test::function_model context_model(std::size_t vocab) {
  mdlm::test::function_model m;
  m.vocab = vocab;
  m.mask = static_cast<mdlm::token_id>(vocab - 1);
  m.row_fn = [vocab](std::size_t pos, std::span<const mdlm::token_id> t, std::span<float> out) {
    std::size_t known = 0, sum = 0;
    for (auto x : t)
      if (x != static_cast<mdlm::token_id>(vocab - 1)) ++known, sum += static_cast<std::size_t>(x);
    for (std::size_t v = 0; v + 1 < vocab; ++v)
      out[v] = static_cast<float>(2.5 * std::sin(0.37 * static_cast<double>(pos * vocab + v) +
                                                 0.21 * static_cast<double>(known) + 0.013 * static_cast<double>(sum)));
    out[vocab - 1] = ninf;
  };
  return m;
}

//! A row-statistics model over a logits model: evaluates the logits, applies request.banned, then
//! `compute_row_choices` on the requested rows only; records every request.
struct rows_only_model {
  explicit rows_only_model(mdlm::test::function_model m) : inner(std::move(m)) {}
  mdlm::test::function_model inner;
  std::vector<std::vector<std::size_t>> requested;  // rows of every call
  std::vector<float> buffer;
  mdlm::detail::choice_scratch scratch;
  bool corrupt_token = false;  // return an out-of-vocabulary token (a broken device model)
  mdlm::kl_histories kl;  // row_request::kl

  [[nodiscard]] std::size_t vocab_size() const { return inner.vocab; }
  [[nodiscard]] mdlm::token_id mask_token() const { return inner.mask; }
  void row_choices(std::span<const mdlm::token_id> tokens, const mdlm::row_request& req,
                   std::span<mdlm::row_choice> out) {
    buffer.resize(tokens.size() * inner.vocab);
    inner.logits(tokens, buffer);
    for (std::size_t r = 0; r < tokens.size(); ++r)
      for (mdlm::token_id b : req.banned) buffer[r * inner.vocab + static_cast<std::size_t>(b)] = ninf;
    requested.emplace_back(req.rows.begin(), req.rows.end());
    mdlm::row_request plain = req;
    plain.banned = {};
    scratch.reserve(inner.vocab);
    mdlm::compute_row_choices(std::span<const float>(buffer), inner.vocab, plain, out, nullptr, scratch);
    if (corrupt_token && !out.empty()) out[0].token = static_cast<mdlm::token_id>(inner.vocab + 3);
    kl.fill(std::span<const float>(buffer), tokens.size(), inner.vocab, req, out);
  }
};
static_assert(mdlm::check_row_statistics_model<rows_only_model>());
static_assert(!mdlm::ConditionalModel<rows_only_model>);

//! Both interfaces at once (as the CPU backend): decode's automatic choice takes the rows.
struct both_model : rows_only_model {
  using rows_only_model::rows_only_model;
  void logits(std::span<const mdlm::token_id> tokens, std::span<float> out) { inner.logits(tokens, out); }
};
static_assert(mdlm::ConditionalModel<both_model> && mdlm::RowStatisticsModel<both_model>);

//! A batched row model: batch_row_choices = one row_choices per sequence, counted once.
struct batched_rows_model : rows_only_model {
  using rows_only_model::rows_only_model;
  std::size_t batch_calls = 0;
  void batch_row_choices(std::span<const mdlm::token_id> tokens, std::size_t batch,
                         std::span<const mdlm::row_request> reqs, std::span<mdlm::row_choice> out) {
    ++batch_calls;
    const std::size_t len = tokens.size() / batch;
    std::size_t off = 0;
    for (std::size_t b = 0; b < batch; ++b) {
      row_choices(tokens.subspan(b * len, len), reqs[b], out.subspan(off, reqs[b].rows.size()));
      off += reqs[b].rows.size();
    }
  }
};
static_assert(mdlm::BatchedRowStatisticsModel<batched_rows_model>);

constexpr std::size_t families = 14;

template <class F>
void with_policy(std::size_t i, F&& f) {
  using mdlm::count_schedule;
  using mdlm::score_kind;
  switch (i) {
    case 0: return f(mdlm::fixed_count{});
    case 1: return f(mdlm::fixed_count{.score = score_kind::random});
    case 2: return f(mdlm::fixed_count{.score = score_kind::tempered_confidence, .schedule = count_schedule::dream_timesteps});
    case 3: return f(mdlm::fixed_count{.score = score_kind::margin, .schedule = count_schedule::dream_timesteps});
    case 4: return f(mdlm::fixed_count{.score = score_kind::neg_entropy, .schedule = count_schedule::dream_timesteps,
                                       .alg_temp = 0.3});
    case 5: return f(mdlm::dream_origin{});
    case 6: return f(mdlm::fixed_count{.score = score_kind::left_to_right, .schedule = count_schedule::per_step});
    case 7: return f(mdlm::med{.lambda = 0.8, .k_max = 3});
    case 8: return f(mdlm::eb_sampler{.gamma = 0.5});
    case 9: return f(mdlm::fast_dllm_threshold{.tau = 0.5});
    case 10: return f(mdlm::fast_dllm_factor{});
    case 12: return f(mdlm::klass{});
    case 13: return f(mdlm::klass{.kl_threshold = 0.3, .confidence_threshold = 0.2, .fallback_steps_per_block = 2});
    default: return f(mdlm::llada_eos_confidence<mdlm::fixed_count>{.policy = {}, .eos = 2, .eot = 3, .greedy = true});
  }
}

std::vector<mdlm::token_choice> choices() {
  return {{}, {.temperature = 1.0}, {.temperature = 0.7, .top_p = 0.9}, {.temperature = 1.3, .top_k = 3}};
}

void require_same(const mdlm::decode_result& a, const mdlm::decode_result& b) {
  CHECK(a.tokens == b.tokens);
  CHECK(a.unmask_step == b.unmask_step);
  CHECK(a.nfe == b.nfe);
  CHECK(a.status == b.status);
}

}  // namespace

TEST_CASE("row statistics give the same decisions as logits, every policy family, greedy and sampled",
          "[decode][row_model]") {
  for (std::size_t vocab : {6, 140}) {  // 140: the SIMD kernels path
    for (std::size_t pi = 0; pi < families; ++pi) {
      for (const auto& choice : choices()) {
        for (std::size_t block : {0, 4}) {
          with_policy(pi, [&](auto policy) {
            INFO("V " << vocab << ", policy " << pi << ", T " << choice.temperature << ", block " << block);
            auto logits_model = context_model(vocab);
            rows_only_model rows{context_model(vocab)};
            const auto c = mdlm::make_canvas(std::vector<mdlm::token_id>{0, 1, 2}, 8, logits_model.mask, 5);
            mdlm::decode_options<decltype(policy)> opt{.policy = policy, .choice = choice, .block_length = block};
            const auto a = mdlm::decode(logits_model, c, opt, mdlm::counter_rng{42});
            const auto b = mdlm::decode(rows, c, opt, mdlm::counter_rng{42});
            CHECK(a.interface == mdlm::model_interface::logits);
            CHECK(b.interface == mdlm::model_interface::row_choices);
            CHECK(b.interface_note.empty());
            require_same(a, b);
            // Only the rows a step needs: the masked candidates of the step, nothing else.
            REQUIRE(rows.requested.size() == b.nfe);
            for (const auto& req : rows.requested)
              for (std::size_t p : req) CHECK((p >= 3 && p < 11));
          });
        }
      }
    }
  }
}

TEST_CASE("decode requests exactly the candidate rows; observers add theirs", "[decode][row_model]") {
  rows_only_model m{context_model(6)};
  const auto c = mdlm::make_canvas(std::vector<mdlm::token_id>{0}, 8, m.inner.mask);
  // Blocks of 4, left to right one per step: call s requests the masked positions of its block.
  const auto r = mdlm::decode(m, c, mdlm::decode_options<mdlm::med>{.policy = {.lambda = 0.0}, .block_length = 4},
                              mdlm::counter_rng{1});
  REQUIRE(r.nfe == 8);
  CHECK(m.requested[0] == std::vector<std::size_t>{1, 2, 3, 4});
  CHECK(m.requested[3].size() == 1);
  CHECK(m.requested[4] == std::vector<std::size_t>{5, 6, 7, 8});
  // Early exit adds the masked answer rows (here positions 7-8 of a template).
  rows_only_model m2{context_model(6)};
  mdlm::reasoning_template t;
  t.canvas = mdlm::make_canvas(std::vector<mdlm::token_id>{0}, 8, m2.inner.mask);
  t.spans.reasoning = {1, 6};
  t.spans.delimiter = {6, 7};
  t.spans.answer = {7, 9};
  t.canvas.tokens[6] = 1;  // the delimiter
  mdlm::early_exit exit(t, 1e-9);
  const auto e = mdlm::decode(m2, t.canvas, mdlm::decode_options<mdlm::med>{.policy = {.lambda = 0.0}, .block_length = 4},
                              mdlm::counter_rng{1}, exit);
  CHECK(e.interface == mdlm::model_interface::row_choices);
  CHECK(m2.requested[0] == std::vector<std::size_t>{1, 2, 3, 4, 7, 8});
}

TEST_CASE("early exit and Prophet see the same statistics on both interfaces", "[decode][row_model][infilling]") {
  for (std::size_t vocab : {6, 140}) {
    mdlm::reasoning_template t;
    t.canvas = mdlm::make_canvas(std::vector<mdlm::token_id>{0}, 9, static_cast<mdlm::token_id>(vocab - 1));
    t.spans.reasoning = {1, 7};
    t.spans.delimiter = {7, 8};
    t.spans.answer = {8, 10};
    t.canvas.tokens[7] = 1;
    for (double gamma : {1e-9, 0.5, 3.0}) {
      auto lm = context_model(vocab);
      rows_only_model rm{context_model(vocab)};
      mdlm::early_exit ea(t, gamma), eb(t, gamma);
      mdlm::decode_options<mdlm::med> opt;
      const auto a = mdlm::decode(lm, t.canvas, opt, mdlm::counter_rng{3}, ea);
      const auto b = mdlm::decode(rm, t.canvas, opt, mdlm::counter_rng{3}, eb);
      INFO("V " << vocab << ", gamma " << gamma);
      require_same(a, b);
      CHECK(ea.result().h_ub == eb.result().h_ub);
      CHECK(ea.result().exit_step == eb.result().exit_step);
    }
    auto lm = context_model(vocab);
    rows_only_model rm{context_model(vocab)};
    mdlm::prophet_exit pa(t, 9, {.early = 1.0, .middle = 0.5, .late = 0.1}), pb(t, 9, {.early = 1.0, .middle = 0.5, .late = 0.1});
    const auto a = mdlm::decode(lm, t.canvas, mdlm::decode_options<mdlm::med>{}, mdlm::counter_rng{3}, pa);
    const auto b = mdlm::decode(rm, t.canvas, mdlm::decode_options<mdlm::med>{}, mdlm::counter_rng{3}, pb);
    require_same(a, b);
    CHECK(pa.result().mean_gap == pb.result().mean_gap);
    // Prophet needs every masked row of the region: an exit fills them all.
    CHECK(rm.requested[0].size() == 8);  // the 8 masks of the region (the delimiter is not masked)
  }
}

TEST_CASE("decode_batch on row-statistics models: one batched call per step, the single-run results",
          "[decode][row_model]") {
  for (std::size_t pi = 0; pi < families; ++pi) {
    with_policy(pi, [&](auto policy) {
      INFO("policy " << pi);
      batched_rows_model m{context_model(140)};
      auto single = context_model(140);
      std::vector<mdlm::canvas> cs;
      for (std::uint32_t s = 0; s < 3; ++s)
        cs.push_back(mdlm::make_canvas(std::vector<mdlm::token_id>{static_cast<mdlm::token_id>(s), 1}, 6, m.inner.mask, s));
      mdlm::decode_options<decltype(policy)> opt{.policy = policy, .choice = {.temperature = 0.9}};
      const auto rs = mdlm::decode_batch(m, std::span<const mdlm::canvas>(cs), opt, mdlm::counter_rng{8});
      std::size_t most = 0;
      for (std::size_t b = 0; b < cs.size(); ++b) {
        const auto one = mdlm::decode(single, cs[b], opt, mdlm::counter_rng{8});
        require_same(rs[b], one);
        CHECK(rs[b].interface == mdlm::model_interface::row_choices);
        most = std::max(most, one.nfe);
      }
      CHECK(m.batch_calls == most);
    });
  }
}

//! A user policy that reads raw logit rows (it does not declare reads_logit_rows = false).
struct logit_reading_med : mdlm::med {
  static constexpr bool reads_logit_rows = true;
};

TEST_CASE("the interface is chosen visibly: a policy reading logit rows, forced interfaces, bad row models",
          "[decode][row_model][errors]") {
  using Catch::Matchers::Contains;
  const auto c = mdlm::make_canvas(std::vector<mdlm::token_id>{0, 1}, 6, 5);
  both_model both{context_model(6)};
  // A policy that reads the raw rows: automatic falls back to logits and says why.
  const auto k = mdlm::decode(both, c, mdlm::decode_options<logit_reading_med>{}, mdlm::counter_rng{1});
  CHECK(k.interface == mdlm::model_interface::logits);
  CHECK_THAT(k.interface_note, Contains("policy reads logit rows"));
  CHECK(both.requested.empty());
  // A plain policy on a model with both: row statistics.
  const auto m = mdlm::decode(both, c, mdlm::decode_options<mdlm::med>{}, mdlm::counter_rng{1});
  CHECK(m.interface == mdlm::model_interface::row_choices);
  // Forcing logits is reported too.
  const auto f = mdlm::decode(both, c, mdlm::decode_options<mdlm::med>{.interface = mdlm::model_interface::logits},
                              mdlm::counter_rng{1});
  CHECK(f.interface == mdlm::model_interface::logits);
  CHECK_THAT(f.interface_note, Contains("interface = model_interface::logits"));
  require_same(f, m);
  // Impossible requests throw before any call, naming the reason.
  rows_only_model rows{context_model(6)};
  CHECK_THROWS_WITH(mdlm::decode(rows, c, mdlm::decode_options<logit_reading_med>{}, mdlm::counter_rng{1}),
                    Contains("provides only row statistics, but the policy reads logit rows"));
  CHECK_THROWS_WITH(
      mdlm::decode(both, c, mdlm::decode_options<logit_reading_med>{.interface = mdlm::model_interface::row_choices},
                   mdlm::counter_rng{1}),
      Contains("model_interface::row_choices: the policy reads logit rows"));
  auto logits_only = context_model(6);
  CHECK_THROWS_WITH(
      mdlm::decode(logits_only, c, mdlm::decode_options<mdlm::med>{.interface = mdlm::model_interface::row_choices},
                   mdlm::counter_rng{1}),
      Contains("has no row_choices"));
  // An observer that reads raw rows (a plain callable) keeps the logits interface.
  std::size_t seen = 0;
  const auto o = mdlm::decode(both, c, mdlm::decode_options<mdlm::med>{}, mdlm::counter_rng{1},
                              [&](const mdlm::step_event& e) { seen += e.logits.size(); });
  CHECK(o.interface == mdlm::model_interface::logits);
  CHECK_THAT(o.interface_note, Contains("an observer reads logit rows"));
  CHECK(seen > 0);
  CHECK(rows.requested.empty());
  // A row model returning a token outside the vocabulary is reported like an invalid row.
  rows.corrupt_token = true;
  const auto bad = mdlm::decode(rows, c, mdlm::decode_options<mdlm::med>{}, mdlm::counter_rng{1});
  CHECK(bad.status == mdlm::decode_status::invalid_logits);
  CHECK_THAT(bad.message, Contains("outside the vocabulary"));
}

TEST_CASE("banned_tokens_model forwards its ids to row-statistics models", "[decode][row_model][adapters]") {
  const auto c = mdlm::make_canvas(std::vector<mdlm::token_id>{0, 1}, 6, 5);
  const std::vector<mdlm::token_id> ban{0, 3};
  auto lm = context_model(6);
  mdlm::banned_tokens_model<mdlm::test::function_model> bl(lm, ban);
  rows_only_model rm{context_model(6)};
  mdlm::banned_tokens_model<rows_only_model> br(rm, ban);
  static_assert(mdlm::RowStatisticsModel<decltype(br)> && !mdlm::ConditionalModel<decltype(br)>);
  for (double temperature : {0.0, 1.0}) {
    mdlm::decode_options<mdlm::med> opt{.choice = {.temperature = temperature}};
    const auto a = mdlm::decode(bl, c, opt, mdlm::counter_rng{4});
    const auto b = mdlm::decode(br, c, opt, mdlm::counter_rng{4});
    require_same(a, b);
    CHECK(b.interface == mdlm::model_interface::row_choices);
    for (std::size_t p = 2; p < 8; ++p) CHECK((b.tokens[p] != 0 && b.tokens[p] != 3));
  }
}
