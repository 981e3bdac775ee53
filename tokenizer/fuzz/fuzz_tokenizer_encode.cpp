// SPDX-License-Identifier: MIT
// libFuzzer target of encode / decode on the committed byte-level tokenizer (tests/tokenizer/data/
// tiny-bpe): invalid UTF-8 is rejected with std::invalid_argument; valid text round-trips to its
// NFC form (byte-level BPE is lossless), with and without special-token parsing, and streaming the
// ids one at a time gives the same text as decode.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>

#include "mdlm/tokenizer/tokenizer.hpp"
#include "unicode.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const auto t = mdlm::text::tokenizer::load(MDLM_FUZZ_TOKENIZER_DIR);
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const bool valid = mdlm::text::detail::first_invalid_utf8(text) == std::string_view::npos;
  try {
    const auto ids = t.encode(text);
    if (!valid) std::abort();  // invalid UTF-8 must be rejected
    const std::string nfc = mdlm::text::detail::normalize(text, mdlm::text::detail::normal_form::nfc);
    if (t.decode(ids) != nfc) std::abort();
    if (t.decode(t.encode(text, {.add_special_tokens = true, .parse_special = false})) != nfc) std::abort();
    mdlm::text::stream_decoder s(t);
    std::string streamed;
    for (auto id : ids) streamed += s.push({&id, 1});
    streamed += s.finish();
    if (streamed != nfc) std::abort();
  } catch (const std::invalid_argument&) {
    if (valid) std::abort();
  }
  return 0;
}
