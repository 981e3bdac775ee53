// SPDX-License-Identifier: MIT
// `mdlm tokenize` / `mdlm detokenize`: a checkpoint's tokenizer (tokenizer.json, or vocab.json +
// merges.txt) for scripts. `tokenize` prints the ids `mdlm generate` would use for the same
// --prompt / --prompt-file / --chat / --system (comma-separated, the --prompt-ids format);
// `detokenize` prints the text of ids.
#if MDLM_TOOL_HAVE_CPU
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "commands.hpp"
#include "mdlm/detail/errors.hpp"
#include "text_io.hpp"

namespace mdlm::tool {

void register_tokenize(CLI::App& app) {
  {
    auto* cmd = app.add_subcommand("tokenize", "Print the token ids of a text prompt (the ids `generate` would use)");
    struct options {
      std::string model;
      text_input in;
      bool json = false;
    };
    auto o = std::make_shared<options>();
    cmd->add_option("--model", o->model, "Checkpoint or tokenizer directory (tokenizer.json, or vocab.json + merges.txt)")->required();
    add_text_input_options(*cmd, o->in);
    cmd->add_flag("--json", o->json, "Print {\"ids\": [...], \"tokens\": [...], \"text\": ...}");
    cmd->callback([o] {
      detail::require(o->in.given(), "give the text with --prompt or --prompt-file");
      const auto tok = load_tokenizer(o->model, false);
      const std::string text = prompt_text(tok, o->in);
      const auto ids = encode_prompt(tok, text);
      if (o->json) {
        nlohmann::json j;
        j["text"] = text;
        j["ids"] = ids;
        std::vector<std::string> tokens;
        for (auto id : ids) tokens.push_back(text::repair_utf8(tok.id_to_token(id)));
        j["tokens"] = tokens;
        std::printf("%s\n", j.dump().c_str());
      } else {
        std::string line;
        for (auto id : ids) {
          if (!line.empty()) line += ',';
          line += std::to_string(id);
        }
        std::printf("%s\n", line.c_str());
      }
    });
  }
  {
    auto* cmd = app.add_subcommand("detokenize", "Print the text of token ids");
    struct options {
      std::string model, ids, ids_file;
      bool skip_special = false, json = false;
    };
    auto o = std::make_shared<options>();
    cmd->add_option("--model", o->model, "Checkpoint or tokenizer directory (tokenizer.json, or vocab.json + merges.txt)")->required();
    auto* ids = cmd->add_option("--ids", o->ids, "Token ids, comma-separated (1,2,3)");
    auto* file = cmd->add_option("--ids-file", o->ids_file, "File of token ids (commas or whitespace)");
    cmd->add_flag("--skip-special", o->skip_special, "Drop special tokens (EOS padding, <|eot_id|>, ...)");
    cmd->add_flag("--json", o->json, "Print {\"text\": ...}");
    cmd->callback([o, ids, file] {
      detail::require(ids->count() + file->count() == 1, "give the ids with --ids or --ids-file");
      std::string text = o->ids;
      if (file->count() > 0) {
        text = read_input_file("--ids-file", o->ids_file);
      }
      const auto list = parse_token_ids(text, file->count() > 0 ? "--ids-file " + o->ids_file : std::string("--ids"));
      const auto tok = load_tokenizer(o->model, false);
      const std::string out = tok.decode(list, {.skip_special_tokens = o->skip_special, .clean_up_tokenization_spaces = std::nullopt});
      if (o->json) std::printf("%s\n", nlohmann::json{{"text", out}}.dump().c_str());
      else std::printf("%s\n", out.c_str());
    });
  }
}

}  // namespace mdlm::tool
#endif
