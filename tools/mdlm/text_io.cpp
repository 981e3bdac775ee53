// SPDX-License-Identifier: MIT
#if MDLM_TOOL_HAVE_CPU
#include "text_io.hpp"

#include "commands.hpp"

#include <cstdio>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include "mdlm/detail/errors.hpp"
#include "mdlm/tokenizer/chat_template.hpp"

namespace mdlm::tool {

bool text_input::given() const {
  return (prompt_option != nullptr && prompt_option->count() > 0) || (file_option != nullptr && file_option->count() > 0);
}

void add_text_input_options(CLI::App& cmd, text_input& in) {
  in.prompt_option = cmd.add_option("--prompt", in.prompt, "Prompt text (encoded with the checkpoint's tokenizer)");
  in.file_option = cmd.add_option("--prompt-file", in.prompt_file, "File of prompt text (UTF-8)");
  cmd.add_flag("--chat", in.chat, "Wrap the prompt in the tokenizer's chat template (one user turn, generation prompt open)");
  in.system_option = cmd.add_option("--system", in.system, "System turn before the prompt (with --chat)");
}

bool tokenizer_present(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  return fs::exists(dir / "tokenizer.json") || (fs::exists(dir / "vocab.json") && fs::exists(dir / "merges.txt"));
}

std::vector<std::string> tokenizer_file_names() {
  return {"tokenizer.json", "vocab.json", "merges.txt", "added_tokens.json", "tokenizer_config.json", "special_tokens_map.json",
          "chat_template.jinja"};
}

tokenizer_special_ids special_ids(const text::tokenizer& t) {
  const auto& c = t.config();
  const auto id_of = [&](const std::string& content, const char* what) {
    const auto id = t.token_to_id(content);
    detail::require(id.has_value(), "the tokenizer's ", what, " '", content, "' is not one of its tokens");
    return *id;
  };
  detail::require(!c.eos_token.empty(), "the tokenizer names no eos_token (tokenizer_config.json)");
  const token_id eos = id_of(c.eos_token, "eos_token");
  const token_id bos = c.bos_token.empty() ? eos : id_of(c.bos_token, "bos_token");
  token_id mask = no_token;
  if (!c.mask_token.empty()) mask = id_of(c.mask_token, "mask_token");
  else if (const auto m = t.token_to_id("<|mdm_mask|>")) mask = *m;
  detail::require(mask != no_token, "the tokenizer names no mask token (tokenizer_config.json mask_token, or <|mdm_mask|>)");
  return {bos, eos, mask};
}

text::tokenizer load_tokenizer(const std::filesystem::path& dir, bool ids_hint) {
  namespace fs = std::filesystem;
  const std::string hint = ids_hint ? "; give the prompt as token ids with --prompt-ids instead" : "";
  detail::require(fs::is_directory(dir), dir.string(), " is not a directory");
  if (!fs::exists(dir / "tokenizer.json")) {
    const bool vocab = fs::exists(dir / "vocab.json"), merges = fs::exists(dir / "merges.txt");
    if (!vocab || !merges)
      detail::throw_invalid(dir.string(), " has no tokenizer: ", (dir / "tokenizer.json").string(), " is missing",
                            vocab != merges ? (vocab ? " (and so is merges.txt beside vocab.json)" : " (and so is vocab.json beside merges.txt)") : "",
                            hint);
  }
  try {
    return text::tokenizer::load(dir);
  } catch (const std::invalid_argument& e) {
    detail::throw_invalid("tokenizer: ", e.what(), hint);
  }
}

std::string prompt_text(const text::tokenizer& t, const text_input& in) {
  std::string text = in.prompt;
  if (in.file_option != nullptr && in.file_option->count() > 0) {
    text = read_input_file("--prompt-file", in.prompt_file);
  }
  detail::require(!in.system_option || in.system_option->count() == 0 || in.chat, "--system needs --chat");
  if (!in.chat) return text;
  std::vector<text::chat_message> messages;
  if (in.system_option != nullptr && in.system_option->count() > 0) messages.push_back({"system", in.system});
  messages.push_back({"user", text});
  try {
    return text::apply_chat_template(t, messages, /*add_generation_prompt=*/true);
  } catch (const std::invalid_argument& e) {
    detail::throw_invalid("--chat: ", e.what(), "; drop --chat to pass the prompt as raw text");
  }
}

std::vector<token_id> encode_prompt(const text::tokenizer& t, const std::string& text) {
  try {
    return t.encode(text, {.add_special_tokens = false, .parse_special = true});
  } catch (const std::invalid_argument& e) {
    detail::throw_invalid("the prompt: ", e.what());
  }
}

std::string generated_text(const text::tokenizer& t, std::span<const token_id> ids) {
  return t.decode(ids, {.skip_special_tokens = true, .clean_up_tokenization_spaces = std::nullopt});
}

block_streamer::block_streamer(const text::tokenizer& t, std::size_t region_begin)
    : decoder_(t, {.skip_special_tokens = true, .clean_up_tokenization_spaces = std::nullopt}), region_begin_(region_begin) {}

void block_streamer::print(std::span<const token_id> ids) {
  const std::string text = decoder_.push(ids);
  if (!text.empty()) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
  }
}

void block_streamer::on_step(step_event& e) {
  // Positions before the current block are final; so is the current block once no mask is left.
  std::size_t upto = e.block_begin;
  bool done = true;
  for (std::size_t p = e.block_begin; p < e.block_end && done; ++p) done = e.tokens[p] != e.mask;
  if (done) upto = e.block_end;
  const std::size_t end = upto - region_begin_;
  if (end <= printed_) return;
  print(std::span<const token_id>(e.tokens).subspan(region_begin_ + printed_, end - printed_));
  printed_ = end;
}

void block_streamer::finish(std::span<const token_id> generated) {
  if (printed_ < generated.size()) print(generated.subspan(printed_));
  printed_ = generated.size();
  const std::string rest = decoder_.finish();
  std::fwrite(rest.data(), 1, rest.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

}  // namespace mdlm::tool
#endif
