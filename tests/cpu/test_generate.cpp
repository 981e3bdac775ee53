// SPDX-License-Identifier: MIT
// `mdlm generate` run as a process on tiny checkpoints: parity with the reference loops of LLaDA's
// generate.py and Dream's diffusion_generate (tests/golden/make_parity.py), every policy name, the
// table and JSON outputs, determinism in the seed, and bad input (exit code 2, one line on stderr).
#ifdef MDLM_TOOL_PATH
#include <sys/wait.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mdlm/cpu/make_checkpoint.hpp"
#include "support.hpp"

using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using namespace mdlm::cpu;
using json = nlohmann::json;

namespace {

using tool_run = mdlm::test::tool_result;

// `mdlm <args>` (support.hpp: one OpenMP thread, stdout / stderr captured in files of `dir`).
tool_run run_tool(const std::filesystem::path& dir, const std::string& args) {
  return mdlm::test::run_tool(MDLM_TOOL_PATH, dir, args);
}

std::filesystem::path parity_dir() {
  const char* env = std::getenv("MDLM_PARITY_DIR");
  return env != nullptr && *env != '\0' ? std::filesystem::path(env) : std::filesystem::path(MDLM_GOLDEN_DATA_DIR);
}

std::string ids_arg(const std::vector<int>& ids) {
  std::string s;
  for (int t : ids) {
    if (!s.empty()) s.push_back(',');
    s.append(std::to_string(t));
  }
  return s;
}

std::size_t count_lines(const std::string& s) { return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n')); }

}  // namespace

TEST_CASE("mdlm generate reproduces LLaDA generate.py and Dream diffusion_generate exactly", "[parity]") {
  const auto dir = parity_dir();
  INFO("parity file " << (dir / "parity.json"));
  std::ifstream f(dir / "parity.json");
  REQUIRE(f.good());
  const json parity = json::parse(f);
  const auto& cases = parity.at("cases");
  REQUIRE(cases.size() >= 4);
  const auto scratch = mdlm::test::scratch_dir("parity");
  std::size_t llada = 0, dream = 0, masks_chosen = 0;
  for (const auto& c : cases) {
    const std::string name = c.at("name");
    INFO("case " << name);
    tiny_checkpoint_spec spec;
    spec.arch = c.at("arch") == "llada" ? architecture::llada : architecture::dream;
    spec.layers = c.at("layers");
    spec.d_model = c.at("d_model");
    spec.heads = c.at("heads");
    spec.kv_heads = c.at("kv_heads");
    spec.mlp = c.at("mlp");
    spec.vocab = c.at("vocab");
    spec.seed = c.at("seed");
    const std::string dtype = c.value("dtype", std::string("bf16"));
    spec.type = dtype == "f32" ? mdlm::cpu::dtype::f32 : dtype == "f16" ? mdlm::cpu::dtype::f16 : mdlm::cpu::dtype::bf16;
    const auto ckpt = scratch / name;
    write_tiny_checkpoint(spec, ckpt);
    // A different hash means the generator changed (regenerate parity.json), not a decoding mismatch.
    REQUIRE(mdlm::test::fnv1a64_hex(ckpt / "model.safetensors") == c.at("safetensors_fnv1a64").get<std::string>());
    const std::string policy = c.at("policy");
    (policy == "llada-low-confidence" ? llada : dream) += 1;
    const auto r = run_tool(scratch, "generate --json --model '" + ckpt.string() + "' --prompt-ids " +
                                         ids_arg(c.at("prompt").get<std::vector<int>>()) + " --gen-length " +
                                         std::to_string(c.at("gen_length").get<int>()) + " --block-length " +
                                         std::to_string(c.at("block_length").get<int>()) + " --steps " +
                                         std::to_string(c.at("steps").get<int>()) + " --policy " + policy);
    INFO("stderr: " << r.err);
    REQUIRE(r.rc == 0);
    const json out = json::parse(r.out);
    // "incomplete": the model chose the mask id, which upstream writes back (issue 13).
    CHECK(out.at("status") == c.at("status"));
    masks_chosen += c.at("mask_chosen").get<bool>() ? 1U : 0U;
    CHECK(out.at("generated_ids").get<std::vector<int>>() == c.at("generated_ids").get<std::vector<int>>());
    CHECK(out.at("unmask_step").get<std::vector<int>>() == c.at("unmask_step").get<std::vector<int>>());
    CHECK(out.at("nfe").get<int>() == c.at("nfe").get<int>());
  }
  CHECK(llada >= 2);
  CHECK(dream >= 2);
  CHECK(masks_chosen >= 2);  // cases where a decided position's argmax is the mask id
  std::filesystem::remove_all(scratch);
}

TEST_CASE("mdlm generate: every policy name runs to completion; table and JSON outputs", "[tool]") {
  const auto scratch = mdlm::test::scratch_dir("generate");
  tiny_checkpoint_spec spec;
  spec.seed = 3;
  write_tiny_checkpoint(spec, scratch / "llada");
  spec.arch = architecture::dream;
  spec.kv_heads = 2;
  write_tiny_checkpoint(spec, scratch / "dream");
  const int mask = tiny_tokens(spec.vocab).mask;

  const std::vector<std::string> policies{"llada-low-confidence", "llada-random",       "dream-maskgit-plus",
                                          "dream-topk-margin",    "dream-entropy",      "dream-origin",
                                          "fast-dllm-threshold",  "fast-dllm-factor",   "eb",
                                          "med",                  "left-to-right"};
  for (const auto& policy : policies) {
    for (const char* arch : {"llada", "dream"}) {
      INFO("policy " << policy << " on " << arch);
      const bool dream_schedule = policy.starts_with("dream-");
      const auto r = run_tool(scratch, std::string("generate --json --model '") + (scratch / arch).string() +
                                           "' --prompt-ids 5,6,7 --gen-length 8" +
                                           (dream_schedule ? "" : " --block-length 4") + " --temperature 0.7 --seed 9" +
                                           " --policy " + policy);
      INFO("stderr: " << r.err);
      REQUIRE(r.rc == 0);
      const json out = json::parse(r.out);
      CHECK(out.at("status") == "completed");
      CHECK(out.at("architecture") == arch);
      const auto ids = out.at("generated_ids").get<std::vector<int>>();
      const auto steps = out.at("unmask_step").get<std::vector<int>>();
      const int nfe = out.at("nfe");
      REQUIRE(ids.size() == 8);
      REQUIRE(steps.size() == 8);
      for (std::size_t i = 0; i < 8; ++i) {
        CHECK(ids[i] != mask);
        CHECK((ids[i] >= 0 && ids[i] < 320));
        CHECK((steps[i] >= 0 && steps[i] < nfe));
      }
      // Defaults: steps = gen-length for the LLaDA / Dream schedules (NFE = steps), adaptive otherwise.
      if (policy.starts_with("llada-") || dream_schedule) {
        CHECK(out.at("steps") == 8);
        CHECK(nfe == 8);
      } else {
        CHECK(out.at("steps") == 0);
      }
      if (policy == "left-to-right") {
        CHECK(nfe == 8);
        for (int i = 0; i < 8; ++i) CHECK(steps[static_cast<std::size_t>(i)] == i);
      }
    }
  }

  SECTION("the same seed gives the same output, another seed another output") {
    const std::string args = "generate --json --model '" + (scratch / "llada").string() +
                             "' --prompt-ids 1,2 --gen-length 16 --temperature 1 --policy med --lambda 0.5 --seed ";
    const auto a = json::parse(run_tool(scratch, args + "1").out);
    const auto b = json::parse(run_tool(scratch, args + "1").out);
    const auto c = json::parse(run_tool(scratch, args + "2").out);
    CHECK(a.at("generated_ids") == b.at("generated_ids"));
    CHECK(a.at("generated_ids") != c.at("generated_ids"));
  }
  SECTION("prompt file, table output, policy parameters") {
    mdlm::test::write_file(scratch / "prompt.txt", "5, 6\n7\n");
    const auto r = run_tool(scratch, "generate --model '" + (scratch / "llada").string() +
                                         "' --prompt-ids-file '" + (scratch / "prompt.txt").string() +
                                         "' --gen-length 6 --policy fast-dllm-threshold --tau 1");
    INFO("stderr: " << r.err);
    REQUIRE(r.rc == 0);
    CHECK_THAT(r.out, Contains("fast-dllm-threshold") && Contains("completed") && Contains("unmask step"));
    CHECK(count_lines(r.out) == 5 + 1 + 1 + 6);  // 5 summary lines, a blank line, the column titles, 6 rows
    CHECK(r.err.empty());  // no progress bar when stderr is not a terminal
    // tau = 1 on a random model: one token per call, so the table's steps are 0..5 in some order.
    const auto j = json::parse(run_tool(scratch, "generate --json --model '" + (scratch / "llada").string() +
                                                     "' --prompt-ids 5,6,7 --gen-length 6 --policy fast-dllm-threshold "
                                                     "--tau 1")
                                   .out);
    CHECK(j.at("nfe") == 6);
  }
  SECTION("a progress bar on stderr when it is a terminal (util-linux `script` provides one)") {
    if (std::system("command -v script >/dev/null 2>&1") == 0) {
      const auto out = scratch / "tty.txt";
      const std::string cmd = "script -qec \"OMP_NUM_THREADS=1 '" + std::string(MDLM_TOOL_PATH) +
                              "' generate --json --model '" + (scratch / "llada").string() +
                              "' --prompt-ids 1,2 --gen-length 4 --steps 4\" /dev/null >'" + out.string() +
                              "' 2>&1 </dev/null";
      CHECK(std::system(cmd.c_str()) == 0);
      CHECK_THAT(mdlm::test::read_file(out), Contains("\r[") && Contains("] 4/4 tokens, 4 model calls"));
    } else {
      WARN("`script` not found: progress bar not checked");
    }
  }
  std::filesystem::remove_all(scratch);
}

TEST_CASE("mdlm generate: bad input exits with code 2 and a one-line message", "[tool]") {
  const auto scratch = mdlm::test::scratch_dir("generate-bad");
  tiny_checkpoint_spec spec;
  write_tiny_checkpoint(spec, scratch / "llada");
  spec.max_sequence_length = 32;
  write_tiny_checkpoint(spec, scratch / "short");
  spec.max_sequence_length = 4096;
  spec.arch = architecture::dream;
  spec.kv_heads = 2;
  write_tiny_checkpoint(spec, scratch / "dream");
  const std::string llada = " --model '" + (scratch / "llada").string() + "'";
  const std::string dream = " --model '" + (scratch / "dream").string() + "'";
  const std::string short_context = " --model '" + (scratch / "short").string() + "'";

  const auto bad = [&](const std::string& args, const std::string& message) {
    INFO("mdlm generate" << args);
    const auto r = run_tool(scratch, "generate" + args);
    CHECK(r.rc == 2);
    CHECK(count_lines(r.err) == 1);
    CHECK_THAT(r.err, StartsWith("mdlm: ") && Contains(message));
    CHECK(r.out.empty());
  };
  bad(" --model '" + (scratch / "nowhere").string() + "' --prompt-ids 1", "nowhere is not a directory");
  bad(llada + " --prompt-ids 1,320", "prompt id 320 (index 1) is outside the vocabulary [0, 320)");
  bad(llada + " --prompt-ids 1,-4", "'-4' is not a token id");
  bad(llada + " --prompt-ids 1,2x", "'2x' is not a token id");
  bad(llada + " --prompt-ids 7,300", "prompt id 300 (index 1) is the mask token 300");
  bad(dream + " --prompt-ids 300", "is the mask token 300");
  bad(llada + " --prompt-ids ,", "the prompt is empty");
  bad(short_context + " --prompt-ids 1 --gen-length 32", "= 33 exceeds the model's max_sequence_length 32");
  bad(dream + " --prompt-ids 1 --gen-length 4096", "= 4097 exceeds the model's max_sequence_length 4096");
  bad(llada + " --prompt-ids 1 --gen-length 0", "--gen-length 0");
  bad(llada + " --prompt-ids 1 --gen-length 16 --block-length 5", "--block-length 5 does not divide --gen-length 16");
  bad(llada + " --prompt-ids 1 --gen-length 16 --block-length 32", "--block-length 32 does not divide");
  bad(llada + " --prompt-ids 1 --gen-length 16 --block-length 4 --steps 6",
      "--steps 6 is not a multiple of the number of blocks 4");
  bad(dream + " --prompt-ids 1 --gen-length 16 --block-length 8 --policy dream-entropy", "has no blocks");
  bad(llada + " --prompt-ids 1 --policy nope", "--policy nope is not a policy name");
  bad(llada + " --prompt-ids 1 --tau 0.5", "--tau does not apply to --policy llada-low-confidence");
  bad(llada + " --prompt-ids 1 --policy eb --lambda 0.5", "--lambda does not apply to --policy eb");
  bad(llada + " --prompt-ids 1 --policy med --lambda -1", "lambda = -1");
  bad(llada + " --prompt-ids 1 --policy med --k-max 0", "k_max = 0");
  bad(llada + " --prompt-ids 1 --policy fast-dllm-threshold --tau 2", "tau = 2");
  bad(llada + " --prompt-ids 1 --top-p 0", "top_p = 0");
  bad(llada + " --prompt-ids 1 --top-k 0", "top_k = 0");
  bad(llada + " --prompt-ids 1 --temperature -1", "temperature = -1");
  bad(llada, "give the prompt with one of --prompt, --prompt-file, --prompt-ids, --prompt-ids-file");
  bad(llada + " --prompt-ids 1 --prompt-ids-file x", "give the prompt with one of");
  bad(llada + " --prompt-ids-file '" + (scratch / "absent.txt").string() + "'", "absent.txt: no such file");

  SECTION("unknown architecture in config.json") {
    auto j = json::parse(mdlm::test::read_file(scratch / "llada" / "config.json"));
    j["model_type"] = "gpt2";
    j["architectures"] = {"GPT2LMHeadModel"};
    mdlm::test::write_file(scratch / "llada" / "config.json", j.dump());
    bad(llada + " --prompt-ids 1", "unknown architecture");
  }
  SECTION("truncated weights") {
    const auto bytes = mdlm::test::read_file(scratch / "dream" / "model.safetensors");
    mdlm::test::write_file(scratch / "dream" / "model.safetensors", std::string_view(bytes).substr(0, bytes.size() / 3));
    bad(dream + " --prompt-ids 1", "truncated");
  }
  SECTION("a model that returns NaN is reported with exit code 1, not a crash") {
    // Replace the final norm weight by NaN: every logit row becomes NaN.
    const auto file = scratch / "llada" / "model.safetensors";
    std::vector<std::string> names;
    std::vector<std::vector<std::uint64_t>> shapes;
    std::vector<std::vector<float>> values;
    {
      const safetensors_file st(file);
      for (const auto& t : st.header().tensors) {
        names.push_back(t.name);
        shapes.push_back(t.shape);
        values.emplace_back(t.numel());
        st.read_f32(t.name, values.back());
        if (t.name == "model.transformer.ln_f.weight") std::fill(values.back().begin(), values.back().end(), NAN);
      }
    }
    std::vector<tensor_view> views;
    for (std::size_t i = 0; i < names.size(); ++i) views.push_back({names[i], shapes[i], values[i]});
    write_safetensors(file, views, dtype::f32);
    const auto r = run_tool(scratch, "generate --json" + llada + " --prompt-ids 1,2 --gen-length 4");
    CHECK(r.rc == 1);
    CHECK_THAT(r.err, Contains("invalid_logits") && Contains("step 0"));
    const json out = json::parse(r.out);
    CHECK(out.at("status") == "invalid_logits");
    CHECK(out.at("nfe") == 1);
  }
  std::filesystem::remove_all(scratch);
}

TEST_CASE("mdlm make-checkpoint and mdlm info", "[tool]") {
  const auto scratch = mdlm::test::scratch_dir("info");
  const auto dir = scratch / "dream";
  auto r = run_tool(scratch, "make-checkpoint --arch dream --layers 3 --d-model 48 --heads 4 --kv-heads 2 --mlp 80 "
                             "--vocab 200 --seed 4 --out '" + dir.string() + "'");
  INFO("stderr: " << r.err);
  REQUIRE(r.rc == 0);
  CHECK_THAT(r.out, Contains("wrote dream checkpoint") && Contains("mask id 180"));
  // The tool writes exactly what the library generator writes.
  tiny_checkpoint_spec spec;
  spec.arch = architecture::dream;
  spec.layers = 3;
  spec.d_model = 48;
  spec.heads = 4;
  spec.kv_heads = 2;
  spec.mlp = 80;
  spec.vocab = 200;
  spec.seed = 4;
  write_tiny_checkpoint(spec, scratch / "library");
  CHECK(mdlm::test::read_file(dir / "model.safetensors") == mdlm::test::read_file(scratch / "library" / "model.safetensors"));

  r = run_tool(scratch, "info --model '" + dir.string() + "'");
  REQUIRE(r.rc == 0);
  CHECK_THAT(r.out, Contains("architecture:      dream") && Contains("layers:            3") &&
                        Contains("heads / kv heads:  4 / 2 (head_dim 12)") && Contains("vocabulary rows:   200") &&
                        Contains("logit shift:       yes") && Contains("mask / eos / pad / bos: 180 / 179 / 179 / 179") &&
                        Contains("validated"));

  const auto bad = [&](const std::string& args, const std::string& message) {
    INFO("mdlm " << args);
    const auto b = run_tool(scratch, args);
    CHECK(b.rc == 2);
    CHECK(count_lines(b.err) == 1);
    CHECK_THAT(b.err, StartsWith("mdlm: ") && Contains(message));
  };
  bad("info --model '" + (scratch / "nowhere").string() + "'", "nowhere");
  bad("make-checkpoint --arch llada --d-model 64 --heads 3 --out '" + (scratch / "x").string() + "'", "heads");
  std::filesystem::remove(dir / "model.safetensors");
  r = run_tool(scratch, "info --model '" + dir.string() + "'");  // config only: reported, not an error
  CHECK(r.rc == 0);
  CHECK_THAT(r.out, Contains("architecture:      dream") && Contains("absent (no model.safetensors or index)"));
  std::filesystem::remove_all(scratch);
}
#endif
