// SPDX-License-Identifier: MIT
// config.json parsing, checkpoint directories (single file and sharded) validated against the
// config, and the metadata of the real LLaDA-8B-Instruct / Dream-v0-Instruct-7B checkpoints.
#include "mdlm/cpu/checkpoint_names.hpp"

#include <catch2/catch.hpp>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <vector>

#include "mdlm/cpu/make_checkpoint.hpp"
#include "support.hpp"

using Catch::Matchers::Contains;
using namespace mdlm::cpu;
using json = nlohmann::json;

namespace {

// shared/models beside the clone (path computed in tests/cpu/CMakeLists.txt), or the directory named
// by the environment variable MDLM_SHARED_MODELS_DIR.
std::filesystem::path shared_models_dir() {
  const char* env = std::getenv("MDLM_SHARED_MODELS_DIR");
  return env != nullptr && *env != '\0' ? std::filesystem::path(env) : std::filesystem::path(MDLM_SHARED_MODELS_DIR);
}

json tiny_config(architecture a) {
  tiny_checkpoint_spec s;
  s.arch = a;
  return json::parse(tiny_config_json(s));
}

model_config parse(const json& j) { return parse_model_config(j.dump(), "config.json"); }

// Rewrites a checkpoint's model.safetensors with `edit` applied to its (name -> values, shape) set.
template <class Edit>
void rewrite_weights(const std::filesystem::path& dir, Edit edit) {
  std::vector<std::string> names;
  std::vector<std::vector<std::uint64_t>> shapes;
  std::vector<std::vector<float>> values;
  {
    const safetensors_file f(dir / "model.safetensors");
    for (const auto& t : f.header().tensors) {
      names.push_back(t.name);
      shapes.push_back(t.shape);
      values.emplace_back(t.numel());
      f.read_f32(t.name, values.back());
    }
  }
  edit(names, shapes, values);
  std::vector<tensor_view> views;
  for (std::size_t i = 0; i < names.size(); ++i) views.push_back({names[i], shapes[i], values[i]});
  write_safetensors(dir / "model.safetensors", views, dtype::bf16);
}

}  // namespace

TEST_CASE("config.json: architecture from model_type / architectures, never the folder", "[config]") {
  const auto llada = parse(tiny_config(architecture::llada));
  CHECK(llada.arch == architecture::llada);
  CHECK(llada.d_model == 64);
  CHECK(llada.n_heads == 4);
  CHECK(llada.n_kv_heads == 4);
  CHECK(llada.head_dim == 16);
  CHECK(llada.mlp_hidden == 96);
  CHECK(llada.vocab_size == 320);
  CHECK(llada.rms_norm_eps == 1e-5);
  CHECK(llada.rope_theta == 500000.0);
  CHECK_FALSE(llada.qkv_bias);
  CHECK_FALSE(llada.shift_logits);
  CHECK(llada.mask_token == 300);
  CHECK(llada.eos_token == 299);

  const auto dream = parse(tiny_config(architecture::dream));
  CHECK(dream.arch == architecture::dream);
  CHECK(dream.rms_norm_eps == 1e-6);
  CHECK(dream.rope_theta == 1e6);
  CHECK(dream.qkv_bias);
  CHECK(dream.shift_logits);

  auto j = tiny_config(architecture::dream);
  j.erase("model_type");
  CHECK(parse(j).arch == architecture::dream);  // from architectures alone
  j["architectures"] = {"MistralForCausalLM"};
  CHECK_THROWS_WITH(parse(j), Contains("config.json") && Contains("unknown architecture") && Contains("MistralForCausalLM"));
  j = tiny_config(architecture::llada);
  j["model_type"] = "LLaDA";  // case-insensitive
  j.erase("architectures");
  CHECK(parse(j).arch == architecture::llada);
}

