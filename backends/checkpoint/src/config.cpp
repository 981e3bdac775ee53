// SPDX-License-Identifier: MIT
#include "mdlm/checkpoint/config.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "parse_support.hpp"
#include "mdlm/checkpoint/safetensors.hpp"
#include "mdlm/detail/errors.hpp"

namespace mdlm::hf {

namespace {

using json = nlohmann::json;

template <class... Parts>
[[noreturn]] void fail(std::string_view label, Parts&&... parts) {
  throw checkpoint_error(mdlm::detail::concat(label, ": ", std::forward<Parts>(parts)...));
}

bool has(const json& j, const char* key) { return j.contains(key) && !j.at(key).is_null(); }

//! Largest value accepted for any size read from config.json: far above every published model
//! (LLaDA-8B: d_model 4096, 32 layers, vocabulary 126464), small enough that no product of two
//! sizes overflows and nothing is allocated for an absurd configuration before the weights are
//! checked against it.
constexpr std::int64_t max_config_size = std::int64_t{1} << 24;

std::size_t get_size(const json& j, const char* key, std::string_view label) {
  if (!has(j, key)) fail(label, "missing ", key);
  const json& v = j.at(key);
  if (!v.is_number_integer() || v.get<std::int64_t>() <= 0)
    fail(label, key, " = ", v.dump(), " must be a positive integer");
  if (v.get<std::int64_t>() > max_config_size)
    fail(label, key, " = ", v.dump(), " exceeds the largest supported size ", max_config_size);
  return static_cast<std::size_t>(v.get<std::int64_t>());
}

//! A positive number below `limit` (exclusive), or `fallback` when absent.
double get_double(const json& j, const char* key, double fallback, double limit, std::string_view label) {
  if (!has(j, key)) return fallback;
  const json& v = j.at(key);
  if (!v.is_number() || !(v.get<double>() > 0.0) || !(v.get<double>() < limit))
    fail(label, key, " = ", v.dump(), " must be a number in (0, ", limit, ")");
  return v.get<double>();
}

//! A boolean (absent or null: false); any other type is an error, not false.
bool get_bool(const json& j, const char* key, std::string_view label) {
  if (!has(j, key)) return false;
  const json& v = j.at(key);
  if (!v.is_boolean()) fail(label, key, " = ", v.dump(), " must be true or false");
  return v.get<bool>();
}

token_id get_token(const json& j, const char* key, std::string_view label) {
  if (!has(j, key)) return no_token;
  const json& v = j.at(key);
  if (v.is_array()) {  // some configs list several ids; the first is the primary one
    if (v.empty()) return no_token;
    return get_token(json{{key, v.front()}}, key, label);
  }
  if (!v.is_number_integer() || v.get<std::int64_t>() < 0 ||
      v.get<std::int64_t>() > std::numeric_limits<token_id>::max())
    fail(label, key, " = ", v.dump(), " is not a token id");
  return static_cast<token_id>(v.get<std::int64_t>());
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

architecture detect(const json& j, std::string_view label) {
  const std::string mt = j.contains("model_type") && j.at("model_type").is_string() ? j.at("model_type").get<std::string>() : "";
  std::vector<std::string> archs;
  if (j.contains("architectures") && j.at("architectures").is_array())
    for (const auto& a : j.at("architectures"))
      if (a.is_string()) archs.push_back(a.get<std::string>());
  auto listed = [&](const char* n) { return std::find(archs.begin(), archs.end(), n) != archs.end(); };
  if (lower(mt) == "llada" || listed("LLaDAModelLM")) return architecture::llada;
  if (lower(mt) == "dream" || listed("DreamModel")) return architecture::dream;
  std::string as;
  for (const auto& a : archs) as += (as.empty() ? "" : ", ") + a;
  fail(label, "unknown architecture: model_type \"", mt, "\", architectures [", as,
       "] (supported: llada / LLaDAModelLM, Dream / DreamModel)");
}

void parse_llada(const json& j, model_config& c, std::string_view label) {
  auto require_value = [&](const char* key, const char* want) {
    if (has(j, key) && (!j.at(key).is_string() || j.at(key).get<std::string>() != want))
      fail(label, key, " = ", j.at(key).dump(), " is not supported (LLaDA uses \"", want, "\")");
  };
  require_value("block_type", "llama");
  require_value("activation_type", "silu");
  require_value("layer_norm_type", "rms");
  for (const char* key : {"alibi", "include_bias", "include_qkv_bias", "attention_layer_norm", "scale_logits",
                          "input_emb_norm", "bias_for_layer_norm"})
    if (get_bool(j, key, label)) fail(label, key, " = true is not supported (LLaDA uses false)");
  if (has(j, "rope") && !get_bool(j, "rope", label)) fail(label, "rope = false is not supported (LLaDA uses RoPE)");
  c.d_model = get_size(j, "d_model", label);
  c.n_layers = get_size(j, "n_layers", label);
  c.n_heads = get_size(j, "n_heads", label);
  c.n_kv_heads = get_bool(j, "multi_query_attention", label) ? 1 : (has(j, "n_kv_heads") ? get_size(j, "n_kv_heads", label) : c.n_heads);
  c.mlp_hidden = has(j, "mlp_hidden_size") ? get_size(j, "mlp_hidden_size", label)
                                           : get_size(j, "mlp_ratio", label) * c.d_model;
  const std::size_t logical = get_size(j, "vocab_size", label);
  c.vocab_size = has(j, "embedding_size") ? get_size(j, "embedding_size", label) : logical;
  if (c.vocab_size < logical)
    fail(label, "embedding_size = ", c.vocab_size, " is smaller than vocab_size = ", logical);
  c.rms_norm_eps = get_double(j, "rms_norm_eps", 1e-5, 1.0, label);
  c.rope_theta = get_double(j, "rope_theta", 10000.0, 1e12, label);
  c.tied_embeddings = get_bool(j, "weight_tying", label);
  c.qkv_bias = false;
  c.shift_logits = false;
  c.max_sequence_length = has(j, "max_sequence_length") ? get_size(j, "max_sequence_length", label) : 4096;
  if (has(j, "torch_dtype") && j.at("torch_dtype").is_string()) c.dtype = j.at("torch_dtype").get<std::string>();
  else if (has(j, "precision") && j.at("precision").is_string() && j.at("precision").get<std::string>() == "amp_bf16")
    c.dtype = "bfloat16";
}

void parse_dream(const json& j, model_config& c, std::string_view label) {
  if (has(j, "hidden_act") && (!j.at("hidden_act").is_string() || j.at("hidden_act").get<std::string>() != "silu"))
    fail(label, "hidden_act = ", j.at("hidden_act").dump(), " is not supported (Dream uses \"silu\")");
  if (has(j, "rope_scaling")) fail(label, "rope_scaling = ", j.at("rope_scaling").dump(), " is not supported (Dream uses null)");
  if (get_bool(j, "use_sliding_window", label)) fail(label, "use_sliding_window = true is not supported");
  c.d_model = get_size(j, "hidden_size", label);
  c.n_layers = get_size(j, "num_hidden_layers", label);
  c.n_heads = get_size(j, "num_attention_heads", label);
  c.n_kv_heads = has(j, "num_key_value_heads") ? get_size(j, "num_key_value_heads", label) : c.n_heads;
  c.mlp_hidden = get_size(j, "intermediate_size", label);
  c.vocab_size = get_size(j, "vocab_size", label);
  c.rms_norm_eps = get_double(j, "rms_norm_eps", 1e-6, 1.0, label);
  c.rope_theta = get_double(j, "rope_theta", 1e6, 1e12, label);
  c.tied_embeddings = get_bool(j, "tie_word_embeddings", label);
  c.qkv_bias = true;
  c.shift_logits = true;
  c.max_sequence_length = has(j, "max_position_embeddings") ? get_size(j, "max_position_embeddings", label) : 131072;
  if (has(j, "torch_dtype") && j.at("torch_dtype").is_string()) c.dtype = j.at("torch_dtype").get<std::string>();
}

std::string read_text(const std::filesystem::path& p) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(p, ec))
    throw checkpoint_error(mdlm::detail::concat(p.string(), ": not a regular file"));
  constexpr std::uintmax_t max_bytes = 16u << 20;  // config files are a few KB
  if (std::filesystem::file_size(p, ec) > max_bytes)
    throw checkpoint_error(mdlm::detail::concat(p.string(), ": larger than ", max_bytes, " bytes"));
  std::ifstream f(p, std::ios::binary);
  if (!f) throw checkpoint_error(mdlm::detail::concat(p.string(), ": cannot open"));
  std::ostringstream os;
  os << f.rdbuf();
  return os.str();
}

}  // namespace

