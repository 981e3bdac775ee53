// SPDX-License-Identifier: MIT
// `mdlm info`: architecture, sizes and special tokens of a checkpoint directory, validated.
#if MDLM_TOOL_HAVE_CPU
#include <cstdio>
#include <filesystem>
#include <string>

#include "commands.hpp"
#include "mdlm/cpu/checkpoint_names.hpp"

namespace mdlm::tool {

void register_info(CLI::App& app) {
  auto* cmd = app.add_subcommand("info", "Print the architecture, sizes and special tokens of a checkpoint directory");
  auto dir = std::make_shared<std::string>();
  cmd->add_option("--model", *dir, "Checkpoint directory (config.json + safetensors)")->required();
  cmd->callback([dir] {
    const std::filesystem::path p(*dir);
    const cpu::model_config c = cpu::read_model_config(p);
    std::string weights;
    std::error_code ec;
    const bool has_single = std::filesystem::exists(p / "model.safetensors", ec);
    const bool has_index = std::filesystem::exists(p / "model.safetensors.index.json", ec);
    bool shards_present = false;
    for (const auto& entry : std::filesystem::directory_iterator(p, ec))
      if (entry.path().extension() == ".safetensors") shards_present = true;
    // With weights present, the checks are exactly those of `generate` (checkpoint::open: the index,
    // its total_size when stated, every tensor); without them, the index metadata alone.
    if (has_single || shards_present) {
      const auto ck = cpu::checkpoint::open(p);
      weights = std::to_string(ck.tensor_names().size()) + " tensors in " + std::to_string(ck.file_count()) +
                " file(s), validated; dtype " + std::string(cpu::dtype_name(ck.info(ck.tensor_names().front()).type));
    } else if (has_index) {
      const auto r = cpu::check_index_metadata(p, c.dtype == "float32" ? 4 : 2);
      weights = std::to_string(r.tensors) + " tensors in " + std::to_string(r.shards) + " shards, index total_size " +
                (r.total_size ? std::to_string(*r.total_size) + " bytes" : std::string("not stated")) +
                " (weights absent: index metadata checked)";
    } else {
      weights = "absent (no model.safetensors or index)";
    }
    auto tok = [](token_id t) { return t == no_token ? std::string("-") : std::to_string(t); };
    std::printf("architecture:      %s\n", std::string(cpu::architecture_name(c.arch)).c_str());
    std::printf("layers:            %zu\n", c.n_layers);
    std::printf("d_model:           %zu\n", c.d_model);
    std::printf("heads / kv heads:  %zu / %zu (head_dim %zu)\n", c.n_heads, c.n_kv_heads, c.head_dim);
    std::printf("mlp hidden:        %zu\n", c.mlp_hidden);
    std::printf("vocabulary rows:   %zu\n", c.vocab_size);
    std::printf("parameters:        %llu\n", static_cast<unsigned long long>(c.parameter_count()));
    std::printf("rms_norm_eps:      %g\n", c.rms_norm_eps);
    std::printf("rope_theta:        %g\n", c.rope_theta);
    std::printf("max sequence:      %zu\n", c.max_sequence_length);
    std::printf("logit shift:       %s\n", c.shift_logits ? "yes (row i <- hidden i-1)" : "no");
    std::printf("mask / eos / pad / bos: %s / %s / %s / %s\n", tok(c.mask_token).c_str(), tok(c.eos_token).c_str(),
                tok(c.pad_token).c_str(), tok(c.bos_token).c_str());
    std::printf("weights:           %s\n", weights.c_str());
  });
}

}  // namespace mdlm::tool
#endif
