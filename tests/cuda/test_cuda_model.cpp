// SPDX-License-Identifier: MIT
// The CUDA model on a GPU (label cuda; run_if_device.sh skips them without a device): logits of tiny
// checkpoints against the CPU backend and the host emulation, bit-exact batch and row-subset
// invariance, bad input, the memory plan against the device's own accounting, no allocation after the
// first step, and `mdlm generate --device cuda` against `--device cpu` for every policy.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "cuda/host_executor.hpp"
#include "cuda/support.hpp"
#include "mdlm/cpu/make_checkpoint.hpp"
#include "mdlm/cpu/model.hpp"
#include "mdlm/cuda/device.hpp"
#include "mdlm/cuda/model.hpp"

using mdlm::token_id;
namespace cpu = mdlm::cpu;

namespace {

using mdlm::test::tiny_shape;

const std::vector<tiny_shape>& shapes() {
  static const std::vector<tiny_shape> s{
      {cpu::architecture::llada, 4, 4, 64, 96, 2, 320},    // LLaDA-tiny (models.md section 6)
      {cpu::architecture::llada, 4, 2, 64, 96, 2, 320},    // GQA
      {cpu::architecture::dream, 4, 2, 64, 96, 2, 320},    // Dream-tiny: GQA, biases, shift
      {cpu::architecture::dream, 8, 1, 128, 160, 2, 500},  // one KV head, head_dim 16, vocab not a multiple of 8
      {cpu::architecture::llada, 2, 2, 256, 512, 1, 1000},  // head_dim 128 as in the real models
  };
  return s;
}

std::filesystem::path make_tiny(const tiny_shape& s, std::size_t index) {
  const auto dir = mdlm::test::scratch_dir("cuda-model-" + std::to_string(index));
  cpu::write_tiny_checkpoint(s.spec(7 + index), dir);
  return dir;
}

using mdlm::test::compare_logits;
using mdlm::test::random_canvas;

std::size_t free_device_bytes() { return mdlm::cuda::query_device(0).free_bytes; }

}  // namespace

TEST_CASE("CUDA logits of tiny checkpoints match the CPU backend and the host emulation", "[cuda][model]") {
  std::mt19937 rng(1);
  for (std::size_t si = 0; si < shapes().size(); ++si) {
    const auto& s = shapes()[si];
    const auto dir = make_tiny(s, si);
    const auto ckpt = cpu::checkpoint::open(dir);
    cpu::model cpu_model(ckpt, {.threads = 1});
    mdlm::cuda::model gpu(ckpt);
    mdlm::test::emulated_model emu(ckpt);
    const std::size_t vocab = gpu.vocab_size();
    for (std::size_t length : {1, 5, 37, 130}) {
      for (std::size_t batch : {1, 3}) {
        INFO("shape " << si << " (" << cpu::architecture_name(s.arch) << ", heads " << s.heads << "/" << s.kv_heads
                      << ", d " << s.d_model << "), batch " << batch << ", length " << length);
        const auto tokens = random_canvas(batch * length, vocab, gpu.mask_token(), rng);
        std::vector<float> ref(tokens.size() * vocab), got(ref.size());
        cpu_model.batch_logits(tokens, batch, ref);
        gpu.batch_logits(tokens, batch, got);
        for (float x : got) REQUIRE(std::isfinite(x));
        const auto e = compare_logits(got, ref);
        INFO("vs CPU: relative RMS " << e.rel_rms << ", worst " << e.worst);
        CHECK(e.rel_rms < 0.01);
        CHECK(e.worst < 0.03);
        if (length <= 37) {  // the host emulation is slow at long lengths
          const auto e2 = compare_logits(got, emu.batch_logits(tokens, batch));
          INFO("vs host emulation: relative RMS " << e2.rel_rms << ", worst " << e2.worst);
          CHECK(e2.rel_rms < 0.01);
          CHECK(e2.worst < 0.03);
        }
      }
    }
    std::filesystem::remove_all(dir);
  }
}