std::string_view architecture_name(architecture a) noexcept { return a == architecture::llada ? "llada" : "dream"; }

std::uint64_t model_config::parameter_count() const noexcept {
  std::uint64_t n = 0;
  for (const auto& t : expected_tensors(*this)) {
    std::uint64_t k = 1;
    for (auto d : t.shape) k *= d;
    n += k;
  }
  return n;
}

model_config parse_model_config(std::string_view json_text, std::string_view label) {
  const json j = detail::parse_json_strict(json_text, label);
  if (!j.is_object()) fail(label, "malformed config: the JSON is not an object");
  model_config c;
  c.arch = detect(j, label);
  if (c.arch == architecture::llada) parse_llada(j, c, label);
  else parse_dream(j, c, label);
  // expected_tensors lists ~12 tensors per layer: bound the layer count before anything is built.
  constexpr std::size_t max_layers = 4096;
  if (c.n_layers > max_layers) fail(label, "n_layers = ", c.n_layers, " exceeds the largest supported ", max_layers);
  if (c.d_model % c.n_heads != 0) fail(label, "d_model ", c.d_model, " is not a multiple of n_heads ", c.n_heads);
  if (c.n_heads % c.n_kv_heads != 0) fail(label, "n_heads ", c.n_heads, " is not a multiple of n_kv_heads ", c.n_kv_heads);
  c.head_dim = c.d_model / c.n_heads;
  if (c.head_dim % 2 != 0) fail(label, "head_dim ", c.head_dim, " must be even for the half-split RoPE");
  c.mask_token = get_token(j, "mask_token_id", label);
  if (c.mask_token == no_token) fail(label, "missing mask_token_id");
  if (static_cast<std::size_t>(c.mask_token) >= c.vocab_size)
    fail(label, "mask_token_id = ", c.mask_token, " is outside the vocabulary [0, ", c.vocab_size, ")");
  c.eos_token = get_token(j, "eos_token_id", label);
  c.pad_token = get_token(j, "pad_token_id", label);
  c.bos_token = get_token(j, "bos_token_id", label);
  for (const auto& [key, t] : {std::pair{"eos_token_id", c.eos_token}, std::pair{"pad_token_id", c.pad_token},
                               std::pair{"bos_token_id", c.bos_token}})
    if (t != no_token && static_cast<std::size_t>(t) >= c.vocab_size)
      fail(label, key, " = ", t, " is outside the vocabulary [0, ", c.vocab_size, ")");
  return c;
}