TEST_CASE("config.json: inconsistent or unsupported settings are rejected by name", "[config]") {
  auto check = [](architecture a, const char* key, json value, const char* message) {
    auto j = tiny_config(a);
    if (value.is_null()) j.erase(key);
    else j[key] = value;
    CHECK_THROWS_WITH(parse(j), Contains("config.json") && Contains(message));
  };
  check(architecture::llada, "d_model", nullptr, "missing d_model");
  check(architecture::llada, "n_heads", 5, "not a multiple of n_heads");
  check(architecture::llada, "n_kv_heads", 3, "not a multiple of n_kv_heads");
  check(architecture::llada, "n_layers", 0, "n_layers = 0 must be a positive integer");
  check(architecture::llada, "mask_token_id", 320, "mask_token_id = 320 is outside the vocabulary");
  check(architecture::llada, "mask_token_id", nullptr, "missing mask_token_id");
  check(architecture::llada, "alibi", true, "alibi = true is not supported");
  check(architecture::llada, "include_qkv_bias", true, "include_qkv_bias");
  check(architecture::llada, "activation_type", "gelu", "activation_type");
  check(architecture::llada, "embedding_size", 300, "embedding_size = 300 is smaller than vocab_size = 320");
  check(architecture::dream, "num_key_value_heads", 3, "not a multiple of n_kv_heads");
  check(architecture::dream, "hidden_act", "gelu", "hidden_act");
  check(architecture::dream, "rope_scaling", json{{"type", "yarn"}}, "rope_scaling");
  CHECK_THROWS_WITH(parse_model_config("{\"d_model\": ", "c.json"), Contains("c.json") && Contains("malformed JSON"));
  auto j = tiny_config(architecture::dream);
  j["hidden_size"] = 40;  // head_dim 10: even, fine
  CHECK(parse(j).head_dim == 10);
  j["hidden_size"] = 36;  // head_dim 9: odd
  CHECK_THROWS_WITH(parse(j), Contains("head_dim 9 must be even"));
  j = tiny_config(architecture::llada);
  j["multi_query_attention"] = true;
  CHECK(parse(j).n_kv_heads == 1);
  j = tiny_config(architecture::llada);
  j.erase("mlp_hidden_size");
  CHECK(parse(j).mlp_hidden == 4 * 64);  // mlp_ratio * d_model
}

