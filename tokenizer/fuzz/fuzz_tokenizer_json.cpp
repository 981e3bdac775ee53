// SPDX-License-Identifier: MIT
// libFuzzer target of the tokenizer.json reader: any input either loads or is rejected with
// std::invalid_argument (never a crash, a leak, undefined behaviour or an unbounded allocation);
// a tokenizer that loads must encode and decode a fixed text without crashing.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string_view>

#include "mdlm/tokenizer/tokenizer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const auto t = mdlm::text::tokenizer::from_json(text);
    const auto ids = t.encode("Hello world 123 <|eot_id|> e\xCC\x81 \xE4\xB8\xAD\xE6\x96\x87 \xF0\x9F\x98\x80\n\n  x");
    (void)t.decode(ids);
    (void)t.decode(ids, {.skip_special_tokens = true, .clean_up_tokenization_spaces = true});
  } catch (const std::invalid_argument&) {
  } catch (const std::runtime_error&) {  // a regex that hits PCRE2's backtracking limit
  }
  return 0;
}