model_config read_model_config(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    throw checkpoint_error(mdlm::detail::concat(dir.string(), ": model directory does not exist"));
  const auto cfg_path = dir / "config.json";
  if (!std::filesystem::exists(cfg_path, ec))
    throw checkpoint_error(mdlm::detail::concat(cfg_path.string(), ": missing file (a model directory needs config.json)"));
  model_config c = parse_model_config(read_text(cfg_path), cfg_path.string());
  const auto gen = dir / "generation_config.json";
  if (c.bos_token == no_token && std::filesystem::exists(gen, ec)) {
    const json g = json::parse(read_text(gen), nullptr, false);
    if (g.is_object()) c.bos_token = get_token(g, "bos_token_id", gen.string());
  }
  return c;
}

std::vector<tensor_spec> expected_tensors(const model_config& c) {
  using u = std::uint64_t;
  const u d = c.d_model, kv = c.n_kv_heads * c.head_dim, m = c.mlp_hidden, v = c.vocab_size;
  std::vector<tensor_spec> out;
  if (c.arch == architecture::llada) {
    const std::string p = "model.transformer.";
    out.push_back({p + "wte.weight", {v, d}});
    for (std::size_t i = 0; i < c.n_layers; ++i) {
      const std::string b = p + "blocks." + std::to_string(i) + ".";
      out.push_back({b + "attn_norm.weight", {d}});
      out.push_back({b + "q_proj.weight", {d, d}});
      out.push_back({b + "k_proj.weight", {kv, d}});
      out.push_back({b + "v_proj.weight", {kv, d}});
      out.push_back({b + "attn_out.weight", {d, d}});
      out.push_back({b + "ff_norm.weight", {d}});
      out.push_back({b + "ff_proj.weight", {m, d}});
      out.push_back({b + "up_proj.weight", {m, d}});
      out.push_back({b + "ff_out.weight", {d, m}});
    }
    out.push_back({p + "ln_f.weight", {d}});
    if (!c.tied_embeddings) out.push_back({p + "ff_out.weight", {v, d}});
  } else {
    out.push_back({"model.embed_tokens.weight", {v, d}});
    for (std::size_t i = 0; i < c.n_layers; ++i) {
      const std::string b = "model.layers." + std::to_string(i) + ".";
      out.push_back({b + "input_layernorm.weight", {d}});
      out.push_back({b + "self_attn.q_proj.weight", {d, d}});
      out.push_back({b + "self_attn.q_proj.bias", {d}});
      out.push_back({b + "self_attn.k_proj.weight", {kv, d}});
      out.push_back({b + "self_attn.k_proj.bias", {kv}});
      out.push_back({b + "self_attn.v_proj.weight", {kv, d}});
      out.push_back({b + "self_attn.v_proj.bias", {kv}});
      out.push_back({b + "self_attn.o_proj.weight", {d, d}});
      out.push_back({b + "post_attention_layernorm.weight", {d}});
      out.push_back({b + "mlp.gate_proj.weight", {m, d}});
      out.push_back({b + "mlp.up_proj.weight", {m, d}});
      out.push_back({b + "mlp.down_proj.weight", {d, m}});
    }
    out.push_back({"model.norm.weight", {d}});
    if (!c.tied_embeddings) out.push_back({"lm_head.weight", {v, d}});
  }
  return out;
}

}  // namespace mdlm::hf