TEST_CASE("CUDA batch rows equal single-sequence rows, and gathered rows equal full rows, bit for bit",
          "[cuda][model][determinism]") {
  std::mt19937 rng(2);
  for (std::size_t si = 0; si < shapes().size(); ++si) {
    const auto dir = make_tiny(shapes()[si], 100 + si);
    mdlm::cuda::model gpu = mdlm::cuda::model::load(dir);
    const std::size_t vocab = gpu.vocab_size(), batch = 4, length = 70;
    INFO("shape " << si);
    const auto tokens = random_canvas(batch * length, vocab, gpu.mask_token(), rng);
    std::vector<float> all(tokens.size() * vocab), one(length * vocab);
    gpu.batch_logits(tokens, batch, all);
    for (std::size_t b = 0; b < batch; ++b) {
      gpu.logits(std::span<const token_id>(tokens).subspan(b * length, length), one);
      for (std::size_t i = 0; i < one.size(); ++i) REQUIRE(one[i] == all[b * length * vocab + i]);
    }
    // Same call twice: same bits.
    std::vector<float> again(all.size());
    gpu.batch_logits(tokens, batch, again);
    REQUIRE(again == all);
    // A permuted subset with duplicates, more than one 128-row chunk, and a single row.
    for (std::size_t count : {1, 3, 200}) {
      std::vector<std::size_t> rows(count);
      std::uniform_int_distribution<std::size_t> pick(0, batch * length - 1);
      for (auto& r : rows) r = pick(rng);
      gpu.run_body(tokens, batch);
      const auto dl = gpu.head_rows(rows);
      REQUIRE(dl.rows == count);
      std::vector<float> sub(count * vocab);
      float* dev = nullptr;
      REQUIRE(cudaMalloc(reinterpret_cast<void**>(&dev), sub.size() * 4) == cudaSuccess);
      gpu.logits_rows(tokens, batch, rows, dev);
      gpu.synchronize();
      REQUIRE(cudaMemcpy(sub.data(), dev, sub.size() * 4, cudaMemcpyDeviceToHost) == cudaSuccess);
      cudaFree(dev);
      for (std::size_t j = 0; j < count; ++j)
        for (std::size_t v = 0; v < vocab; ++v) REQUIRE(sub[j * vocab + v] == all[rows[j] * vocab + v]);
    }
    std::filesystem::remove_all(dir);
  }
}

TEST_CASE("CUDA model: bad input is an invalid_argument naming the value", "[cuda][model]") {
  const auto dir = make_tiny(shapes()[2], 200);
  mdlm::cuda::model gpu = mdlm::cuda::model::load(dir);
  const std::size_t vocab = gpu.vocab_size();
  std::vector<float> out(4 * vocab);
  std::vector<token_id> tokens{1, 2, 3, 4};
  std::vector<std::size_t> rows{0};
  CHECK_THROWS_WITH(gpu.head_rows(rows), Catch::Matchers::Contains("run_body"));
  std::vector<token_id> bad{1, 2, static_cast<token_id>(vocab), 4};
  CHECK_THROWS_WITH(gpu.logits(bad, out), Catch::Matchers::Contains("outside the vocabulary"));
  std::vector<float> small(3);
  CHECK_THROWS_AS(gpu.logits(tokens, small), std::invalid_argument);
  CHECK_THROWS_AS(gpu.batch_logits(tokens, 3, out), std::invalid_argument);
  gpu.run_body(tokens, 2);
  std::vector<std::size_t> far{4};
  CHECK_THROWS_WITH(gpu.head_rows(far), Catch::Matchers::Contains("outside batch 2 x length 2"));
  CHECK_THROWS_AS(mdlm::cuda::model::load(dir / "missing"), std::invalid_argument);
  std::filesystem::remove_all(dir);
}

