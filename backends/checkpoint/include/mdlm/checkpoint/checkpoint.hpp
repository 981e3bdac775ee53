// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! A Hugging Face checkpoint directory: config.json plus either one `model.safetensors` or shards
//! listed in `model.safetensors.index.json` (`weight_map`: tensor name -> shard file). Every tensor
//! is resolved through the index, never through shard file names (LLaDA's layers straddle shards,
//! models.md section 2.6).

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mdlm/checkpoint/config.hpp"
#include "mdlm/checkpoint/safetensors.hpp"

namespace mdlm::hf {

//! How strictly a checkpoint is validated.
struct checkpoint_options {
  //! Accept tensors the configuration does not imply (they are ignored). Default false: an
  //! unexpected tensor is an error, since it usually means a wrong config or architecture.
  bool allow_unexpected_tensors = false;
};

//! An opened, validated checkpoint directory. Tensors stay memory-mapped; `read_f32` converts one.
class checkpoint {
 public:
  //! Opens `dir` and validates it against its config.json: every tensor the config implies is present
  //! with the implied shape, the index (if any) agrees with the shards, and there is no unexpected
  //! tensor unless `options.allow_unexpected_tensors`. Throws checkpoint_error naming the directory,
  //! file and tensor.
  [[nodiscard]] static checkpoint open(const std::filesystem::path& dir, const checkpoint_options& options = {});

  [[nodiscard]] const model_config& config() const noexcept { return config_; }
  [[nodiscard]] const std::filesystem::path& directory() const noexcept { return dir_; }
  //! Number of safetensors files (1 for a single model.safetensors).
  [[nodiscard]] std::size_t file_count() const noexcept { return files_.size(); }
  //! Every tensor name found (sorted).
  [[nodiscard]] std::vector<std::string> tensor_names() const;
  //! Header entry of `name`; throws checkpoint_error when absent.
  [[nodiscard]] const tensor_info& info(std::string_view name) const;
  //! Path of the file that holds `name`; throws checkpoint_error when absent.
  [[nodiscard]] const std::filesystem::path& file_of(std::string_view name) const;
  //! Converts tensor `name` to fp32 into `out` (`out.size()` must equal its element count).
  void read_f32(std::string_view name, std::span<float> out) const;
  //! The raw little-endian bytes of tensor `name` in its file (`info(name).type` elements); throws
  //! checkpoint_error when absent. Valid while the checkpoint lives.
  [[nodiscard]] std::span<const std::byte> bytes(std::string_view name) const;
  //! safetensors_file::release for tensor `name` (after a loader copied it); no-op when absent.
  void release(std::string_view name) const noexcept;

 private:
  struct entry {
    std::size_t file = 0;
    const tensor_info* info = nullptr;
  };
  const entry& find(std::string_view name) const;

  std::filesystem::path dir_;
  model_config config_;
  std::vector<safetensors_file> files_;
  std::map<std::string, entry, std::less<>> tensors_;
};

//! A parsed `model.safetensors.index.json`.
struct weight_index {
  std::map<std::string, std::string, std::less<>> weight_map;  //!< tensor name -> shard file name
  std::optional<std::uint64_t> total_size;  //!< `metadata.total_size` (bytes); empty when the index omits it
};

//! Parses the text of a `model.safetensors.index.json`: a JSON object with a `weight_map` object
//! (tensor name -> shard file name, a plain file name: non-empty, no '/', not "." or "..") and an
//! optional `metadata` object whose optional `total_size` is a non-negative integer. Duplicate keys
//! anywhere are rejected. Throws checkpoint_error naming `label`; binary bytes in the text are
//! escaped in the message. Does not touch the file system (the fuzz target fuzz_weight_index runs it).
[[nodiscard]] weight_index parse_weight_index(std::string_view json_text, std::string_view label);

//! What `check_index_metadata` verified.
struct index_report {
  std::size_t tensors = 0;                 //!< names in the index (= names the config implies)
  std::size_t shards = 0;                  //!< distinct shard files named by the index
  std::uint64_t parameters = 0;            //!< elements implied by the config
  std::optional<std::uint64_t> total_size; //!< `metadata.total_size` of the index (bytes), when stated
};

//! Validates a checkpoint's metadata without weights: reads `dir/config.json` and
//! `dir/model.safetensors.index.json`, checks that the index names exactly the tensors the config
//! implies (every name resolves to a shard, none missing, none unexpected) and, when the index states
//! `metadata.total_size`, that it equals the implied element count times `bytes_per_element` (2 for
//! bf16), so every implied shape is consistent with the stored byte count. `checkpoint::open` applies
//! the same rule to the bytes of the tensors in the shards: total_size is optional (Hugging Face
//! writes it; the format does not require it) and, when stated, must be right. Throws
//! checkpoint_error otherwise.
[[nodiscard]] index_report check_index_metadata(const std::filesystem::path& dir, std::size_t bytes_per_element = 2);

}  // namespace mdlm::hf
