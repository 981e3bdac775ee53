// SPDX-License-Identifier: MIT
#include "parse_support.hpp"

#include <set>
#include <string>
#include <vector>

#include "mdlm/checkpoint/safetensors.hpp"
#include "mdlm/detail/errors.hpp"

namespace mdlm::hf::detail {

std::string printable(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  constexpr char hex[] = "0123456789abcdef";
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x20 && c < 0x7f) {
      out += ch;
    } else {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

nlohmann::json parse_json_strict(std::string_view text, std::string_view label) {
  using json = nlohmann::json;
  std::vector<std::set<std::string, std::less<>>> keys;  // keys seen, per open object
  std::string duplicate;
  const json::parser_callback_t cb = [&](int, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) keys.emplace_back();
    else if (event == json::parse_event_t::object_end) keys.pop_back();
    else if (event == json::parse_event_t::key && !keys.empty() && !keys.back().insert(parsed.get<std::string>()).second &&
             duplicate.empty())
      duplicate = parsed.get<std::string>();
    return true;
  };
  json j;
  try {
    j = json::parse(text, cb);
  } catch (const json::exception& e) {
    throw checkpoint_error(printable(mdlm::detail::concat(label, ": malformed JSON: ", e.what())));
  }
  if (!duplicate.empty())
    throw checkpoint_error(
        printable(mdlm::detail::concat(label, ": duplicate key \"", duplicate, "\" (which value is meant is ambiguous)")));
  return j;
}

}  // namespace mdlm::hf::detail
