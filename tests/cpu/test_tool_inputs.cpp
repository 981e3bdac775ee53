// SPDX-License-Identifier: MIT
// The reliability audit's hostile inputs (issue 13, tests/README.md lists them with their messages):
// each is rejected with a clear message (tools: exit code 2, one line on stderr), nothing the user
// has is overwritten by a failed command, and no input makes the tool or the reader hang or grow
// memory without bound.
#ifdef MDLM_TOOL_PATH
#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <catch2/catch.hpp>
#include <span>
#include <filesystem>
#include <string>
#include <thread>

#include "mdlm/cpu/checkpoint_names.hpp"
#include "mdlm/cpu/make_checkpoint.hpp"
#include "mdlm/cpu/model.hpp"
#include "support.hpp"

using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

std::string q(const fs::path& p) {
  std::string s(1, '\'');
  s += p.string();
  s += '\'';
  return s;
}

mdlm::test::tool_result tool(const fs::path& dir, const std::string& args) {
  return mdlm::test::run_tool(MDLM_TOOL_PATH, dir, args);
}

//! `args` fails with exit code 2 and one line on stderr containing `message`.
void rejects(const fs::path& dir, const std::string& args, const std::string& message) {
  INFO("mdlm " << args);
  const auto r = tool(dir, args);
  CHECK(r.rc == 2);
  CHECK_THAT(r.err, Contains(message));
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
}

//! The shape of CK (tests/README.md).
mdlm::cpu::tiny_checkpoint_spec tiny_spec() {
  mdlm::cpu::tiny_checkpoint_spec s;
  s.layers = 2;
  s.d_model = 64;
  s.heads = 4;
  s.kv_heads = 2;
  s.mlp = 96;
  s.vocab = 320;
  s.seed = 1;
  return s;
}

fs::path tiny(const fs::path& dir) {
  const auto ck = dir / "CK";
  mdlm::cpu::write_tiny_checkpoint(tiny_spec(), ck);
  return ck;
}

//! config.json of `ck` with `key`'s value text replaced (first occurrence) by `value`.
std::string edited_config(const fs::path& ck, const std::string& key, const std::string& value) {
  std::string c = mdlm::test::read_file(ck / "config.json");
  const auto at = c.find("\"" + key + "\"");
  REQUIRE(at != std::string::npos);
  const auto colon = c.find(':', at), end = c.find_first_of(",}", colon);
  std::string out = c.substr(0, colon + 1);
  out += ' ';
  out += value;
  out += c.substr(end);
  return out;
}

}  // namespace

TEST_CASE("tool: integer options are decimal and non-negative", "[cpu][tool][audit]") {
  const auto dir = mdlm::test::scratch_dir("inputs_int");
  const auto ck = tiny(dir);
  const std::string gen = "generate --model " + q(ck) + " --prompt-ids 1,2,3 ";
  rejects(dir, gen + "--gen-length 8 --steps -1", "--steps: -1 is negative");
  rejects(dir, gen + "--gen-length 8 --seed -1", "--seed: -1 is negative");
  rejects(dir, gen + "--gen-length -1", "--gen-length: -1 is negative");
  rejects(dir, gen + "--gen-length 8x", "--gen-length: 8x is not a decimal integer");
  rejects(dir, "eval -n -1", "--n: -1 is negative");
  // Policy parameters are checked before the weights load: a FIFO in place of the weights would
  // block a load, so a rejection here shows the order.
  const auto lazy = dir / "lazy";
  fs::copy(ck, lazy, fs::copy_options::recursive);
  fs::remove(lazy / "model.safetensors");
  REQUIRE(::mkfifo((lazy / "model.safetensors").c_str(), 0600) == 0);
  rejects(dir, "generate --model " + q(lazy) + " --prompt-ids 1 --policy med --lambda -1", "lambda");
  rejects(dir, "generate --model " + q(lazy) + " --prompt-ids 1 --policy eb --gamma -2", "gamma");
  // 010 is ten, not octal eight: 3 prompt tokens + 10 generated.
  const auto r = tool(dir, gen + "--gen-length 010 --steps 10 --json");
  REQUIRE(r.rc == 0);
  CHECK_THAT(r.out, Contains("\"nfe\":10"));
  fs::remove_all(dir);
}

