// SPDX-License-Identifier: MIT
// Text in / text out through the `mdlm` tool on tiny checkpoints that carry real tokenizer files
// (make-checkpoint --tokenizer): tokenize / detokenize against the library, generate with --prompt,
// --prompt-file, --chat and --system giving the same run as the equivalent --prompt-ids, the text
// output equal to the decoded ids (also when streamed), and bad input (exit code 2, one line).
#ifdef MDLM_TOOL_PATH
// GCC 12 reports a false -Wrestrict inside std::string's operator+ (GCC bug 105329) for the
// command lines built here.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wrestrict"
#endif
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mdlm/tokenizer/chat_template.hpp"
#include "mdlm/tokenizer/tokenizer.hpp"

using Catch::Matchers::Contains;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

struct tool_run {
  int rc = -1;
  std::string out, err;
};

std::string read(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}
void write(const fs::path& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }

fs::path scratch(const std::string& name) {
  const auto dir = fs::temp_directory_path() / ("mdlm-test-text-" + std::to_string(::getpid()) + "-" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// One OpenMP thread (see tests/cpu/test_generate.cpp); stdout / stderr captured in files.
tool_run run_tool(const fs::path& dir, const std::string& args) {
  const auto out = dir / "stdout.txt", err = dir / "stderr.txt";
  const std::string cmd = std::string("OMP_NUM_THREADS=1 '") + MDLM_TOOL_PATH + "' " + args + " >'" + out.string() + "' 2>'" +
                          err.string() + "' </dev/null";
  const int status = std::system(cmd.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, read(out), read(err)};
}

std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

std::string csv(const std::vector<mdlm::token_id>& ids) {
  std::string s;
  for (auto id : ids) {
    if (!s.empty()) s += ',';
    s += std::to_string(id);
  }
  return s;
}

const fs::path tiny_tokenizer = fs::path(MDLM_TOKENIZER_DATA_DIR) / "tiny-bpe";

}  // namespace

TEST_CASE("text prompts end to end on a tiny LLaDA checkpoint with a real tokenizer.json", "[text_cli]") {
  const auto dir = scratch("llada");
  const auto ckpt = dir / "ckpt";
  auto r = run_tool(dir, "make-checkpoint --arch llada --layers 1 --d-model 32 --heads 2 --kv-heads 2 --mlp 48 --seed 3 --tokenizer " +
                             q(tiny_tokenizer) + " --out " + q(ckpt));
  INFO("stderr: " << r.err);
  REQUIRE(r.rc == 0);
  CHECK_THAT(r.out, Contains("vocabulary 320") && Contains("mask id 298") && Contains("tokenizer copied"));
  const json cfg = json::parse(read(ckpt / "config.json"));
  CHECK(cfg["mask_token_id"] == 298);
  CHECK(cfg["eos_token_id"] == 297);
  CHECK(cfg["vocab_size"] == 320);
  CHECK(read(ckpt / "tokenizer.json") == read(tiny_tokenizer / "tokenizer.json"));
  const auto tok = mdlm::text::tokenizer::load(ckpt);

  SECTION("tokenize / detokenize agree with the library") {
    r = run_tool(dir, "tokenize --model " + q(ckpt) + " --prompt 'Hello world, the answer!'");
    REQUIRE(r.rc == 0);
    const auto ids = tok.encode("Hello world, the answer!", {.add_special_tokens = false, .parse_special = true});
    CHECK(r.out == csv(ids) + "\n");
    r = run_tool(dir, "detokenize --model " + q(ckpt) + " --ids " + csv(ids));
    CHECK(r.out == "Hello world, the answer!\n");
    r = run_tool(dir, "detokenize --model " + q(ckpt) + " --ids 296,72,297 --skip-special");
    CHECK(r.out == "H\n");
    r = run_tool(dir, "tokenize --model " + q(ckpt) + " --prompt Hi --chat --system 'Be brief.' --json");
    REQUIRE(r.rc == 0);
    const json j = json::parse(r.out);
    const std::vector<mdlm::text::chat_message> messages{{"system", "Be brief."}, {"user", "Hi"}};
    const std::string rendered = mdlm::text::apply_chat_template(tok, messages);
    CHECK(j["text"] == rendered);
    CHECK(j["ids"].get<std::vector<mdlm::token_id>>() == tok.encode(rendered, {.add_special_tokens = false, .parse_special = true}));
    CHECK(j["ids"][0] == 296);  // <|startoftext|> from the template
  }

  SECTION("generate: text prompt == the same ids, text output == decoded ids, streamed or not") {
    const std::string common = " --gen-length 8 --block-length 4 --steps 8 --policy llada-low-confidence";
    r = run_tool(dir, "tokenize --model " + q(ckpt) + " --prompt 'What is two plus two?' --chat");
    REQUIRE(r.rc == 0);
    const std::string ids = r.out.substr(0, r.out.size() - 1);
    const auto by_ids = run_tool(dir, "generate --model " + q(ckpt) + " --prompt-ids " + ids + common + " --json");
    INFO("stderr: " << by_ids.err);
    REQUIRE(by_ids.rc == 0);
    const auto by_text = run_tool(dir, "generate --model " + q(ckpt) + " --prompt 'What is two plus two?' --chat" + common + " --json");
    REQUIRE(by_text.rc == 0);
    const json a = json::parse(by_ids.out), b = json::parse(by_text.out);
    CHECK(a["prompt_ids"] == b["prompt_ids"]);
    CHECK(a["generated_ids"] == b["generated_ids"]);
    CHECK(a["unmask_step"] == b["unmask_step"]);
    const auto generated = b["generated_ids"].get<std::vector<mdlm::token_id>>();
    const std::string text = tok.decode(generated, {.skip_special_tokens = true, .clean_up_tokenization_spaces = std::nullopt});
    CHECK(b["text"] == text);
    CHECK(a["text"] == text);  // an ids prompt also reports the text when the checkpoint has a tokenizer
    CHECK(b["prompt_text"] == mdlm::text::apply_chat_template(tok, std::vector<mdlm::text::chat_message>{{"user", "What is two plus two?"}}));
    const auto plain = run_tool(dir, "generate --model " + q(ckpt) + " --prompt 'What is two plus two?' --chat" + common);
    REQUIRE(plain.rc == 0);
    CHECK(plain.out == text + "\n");
    CHECK_THAT(plain.err, Contains("llada") && Contains("model calls (NFE)"));
    const auto streamed = run_tool(dir, "generate --model " + q(ckpt) + " --prompt 'What is two plus two?' --chat --stream" + common);
    REQUIRE(streamed.rc == 0);
    CHECK(streamed.out == plain.out);
    write(dir / "prompt.txt", "What is two plus two?");
    const auto from_file = run_tool(dir, "generate --model " + q(ckpt) + " --prompt-file " + q(dir / "prompt.txt") + " --chat" + common);
    CHECK(from_file.out == plain.out);
  }

  SECTION("bad input: exit code 2 and one line naming the problem") {
    const auto bad = [&](const std::string& args, const std::string& message) {
      const auto b = run_tool(dir, args);
      INFO("mdlm " << args << "\nstderr: " << b.err);
      CHECK(b.rc == 2);
      CHECK_THAT(b.err, Contains(message));
      CHECK(std::count(b.err.begin(), b.err.end(), '\n') == 1);
    };
    const std::string gen = "generate --model " + q(ckpt) + " --gen-length 4";
    bad(gen + " --prompt Hi --prompt-ids 1", "give the prompt with one of");
    bad(gen + " --prompt-ids 1 --chat", "--chat needs a text prompt");
    bad(gen + " --prompt Hi --system S", "--system needs --chat");
    bad(gen + " --prompt-file " + q(dir / "absent.txt"), "absent.txt: no such file");
    write(dir / "bad.txt", "caf\xC3");
    bad(gen + " --prompt-file " + q(dir / "bad.txt"), "not valid UTF-8 (byte 3");
    // A checkpoint without tokenizer files: the text path names the file and the ids alternative.
    const auto bare = dir / "bare";
    REQUIRE(run_tool(dir, "make-checkpoint --arch llada --layers 1 --d-model 32 --heads 2 --kv-heads 2 --mlp 48 --out " + q(bare)).rc == 0);
    bad("generate --model " + q(bare) + " --prompt Hi", "tokenizer.json is missing");
    bad("generate --model " + q(bare) + " --prompt Hi", "--prompt-ids");
    CHECK(run_tool(dir, "generate --model " + q(bare) + " --prompt-ids 1,2 --gen-length 4").rc == 0);
    // Malformed tokenizer.json, unsupported chat template.
    const auto broken = dir / "broken";
    fs::create_directories(broken);
    write(broken / "tokenizer.json", "{\"model\": ");
    bad("generate --model " + q(ckpt) + " --tokenizer " + q(broken) + " --prompt Hi", "not valid JSON");
    fs::copy_file(tiny_tokenizer / "tokenizer.json", broken / "tokenizer.json", fs::copy_options::overwrite_existing);
    write(broken / "tokenizer_config.json", R"({"chat_template": "{{ messages | wordcount }}"})");
    bad("generate --model " + q(ckpt) + " --tokenizer " + q(broken) + " --prompt Hi --chat", "drop --chat");
    bad("tokenize --model " + q(broken) + " --prompt Hi --chat", "filter 'wordcount' is not supported");
    bad("detokenize --model " + q(ckpt) + " --ids 1,x", "'x' is not a token id");
    bad("detokenize --model " + q(ckpt) + " --ids 1,400", "outside the vocabulary");
    bad("make-checkpoint --arch dream --vocab 64 --tokenizer " + q(tiny_tokenizer) + " --out " + q(dir / "small"), "smaller than the tokenizer's 302 ids");
  }
  fs::remove_all(dir);
}

TEST_CASE("text prompts end to end on a tiny Dream checkpoint with Dream's published tokenizer files", "[.real_text]") {
  const fs::path dream = fs::path(MDLM_SHARED_MODELS_DIR) / "dream-v0-instruct-7b";
  if (!fs::exists(dream / "vocab.json")) {
    WARN("SKIPPED: shared models not found at " << MDLM_SHARED_MODELS_DIR);
    return;
  }
  const auto dir = scratch("dream");
  const auto ckpt = dir / "ckpt";
  auto r = run_tool(dir, "make-checkpoint --arch dream --layers 1 --d-model 32 --heads 2 --kv-heads 1 --mlp 48 --tokenizer " + q(dream) +
                             " --out " + q(ckpt));
  INFO("stderr: " << r.err);
  REQUIRE(r.rc == 0);
  CHECK_THAT(r.out, Contains("vocabulary 151680") && Contains("mask id 151666"));
  const auto tok = mdlm::text::tokenizer::load(ckpt);
  r = run_tool(dir, "generate --model " + q(ckpt) + " --prompt 'Hello' --chat --gen-length 6 --steps 6 --policy dream-entropy --json");
  REQUIRE(r.rc == 0);
  const json j = json::parse(r.out);
  const auto prompt = j["prompt_ids"].get<std::vector<mdlm::token_id>>();
  // <|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n
  CHECK(prompt.front() == 151644);
  CHECK(tok.decode(prompt) == "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n");
  CHECK(j["text"] == tok.decode(j["generated_ids"].get<std::vector<mdlm::token_id>>(), {.skip_special_tokens = true, .clean_up_tokenization_spaces = std::nullopt}));
  fs::remove_all(dir);
}
#endif
