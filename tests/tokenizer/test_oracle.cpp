// SPDX-License-Identifier: MIT
// Parity with the independent JavaScript implementations (hidden tag [oracle]; run by the ctest
// `tokenizer_oracle`, tests/tokenizer/run_oracle.sh): tests/tokenizer/oracle/oracle.mjs writes the
// ids, decoded texts and chat-template renders of @huggingface/tokenizers and @huggingface/jinja to
// the manifest named by MDLM_TOKENIZER_ORACLE; every case must match exactly.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "mdlm/tokenizer/chat_template.hpp"
#include "mdlm/tokenizer/tokenizer.hpp"

namespace {

using nlohmann::json;

json manifest() {
  const char* path = std::getenv("MDLM_TOKENIZER_ORACLE");
  REQUIRE(path != nullptr);
  std::ifstream f(path);
  REQUIRE(f.good());
  return json::parse(f);
}

// The text with control and non-ASCII bytes escaped, for readable failure messages.
std::string shown(const std::string& s) {
  std::ostringstream os;
  for (unsigned char c : s) {
    if (c == '\n') os << "\\n";
    else if (c < 0x20 || c >= 0x7F) os << "\\x" << std::hex << static_cast<int>(c) << std::dec;
    else os << c;
  }
  return os.str();
}

std::string ids_text(const std::vector<mdlm::token_id>& ids) {
  std::string s;
  for (auto id : ids) {
    if (!s.empty()) s += ',';
    s += std::to_string(id);
  }
  return s;
}

}  // namespace

TEST_CASE("tokenizers match @huggingface/tokenizers on every corpus case", "[.oracle]") {
  const json m = manifest();
  REQUIRE(m["tokenizers"].size() >= 7);
  for (const auto& t : m["tokenizers"]) {
    const std::string name = t["name"];
    INFO("tokenizer " << name << " from " << t["dir"].get<std::string>());
    const auto tok = mdlm::text::tokenizer::load(t["dir"].get<std::string>());
    std::size_t mismatches = 0, checked = 0;
    for (const auto& c : t["cases"]) {
      const std::string text = c["text"];
      const auto ids = tok.encode(text);
      const auto plain = tok.encode(text, {.add_special_tokens = false});
      const auto expected = c["ids"].get<std::vector<mdlm::token_id>>();
      const auto expected_plain = c["ids_no_special"].get<std::vector<mdlm::token_id>>();
      const std::string decoded = tok.decode(expected);
      const std::string decoded_skip = tok.decode(expected, {.skip_special_tokens = true});
      // decode(encode(x)) == x (after NFC where the normalizer is NFC): every tokenizer here is a
      // byte-level BPE with all 256 bytes in its vocabulary, hence lossless.
      const bool lossless = tok.decode(ids, {.skip_special_tokens = false, .clean_up_tokenization_spaces = false}) == c["round_trip"];
      ++checked;
      if (!lossless || ids != expected || plain != expected_plain || decoded != c["decoded"] || decoded_skip != c["decoded_skip"]) {
        if (++mismatches <= 8) {
          UNSCOPED_INFO(name << ": text '" << shown(text) << "'\n  ids      " << ids_text(ids) << "\n  expected " << ids_text(expected)
                             << "\n  decoded '" << shown(decoded) << "' expected '" << shown(c["decoded"]) << "'\n  skip '"
                             << shown(decoded_skip) << "' expected '" << shown(c["decoded_skip"]) << "'\n  round trip "
                             << (lossless ? "ok" : "differs"));
        }
      }
    }
    for (const auto& c : t["decode_cases"]) {
      const auto ids = c["ids"].get<std::vector<mdlm::token_id>>();
      ++checked;
      if (tok.decode(ids) != c["decoded"] || tok.decode(ids, {.skip_special_tokens = true}) != c["decoded_skip"]) {
        if (++mismatches <= 8)
          UNSCOPED_INFO(name << ": decode " << ids_text(ids) << " -> '" << shown(tok.decode(ids)) << "' expected '"
                             << shown(c["decoded"]) << "'");
      }
    }
    INFO(name << ": " << mismatches << " of " << checked << " cases differ");
    CHECK(mismatches == 0);
    CHECK(checked > 600);
  }
}

TEST_CASE("chat templates render as @huggingface/jinja and encode to the same ids", "[.oracle]") {
  const json m = manifest();
  REQUIRE(m["templates"].size() == 2);
  for (const auto& t : m["templates"]) {
    const std::string name = t["name"];
    const auto tok = mdlm::text::tokenizer::load(t["dir"].get<std::string>());
    REQUIRE(tok.config().chat_template == t["chat_template"].get<std::string>());
    for (const auto& c : t["cases"]) {
      std::vector<mdlm::text::chat_message> messages;
      for (const auto& msg : c["messages"]) messages.push_back({msg["role"], msg["content"]});
      const std::string text = mdlm::text::apply_chat_template(tok, messages, c["add_generation_prompt"].get<bool>());
      INFO(name << ": " << c["messages"].dump() << " add_generation_prompt " << c["add_generation_prompt"]);
      CHECK(shown(text) == shown(c["text"]));
      CHECK(tok.encode(text, {.add_special_tokens = false}) == c["ids"].get<std::vector<mdlm::token_id>>());
    }
  }
}
