// SPDX-License-Identifier: MIT
#include "mdlm/cpu/make_checkpoint.hpp"

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string_view>
#include <vector>

#include "mdlm/detail/errors.hpp"
#include "mdlm/rng.hpp"

namespace mdlm::cpu {

namespace {

using json = nlohmann::json;

std::uint32_t fnv1a32(std::string_view s) noexcept {
  std::uint32_t h = 2166136261u;
  for (unsigned char ch : s) h = (h ^ ch) * 16777619u;
  return h;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

void write_text(const std::filesystem::path& p, const std::string& text) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f << text;
  if (!f) throw std::runtime_error(mdlm::detail::concat(p.string(), ": cannot write"));
}

}  // namespace

tiny_special_tokens tiny_tokens(std::size_t vocab) noexcept {
  const auto v = static_cast<token_id>(vocab);
  return {v - 22, v - 21, v - 20};
}

tiny_special_tokens special_tokens_of(const tiny_checkpoint_spec& spec) noexcept {
  return spec.tokens ? *spec.tokens : tiny_tokens(spec.vocab);
}

std::string tiny_config_json(const tiny_checkpoint_spec& s) {
  using mdlm::detail::require;
  require(s.layers > 0, "layers = ", s.layers, " must be positive");
  require(s.d_model > 0, "d_model = ", s.d_model, " must be positive");
  require(s.heads > 0 && s.d_model % s.heads == 0, "heads = ", s.heads, " must be positive and divide d_model = ", s.d_model);
  require(s.kv_heads > 0 && s.heads % s.kv_heads == 0, "kv_heads = ", s.kv_heads, " must be positive and divide heads = ", s.heads);
  require((s.d_model / s.heads) % 2 == 0, "head_dim = d_model / heads = ", s.d_model / s.heads, " must be even (RoPE)");
  require(s.mlp > 0, "mlp = ", s.mlp, " must be positive");
  require(s.vocab >= 32 && s.vocab <= 0x7FFFFFFF, "vocab = ", s.vocab, " must be in [32, 2^31)");
  require(s.max_sequence_length > 0, "max_sequence_length = ", s.max_sequence_length, " must be positive");
  const auto tok = special_tokens_of(s);
  for (const token_id id : {tok.bos, tok.eos, tok.mask})
    require(id >= 0 && static_cast<std::size_t>(id) < s.vocab, "special token id ", id, " is outside the vocabulary [0, ", s.vocab, ")");
  json j;
  if (s.arch == architecture::llada) {
    // Keys of LLaDA-8B-Instruct's config.json (models.md section 2.1), tiny dimensions.
    j = {{"activation_type", "silu"}, {"alibi", false}, {"alibi_bias_max", 8.0}, {"architectures", {"LLaDAModelLM"}},
         {"attention_dropout", 0.0}, {"attention_layer_norm", false}, {"attention_layer_norm_with_affine", true},
         {"auto_map", {{"AutoConfig", "configuration_llada.LLaDAConfig"},
                       {"AutoModelForCausalLM", "modeling_llada.LLaDAModelLM"},
                       {"AutoModel", "modeling_llada.LLaDAModelLM"}}},
         {"bias_for_layer_norm", false}, {"block_group_size", 1}, {"block_type", "llama"}, {"d_model", s.d_model},
         {"embedding_dropout", 0.0}, {"embedding_size", s.vocab}, {"eos_token_id", tok.eos}, {"flash_attention", false},
         {"include_bias", false}, {"include_qkv_bias", false}, {"init_cutoff_factor", nullptr}, {"init_device", "meta"},
         {"init_fn", "mitchell"}, {"init_std", 0.02}, {"input_emb_norm", false}, {"layer_norm_type", "rms"},
         {"layer_norm_with_affine", true}, {"mask_token_id", tok.mask}, {"max_sequence_length", s.max_sequence_length},
         {"mlp_hidden_size", s.mlp}, {"mlp_ratio", 4}, {"model_type", "llada"}, {"multi_query_attention", nullptr},
         {"n_heads", s.heads}, {"n_kv_heads", s.kv_heads}, {"n_layers", s.layers}, {"pad_token_id", tok.eos},
         {"precision", "amp_bf16"}, {"residual_dropout", 0.0}, {"rms_norm_eps", 1e-05}, {"rope", true},
         {"rope_full_precision", true}, {"rope_theta", 500000.0}, {"scale_logits", false},
         {"transformers_version", "4.46.3"}, {"use_cache", false}, {"vocab_size", s.vocab}, {"weight_tying", false}};
  } else {
    // Keys of Dream-v0-Instruct-7B's config.json (models.md section 3.1), tiny dimensions.
    j = {{"_name_or_path", "mdlm/tiny-dream"}, {"architectures", {"DreamModel"}}, {"attention_dropout", 0.0},
         {"auto_map", {{"AutoConfig", "configuration_dream.DreamConfig"}, {"AutoModel", "modeling_dream.DreamModel"}}},
         {"bos_token_id", tok.eos}, {"eos_token_id", tok.eos}, {"hidden_act", "silu"}, {"hidden_size", s.d_model},
         {"initializer_range", 0.02}, {"intermediate_size", s.mlp}, {"mask_token_id", tok.mask},
         {"max_position_embeddings", s.max_sequence_length}, {"max_window_layers", s.layers}, {"model_type", "Dream"},
         {"num_attention_heads", s.heads}, {"num_hidden_layers", s.layers}, {"num_key_value_heads", s.kv_heads},
         {"pad_token_id", tok.eos}, {"rms_norm_eps", 1e-06}, {"rope_scaling", nullptr}, {"rope_theta", 1000000.0},
         {"sliding_window", nullptr}, {"tie_word_embeddings", false}, {"torch_dtype", "bfloat16"},
         {"transformers_version", "4.46.2"}, {"use_cache", true}, {"use_mrope", false}, {"use_sliding_window", false},
         {"vocab_size", s.vocab}};
  }
  return j.dump(2) + "\n";
}

void write_tiny_checkpoint(const tiny_checkpoint_spec& spec, const std::filesystem::path& dir) {
  const std::string config_text = tiny_config_json(spec);
  const model_config cfg = parse_model_config(config_text, "tiny config");
  std::filesystem::create_directories(dir);
  write_text(dir / "config.json", config_text);
  const auto tok = special_tokens_of(spec);
  const json gen = spec.arch == architecture::llada
                       ? json{{"_from_model_config", true}, {"bos_token_id", tok.bos}, {"eos_token_id", tok.eos},
                              {"transformers_version", "4.38.2"}}
                       : json{{"_from_model_config", true}, {"alg", "origin"}, {"alg_temp", nullptr},
                              {"bos_token_id", tok.eos}, {"eos_token_id", tok.eos}, {"eps", 0.001},
                              {"mask_token_id", nullptr}, {"pad_token_id", tok.eos}, {"steps", 512},
                              {"temperature", 0.0}, {"top_k", nullptr}, {"top_p", nullptr},
                              {"transformers_version", "4.46.2"}};
  write_text(dir / "generation_config.json", gen.dump(2) + "\n");

  const auto specs = expected_tensors(cfg);
  std::vector<std::vector<float>> values(specs.size());
  std::vector<tensor_view> views;
  const double sqrt3 = std::sqrt(3.0);
  for (std::size_t t = 0; t < specs.size(); ++t) {
    const auto& ts = specs[t];
    std::uint64_t n = 1;
    for (auto d : ts.shape) n *= d;
    sequential_rng rng(spec.seed, rng_stream::model, fnv1a32(ts.name));
    const bool is_norm = ts.shape.size() == 1 && !ends_with(ts.name, ".bias");
    const bool is_bias = ends_with(ts.name, ".bias");
    const bool is_embedding = ts.name.find("wte") != std::string::npos || ts.name.find("embed_tokens") != std::string::npos;
    // Uniform(-a, a) has standard deviation a / sqrt(3).
    const double std_dev = is_bias ? 0.1 : is_embedding ? 1.0 : 1.0 / std::sqrt(static_cast<double>(ts.shape.back()));
    auto& v = values[t];
    v.resize(static_cast<std::size_t>(n));
    for (auto& x : v) {
      const double u = 2.0 * rng.uniform() - 1.0;
      x = static_cast<float>(is_norm ? 1.0 + 0.2 * u : u * sqrt3 * std_dev);
    }
    views.push_back({ts.name, ts.shape, v});
  }
  write_safetensors(dir / "model.safetensors", views, spec.type);
}

}  // namespace mdlm::cpu
