// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! Hugging Face tokenizers for LLaDA, Dream and other byte-level BPE models (mdlm::tokenizer).
//!
//! `mdlm::text::tokenizer` reads a Hugging Face `tokenizer.json` generically (the format of the
//! Rust `tokenizers` crate: normalizer, pre_tokenizer, model, post_processor, decoder, added_tokens)
//! or the slow-tokenizer layout `vocab.json` + `merges.txt` (+ `added_tokens.json`) that Dream
//! publishes, which is built as Qwen2's fast tokenizer builds it (NFC, the Qwen2 split regex,
//! byte-level BPE). `tokenizer_config.json` beside either supplies the named special tokens, the
//! chat template and the decoding flags.
//!
//! Supported components (anything else is a `std::invalid_argument` naming the component):
//! - normalizers: NFC, NFD, NFKC, NFKD (utf8proc), Replace, Prepend, Strip, Sequence;
//! - pre-tokenizers: Split (String or Regex pattern, PCRE2 with Unicode properties; every
//!   behaviour: Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous; invert),
//!   ByteLevel (add_prefix_space, use_regex), Digits (individual_digits), Metaspace, Sequence;
//! - model: BPE (merges with ranks, both merge spellings, ignore_merges, byte_fallback, unk_token,
//!   fuse_unk, continuing_subword_prefix, end_of_word_suffix; dropout must be null or 0);
//! - post-processors: ByteLevel, TemplateProcessing (single sequence), BertProcessing,
//!   RobertaProcessing, Sequence;
//! - decoders: ByteLevel, ByteFallback, Fuse, Replace, Strip, Metaspace, Sequence;
//! - added tokens: matched before normalization (normalized = false) or after it (true), leftmost
//!   longest, with lstrip / rstrip / single_word.
//!
//! Semantics follow the `tokenizers` crate (huggingface/tokenizers); the parity tests compare the
//! ids and texts with the independent JavaScript port `@huggingface/tokenizers` on real files.

#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mdlm/types.hpp"

namespace mdlm::text {

//! A token matched in the raw text before the model runs (tokenizer.json `added_tokens`).
struct added_token {
  std::string content;       //!< the exact text of the token
  token_id id = no_token;    //!< its id
  bool special = false;      //!< removed by `decode_options::skip_special_tokens`
  bool lstrip = false;       //!< absorbs the whitespace on its left
  bool rstrip = false;       //!< absorbs the whitespace on its right
  bool normalized = false;   //!< matched in the normalized text (else in the raw text)
  bool single_word = false;  //!< matched only when not inside a word
};

//! Options of `tokenizer::encode`.
struct encode_options {
  //! Apply the post-processor's special tokens (e.g. a BOS of TemplateProcessing). Default true,
  //! as `tokenizers`' `encode(text, add_special_tokens=True)`.
  bool add_special_tokens = true;
  //! Match added / special tokens written in the text (e.g. "<|im_start|>"). Default true, as
  //! Hugging Face (`split_special_tokens = False`); false encodes them as ordinary text.
  bool parse_special = true;
};

//! Options of `tokenizer::decode`.
struct decode_options {
  //! Drop added tokens marked `special` (e.g. EOS padding). Default false.
  bool skip_special_tokens = false;
  //! Apply transformers' `clean_up_tokenization` (" ." -> "." ...); unset: tokenizer_config.json's
  //! `clean_up_tokenization_spaces` (absent: true, as transformers).
  std::optional<bool> clean_up_tokenization_spaces{};
};

//! What tokenizer_config.json / special_tokens_map.json say around the tokenizer itself.
struct tokenizer_config {
  std::string bos_token, eos_token, pad_token, unk_token, mask_token;  //!< contents ("" = none)
  std::string chat_template;                 //!< the Jinja chat template ("" = none)
  bool clean_up_tokenization_spaces = true;  //!< decoding flag (see decode_options)
  std::vector<std::string> additional_special_tokens;  //!< `additional_special_tokens`
};

class tokenizer;

//! Incremental decoding for streamed output: `push` returns the text that is final so far; bytes
//! that do not yet form complete UTF-8 are held back (not printed as U+FFFD) until a later token
//! completes them or `finish` is called. The concatenation of every `push` and `finish` equals
//! `tokenizer::decode` of all pushed ids with the same options.
class stream_decoder {
 public:
  stream_decoder(const tokenizer& t, decode_options options = {});
  //! Appends ids; returns the newly final text.
  [[nodiscard]] std::string push(std::span<const token_id> ids);
  //! Ends the stream; returns what was held back (incomplete UTF-8 becomes U+FFFD).
  [[nodiscard]] std::string finish();

