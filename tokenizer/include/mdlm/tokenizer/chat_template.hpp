// SPDX-License-Identifier: MIT
#pragma once
//! @file
//! Chat templates: a Jinja interpreter for the subset that Hugging Face chat templates use
//! (transformers renders `tokenizer_config.json`'s `chat_template` with Jinja2, trim_blocks and
//! lstrip_blocks on). It renders LLaDA-8B-Instruct's and Dream-v0-Instruct-7B's templates exactly
//! (checked against @huggingface/jinja in tests/tokenizer) and most other published templates.
//!
//! Supported: text, `{{ }}`, `{# #}`, whitespace control (`-`), `if / elif / else`, `for` (with
//! `loop.index / index0 / revindex / revindex0 / first / last / length / previtem / nextitem`, tuple
//! targets, `else`, `break` / `continue`), `set` (also `ns.attr` and block sets), `generation`
//! blocks; literals, lists, dicts; `. [] [a:b:c]` access; `+ - * / // % ** ~`, comparisons, `in`,
//! `not in`, `and / or / not`, `a if c else b`; `is` tests; filters `trim, tojson, length, count,
//! upper, lower, title, capitalize, string, join, default, first, last, list, items, replace, int,
//! float, abs, reverse, safe, indent, map(attribute=), selectattr, rejectattr, unique`; string and
//! dict methods (`strip, lstrip, rstrip, split, startswith, endswith, upper, lower, replace, title,
//! items, keys, values, get`); `range`, `namespace`, `raise_exception`. Anything else is a
//! std::invalid_argument naming the construct when the template is compiled, so an unsupported
//! template is reported before any model work.

#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace mdlm::text {

class tokenizer;

//! One chat turn.
struct chat_message {
  std::string role;     //!< "system", "user", "assistant", ...
  std::string content;  //!< the text of the turn
};

//! Variables of a render besides `messages`.
struct chat_render_options {
  bool add_generation_prompt = true;  //!< `add_generation_prompt` (open the assistant turn)
  //! Named special tokens the template may use (`bos_token`, `eos_token`, ...); string variables.
  std::map<std::string, std::string> variables;
};

//! A compiled Jinja chat template.
class chat_template {
 public:
  //! Compiles `source`. Throws std::invalid_argument naming an unsupported construct or a syntax
  //! error with its line.
  explicit chat_template(std::string_view source);
  chat_template(chat_template&&) noexcept;
  chat_template& operator=(chat_template&&) noexcept;
  ~chat_template();
  //! Renders the conversation. Throws std::invalid_argument for errors the template raises
  //! (`raise_exception`) or type errors (e.g. adding a string to a number).
  [[nodiscard]] std::string render(std::span<const chat_message> messages, const chat_render_options& options = {}) const;

  struct program;

 private:
  std::unique_ptr<program> program_;
};

//! Renders the tokenizer's chat_template (tokenizer_config.json) with its named special tokens
//! (bos_token, eos_token, pad_token, unk_token, mask_token). Throws std::invalid_argument when the
//! tokenizer has no chat template or the template is unsupported.
[[nodiscard]] std::string apply_chat_template(const tokenizer& t, std::span<const chat_message> messages,
                                              bool add_generation_prompt = true);

}  // namespace mdlm::text
