// SPDX-License-Identifier: MIT
#pragma once
// Text in / text out for the tool (mdlm::tokenizer): the --prompt / --prompt-file / --chat /
// --system options shared by `generate` and `tokenize`, loading a checkpoint's tokenizer with
// one-line errors, and streaming the generated text to stdout as blocks complete.
#include <CLI/CLI.hpp>

#include <cstddef>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "mdlm/observer.hpp"
#include "mdlm/tokenizer/tokenizer.hpp"
#include "mdlm/types.hpp"

namespace mdlm::tool {

//! A text prompt as given on the command line.
struct text_input {
  std::string prompt;       //!< --prompt TEXT
  std::string prompt_file;  //!< --prompt-file FILE (UTF-8 text)
  bool chat = false;        //!< --chat: wrap in the tokenizer's chat template (one user turn)
  std::string system;       //!< --system TEXT: a system turn before it (needs --chat)
  CLI::Option* prompt_option = nullptr;
  CLI::Option* file_option = nullptr;
  CLI::Option* system_option = nullptr;
  //! Whether --prompt or --prompt-file was given.
  [[nodiscard]] bool given() const;
};

//! Registers --prompt, --prompt-file, --chat and --system on `cmd`.
void add_text_input_options(CLI::App& cmd, text_input& in);

//! Whether `dir` has tokenizer files (tokenizer.json, or vocab.json and merges.txt).
[[nodiscard]] bool tokenizer_present(const std::filesystem::path& dir);

//! Loads the tokenizer of `dir` (tokenizer.json, or vocab.json + merges.txt, with
//! tokenizer_config.json). Missing or malformed files are std::invalid_argument (exit code 2) naming
//! the file; `ids_hint` adds that the prompt can still be given as ids.
[[nodiscard]] text::tokenizer load_tokenizer(const std::filesystem::path& dir, bool ids_hint);

//! The text the prompt encodes: the file or --prompt, in the chat template with --chat. An
//! unsupported template is a std::invalid_argument suggesting to drop --chat and pass the raw text.
[[nodiscard]] std::string prompt_text(const text::tokenizer& t, const text_input& in);

//! `prompt_text` encoded (special tokens written in the text are parsed, as Hugging Face does;
//! no post-processor tokens: the templates write BOS themselves, as the reference scripts'
//! `add_special_tokens=False`).
[[nodiscard]] std::vector<token_id> encode_prompt(const text::tokenizer& t, const std::string& text);

//! The generated text: the ids decoded with special tokens skipped (EOS padding, <|eot_id|>, ...).
[[nodiscard]] std::string generated_text(const text::tokenizer& t, std::span<const token_id> ids);

//! A decode observer that prints the text of each completed block to stdout as soon as it is final
//! (a block is final once the decode moves past it, or when it has no mask left), then the rest at
//! `finish`. The printed text equals `generated_text` of the final ids.
class block_streamer {
 public:
  block_streamer(const text::tokenizer& t, std::size_t region_begin);
  void on_step(step_event& e);
  //! Prints what is left of `generated` (the region's final ids) and a newline.
  void finish(std::span<const token_id> generated);

 private:
  void print(std::span<const token_id> ids);
  text::stream_decoder decoder_;
  std::size_t region_begin_;
  std::size_t printed_ = 0;  // generated positions already pushed
};

//! The special token ids a tiny checkpoint takes from a tokenizer (make-checkpoint --tokenizer):
//! `mask` from tokenizer_config.json's mask_token or the token "<|mdm_mask|>" (LLaDA), `eos` from
//! eos_token, `bos` from bos_token (else EOS). Throws std::invalid_argument naming what is missing.
struct tokenizer_special_ids {
  token_id bos, eos, mask;
};
[[nodiscard]] tokenizer_special_ids special_ids(const text::tokenizer& t);

//! The tokenizer files of a checkpoint directory (copied by make-checkpoint --tokenizer).
[[nodiscard]] std::vector<std::string> tokenizer_file_names();

}  // namespace mdlm::tool
