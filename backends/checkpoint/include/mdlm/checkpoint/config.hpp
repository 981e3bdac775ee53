// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! Model configuration from a Hugging Face `config.json` (LLaDA `LLaDAModelLM` and Dream
//! `DreamModel`; shared/spec/models.md sections 2.1, 2.3, 3.1, 3.3), and the tensor names and shapes
//! that a configuration implies (sections 2.6 and 3.6).

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "mdlm/types.hpp"

namespace mdlm::hf {

//! The supported model architectures.
enum class architecture {
  llada,  //!< LLaDA-8B (`model_type` "llada", `architectures` ["LLaDAModelLM"])
  dream,  //!< Dream-7B (`model_type` "Dream", `architectures` ["DreamModel"])
};

//! "llada" or "dream".
[[nodiscard]] std::string_view architecture_name(architecture a) noexcept;

//! Everything the CPU backend needs from config.json, resolved to concrete numbers.
struct model_config {
  hf::architecture arch = architecture::llada;  //!< chosen from model_type / architectures only
  std::size_t vocab_size = 0;        //!< logit row width = embedding rows (LLaDA `embedding_size`)
  std::size_t d_model = 0;           //!< hidden size
  std::size_t n_layers = 0;          //!< transformer blocks
  std::size_t n_heads = 0;           //!< query heads
  std::size_t n_kv_heads = 0;        //!< key / value heads (GQA: query head h uses KV head h / (n_heads / n_kv_heads))
  std::size_t head_dim = 0;          //!< d_model / n_heads (even, for the half-split RoPE)
  std::size_t mlp_hidden = 0;        //!< SwiGLU hidden width
  double rms_norm_eps = 1e-5;        //!< RMSNorm epsilon (LLaDA 1e-5, Dream 1e-6)
  double rope_theta = 10000.0;       //!< RoPE base (LLaDA 5e5, Dream 1e6)
  bool tied_embeddings = false;      //!< LM head = token embedding (both real models: false)
  bool qkv_bias = false;             //!< q/k/v projections have a bias (Dream: true)
  bool shift_logits = false;         //!< row i predicts token i from hidden state i-1 (Dream: true)
  token_id mask_token = no_token;    //!< `mask_token_id`
  token_id eos_token = no_token;     //!< `eos_token_id` (no_token when absent)
  token_id pad_token = no_token;     //!< `pad_token_id` (no_token when absent)
  token_id bos_token = no_token;     //!< `bos_token_id` from config.json or generation_config.json
  std::size_t max_sequence_length = 0;  //!< LLaDA `max_sequence_length`, Dream `max_position_embeddings`
  std::string dtype;                 //!< declared storage dtype ("bfloat16" when stated), informational

  //! Parameter count implied by the shapes.
  [[nodiscard]] std::uint64_t parameter_count() const noexcept;
};

//! Parses config.json text. The architecture comes from `model_type` ("llada" / "dream", any case)
//! or `architectures` ("LLaDAModelLM" / "DreamModel"), never from a folder name. Rejects unknown
//! architectures, missing or non-positive sizes, inconsistent heads (d_model % n_heads, n_heads %
//! n_kv_heads, odd head_dim), a mask id outside [0, vocab), and LLaDA options the real model does
//! not use (ALiBi, biases, QK-norm, non-llama blocks, non-SiLU MLP, non-RMS norm, logit scaling).
//! Throws checkpoint_error naming `label` and the key.
[[nodiscard]] model_config parse_model_config(std::string_view json_text, std::string_view label);

//! Reads `dir/config.json` (and `dir/generation_config.json` for a BOS id the config lacks).
[[nodiscard]] model_config read_model_config(const std::filesystem::path& dir);

//! A tensor the configuration implies.
struct tensor_spec {
  std::string name;                  //!< checkpoint name
  std::vector<std::uint64_t> shape;  //!< [out, in] for linear weights
};

//! Every tensor of the checkpoint in load order (embedding, blocks 0..n-1, final norm, head).
[[nodiscard]] std::vector<tensor_spec> expected_tensors(const model_config& c);

}  // namespace mdlm::hf
