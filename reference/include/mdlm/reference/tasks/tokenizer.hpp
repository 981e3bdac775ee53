// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! The reference model's tokenizer (file format "mdlm-greedy-vocab-1"), the C++ twin of
//! reference/tasks/mdlm_tasks/tokenizer.py.
//!
//! File: `tokens` is the id -> string table (specials, newline, printable ASCII, whole words with
//! their leading space), `special_tokens` maps bos / eos / mask to ids, `embedding_size` is the
//! model's row count (>= the table; rows past it are unused padding), `format_spec` says how a
//! problem is written for the model (reference/tasks/mdlm_tasks/formats.py).
//!
//! Encoding: from the current byte, take the longest non-special table string the rest of the text
//! starts with; repeat. Every printable ASCII character and newline is a token, so every such text
//! encodes; any other byte is an error (`std::invalid_argument` naming it and its position).
//! Decoding concatenates the strings (special tokens dropped unless asked for), so
//! `decode(encode(s)) == s` for every encodable `s`. tests/reference/test_tasks_tokenizer.cpp checks
//! both directions against ids the Python tokenizer produced on the committed test split.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "mdlm/types.hpp"

namespace mdlm::reference::tasks {

//! How a problem is written for the model (`format_spec` of tokenizer.json).
struct format_spec {
  std::size_t gen_length = 64;                      //!< response (canvas) length in tokens
  std::size_t answer_block = 6;                     //!< answer block length (digits, then EOS)
  std::string answer_delimiter = "The answer is ";  //!< the reasoning template's delimiter
  std::string question_suffix = "\n";               //!< appended to the question in the prompt
};

//! Greedy longest-match vocabulary tokenizer. Immutable after construction; safe to share.
class tokenizer {
 public:
  //! Builds from a table. Throws `std::invalid_argument` when a special id is outside the table,
  //! `embedding_size` is smaller than the table, a non-special string is empty or appears twice.
  tokenizer(std::vector<std::string> tokens, token_id bos, token_id eos, token_id mask, std::size_t embedding_size,
            format_spec spec = {});

  //! Reads tokenizer.json; throws `std::invalid_argument` naming the file and the problem.
  [[nodiscard]] static tokenizer load(const std::filesystem::path& path);

  //! Token ids of `text` (never special tokens). Throws `std::invalid_argument` naming the first
  //! byte no table string covers and its position.
  [[nodiscard]] std::vector<token_id> encode(std::string_view text) const;

  //! Concatenated strings of `ids`; special tokens are skipped when `skip_special`. Ids in the
  //! padding rows [size(), embedding_size()) decode to `unknown` (a model can sample an untrained
  //! row); ids outside [0, embedding_size()) throw `std::invalid_argument`.
  [[nodiscard]] std::string decode(std::span<const token_id> ids, bool skip_special = true,
                                   std::string_view unknown = "\xEF\xBF\xBD") const;

  [[nodiscard]] token_id bos() const noexcept { return bos_; }
  [[nodiscard]] token_id eos() const noexcept { return eos_; }
  [[nodiscard]] token_id mask() const noexcept { return mask_; }
  [[nodiscard]] bool is_special(token_id id) const noexcept { return id == bos_ || id == eos_ || id == mask_; }
  //! Entries of the string table.
  [[nodiscard]] std::size_t size() const noexcept { return tokens_.size(); }
  //! Rows of the model's embedding (>= size()).
  [[nodiscard]] std::size_t embedding_size() const noexcept { return embedding_size_; }
  [[nodiscard]] const std::string& token_string(token_id id) const;
  [[nodiscard]] const format_spec& spec() const noexcept { return spec_; }

 private:
  std::vector<std::string> tokens_;
  std::unordered_map<std::string, token_id> by_string_;
  token_id bos_, eos_, mask_;
  std::size_t embedding_size_;
  std::size_t max_len_ = 0;
  format_spec spec_;
};

}  // namespace mdlm::reference::tasks