 private:
  const tokenizer* tok_;
  decode_options options_;
  std::vector<token_id> ids_;
  std::size_t emitted_ = 0;  // bytes of the raw decoded text already returned
};

//! A loaded tokenizer. Immutable after loading: `encode`, `decode` and `encode_batch` may run
//! from several threads at once.
class tokenizer {
 public:
  //! Parses tokenizer.json text (and optionally tokenizer_config.json text). Throws
  //! std::invalid_argument naming `label`, the JSON key and the unsupported component or bad value.
  [[nodiscard]] static tokenizer from_json(std::string_view tokenizer_json, std::string_view tokenizer_config_json = {},
                                           std::string_view label = "tokenizer.json");
  //! Builds Qwen2's fast tokenizer from the slow layout: vocab.json + merges.txt texts, the added
  //! tokens of tokenizer_config.json `added_tokens_decoder` (or `added_tokens_json`, an
  //! added_tokens.json text, when the config has none).
  [[nodiscard]] static tokenizer from_vocab_merges(std::string_view vocab_json, std::string_view merges_txt,
                                                   std::string_view tokenizer_config_json = {},
                                                   std::string_view added_tokens_json = {},
                                                   std::string_view label = "vocab.json");
  //! Loads a directory: tokenizer.json if present, else vocab.json + merges.txt; plus
  //! tokenizer_config.json and special_tokens_map.json when present. A missing file is a
  //! std::invalid_argument naming it.
  [[nodiscard]] static tokenizer load(const std::filesystem::path& dir);

  tokenizer(tokenizer&&) noexcept;
  tokenizer& operator=(tokenizer&&) noexcept;
  ~tokenizer();

  //! Token ids of `text` (UTF-8). Invalid UTF-8 is a std::invalid_argument giving the byte offset
  //! (Hugging Face tokenizers take Unicode strings, so no byte-level fallback is defined for it).
  [[nodiscard]] std::vector<token_id> encode(std::string_view text, const encode_options& options = {}) const;
  //! `encode` of every text, split over `threads` threads (0 = hardware concurrency); the result
  //! does not depend on the thread count.
  [[nodiscard]] std::vector<std::vector<token_id>> encode_batch(std::span<const std::string> texts,
                                                                const encode_options& options = {},
                                                                std::size_t threads = 0) const;
  //! Text of `ids`. Ids outside the vocabulary are a std::invalid_argument naming the id; bytes
  //! that are not valid UTF-8 become U+FFFD (as `errors="replace"`).
  [[nodiscard]] std::string decode(std::span<const token_id> ids, const decode_options& options = {}) const;

  //! One more than the largest id (model vocabulary and added tokens).
  [[nodiscard]] std::size_t vocab_size() const noexcept;
  //! The id of a token string (added tokens first, then the model vocabulary).
  [[nodiscard]] std::optional<token_id> token_to_id(std::string_view token) const;
  //! The token string of an id ("" for an unused id).
  [[nodiscard]] std::string id_to_token(token_id id) const;
  //! The added tokens, in tokenizer.json order.
  [[nodiscard]] std::span<const added_token> added_tokens() const noexcept;
  //! tokenizer_config.json's settings.
  [[nodiscard]] const tokenizer_config& config() const noexcept;

  struct impl;

 private:
  friend class stream_decoder;
  explicit tokenizer(std::unique_ptr<impl> p);
  //! decode without the final UTF-8 repair and clean-up (stream_decoder works on these bytes).
  [[nodiscard]] std::string decode_bytes(std::span<const token_id> ids, bool skip_special) const;
  std::unique_ptr<impl> impl_;
};

//! transformers' `clean_up_tokenization`: removes the space before . ? ! , and in " ' ", " n't",
//! " 'm", " 's", " 've", " 're".
[[nodiscard]] std::string clean_up_tokenization(std::string_view text);

//! Replaces every maximal invalid UTF-8 subsequence by U+FFFD (Unicode's "maximal subpart"
//! practice, as Rust's from_utf8_lossy, WHATWG TextDecoder and Python's errors="replace").
[[nodiscard]] std::string repair_utf8(std::string_view bytes);

}  // namespace mdlm::text