TEST_CASE("cpu model: thread counts are bounded", "[cpu][tool][audit]") {
  const auto dir = mdlm::test::scratch_dir("inputs_threads");
  const auto ck = tiny(dir);
  CHECK_THROWS_WITH(mdlm::cpu::model::load(ck, {.threads = 100000}), Contains("threads = 100000 must lie in [0, 256]"));
  CHECK_THROWS_WITH(mdlm::cpu::model::load(ck, {.threads = -1}), Contains("threads = -1"));
  const auto m = mdlm::cpu::model::load(ck, {.threads = 0});
  CHECK(m.threads() >= 1);
  CHECK(m.threads() <= static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  rejects(dir, "eval --model " + q(ck) + " --threads -3", "--threads");
  rejects(dir, "eval --model " + q(ck) + " --threads 100000", "--threads");
  fs::remove_all(dir);
}

TEST_CASE("checkpoint reader: sizes, types and duplicates in config.json", "[cpu][tool][audit]") {
  const auto dir = mdlm::test::scratch_dir("inputs_config");
  const auto ck = tiny(dir);
  auto bad = [&](const std::string& key, const std::string& value, const std::string& message) {
    INFO(key << " = " << value);
    CHECK_THROWS_WITH(mdlm::hf::parse_model_config(edited_config(ck, key, value), "config.json"), Contains(message));
  };
  bad("n_layers", "1000000000000", "exceeds the largest supported size");
  bad("n_layers", "5000", "n_layers = 5000 exceeds the largest supported 4096");
  bad("rms_norm_eps", "1e308", "rms_norm_eps = 1e+308 must be a number in (0, 1)");
  bad("alibi", "\"yes\"", "alibi = \"yes\" must be true or false");
  bad("eos_token_id", "100000", "eos_token_id = 100000 is outside the vocabulary [0, 320)");
  std::string dup = mdlm::test::read_file(ck / "config.json");
  dup.insert(dup.find('{') + 1, "\"d_model\": 32, ");
  CHECK_THROWS_WITH(mdlm::hf::parse_model_config(dup, "config.json"), Contains("duplicate key \"d_model\""));
  // A directory in place of config.json, and a FIFO in place of the weights: errors, no hang.
  const auto d2 = dir / "dir_config";
  fs::create_directories(d2 / "config.json");
  CHECK_THROWS_WITH(mdlm::hf::read_model_config(d2), Contains("not a regular file"));
  const auto d3 = dir / "fifo";
  fs::copy(ck, d3, fs::copy_options::recursive);
  fs::remove(d3 / "model.safetensors");
  REQUIRE(::mkfifo((d3 / "model.safetensors").c_str(), 0600) == 0);
  CHECK_THROWS_WITH(mdlm::cpu::model::load(d3), Contains("not a regular file"));
  rejects(dir, "info --model " + q(d3), "not a regular file");
  fs::remove_all(dir);
}

TEST_CASE("safetensors reader: messages never echo raw binary", "[cpu][tool][audit]") {
  const std::string img = mdlm::test::safetensors_image(std::string("\x80\xff{}", 4), "");
  try {
    (void)mdlm::hf::parse_safetensors(std::as_bytes(std::span<const char>(img.data(), img.size())), "f");
    FAIL("a malformed header was accepted");
  } catch (const mdlm::hf::checkpoint_error& e) {
    const std::string m = e.what();
    CHECK(std::all_of(m.begin(), m.end(), [](char c) {
      const auto u = static_cast<unsigned char>(c);
      return u >= 0x20 && u < 0x7f;
    }));
    CHECK_THAT(m, Contains("\\x"));
  }
}

TEST_CASE("tool: input files are bounded regular files", "[cpu][tool][audit]") {
  const auto dir = mdlm::test::scratch_dir("inputs_files");
  const auto ck = tiny(dir);
  const std::string gen = "generate --model " + q(ck) + " --gen-length 4 ";
  rejects(dir, gen + "--prompt-ids-file /dev/zero", "--prompt-ids-file /dev/zero: not a regular file");
  rejects(dir, gen + "--prompt-ids-file " + q(dir), "not a regular file");
  rejects(dir, gen + "--prompt-ids-file " + q(dir / "missing"), "no such file");
  fs::remove_all(dir);
}

TEST_CASE("tool: nothing the user has is overwritten by a failed or mistyped command", "[cpu][tool][audit]") {
  const auto dir = mdlm::test::scratch_dir("inputs_clobber");
  const auto ck = tiny(dir);
  const std::string before = mdlm::test::fnv1a64_hex(ck / "model.safetensors");
  const std::string mk = "make-checkpoint --arch llada --layers 1 --d-model 32 --heads 2 --kv-heads 2 --mlp 48 --seed 9 --out ";
  rejects(dir, mk + q(ck), "already exists; choose another directory or pass --force");
  CHECK(mdlm::test::fnv1a64_hex(ck / "model.safetensors") == before);
  // A failing run (bad --dtype is caught by the parser; a bad tokenizer fails in the callback)
  // leaves neither the old directory changed nor a partial one behind.
  rejects(dir, mk + q(ck) + " --force --tokenizer " + q(dir / "no-such-tokenizer"), "no-such-tokenizer");
  CHECK(mdlm::test::fnv1a64_hex(ck / "model.safetensors") == before);
  for (const auto& e : fs::directory_iterator(dir)) CHECK(e.path().filename().string().find(".partial-") == std::string::npos);
  REQUIRE(tool(dir, mk + q(ck) + " --force").rc == 0);
  CHECK(mdlm::test::fnv1a64_hex(ck / "model.safetensors") != before);
  // eval --records / posterior --out keep an existing file when the command fails before the end.
  const auto records = dir / "records.jsonl";
  mdlm::test::write_file(records, "precious\n");
  const auto r = tool(dir, "eval --model " + q(ck) + " --records " + q(records));
  CHECK(r.rc != 0);
  CHECK(mdlm::test::read_file(records) == "precious\n");
  const auto problems = dir / "problems.jsonl";
  mdlm::test::write_file(problems, "{}\n");
  rejects(dir, "posterior --model " + q(ck) + " --problems " + q(problems) + " --out " + q(problems),
          "is also an input of this command");
  CHECK(mdlm::test::read_file(problems) == "{}\n");
  fs::remove_all(dir);
}
TEST_CASE("checkpoint reader: info and generate apply one rule to the index's total_size", "[cpu][tool][audit]") {
  const auto dir = mdlm::test::scratch_dir("inputs_total_size");
  const auto ck = tiny(dir);
  // One shard named by an index; total_size stated right, wrong, or not at all.
  std::uint64_t bytes = 0;
  std::string map;
  {
    const mdlm::cpu::safetensors_file f(ck / "model.safetensors");
    for (const auto& t : f.header().tensors) {
      bytes += t.end - t.begin;
      map += (map.empty() ? "" : ", ") + ("\"" + t.name + "\": \"model-00001-of-00001.safetensors\"");
    }
  }
  fs::rename(ck / "model.safetensors", ck / "model-00001-of-00001.safetensors");
  const auto index = [&](const std::string& metadata) {
    mdlm::test::write_file(ck / "model.safetensors.index.json", "{" + metadata + "\"weight_map\": {" + map + "}}");
  };
  const std::string info = "info --model " + q(ck);
  const std::string gen = "generate --model " + q(ck) + " --prompt-ids 1,2,3 --gen-length 4 --steps 4";
  for (const std::string& metadata :
       {std::string(), std::string("\"metadata\": {},"), "\"metadata\": {\"total_size\": " + std::to_string(bytes) + "},"}) {
    INFO(metadata);
    index(metadata);
    CHECK(tool(dir, info).rc == 0);
    CHECK(tool(dir, gen).rc == 0);
  }
  index("\"metadata\": {\"total_size\": " + std::to_string(bytes + 2) + "},");
  rejects(dir, info, "metadata.total_size = " + std::to_string(bytes + 2) + " bytes, but the tensors it lists hold " +
                         std::to_string(bytes) + " bytes");
  rejects(dir, gen, "metadata.total_size = " + std::to_string(bytes + 2) + " bytes, but the tensors it lists hold");
  index("\"metadata\": {\"total_size\": \"12\"},");
  rejects(dir, info, "metadata.total_size = \"12\" is not a non-negative integer byte count");
  rejects(dir, gen, "metadata.total_size = \"12\" is not a non-negative integer byte count");
  // Without the shard, info checks the metadata alone, by the same rule: absent is accepted.
  fs::remove(ck / "model-00001-of-00001.safetensors");
  index("");
  const auto r = tool(dir, info);
  CHECK(r.rc == 0);
  CHECK_THAT(r.out, Contains("index total_size not stated (weights absent: index metadata checked)"));
  fs::remove_all(dir);
}

TEST_CASE("checkpoint reader: the index text is parsed strictly", "[cpu][audit]") {
  using mdlm::cpu::parse_weight_index;
  const auto ok = parse_weight_index(R"({"metadata": {"total_size": 8}, "weight_map": {"a": "x.safetensors"}})", "I");
  CHECK(ok.total_size == std::optional<std::uint64_t>(8));
  CHECK(ok.weight_map.at("a") == "x.safetensors");
  CHECK_FALSE(parse_weight_index(R"({"weight_map": {}})", "I").total_size.has_value());
  CHECK_THROWS_WITH(parse_weight_index(R"({"weight_map": {"a": "x", "a": "y"}})", "I"), Contains("I: duplicate key \"a\""));
  CHECK_THROWS_WITH(parse_weight_index(R"({"metadata": {"total_size": -1}, "weight_map": {}})", "I"),
                    Contains("metadata.total_size = -1 is not a non-negative integer"));
  CHECK_THROWS_WITH(parse_weight_index(R"({"metadata": 3, "weight_map": {}})", "I"), Contains("metadata = 3 is not an object"));
  CHECK_THROWS_WITH(parse_weight_index(R"({"weight_map": {"a": "../x"}})", "I"), Contains("invalid shard file"));
  CHECK_THROWS_WITH(parse_weight_index(R"({"weight_map": {"a": 1}})", "I"), Contains("is not a file name"));
  CHECK_THROWS_WITH(parse_weight_index("[]", "I"), Contains("missing weight_map object"));
  // Non-ASCII bytes in names come back escaped; so do control bytes the JSON parser quotes.
  for (const auto& [text, shown] : {std::pair<std::string, std::string>{"{\"weight_map\": {\"a\xc3\xa9\": 2}}", "a\\xc3\\xa9"},
                                    std::pair<std::string, std::string>{"{\"weight_map\": {\"a\x01\": 2}}", "malformed JSON"}}) {
    try {
      (void)parse_weight_index(text, "I");
      FAIL("accepted");
    } catch (const mdlm::cpu::checkpoint_error& e) {
      const std::string m = e.what();
      CHECK_THAT(m, Contains(shown));
      CHECK(std::none_of(m.begin(), m.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f; }));
    }
  }
}

