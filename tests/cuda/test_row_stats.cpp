// SPDX-License-Identifier: MIT
// The device row statistics on a GPU (label cuda; skipped without one): the kernels against the CPU
// path on random matrices of 32000, 126464 and 152064 columns, the host emulation against the
// device bit for bit in the tokens, and whole decodes through the device-logits adapter and the
// CUDA model equal to CPU decodes (issue 14).
#include <catch2/catch.hpp>
#include <cuda_runtime_api.h>

#include <cmath>
#include <limits>
#include <vector>

#include "mdlm/cpu/make_checkpoint.hpp"
#include "mdlm/cpu/model.hpp"
#include "mdlm/cuda/model.hpp"
#include "mdlm/cuda/row_stats.hpp"
#include "mdlm/mdlm.hpp"
#include "support.hpp"

namespace {

using namespace mdlm::cuda;
using mdlm::test::close;
using mdlm::test::close_log;

std::vector<float> random_rows(std::size_t n, std::size_t vocab, std::uint64_t seed) {
  mdlm::sequential_rng r(seed);
  std::vector<float> z(n * vocab);
  for (auto& x : z) x = static_cast<float>(6.0 * r.uniform() - 3.0 + (r.uniform() < 1e-3 ? 8.0 : 0.0));
  if (n > 1) z[vocab + 3] = std::numeric_limits<float>::quiet_NaN();  // row 1 invalid
  return z;
}

//! A device copy of a host buffer, freed at scope exit.
struct device_copy {
  void* p = nullptr;
  template <class T>
  explicit device_copy(const std::vector<T>& v) {
    REQUIRE(cudaMalloc(&p, v.size() * sizeof(T)) == cudaSuccess);
    REQUIRE(cudaMemcpy(p, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice) == cudaSuccess);
  }
  ~device_copy() { cudaFree(p); }
};


}  // namespace

TEST_CASE("device row statistics equal the CPU path on 32000 / 126464 / 152064 columns", "[cuda][row_stats]") {
  row_engine engine;
  for (std::size_t vocab : {32000, 126464, 152064}) {
    const std::size_t n = 48;
    const auto z = random_rows(n, vocab, vocab);
    const std::vector<mdlm::bf16> zb(z.begin(), z.end());
    device_copy df(z), db(zb);
    std::vector<device_row> rows;
    std::vector<std::size_t> positions;
    for (std::size_t i = 0; i < n; i += 3) rows.push_back({i, static_cast<std::uint32_t>(i), 2, 5}), positions.push_back(i);
    for (const auto& choice : {mdlm::token_choice{}, mdlm::token_choice{.temperature = 1.0},
                               mdlm::token_choice{.temperature = 0.7, .top_p = 0.9},
                               mdlm::token_choice{.temperature = 1.0, .top_k = 50}}) {
      mdlm::row_request req{.rows = positions, .choice = choice, .rng = {77}, .sequence = 2, .step = 5};
      std::vector<mdlm::row_choice> want(rows.size()), got(rows.size()), got_b(rows.size()), emulated(rows.size());
      mdlm::detail::choice_scratch scratch;
      scratch.reserve(vocab);
      mdlm::compute_row_choices(std::span<const float>(z), vocab, req, std::span<mdlm::row_choice>(want), nullptr, scratch);
      engine.choose({df.p, logit_type::f32, n, vocab, vocab}, rows, choice, {77}, {}, got);
      engine.choose({db.p, logit_type::bf16, n, vocab, vocab}, rows, choice, {77}, {}, got_b);
      emulate_rows({const_cast<float*>(z.data()), logit_type::f32, n, vocab, vocab}, rows, choice, {77}, emulated);
      for (std::size_t i = 0; i < rows.size(); ++i) {
        INFO("V " << vocab << " row " << rows[i].src << " T " << choice.temperature);
        REQUIRE(got[i].stats.valid == want[i].stats.valid);
        CHECK(got_b[i].stats.valid == want[i].stats.valid);
        if (!want[i].stats.valid) continue;
        CHECK(got[i].token == want[i].token);            // greedy always; sampled unless keys tie to rounding
        CHECK(got[i].token == emulated[i].token);        // the host emulation runs the same algorithm
        CHECK(got[i].stats.top1 == want[i].stats.top1);
        CHECK(close_log(got[i].stats.entropy, want[i].stats.entropy, 1e-5));
        CHECK(close(got[i].stats.log_normalizer, want[i].stats.log_normalizer, 1e-5));
        CHECK(close_log(got[i].tempered_entropy, want[i].tempered_entropy, 1e-5));
      }
    }
  }
}