TEST_CASE("CUDA model: the memory plan is what the device loses, and later steps allocate nothing", "[cuda][model][memory]") {
  const auto spec = tiny_shape{cpu::architecture::llada, 8, 8, 1024, 2816, 4, 32000}.spec(0);
  const auto cfg = cpu::parse_model_config(cpu::tiny_config_json(spec), "memory test");
  const std::size_t batch = 8, length = 512;
  const auto plan = mdlm::cuda::plan_memory(cfg, batch, length);
  (void)free_device_bytes();  // create the context first
  const std::size_t before = free_device_bytes();
  mdlm::cuda::model gpu = mdlm::cuda::model::random(cfg, 3);
  std::mt19937 rng(4);
  const auto tokens = random_canvas(batch * length, cfg.vocab_size, cfg.mask_token, rng);
  (void)gpu.batch_logits_device(tokens, batch);
  gpu.synchronize();
  const std::size_t after_first = free_device_bytes();
  const std::size_t used = before - after_first;
  const std::size_t planned = plan.weights + plan.activations + plan.logits + plan.workspace;
  INFO("planned " << planned << " bytes (+ reserve " << plan.reserve << "), the device lost " << used);
  CHECK(used >= planned);
  CHECK(used <= planned + plan.reserve);
  const std::size_t plans = gpu.gemm_plans();
  for (int step = 0; step < 5; ++step) (void)gpu.batch_logits_device(tokens, batch);
  gpu.synchronize();
  CHECK(free_device_bytes() == after_first);
  CHECK(gpu.gemm_plans() == plans);
  INFO("GEMM plans " << plans << ", of which whole-batch " << gpu.gemm_plans_batched());
  CHECK(gpu.gemm_plans_batched() >= 1);
}

// --- the tool ---------------------------------------------------------------------------------------

namespace {

std::string tool_path() {
  const char* env = std::getenv("MDLM_TOOL_PATH");
  if (env != nullptr && *env != '\0') return env;
#ifdef MDLM_TOOL_PATH
  return MDLM_TOOL_PATH;
#else
  return "";
#endif
}

mdlm::test::tool_result run_tool(const std::filesystem::path& dir, const std::string& args) {
  return mdlm::test::run_tool(tool_path(), dir, args);
}

}  // namespace

TEST_CASE("mdlm generate --device cuda gives the CPU backend's tokens for every policy at temperature 0",
          "[cuda][generate]") {
  REQUIRE(!tool_path().empty());
  struct policy_case {
    const char* name;
    const char* extra;
    bool blocks;  // LLaDA-style blocks allowed
  };
  const std::vector<policy_case> policies{
      {"llada-low-confidence", "", true}, {"llada-random", "", true},       {"dream-maskgit-plus", "", false},
      {"dream-topk-margin", "", false},   {"dream-entropy", "", false},     {"dream-origin", "", false},
      {"fast-dllm-threshold", "", true},  {"fast-dllm-factor", "", true},   {"eb", "", true},
      {"med", "--lambda 0.5", true},      {"left-to-right", "", true},
  };
  std::size_t compared = 0;
  for (std::size_t si : {1, 2}) {  // LLaDA with GQA, Dream
    const auto dir = make_tiny(shapes()[si], 300 + si);
    const auto scratch = mdlm::test::scratch_dir("cuda-generate-" + std::to_string(si));
    for (const auto& p : policies) {
      const std::string args = "generate --model '" + dir.string() + "' --prompt-ids 5,17,42,8,99,3 --gen-length 16 " +
                               (p.blocks ? "--block-length 8 " : "") + "--policy " + p.name + " " + p.extra +
                               " --seed 11 --json";
      const auto c = run_tool(scratch, args + " --device cpu");
      const auto g = run_tool(scratch, args + " --device cuda");
      INFO("shape " << si << ", mdlm " << args << "\ncpu stderr: " << c.err << "\ncuda stderr: " << g.err);
      REQUIRE(c.rc == 0);
      REQUIRE(g.rc == 0);
      const auto jc = nlohmann::json::parse(c.out), jg = nlohmann::json::parse(g.out);
      CHECK(jg.at("device") == "cuda");
      CHECK(jg.at("generated_ids") == jc.at("generated_ids"));
      CHECK(jg.at("unmask_step") == jc.at("unmask_step"));
      CHECK(jg.at("nfe") == jc.at("nfe"));
      ++compared;
    }
    std::filesystem::remove_all(dir);
    std::filesystem::remove_all(scratch);
  }
  CHECK(compared == 2 * policies.size());
}

