// SPDX-License-Identifier: MIT
// `mdlm make-checkpoint`: writes a tiny random-weight LLaDA or Dream checkpoint (config.json with
// the real keys + model.safetensors with the real tensor names).
#if MDLM_TOOL_HAVE_CPU
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <unistd.h>
#include <string>

#include "commands.hpp"
#include "mdlm/cpu/make_checkpoint.hpp"
#include "mdlm/detail/errors.hpp"
#include "text_io.hpp"

namespace mdlm::tool {

void register_make_checkpoint(CLI::App& app) {
  auto* cmd = app.add_subcommand("make-checkpoint", "Write a tiny random-weight LLaDA or Dream checkpoint directory");
  struct options {
    cpu::tiny_checkpoint_spec spec;
    std::string out;
    std::string dtype = "bf16";
    std::string tokenizer;
    bool force = false;
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
  auto* vocab = cmd->add_option("--vocab", opt->spec.vocab, "Vocabulary rows (mask id = vocab - 20)")->capture_default_str();
  cmd->add_option("--tokenizer", opt->tokenizer,
                  "Copy this directory's tokenizer files into the checkpoint and take the mask / BOS / EOS ids from it; "
                  "the vocabulary grows to fit (a multiple of 64) unless --vocab is given");
  cmd->add_option("--seed", opt->spec.seed, "Weight seed")->capture_default_str();
  cmd->add_option("--max-seq-len", opt->spec.max_sequence_length, "max_sequence_length / max_position_embeddings")
      ->capture_default_str();
  cmd->add_option("--dtype", opt->dtype, "Storage dtype: bf16, f16 or f32")
      ->check(CLI::IsMember({"bf16", "f16", "f32"}))
      ->capture_default_str();
  cmd->add_option("--out", opt->out, "Output directory (created; an existing one is kept unless --force)")->required();
  cmd->add_flag("--force", opt->force, "Replace an existing --out directory (only once the new checkpoint is complete)");
  cmd->callback([opt, vocab] {
    opt->spec.type = opt->dtype == "bf16" ? cpu::dtype::bf16 : opt->dtype == "f16" ? cpu::dtype::f16 : cpu::dtype::f32;
    if (!opt->tokenizer.empty()) {
      // The tokenizer's ids must be rows of the model: the vocabulary fits them (rounded up to a
      // multiple of 64 as the real checkpoints pad it), and its mask / BOS / EOS become the config's.
      const auto tok = load_tokenizer(opt->tokenizer, false);
      const auto ids = special_ids(tok);
      const std::size_t needed = tok.vocab_size();
      if (vocab->count() == 0) opt->spec.vocab = std::max<std::size_t>(32, (needed + 63) / 64 * 64);
      detail::require(opt->spec.vocab >= needed, "--vocab ", opt->spec.vocab, " is smaller than the tokenizer's ", needed, " ids");
      opt->spec.tokens = cpu::tiny_special_tokens{ids.bos, ids.eos, ids.mask};
    }
    // Written into a sibling folder and renamed into place: an existing checkpoint is never
    // clobbered by a mistyped command, and a failed run leaves no configs without weights.
    namespace fs = std::filesystem;
    fs::path out = fs::path(opt->out).lexically_normal();
    if (out.filename().empty()) out = out.parent_path();
    std::error_code ec;
    detail::require(opt->force || !fs::exists(out, ec), "--out ", opt->out,
                    " already exists; choose another directory or pass --force to replace it");
    const fs::path partial = out.parent_path() / (out.filename().string() + ".partial-" + std::to_string(::getpid()));
    fs::remove_all(partial, ec);
    try {
      cpu::write_tiny_checkpoint(opt->spec, partial);
      if (!opt->tokenizer.empty()) {
        for (const auto& name : tokenizer_file_names()) {
          const auto from = fs::path(opt->tokenizer) / name;
          if (fs::exists(from)) fs::copy_file(from, partial / name, fs::copy_options::overwrite_existing);
        }
      }
    } catch (...) {
      fs::remove_all(partial, ec);
      throw;
    }
    if (fs::exists(out, ec)) fs::remove_all(out);
    fs::rename(partial, out);
    const auto tok = cpu::special_tokens_of(opt->spec);
    std::printf("wrote %s checkpoint to %s (vocabulary %zu, mask id %d%s)\n",
                std::string(cpu::architecture_name(opt->spec.arch)).c_str(), opt->out.c_str(), opt->spec.vocab, tok.mask,
                opt->tokenizer.empty() ? "" : ", tokenizer copied");
  });
}

}  // namespace mdlm::tool
#endif