TEST_CASE("tool: harness commands refuse a question longer than the model's maximum length", "[cpu][tool][audit]") {
  const auto dir = mdlm::test::scratch_dir("inputs_long_question");
  const fs::path root = fs::path(MDLM_GOLDEN_DATA_DIR) / ".." / ".." / "..";
  const fs::path shipped = root / "reference" / "models" / "arith-llada-3m";
  std::string question;
  for (int i = 0; i < 12; ++i) question += "Emma has 4 flowers. She gets 29 more flowers from her mom. ";
  question += "How many flowers does Emma have in the end?";
  const auto problems = dir / "long.jsonl";
  mdlm::test::write_file(problems, "{\"id\": 7, \"question\": \"" + question +
                                       "\", \"steps\": [\"4+29=33\"], \"answer\": 33}\n");
  const std::string data = " --model " + q(shipped) + " --problems " + q(problems) + " -n 1";
  const std::string message = "more than the model's max_sequence_length 256";
  rejects(dir, "eval" + data, "problem id 7: its question (");
  rejects(dir, "eval" + data, message);
  rejects(dir, "eval --no-template" + data, message);
  rejects(dir, "solve" + data, message);
  rejects(dir, "posterior" + data + " --out " + q(dir / "traces.jsonl"), message);
  fs::remove_all(dir);
}

