// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! Tiny random-weight checkpoints of the real architectures, for tests and benchmarks: a config.json
//! with the same keys as the real model's (shared/models/*/config.json) and a bf16
//! `model.safetensors` with exactly the real tensor names.
//!
//! Weights are deterministic in `seed`: tensor `name` draws from
//! `sequential_rng(seed, rng_stream::model, fnv1a32(name))`, uniformly with the standard deviations
//! below, so a tensor's values do not depend on the other tensors or on the order of generation.
//! Scaling keeps activations O(1): embeddings std 1; linear weights std 1/sqrt(fan_in) (so every
//! projection preserves the scale of its input); RMSNorm weights 1 + U(-0.2, 0.2) (not all ones,
//! so that a missing weight multiply is detected); Dream q/k/v biases std 0.1.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "mdlm/cpu/checkpoint_names.hpp"

namespace mdlm::cpu {

//! Special token ids of a tiny checkpoint of vocabulary V: BOS V-22, EOS = PAD V-21, MASK V-20
//! (V = 320: 298, 299, 300; models.md section 6 suggests mask id 300). As in the real checkpoints,
//! LLaDA's BOS is in generation_config.json and Dream's config uses the EOS id as bos_token_id.
struct tiny_special_tokens {
  token_id bos, eos, mask;
};

//! Dimensions of a tiny checkpoint. Defaults: models.md section 6 (LLaDA-tiny).
struct tiny_checkpoint_spec {
  architecture arch = architecture::llada;  //!< llada or dream
  std::size_t layers = 2;                   //!< transformer blocks
  std::size_t d_model = 64;                 //!< hidden size
  std::size_t heads = 4;                    //!< query heads (d_model / heads must be even)
  std::size_t kv_heads = 4;                 //!< key / value heads (divides heads)
  std::size_t mlp = 96;                     //!< SwiGLU hidden width
  std::size_t vocab = 320;                  //!< vocabulary rows (>= 32)
  std::uint64_t seed = 0;                   //!< weight seed
  std::size_t max_sequence_length = 4096;   //!< LLaDA max_sequence_length / Dream max_position_embeddings
  cpu::dtype type = dtype::bf16;            //!< storage dtype of the weights
  //! Special token ids; unset: `tiny_tokens(vocab)`. Set from a real tokenizer's ids
  //! (`mdlm make-checkpoint --tokenizer`); each must lie in [0, vocab).
  std::optional<tiny_special_tokens> tokens{};
};

[[nodiscard]] tiny_special_tokens tiny_tokens(std::size_t vocab) noexcept;
//! The special ids of `spec`: `spec.tokens` when set, else `tiny_tokens(spec.vocab)`.
[[nodiscard]] tiny_special_tokens special_tokens_of(const tiny_checkpoint_spec& spec) noexcept;

//! The config.json text of `spec`: the real model's keys (LLaDA-8B-Instruct or Dream-v0-Instruct-7B)
//! with the tiny dimensions. Throws std::invalid_argument naming a bad field (zero sizes, heads not
//! dividing d_model or not a multiple of kv_heads, odd head_dim, vocab < 32).
[[nodiscard]] std::string tiny_config_json(const tiny_checkpoint_spec& spec);

//! Writes `dir/config.json` and `dir/model.safetensors` (creating `dir`). Same spec and seed give
//! byte-identical files.
void write_tiny_checkpoint(const tiny_checkpoint_spec& spec, const std::filesystem::path& dir);

}  // namespace mdlm::cpu
