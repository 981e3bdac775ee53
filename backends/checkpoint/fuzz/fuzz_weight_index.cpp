// SPDX-License-Identifier: MIT
// libFuzzer target: mdlm::hf::parse_weight_index on arbitrary model.safetensors.index.json text.
// Every input must either give a weight map of plain shard file names, or be rejected with
// checkpoint_error; any other exception, crash or sanitizer report is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "mdlm/checkpoint/checkpoint.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const auto index = mdlm::hf::parse_weight_index(text, "fuzz input");
    for (const auto& [name, file] : index.weight_map)
      if (file.empty() || file.find('/') != std::string::npos || file == "." || file == "..") std::abort();
  } catch (const mdlm::hf::checkpoint_error& e) {
    // Rejected input: the expected outcome for most mutations. The message is printable text.
    for (const char ch : std::string_view(e.what()))
      if (static_cast<unsigned char>(ch) < 0x20 || static_cast<unsigned char>(ch) >= 0x7f) std::abort();
  }
  return 0;
}
