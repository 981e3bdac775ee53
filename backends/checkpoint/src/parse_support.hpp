// SPDX-License-Identifier: MIT
#pragma once
// Parsing helpers shared by the safetensors, config.json and model.safetensors.index.json readers.
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace mdlm::hf::detail {

// `text` with control and non-ASCII bytes written as \xHH: a malformed file's bytes (echoed by the
// JSON parser's messages or as tensor names) reach the terminal as text, never as raw binary.
[[nodiscard]] std::string printable(std::string_view text);

// Parses JSON text, rejecting duplicate keys in any object (nlohmann keeps the last value, so
// `{"n_layers": 2, "n_layers": 32}` would silently mean 32). Throws checkpoint_error naming `label`
// for malformed JSON or the first duplicate key. Each object's keys are kept in a sorted set, so a
// large object (an index of a million names) costs O(n log n), not O(n^2).
[[nodiscard]] nlohmann::json parse_json_strict(std::string_view text, std::string_view label);

}  // namespace mdlm::hf::detail
