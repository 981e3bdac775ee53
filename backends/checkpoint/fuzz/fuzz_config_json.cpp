// SPDX-License-Identifier: MIT
// libFuzzer target: mdlm::hf::parse_model_config on arbitrary config.json text. Every input must
// either give a configuration within the documented bounds, or be rejected with checkpoint_error;
// any other exception, crash or sanitizer report is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "mdlm/checkpoint/config.hpp"
#include "mdlm/checkpoint/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const auto c = mdlm::hf::parse_model_config(text, "fuzz input");
    // What parse_model_config promises (config.hpp): consistent heads, an even head_dim, special
    // ids inside the vocabulary, epsilon in (0, 1).
    if (c.n_heads == 0 || c.n_kv_heads == 0 || c.d_model % c.n_heads != 0 || c.n_heads % c.n_kv_heads != 0) std::abort();
    if (c.head_dim * c.n_heads != c.d_model || c.head_dim % 2 != 0) std::abort();
    if (c.mask_token < 0 || static_cast<std::size_t>(c.mask_token) >= c.vocab_size) std::abort();
    for (const auto t : {c.eos_token, c.pad_token, c.bos_token})
      if (t != mdlm::no_token && (t < 0 || static_cast<std::size_t>(t) >= c.vocab_size)) std::abort();
    if (!(c.rms_norm_eps > 0.0 && c.rms_norm_eps < 1.0) || !(c.rope_theta > 0.0)) std::abort();
    // The implied tensor list is bounded (n_layers <= 4096), so building it must be cheap and safe.
    if (mdlm::hf::expected_tensors(c).empty()) std::abort();
  } catch (const mdlm::hf::checkpoint_error&) {
    // Rejected input: the expected outcome for most mutations.
  }
  return 0;
}