TEST_CASE("device_logits_model: an engine's device forward decodes like the CPU", "[cuda][row_stats][decode]") {
  const auto scratch = mdlm::test::scratch_dir("cuda_adapter");
  mdlm::cpu::tiny_checkpoint_spec spec;
  spec.kv_heads = 2;
  spec.seed = 4;
  mdlm::cpu::write_tiny_checkpoint(spec, scratch / "m");
  auto cpu_model = mdlm::cpu::model::load(scratch / "m");
  std::vector<float> host;
  // The "engine": computes logits on the host and copies them into the device buffer mdlm gives it.
  device_logits_model dev(cpu_model.vocab_size(), cpu_model.mask_token(),
                          [&](std::span<const mdlm::token_id> tokens, std::size_t batch, void* out, void* stream) {
                            host.resize(tokens.size() * cpu_model.vocab_size());
                            cpu_model.batch_logits(tokens, batch, host);
                            REQUIRE(cudaMemcpyAsync(out, host.data(), host.size() * sizeof(float),
                                                    cudaMemcpyHostToDevice, static_cast<cudaStream_t>(stream)) ==
                                    cudaSuccess);
                          });
  const auto c = mdlm::make_canvas(std::vector<mdlm::token_id>{5, 6, 7}, 16, cpu_model.mask_token());
  for (double t : {0.0, 1.0}) {
    mdlm::decode_options<mdlm::med> opt{.choice = {.temperature = t}, .block_length = 8};
    const auto want = mdlm::decode(cpu_model, c, opt, mdlm::counter_rng{3});
    const auto got = mdlm::decode(dev, c, opt, mdlm::counter_rng{3});
    CHECK(got.interface == mdlm::model_interface::row_choices);
    CHECK(got.tokens == want.tokens);
    CHECK(got.unmask_step == want.unmask_step);
    // KLASS: KL on the device (kl_store) against the CPU's host KL (equal unless a KL lies within
    // ~1e-9 of the threshold; the thresholds here are far from the values of this model).
    mdlm::decode_options<mdlm::klass> kopt{.policy = {.kl_threshold = 0.05, .confidence_threshold = 0.1},
                                           .choice = {.temperature = t}, .block_length = 8};
    const auto kwant = mdlm::decode(cpu_model, c, kopt, mdlm::counter_rng{3});
    const auto kgot = mdlm::decode(dev, c, kopt, mdlm::counter_rng{3});
    CHECK(kgot.interface == mdlm::model_interface::row_choices);
    CHECK(kgot.tokens == kwant.tokens);
    CHECK(kgot.unmask_step == kwant.unmask_step);
  }
  std::filesystem::remove_all(scratch);
}

TEST_CASE("CUDA model: row statistics decode equals its logits decode", "[cuda][row_stats][model]") {
  const auto scratch = mdlm::test::scratch_dir("cuda_rows");
  mdlm::cpu::tiny_checkpoint_spec spec;
  spec.kv_heads = 2;
  spec.seed = 8;
  mdlm::cpu::write_tiny_checkpoint(spec, scratch / "m");
  auto m = mdlm::cuda::model::load(scratch / "m");
  const auto c = mdlm::make_canvas(std::vector<mdlm::token_id>{5, 6, 7}, 16, m.mask_token());
  auto same = [&](auto opt) {
    const auto rows = mdlm::decode(m, c, opt, mdlm::counter_rng{1});
    auto lopt = opt;
    lopt.interface = mdlm::model_interface::logits;
    const auto logits = mdlm::decode(m, c, lopt, mdlm::counter_rng{1});
    CHECK(rows.interface == mdlm::model_interface::row_choices);
    CHECK(rows.tokens == logits.tokens);
    CHECK(rows.unmask_step == logits.unmask_step);
  };
  for (double t : {0.0, 0.9}) {
    same(mdlm::decode_options<mdlm::fixed_count>{.choice = {.temperature = t}, .block_length = 8, .steps = 16});
    same(mdlm::decode_options<mdlm::klass>{.policy = {.kl_threshold = 0.05, .confidence_threshold = 0.1},
                                           .choice = {.temperature = t}, .block_length = 8});
  }
  std::filesystem::remove_all(scratch);
}