TEST_CASE("mdlm --device cuda: not enough device memory is a one-line error before loading", "[cuda][generate]") {
  REQUIRE(!tool_path().empty());
  cpu::tiny_checkpoint_spec spec;
  spec.max_sequence_length = 1 << 20;
  const auto dir = mdlm::test::scratch_dir("cuda-memory-cli");
  cpu::write_tiny_checkpoint(spec, dir);
  // 4 heads x 400000^2 positions of fp32 scores: 2.5 TB, more than any device has.
  const auto r = run_tool(dir, "generate --model '" + dir.string() + "' --prompt-ids 1 --gen-length 400000 --device cuda");
  INFO(r.err);
  CHECK(r.rc == 2);
  CHECK_THAT(r.err, Catch::Matchers::Contains("of device memory") && Catch::Matchers::Contains("free"));
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  std::filesystem::remove_all(dir);
}

// --- against PyTorch (scripts/gpu-check.sh runs tests/cuda/torch_compare.py, which runs this) --------

TEST_CASE("CUDA logits of a real-shape checkpoint against PyTorch on the same GPU", "[.torch]") {
  const char* env = std::getenv("MDLM_TORCH_COMPARE_DIR");
  REQUIRE(env != nullptr);
  const std::filesystem::path dir(env);
  const auto meta = nlohmann::json::parse(mdlm::test::read_file(dir / "meta.json"));
  const std::size_t batch = meta.at("batch"), length = meta.at("length"), vocab = meta.at("vocab");
  auto read_floats = [&](const char* name) {
    const std::string bytes = mdlm::test::read_file(dir / name);
    std::vector<float> v(bytes.size() / 4);
    std::memcpy(v.data(), bytes.data(), v.size() * 4);
    return v;
  };
  const std::string tok_bytes = mdlm::test::read_file(dir / "tokens.bin");
  std::vector<token_id> tokens(tok_bytes.size() / 4);
  std::memcpy(tokens.data(), tok_bytes.data(), tokens.size() * 4);
  REQUIRE(tokens.size() == batch * length);
  const auto ref = read_floats("logits_fp32.bin"), torch_bf16 = read_floats("logits_bf16.bin");
  REQUIRE(ref.size() == batch * length * vocab);
  mdlm::cuda::model gpu = mdlm::cuda::model::load(meta.at("checkpoint").get<std::string>());
  std::vector<float> got(ref.size());
  gpu.batch_logits(tokens, batch, got);
  const auto ours = compare_logits(got, ref), theirs = compare_logits(torch_bf16, ref);
  std::size_t argmax_same = 0, argmax_same_torch = 0;
  for (std::size_t r = 0; r < batch * length; ++r) {
    auto row = [&](const std::vector<float>& v) {
      return std::max_element(v.begin() + static_cast<std::ptrdiff_t>(r * vocab),
                              v.begin() + static_cast<std::ptrdiff_t>((r + 1) * vocab)) - v.begin();
    };
    argmax_same += row(got) == row(ref) ? 1 : 0;
    argmax_same_torch += row(torch_bf16) == row(ref) ? 1 : 0;
  }
  std::printf("RESULT torch_compare: vs PyTorch fp32, relative RMS error mdlm bf16 %.5f (PyTorch bf16 %.5f), worst "
              "|error|/(1+|logit|) %.4f (%.4f), argmax agreement %zu/%zu (%zu)\n",
              ours.rel_rms, theirs.rel_rms, ours.worst, theirs.worst, argmax_same, batch * length, argmax_same_torch);
  // mdlm's bf16 forward keeps the residual stream in fp32, so it must be at least as close to the fp32
  // reference as PyTorch's own bf16 forward (within 25 %), and within the bf16 tolerance of the tiny tests.
  CHECK(ours.rel_rms <= 1.25 * theirs.rel_rms + 1e-4);
  CHECK(ours.rel_rms < 0.02);
}