// An address-space limit (ulimit -v) makes allocations fail deterministically. AddressSanitizer
// reserves terabytes of shadow memory and cannot run under one, so the sanitizer build skips this.
// Hidden tag [.oom]: ctest runs it as its own test, cpu_out_of_memory (tests/cpu/CMakeLists.txt),
// which reports the skip as skipped.
TEST_CASE("tool: out of memory says what ran out and how much it needed", "[cpu][tool][audit][.oom]") {
#if defined(__SANITIZE_ADDRESS__)
  WARN("SKIPPED: AddressSanitizer cannot run under an address-space limit");
  return;
#else
  const auto dir = mdlm::test::scratch_dir("inputs_memory");
  auto s = tiny_spec();
  s.max_sequence_length = std::size_t{1} << 24;
  mdlm::cpu::write_tiny_checkpoint(s, dir / "long");
  // Weights of 2 x 65536 x 1024 parameters and one small layer: 265 MiB as stored (bf16), 529 MiB as fp32. The
  // process's own address space (libraries, OpenBLAS's buffers, thread stacks) differs between
  // machines, so the limit is found here: the smallest of a 64 MiB-step sweep under which the bf16
  // load runs. The fp32 load needs 265 MiB more, so under that limit it must fail, in the load.
  s.layers = 1;
  s.d_model = 1024;
  s.heads = 8;
  s.kv_heads = 8;
  s.vocab = 65536;
  s.max_sequence_length = 64;
  mdlm::cpu::write_tiny_checkpoint(s, dir / "wide");
  const std::string wide = "generate --model " + q(dir / "wide") + " --prompt-ids 1,2,3 --gen-length 4 --steps 1";
  std::string fits;
  for (int kib = 256 * 1024; kib <= 4096 * 1024 && fits.empty(); kib += 64 * 1024) {
    const std::string lim = "ulimit -v " + std::to_string(kib) + ";";
    if (mdlm::test::run_tool(MDLM_TOOL_PATH, dir, wide, lim).rc == 0) fits = lim;
  }
  REQUIRE_FALSE(fits.empty());
  INFO(fits);
  auto r = mdlm::test::run_tool(MDLM_TOOL_PATH, dir, wide + " --weights fp32", fits);
  CHECK(r.rc == 1);
  CHECK_THAT(r.err, Contains("out of memory loading " + (dir / "wide").string() + ": its weights need 529.1 MiB as fp32 (138710016 parameters x 4 bytes)"));
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  CHECK(mdlm::test::run_tool(MDLM_TOOL_PATH, dir, wide, fits).rc == 0);
  // A decode whose logits alone (4.8 GiB) exceed the same limit fails in the decode, saying so.
  r = mdlm::test::run_tool(MDLM_TOOL_PATH, dir,
                           "generate --model " + q(dir / "long") + " --prompt-ids 1,2,3 --gen-length 4000000 --steps 1", fits);
  CHECK(r.rc == 1);
  CHECK_THAT(r.err, Contains("out of memory decoding: the logits of 4000003 positions x 320 tokens need 4.8 GiB"));
  CHECK_THAT(r.err, Contains("the address-space limit (ulimit -v) is "));
  rejects(dir, "generate --model " + q(dir / "wide") + " --prompt-ids 1 --gen-length 4 --weights fp16", "--weights");
  fs::remove_all(dir);
#endif
}

