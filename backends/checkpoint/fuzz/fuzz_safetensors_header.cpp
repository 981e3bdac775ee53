// SPDX-License-Identifier: MIT
// libFuzzer target: mdlm::hf::parse_safetensors on arbitrary file images. Every input must either
// parse into a header whose tensors lie inside the file, or be rejected with checkpoint_error; any
// other exception, crash or sanitizer report is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "mdlm/checkpoint/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> file(reinterpret_cast<const std::byte*>(data), size);
  try {
    const auto h = mdlm::hf::parse_safetensors(file, "fuzz input");
    for (const auto& t : h.tensors) {
      if (t.end > h.data_size || t.begin > t.end) std::abort();
      if (8 + h.header_size + t.end > size) std::abort();
      // Touch the bytes: reads outside the input would be caught by AddressSanitizer.
      volatile std::uint8_t sink = 0;
      for (std::uint64_t i = t.begin; i < t.end; ++i) sink = static_cast<std::uint8_t>(sink ^ data[8 + h.header_size + i]);
      (void)sink;
    }
  } catch (const mdlm::hf::checkpoint_error&) {
    // Rejected input: the expected outcome for most mutations.
  }
  return 0;
}
