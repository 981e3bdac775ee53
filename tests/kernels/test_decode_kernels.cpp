// SPDX-License-Identifier: MIT
// decode's default kernels path against its scalar reference path on a model with a realistic
// vocabulary: identical tokens, unmask steps and NFE for every policy family and token choice, for
// any thread count and inside batches; invalid rows reported at the same step and position.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "kernel_models.hpp"
#include "mdlm/decode.hpp"
#include "mdlm/policies/eb_sampler.hpp"
#include "mdlm/policies/fast_dllm.hpp"
#include "mdlm/policies/fixed_count.hpp"
#include "mdlm/policies/klass.hpp"
#include "mdlm/policies/med.hpp"

namespace {

constexpr std::size_t prompt_len = 4, gen_len = 24;

mdlm::canvas make(const mdlm::test::table_model& m, std::uint32_t seq = 0) {
  return mdlm::make_canvas(std::vector<mdlm::token_id>{1, 2, 3, 4}, gen_len, m.mask, seq);
}

template <class Policy>
void check_paths_agree(mdlm::decode_options<Policy> opt, std::size_t vocab) {
  mdlm::test::table_model model(prompt_len + gen_len, vocab, 42);
  const auto c = make(model, 3);
  opt.path = mdlm::stats_path::scalar_reference;
  const auto ref = mdlm::decode(model, c, opt, mdlm::counter_rng{17});
  REQUIRE(ref.ok());
  opt.path = mdlm::stats_path::kernels;
  const auto fast = mdlm::decode(model, c, opt, mdlm::counter_rng{17});
  CHECK(fast.tokens == ref.tokens);
  CHECK(fast.unmask_step == ref.unmask_step);
  CHECK(fast.nfe == ref.nfe);
  mdlm::thread_pool pool(3);
  opt.pool = &pool;
  const auto threaded = mdlm::decode(model, c, opt, mdlm::counter_rng{17});
  CHECK(threaded.tokens == ref.tokens);
  CHECK(threaded.unmask_step == ref.unmask_step);
  // A batch of canvases with different sequences: each equals its own decode.
  std::vector<mdlm::canvas> batch{make(model, 0), c, make(model, 9)};
  const auto rs = mdlm::decode_batch(model, std::span<const mdlm::canvas>(batch), opt, mdlm::counter_rng{17});
  CHECK(rs[1].tokens == ref.tokens);
  CHECK(rs[1].unmask_step == ref.unmask_step);
}

const std::vector<mdlm::token_choice> choices{
    mdlm::token_choice{},
    mdlm::token_choice{.temperature = 1.0},
    mdlm::token_choice{.temperature = 0.7},
    mdlm::token_choice{.temperature = 1.3, .top_k = 5},
    mdlm::token_choice{.temperature = 0.9, .top_p = 0.8},
};

}  // namespace

TEST_CASE("decode's kernels path equals its scalar reference path", "[kernels][decode]") {
  for (std::size_t vocab : {std::size_t{300}, std::size_t{1031}}) {
    for (const auto& ch : choices) {
      INFO("V " << vocab << " T " << ch.temperature);
      check_paths_agree(mdlm::decode_options<mdlm::fixed_count>{.choice = ch, .block_length = 8, .steps = 12}, vocab);
      check_paths_agree(mdlm::decode_options<mdlm::fixed_count>{
                            .policy = {.score = mdlm::score_kind::neg_entropy,
                                       .schedule = mdlm::count_schedule::dream_timesteps},
                            .choice = ch,
                            .steps = 10},
                        vocab);
      check_paths_agree(mdlm::decode_options<mdlm::fixed_count>{
                            .policy = {.score = mdlm::score_kind::margin, .schedule = mdlm::count_schedule::per_step,
                                       .per_step = 3},
                            .choice = ch},
                        vocab);
      check_paths_agree(mdlm::decode_options<mdlm::med>{.policy = {.lambda = 0.5, .k_max = 4}, .choice = ch}, vocab);
      check_paths_agree(mdlm::decode_options<mdlm::eb_sampler>{.policy = {.gamma = 0.5}, .choice = ch}, vocab);
      check_paths_agree(mdlm::decode_options<mdlm::fast_dllm_threshold>{.policy = {.tau = 0.5}, .choice = ch}, vocab);
      check_paths_agree(mdlm::decode_options<mdlm::klass>{.policy = {.confidence_threshold = 0.5}, .choice = ch},
                        vocab);
    }
  }
}

TEST_CASE("decode's kernels path reports an invalid row at the reference's step and position", "[kernels][decode]") {
  mdlm::test::table_model model(prompt_len + gen_len, 500, 5);
  model.base[(prompt_len + 7) * 500 + 123] = std::numeric_limits<float>::quiet_NaN();
  const auto c = make(model);
  for (auto path : {mdlm::stats_path::scalar_reference, mdlm::stats_path::kernels}) {
    const auto r = mdlm::decode(model, c, mdlm::decode_options<mdlm::med>{.path = path}, mdlm::counter_rng{1});
    CHECK(r.status == mdlm::decode_status::invalid_logits);
    CHECK(r.error_step == 0);
    CHECK(r.error_position == prompt_len + 7);
  }
}