TEST_CASE("tool: solve reports invalid logits instead of grading them", "[cpu][tool][audit]") {
  const auto dir = mdlm::test::scratch_dir("inputs_nan");
  const fs::path root = fs::path(MDLM_GOLDEN_DATA_DIR) / ".." / ".." / "..";
  const fs::path shipped = root / "reference" / "models" / "arith-llada-3m";
  REQUIRE(fs::exists(shipped / "model.safetensors"));
  const auto ck = dir / "nan-model";
  fs::copy(shipped, ck, fs::copy_options::recursive);
  // Every weight byte 0xFF: bf16 / fp32 NaN everywhere after the header.
  std::string image = mdlm::test::read_file(ck / "model.safetensors");
  std::uint64_t header = 0;
  for (int i = 7; i >= 0; --i) header = (header << 8) | static_cast<unsigned char>(image[static_cast<std::size_t>(i)]);
  std::fill(image.begin() + static_cast<std::ptrdiff_t>(8 + header), image.end(), '\xff');
  mdlm::test::write_file(ck / "model.safetensors", image);
  const auto r = tool(dir, "solve --model " + q(ck) + " -n 1 --problems " +
                              q(root / "reference" / "tasks" / "data" / "arith_test.jsonl"));
  CHECK(r.rc == 1);
  CHECK_THAT(r.err, Contains("invalid logit row"));
  CHECK_THAT(r.out, !Contains("WRONG"));
  fs::remove_all(dir);
}
#endif