TEST_CASE("a generated checkpoint opens, validates and converts", "[checkpoint]") {
  const auto dir = mdlm::test::scratch_dir("ckpt-ok");
  tiny_checkpoint_spec spec;
  spec.arch = architecture::dream;
  spec.kv_heads = 2;
  spec.seed = 5;
  write_tiny_checkpoint(spec, dir / "m");
  const auto ck = checkpoint::open(dir / "m");
  CHECK(ck.config().arch == architecture::dream);
  CHECK(ck.file_count() == 1);
  CHECK(ck.tensor_names().size() == expected_tensors(ck.config()).size());
  CHECK(ck.info("model.layers.1.self_attn.k_proj.weight").shape == std::vector<std::uint64_t>{32, 64});
  CHECK(ck.info("model.layers.0.self_attn.q_proj.bias").type == dtype::bf16);
  CHECK_THROWS_WITH(ck.info("lm_head.bias"), Contains("no tensor lm_head.bias"));
  std::vector<float> norm(64);
  ck.read_f32("model.norm.weight", norm);
  for (float x : norm) CHECK((x >= 0.79f && x <= 1.21f));
  CHECK(ck.config().bos_token == 299);

  SECTION("same spec, same bytes; another seed, other bytes") {
    write_tiny_checkpoint(spec, dir / "again");
    CHECK(mdlm::test::read_file(dir / "m" / "model.safetensors") == mdlm::test::read_file(dir / "again" / "model.safetensors"));
    spec.seed = 6;
    write_tiny_checkpoint(spec, dir / "other");
    CHECK(mdlm::test::read_file(dir / "m" / "model.safetensors") != mdlm::test::read_file(dir / "other" / "model.safetensors"));
  }
  SECTION("fp16 and fp32 checkpoints hold the same values up to their rounding") {
    spec.type = dtype::f32;
    write_tiny_checkpoint(spec, dir / "f32");
    spec.type = dtype::f16;
    write_tiny_checkpoint(spec, dir / "f16");
    const auto c32 = checkpoint::open(dir / "f32");
    const auto c16 = checkpoint::open(dir / "f16");
    CHECK(c32.info("lm_head.weight").type == dtype::f32);
    CHECK(c16.info("lm_head.weight").type == dtype::f16);
    std::vector<float> w32(320 * 64), w16(320 * 64), wbf(320 * 64);
    c32.read_f32("lm_head.weight", w32);
    c16.read_f32("lm_head.weight", w16);
    ck.read_f32("lm_head.weight", wbf);
    for (std::size_t i = 0; i < w32.size(); ++i) {
      REQUIRE(wbf[i] == bf16_to_f32(f32_to_bf16(w32[i])));
      REQUIRE(w16[i] == f16_to_f32(f32_to_f16(w32[i])));
    }
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("checkpoint errors name the directory, file and tensor", "[checkpoint]") {
  const auto dir = mdlm::test::scratch_dir("ckpt-bad");
  tiny_checkpoint_spec spec;  // LLaDA-tiny
  const auto m = dir / "m";
  write_tiny_checkpoint(spec, m);

  SECTION("missing directory") {
    CHECK_THROWS_WITH(checkpoint::open(dir / "nowhere"), Contains("nowhere") && Contains("does not exist"));
  }
  SECTION("missing config.json") {
    std::filesystem::remove(m / "config.json");
    CHECK_THROWS_WITH(checkpoint::open(m), Contains("config.json") && Contains("missing file"));
  }
  SECTION("missing weights file") {
    std::filesystem::remove(m / "model.safetensors");
    CHECK_THROWS_WITH(checkpoint::open(m), Contains("missing weights"));
  }
  SECTION("truncated weights file") {
    const auto bytes = mdlm::test::read_file(m / "model.safetensors");
    mdlm::test::write_file(m / "model.safetensors", std::string_view(bytes).substr(0, bytes.size() / 2));
    CHECK_THROWS_WITH(checkpoint::open(m), Contains("model.safetensors") && Contains("truncated"));
  }
  SECTION("shape mismatch: config says another size") {
    auto j = json::parse(mdlm::test::read_file(m / "config.json"));
    j["mlp_hidden_size"] = 128;
    mdlm::test::write_file(m / "config.json", j.dump());
    CHECK_THROWS_WITH(checkpoint::open(m), Contains("model.safetensors") && Contains("model.transformer.blocks.0.ff_proj.weight") &&
                                               Contains("[96, 64]") && Contains("[128, 64]"));
  }
  SECTION("missing tensor") {
    rewrite_weights(m, [](auto& names, auto& shapes, auto& values) {
      for (std::size_t i = 0; i < names.size(); ++i)
        if (names[i] == "model.transformer.blocks.1.up_proj.weight") {
          names.erase(names.begin() + static_cast<std::ptrdiff_t>(i));
          shapes.erase(shapes.begin() + static_cast<std::ptrdiff_t>(i));
          values.erase(values.begin() + static_cast<std::ptrdiff_t>(i));
          break;
        }
    });
    CHECK_THROWS_WITH(checkpoint::open(m), Contains("missing tensor model.transformer.blocks.1.up_proj.weight"));
  }
  SECTION("unexpected tensor, unless allowed") {
    rewrite_weights(m, [](auto& names, auto& shapes, auto& values) {
      names.push_back("model.transformer.blocks.0.q_proj.bias");
      shapes.push_back({64});
      values.emplace_back(64, 0.0f);
    });
    CHECK_THROWS_WITH(checkpoint::open(m), Contains("unexpected tensor model.transformer.blocks.0.q_proj.bias"));
    CHECK(checkpoint::open(m, {.allow_unexpected_tensors = true}).tensor_names().size() == 22);
  }
  SECTION("unknown architecture") {
    auto j = json::parse(mdlm::test::read_file(m / "config.json"));
    j["model_type"] = "gpt2";
    j["architectures"] = {"GPT2LMHeadModel"};
    mdlm::test::write_file(m / "config.json", j.dump());
    CHECK_THROWS_WITH(checkpoint::open(m), Contains("unknown architecture"));
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("sharded checkpoints resolve every tensor through the index", "[checkpoint]") {
  const auto dir = mdlm::test::scratch_dir("ckpt-shards");
  tiny_checkpoint_spec spec;
  spec.arch = architecture::llada;
  spec.kv_heads = 2;
  const auto single = dir / "single";
  const auto sharded = dir / "sharded";
  write_tiny_checkpoint(spec, single);
  std::filesystem::create_directories(sharded);
  std::filesystem::copy_file(single / "config.json", sharded / "config.json");

  // Split round-robin over three shards, so that a layer straddles shards as in LLaDA-8B.
  const safetensors_file f(single / "model.safetensors");
  std::vector<std::vector<float>> values;
  std::vector<std::vector<tensor_view>> shards(3);
  json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", json::object()}};
  values.reserve(f.header().tensors.size());
  std::size_t i = 0;
  for (const auto& t : f.header().tensors) {
    values.emplace_back(t.numel());
    f.read_f32(t.name, values.back());
    const std::size_t s = i++ % 3;
    shards[s].push_back({t.name, t.shape, values.back()});
    index["weight_map"][t.name] = "model-0000" + std::to_string(s + 1) + "-of-00003.safetensors";
    index["metadata"]["total_size"] = index["metadata"]["total_size"].get<std::uint64_t>() + (t.end - t.begin);
  }
  for (std::size_t s = 0; s < 3; ++s)
    write_safetensors(sharded / ("model-0000" + std::to_string(s + 1) + "-of-00003.safetensors"), shards[s]);
  mdlm::test::write_file(sharded / "model.safetensors.index.json", index.dump(1));

  const auto a = checkpoint::open(single);
  const auto b = checkpoint::open(sharded);
  CHECK(b.file_count() == 3);
  CHECK(a.tensor_names() == b.tensor_names());
  for (const auto& name : a.tensor_names()) {
    std::vector<float> x(a.info(name).numel()), y(b.info(name).numel());
    a.read_f32(name, x);
    b.read_f32(name, y);
    REQUIRE(x == y);
  }
  CHECK(b.file_of("model.transformer.wte.weight").filename().string().starts_with("model-0000"));

  SECTION("index pointing at the wrong shard") {
    auto bad = index;
    const std::string name = "model.transformer.ln_f.weight";
    const std::string right = bad["weight_map"][name];
    bad["weight_map"][name] = right == "model-00001-of-00003.safetensors" ? "model-00002-of-00003.safetensors"
                                                                          : "model-00001-of-00003.safetensors";
    mdlm::test::write_file(sharded / "model.safetensors.index.json", bad.dump());
    CHECK_THROWS_WITH(checkpoint::open(sharded), Contains("no tensor " + name) && Contains("maps it here"));
  }
  SECTION("missing shard file") {
    std::filesystem::remove(sharded / "model-00002-of-00003.safetensors");
    CHECK_THROWS_WITH(checkpoint::open(sharded), Contains("model-00002-of-00003.safetensors") && Contains("missing shard file"));
  }
  SECTION("shard tensor the index does not list") {
    auto bad = index;
    bad["weight_map"].erase("model.transformer.ln_f.weight");
    mdlm::test::write_file(sharded / "model.safetensors.index.json", bad.dump());
    CHECK_THROWS_WITH(checkpoint::open(sharded), Contains("model.transformer.ln_f.weight") && Contains("not listed"));
  }
  SECTION("malformed index") {
    mdlm::test::write_file(sharded / "model.safetensors.index.json", "{\"weight_map\": [");
    CHECK_THROWS_WITH(checkpoint::open(sharded), Contains("model.safetensors.index.json") && Contains("malformed JSON"));
  }
  std::filesystem::remove_all(dir);
}

// Hidden from the default run: ctest cpu_real_metadata runs it as `test_cpu [real]` and reports it
// skipped (SKIP_REGULAR_EXPRESSION) when the shared folder is absent.
TEST_CASE("real checkpoint metadata: every index name resolves, every implied shape matches", "[checkpoint][.real]") {
  // shared/models beside the clone holds the public config.json and model.safetensors.index.json of
  // both Instruct checkpoints (no weights).
  const auto shared_models = shared_models_dir();
  const auto llada_dir = shared_models / "llada-8b-instruct";
  const auto dream_dir = shared_models / "dream-v0-instruct-7b";
  if (!std::filesystem::exists(llada_dir / "model.safetensors.index.json") ||
      !std::filesystem::exists(dream_dir / "model.safetensors.index.json")) {
    WARN("SKIPPED: shared models not found in " << shared_models.string());
    return;
  }

  const auto lc = read_model_config(llada_dir);
  CHECK(lc.arch == architecture::llada);
  CHECK(lc.n_layers == 32);
  CHECK(lc.d_model == 4096);
  CHECK(lc.n_heads == 32);
  CHECK(lc.n_kv_heads == 32);
  CHECK(lc.head_dim == 128);
  CHECK(lc.mlp_hidden == 12288);
  CHECK(lc.vocab_size == 126464);
  CHECK(lc.mask_token == 126336);
  CHECK(lc.eos_token == 126081);
  CHECK(lc.bos_token == 126080);  // from generation_config.json
  CHECK(lc.max_sequence_length == 4096);
  CHECK(lc.parameter_count() == 8'015'581'184ull);  // models.md section 2.3
  const auto lr = check_index_metadata(llada_dir);
  CHECK(lr.tensors == 291);
  CHECK(lr.shards == 6);
  CHECK(lr.total_size == 16'031'162'368ull);

  const auto dc = read_model_config(dream_dir);
  CHECK(dc.arch == architecture::dream);
  CHECK(dc.n_layers == 28);
  CHECK(dc.d_model == 3584);
  CHECK(dc.n_heads == 28);
  CHECK(dc.n_kv_heads == 4);
  CHECK(dc.mlp_hidden == 18944);
  CHECK(dc.vocab_size == 152064);
  CHECK(dc.mask_token == 151666);
  CHECK(dc.eos_token == 151643);
  CHECK(dc.rms_norm_eps == 1e-6);
  CHECK(dc.rope_theta == 1e6);
  CHECK(dc.shift_logits);
  CHECK(dc.parameter_count() == 7'615'616'512ull);  // models.md section 3.3
  const auto dr = check_index_metadata(dream_dir);
  CHECK(dr.tensors == 339);
  CHECK(dr.shards == 4);

  SECTION("a config that disagrees with the index is caught") {
    const auto dir = mdlm::test::scratch_dir("real-tampered");
    for (const char* f : {"config.json", "model.safetensors.index.json"}) std::filesystem::copy_file(dream_dir / f, dir / f);
    auto j = json::parse(mdlm::test::read_file(dir / "config.json"));
    j["intermediate_size"] = 18432;  // shapes no longer add up to total_size
    mdlm::test::write_file(dir / "config.json", j.dump());
    CHECK_THROWS_WITH(check_index_metadata(dir), Contains("total_size"));
    j["intermediate_size"] = 18944;
    j["num_hidden_layers"] = 29;  // implies model.layers.28.* which the index lacks
    mdlm::test::write_file(dir / "config.json", j.dump());
    CHECK_THROWS_WITH(check_index_metadata(dir), Contains("missing tensor model.layers.28."));
    j["num_hidden_layers"] = 28;
    j["tie_word_embeddings"] = true;  // no lm_head implied, but the index has one
    mdlm::test::write_file(dir / "config.json", j.dump());
    CHECK_THROWS_WITH(check_index_metadata(dir), Contains("unexpected tensor lm_head.weight"));
    std::filesystem::remove_all(dir);
  }
}
