// SPDX-License-Identifier: MIT
// `mdlm make-checkpoint`: writes a tiny random-weight LLaDA or Dream checkpoint (config.json with
// the real keys + model.safetensors with the real tensor names).
#if MDLM_TOOL_HAVE_CPU
#include <cstdio>
#include <map>
#include <string>

#include "commands.hpp"
#include "mdlm/cpu/make_checkpoint.hpp"

namespace mdlm::tool {

void register_make_checkpoint(CLI::App& app) {
  auto* cmd = app.add_subcommand("make-checkpoint", "Write a tiny random-weight LLaDA or Dream checkpoint directory");
  struct options {
    cpu::tiny_checkpoint_spec spec;
    std::string out;
    std::string dtype = "bf16";
  };
  auto opt = std::make_shared<options>();
  const std::map<std::string, cpu::architecture> archs{{"llada", cpu::architecture::llada},
                                                       {"dream", cpu::architecture::dream}};
  cmd->add_option("--arch", opt->spec.arch, "Architecture: llada or dream")
      ->required()
      ->transform(CLI::CheckedTransformer(archs, CLI::ignore_case));
  cmd->add_option("--layers", opt->spec.layers, "Transformer blocks")->capture_default_str();
  cmd->add_option("--d-model", opt->spec.d_model, "Hidden size")->capture_default_str();
  cmd->add_option("--heads", opt->spec.heads, "Query heads")->capture_default_str();
  cmd->add_option("--kv-heads", opt->spec.kv_heads, "Key/value heads (divides --heads)")->capture_default_str();
  cmd->add_option("--mlp", opt->spec.mlp, "SwiGLU hidden width")->capture_default_str();
  cmd->add_option("--vocab", opt->spec.vocab, "Vocabulary rows (mask id = vocab - 20)")->capture_default_str();
  cmd->add_option("--seed", opt->spec.seed, "Weight seed")->capture_default_str();
  cmd->add_option("--max-seq-len", opt->spec.max_sequence_length, "max_sequence_length / max_position_embeddings")
      ->capture_default_str();
  cmd->add_option("--dtype", opt->dtype, "Storage dtype: bf16, f16 or f32")
      ->check(CLI::IsMember({"bf16", "f16", "f32"}))
      ->capture_default_str();
  cmd->add_option("--out", opt->out, "Output directory (created)")->required();
  cmd->callback([opt] {
    opt->spec.type = opt->dtype == "bf16" ? cpu::dtype::bf16 : opt->dtype == "f16" ? cpu::dtype::f16 : cpu::dtype::f32;
    cpu::write_tiny_checkpoint(opt->spec, opt->out);
    const auto tok = cpu::tiny_tokens(opt->spec.vocab);
    std::printf("wrote %s checkpoint to %s (mask id %d)\n", std::string(cpu::architecture_name(opt->spec.arch)).c_str(),
                opt->out.c_str(), tok.mask);
  });
}

}  // namespace mdlm::tool
#endif
