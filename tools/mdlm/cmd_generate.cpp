// SPDX-License-Identifier: MIT
// `mdlm generate`: decode with a LLaDA or Dream checkpoint on the CPU (mdlm::cpu) or a CUDA GPU (mdlm::cuda,
// `--device cuda`) and print the generated ids, the number of model calls and each position's unmask step.
//
// Policy names follow the references (shared/spec/samplers.md); each maps to a policy of
// include/mdlm/policies/ and decode_options (docs/samplers.md):
//   llada-low-confidence  fixed_count{confidence, llada_blocks}      LLaDA generate.py remasking='low_confidence'
//   llada-random          fixed_count{random, llada_blocks}          LLaDA generate.py remasking='random'
//   dream-maskgit-plus    fixed_count{tempered_confidence, dream_timesteps}   Dream alg='maskgit_plus'
//   dream-topk-margin     fixed_count{margin, dream_timesteps}       Dream alg='topk_margin'
//   dream-entropy         fixed_count{neg_entropy, dream_timesteps}  Dream alg='entropy'
//   dream-origin          dream_origin                               Dream alg='origin'
//   fast-dllm-threshold   fast_dllm_threshold{tau}                   Fast-dLLM get_transfer_index
//   fast-dllm-factor      fast_dllm_factor{factor}                   Fast-dLLM get_transfer_index_dynamic
//   eb                    eb_sampler{gamma}                          EB-Sampler
//   med                   med{lambda, k_max}                         MED (arXiv 2510.19990)
//   left-to-right         fixed_count{left_to_right, per_step = 1}   one token per call, leftmost first
//
// Defaults follow the reference samplers: gen-length 128, block-length = gen-length, steps =
// gen-length for the scheduled (LLaDA / Dream) policies (LLaDA generate.py: 128 / 128 / 128;
// Dream's README: max_new_tokens = steps) and adaptive (one call per step until the block is done)
// for the others; temperature 0; no top-p / top-k; policy parameters as in docs/samplers.md.
//
// Every argument is checked against config.json before the weights are loaded, so bad input costs
// nothing and exits with code 2 and a one-line message.
#if MDLM_TOOL_HAVE_CPU
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "commands.hpp"
#include "device_model.hpp"
#include "mdlm/canvas.hpp"
#include "mdlm/cpu/checkpoint_names.hpp"
#include "mdlm/cpu/model.hpp"
#include "mdlm/decode.hpp"
#include "mdlm/detail/errors.hpp"
#include "mdlm/observer.hpp"
#include "mdlm/policies/eb_sampler.hpp"
#include "mdlm/policies/fast_dllm.hpp"
#include "mdlm/policies/fixed_count.hpp"
#include "mdlm/policies/med.hpp"
#include "mdlm/token_choice.hpp"
#include "text_io.hpp"

namespace mdlm::tool {

namespace {

enum class policy_name {
  llada_low_confidence,
  llada_random,
  dream_maskgit_plus,
  dream_topk_margin,
  dream_entropy,
  dream_origin,
  fast_dllm_threshold,
  fast_dllm_factor,
  eb,
  med,
  left_to_right,
};

const std::map<std::string, policy_name>& policy_names() {
  static const std::map<std::string, policy_name> names{
      {"llada-low-confidence", policy_name::llada_low_confidence},
      {"llada-random", policy_name::llada_random},
      {"dream-maskgit-plus", policy_name::dream_maskgit_plus},
      {"dream-topk-margin", policy_name::dream_topk_margin},
      {"dream-entropy", policy_name::dream_entropy},
      {"dream-origin", policy_name::dream_origin},
      {"fast-dllm-threshold", policy_name::fast_dllm_threshold},
      {"fast-dllm-factor", policy_name::fast_dllm_factor},
      {"eb", policy_name::eb},
      {"med", policy_name::med},
      {"left-to-right", policy_name::left_to_right},
  };
  return names;
}

bool is_dream_schedule(policy_name p) {
  return p == policy_name::dream_maskgit_plus || p == policy_name::dream_topk_margin ||
         p == policy_name::dream_entropy || p == policy_name::dream_origin;
}

bool is_scheduled(policy_name p) {
  return is_dream_schedule(p) || p == policy_name::llada_low_confidence || p == policy_name::llada_random;
}

struct generate_options {
  std::string model;
  std::string prompt_ids;
  std::string prompt_file;
  std::size_t gen_length = 128;
  std::size_t block_length = 0;  // 0 = gen_length
  std::size_t steps = 0;         // 0 = gen_length for scheduled policies, adaptive otherwise
  std::string policy = "llada-low-confidence";
  double lambda = med{}.lambda;
  std::size_t k_max = med{}.k_max;
  double gamma = eb_sampler{}.gamma;
  double tau = fast_dllm_threshold{}.tau;
  double factor = fast_dllm_factor{}.factor;
  double temperature = 0.0;
  std::optional<double> top_p;
  std::optional<std::size_t> top_k;
  std::uint64_t seed = 0;
  bool json = false;
  std::string device = "cpu";
  std::string weights = "file";
  text_input text;        // --prompt / --prompt-file / --chat / --system (text_io.hpp)
  std::string tokenizer;  // --tokenizer (default: --model)
  bool stream = false;    // --stream (default: when stdout is a terminal)
  // Which policy-parameter options were given (to reject those the policy does not use).
  std::vector<std::pair<std::string, CLI::Option*>> policy_params;
};

//! Parses "1,2,3" (commas and/or whitespace) into token ids; `what` names the source in errors.
std::vector<token_id> parse_ids(const std::string& text, const std::string& what) {
  std::vector<token_id> ids;
  std::size_t i = 0;
  const auto separator = [](char c) { return c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (i < text.size()) {
    while (i < text.size() && separator(text[i])) ++i;
    if (i >= text.size()) break;
    std::size_t j = i;
    while (j < text.size() && !separator(text[j])) ++j;
    const std::string item = text.substr(i, j - i);
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(item.c_str(), &end, 10);
    detail::require(end != nullptr && *end == '\0' && errno == 0 && v >= 0 && v <= std::numeric_limits<token_id>::max(), what, ": '", item,
                    "' is not a token id (a non-negative integer)");
    ids.push_back(static_cast<token_id>(v));
    i = j;
  }
  return ids;
}

std::vector<token_id> read_prompt(const generate_options& o) {
  if (!o.prompt_file.empty()) {
    const std::string text = read_input_file("--prompt-ids-file", o.prompt_file);
    return parse_ids(text, "--prompt-ids-file " + o.prompt_file);
  }
  return parse_ids(o.prompt_ids, "--prompt-ids");
}

//! Draws a progress bar on stderr after every step (only when stderr is a terminal).
struct progress_bar {
  std::size_t total = 0;
  void on_step(step_event& e) const {
    std::size_t left = 0;
    for (std::size_t p = e.region_begin; p < e.region_end; ++p) left += e.tokens[p] == e.mask ? 1 : 0;
    const std::size_t done = total - left;
    constexpr std::size_t width = 40;
    const std::size_t filled = total == 0 ? width : done * width / total;
    std::string bar(filled, '#');
    bar.append(width - filled, '.');
    std::fprintf(stderr, "\r[%s] %zu/%zu tokens, %zu model calls", bar.c_str(), done, total, e.nfe);
    std::fflush(stderr);
  }
};

template <class Policy>
decode_result run_decode(device_model& m, const canvas& c, Policy policy, const token_choice& choice,
                         std::size_t block_length, std::size_t steps, std::uint64_t seed, block_streamer* stream) {
  decode_options<Policy> opt;
  opt.policy = policy;
  opt.choice = choice;
  opt.block_length = block_length;
  opt.steps = steps;
  const counter_rng rng{seed};
  const std::uint64_t logits_bytes = std::uint64_t{c.tokens.size()} * m.vocab_size() * sizeof(float);
  const std::string need = "the logits of " + std::to_string(c.tokens.size()) + " positions x " +
                           std::to_string(m.vocab_size()) + " tokens need " + format_bytes(logits_bytes) +
                           ", plus the activations";
  return with_memory_context("decoding", need, [&] {
    if (stream != nullptr) return decode(m, c, opt, rng, *stream);  // the streamed text replaces the progress bar
    if (::isatty(STDERR_FILENO) != 0) {
      const progress_bar bar{c.region_length()};
      auto r = decode(m, c, opt, rng, bar);
      std::fputc('\n', stderr);
      return r;
    }
    return decode(m, c, opt, rng);
  });
}

void run_generate(const generate_options& o) {
  const auto policy_it = policy_names().find(o.policy);
  detail::require(policy_it != policy_names().end(), "--policy ", o.policy, " is not a policy name (see mdlm generate --help)");
  const policy_name policy = policy_it->second;
  // Policy parameters the chosen policy does not use are rejected rather than silently ignored.
  const std::map<std::string, std::vector<policy_name>> users{
      {"--lambda", {policy_name::med}},
      {"--k-max", {policy_name::med}},
      {"--gamma", {policy_name::eb}},
      {"--tau", {policy_name::fast_dllm_threshold}},
      {"--factor", {policy_name::fast_dllm_factor}},
  };
  for (const auto& [flag, opt] : o.policy_params) {
    if (opt->count() == 0) continue;
    const auto& u = users.at(flag);
    detail::require(std::find(u.begin(), u.end(), policy) != u.end(), flag, " does not apply to --policy ", o.policy);
  }

  // Cheap checks first: config.json only (a missing directory or unknown architecture fails here).
  const std::filesystem::path dir(o.model);
  detail::require(std::filesystem::is_directory(dir), "--model ", o.model, " is not a directory");
  const cpu::model_config cfg = cpu::read_model_config(dir);
  // Text prompts go through the checkpoint's tokenizer (or --tokenizer); ids prompts use it, when
  // present, only for the "text" field of --json.
  const std::filesystem::path tok_dir = o.tokenizer.empty() ? dir : std::filesystem::path(o.tokenizer);
  const bool text_mode = o.text.given();
  std::optional<text::tokenizer> tok;
  if (text_mode) tok.emplace(load_tokenizer(tok_dir, true));
  else if (o.json && tokenizer_present(tok_dir)) tok.emplace(load_tokenizer(tok_dir, true));
  const std::string prompt_str = text_mode ? prompt_text(*tok, o.text) : std::string();
  const std::vector<token_id> prompt = text_mode ? encode_prompt(*tok, prompt_str) : read_prompt(o);
  detail::require(!prompt.empty(), "the prompt is empty: give at least one token id");
  for (std::size_t i = 0; i < prompt.size(); ++i) {
    detail::require(prompt[i] >= 0 && static_cast<std::size_t>(prompt[i]) < cfg.vocab_size, "prompt id ", prompt[i],
                    " (index ", i, ") is outside the vocabulary [0, ", cfg.vocab_size, ")");
    detail::require(prompt[i] != cfg.mask_token, "prompt id ", prompt[i], " (index ", i, ") is the mask token ",
                    cfg.mask_token);
  }
  detail::require(o.gen_length > 0, "--gen-length 0: the generation length must be positive");
  if (cfg.max_sequence_length > 0)
    detail::require(prompt.size() + o.gen_length <= cfg.max_sequence_length, "prompt (", prompt.size(),
                    " ids) + --gen-length ", o.gen_length, " = ", prompt.size() + o.gen_length,
                    " exceeds the model's max_sequence_length ", cfg.max_sequence_length);
  const std::size_t block = o.block_length == 0 ? o.gen_length : o.block_length;
  detail::require(block <= o.gen_length && o.gen_length % block == 0, "--block-length ", o.block_length,
                  " does not divide --gen-length ", o.gen_length);
  detail::require(!is_dream_schedule(policy) || block == o.gen_length, "--block-length ", o.block_length,
                  ": Dream's schedule (--policy ", o.policy, ") has no blocks; use --block-length ", o.gen_length);
  const std::size_t blocks = o.gen_length / block;
  const std::size_t steps = o.steps == 0 && is_scheduled(policy) ? o.gen_length : o.steps;
  if (steps > 0)
    detail::require(steps % blocks == 0, "--steps ", steps, " is not a multiple of the number of blocks ", blocks,
                    " (--gen-length ", o.gen_length, " / --block-length ", block, ")");
  token_choice choice;
  choice.temperature = o.temperature;
  choice.top_p = o.top_p;
  choice.top_k = o.top_k;
  choice.validate();
  // The policy's own parameters (--lambda, --gamma, --tau, --factor, --k-max) before the weights load.
  switch (policy) {
    case policy_name::fast_dllm_threshold: fast_dllm_threshold{.tau = o.tau}.validate(); break;
    case policy_name::fast_dllm_factor: fast_dllm_factor{.factor = o.factor}.validate(); break;
    case policy_name::eb: eb_sampler{.gamma = o.gamma}.validate(); break;
    case policy_name::med: med{.lambda = o.lambda, .k_max = o.k_max}.validate(); break;
    default: break;
  }

  cpu::model_options mo;
  mo.weights = weight_storage_of(o.weights);
  device_model m = load_on_device(dir, o.device, 1, prompt.size() + o.gen_length, mo);
  const canvas c = make_canvas(prompt, o.gen_length, m.mask_token());
  std::optional<block_streamer> streamer;
  if (text_mode && !o.json && (o.stream || ::isatty(STDOUT_FILENO) != 0)) streamer.emplace(*tok, c.region_begin);
  block_streamer* const stream = streamer ? &*streamer : nullptr;
  decode_result r;
  switch (policy) {
    case policy_name::llada_low_confidence:
      r = run_decode(m, c, fixed_count{.score = score_kind::confidence, .schedule = count_schedule::llada_blocks},
                     choice, block, steps, o.seed, stream);
      break;
    case policy_name::llada_random:
      r = run_decode(m, c, fixed_count{.score = score_kind::random, .schedule = count_schedule::llada_blocks}, choice,
                     block, steps, o.seed, stream);
      break;
    case policy_name::dream_maskgit_plus:
      r = run_decode(m, c,
                     fixed_count{.score = score_kind::tempered_confidence, .schedule = count_schedule::dream_timesteps},
                     choice, block, steps, o.seed, stream);
      break;
    case policy_name::dream_topk_margin:
      r = run_decode(m, c, fixed_count{.score = score_kind::margin, .schedule = count_schedule::dream_timesteps},
                     choice, block, steps, o.seed, stream);
      break;
    case policy_name::dream_entropy:
      r = run_decode(m, c, fixed_count{.score = score_kind::neg_entropy, .schedule = count_schedule::dream_timesteps},
                     choice, block, steps, o.seed, stream);
      break;
    case policy_name::dream_origin: r = run_decode(m, c, dream_origin{}, choice, block, steps, o.seed, stream); break;
    case policy_name::fast_dllm_threshold:
      r = run_decode(m, c, fast_dllm_threshold{.tau = o.tau}, choice, block, steps, o.seed, stream);
      break;
    case policy_name::fast_dllm_factor:
      r = run_decode(m, c, fast_dllm_factor{.factor = o.factor}, choice, block, steps, o.seed, stream);
      break;
    case policy_name::eb: r = run_decode(m, c, eb_sampler{.gamma = o.gamma}, choice, block, steps, o.seed, stream); break;
    case policy_name::med:
      r = run_decode(m, c, med{.lambda = o.lambda, .k_max = o.k_max}, choice, block, steps, o.seed, stream);
      break;
    case policy_name::left_to_right:
      r = run_decode(m, c,
                     fixed_count{.score = score_kind::left_to_right, .schedule = count_schedule::per_step, .per_step = 1},
                     choice, block, steps, o.seed, stream);
      break;
  }

  const std::size_t begin = c.region_begin;
  std::vector<token_id> generated(r.tokens.begin() + static_cast<std::ptrdiff_t>(begin), r.tokens.end());
  std::vector<std::int32_t> unmask_step(r.unmask_step.begin() + static_cast<std::ptrdiff_t>(begin),
                                        r.unmask_step.end());
  const std::string arch(cpu::architecture_name(cfg.arch));
  if (text_mode && !o.json) {
    // Text out: the generated text on stdout (streamed above when a terminal or --stream), the
    // run's summary on stderr.
    if (streamer) streamer->finish(generated);
    else std::printf("%s\n", generated_text(*tok, generated).c_str());
    std::fprintf(stderr, "mdlm: %s, %s, %zu prompt ids, %zu generated, %zu model calls (NFE)%s%s\n", arch.c_str(),
                 o.policy.c_str(), prompt.size(), generated.size(), r.nfe, r.message.empty() ? "" : ": ", r.message.c_str());
  } else if (o.json) {
    nlohmann::json j;
    j["model"] = o.model;
    j["architecture"] = arch;
    j["policy"] = o.policy;
    j["gen_length"] = o.gen_length;
    j["block_length"] = block;
    j["steps"] = steps;
    j["temperature"] = o.temperature;
    j["top_p"] = o.top_p ? nlohmann::json(*o.top_p) : nlohmann::json(nullptr);
    j["top_k"] = o.top_k ? nlohmann::json(*o.top_k) : nlohmann::json(nullptr);
    j["seed"] = o.seed;
    j["device"] = m.device();
    j["mask_token"] = cfg.mask_token;
    j["prompt_ids"] = prompt;
    j["generated_ids"] = generated;
    j["unmask_step"] = unmask_step;
    j["nfe"] = r.nfe;
    j["status"] = to_string(r.status);
    j["masked_left"] = r.masked_left;
    j["message"] = r.message;
    if (text_mode) j["prompt_text"] = prompt_str;
    if (tok) j["text"] = generated_text(*tok, generated);
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("model:      %s (%s, %zu layers, d_model %zu, vocabulary %zu, mask id %d)\n", o.model.c_str(),
                arch.c_str(), cfg.n_layers, cfg.d_model, cfg.vocab_size, cfg.mask_token);
    std::printf("policy:     %s, gen-length %zu, block-length %zu, steps %zu%s, temperature %g, seed %llu\n",
                o.policy.c_str(), o.gen_length, block, steps, steps == 0 ? " (adaptive)" : "", o.temperature,
                static_cast<unsigned long long>(o.seed));
    std::printf("result:     %s, %zu model calls (NFE)%s%s\n", to_string(r.status), r.nfe,
                r.message.empty() ? "" : ": ", r.message.c_str());
    std::printf("prompt:     %zu ids\n", prompt.size());
    std::printf("generated:");
    for (token_id t : generated) std::printf(" %d", t);
    std::printf("\n\n%8s  %8s  %11s\n", "position", "token", "unmask step");
    for (std::size_t i = 0; i < generated.size(); ++i) {
      if (unmask_step[i] < 0) std::printf("%8zu  %8d  %11s\n", begin + i, generated[i], "-");
      else std::printf("%8zu  %8d  %11d\n", begin + i, generated[i], unmask_step[i]);
    }
  }
  std::fflush(stdout);
  // A model that returned NaN / inf is reported (above, with the step and position) and fails the run.
  // An `incomplete` schedule (the model chose the mask id, written back as the references do) is the
  // reference outcome: reported above with its count of masked positions, not a failure.
  if (!r.ok() && r.status != decode_status::incomplete) throw std::runtime_error("generation ended with status " + std::string(to_string(r.status)) + ": " +
                                        r.message);
}

}  // namespace

std::vector<token_id> parse_token_ids(const std::string& text, const std::string& what) { return parse_ids(text, what); }

void register_generate(CLI::App& app) {
  auto* cmd = app.add_subcommand("generate", "Generate with a LLaDA or Dream checkpoint directory on the CPU or a GPU (--device)");
  auto o = std::make_shared<generate_options>();
  cmd->add_option("--model", o->model, "Checkpoint directory (config.json + safetensors)")->required();
  auto* ids = cmd->add_option("--prompt-ids", o->prompt_ids, "Prompt token ids, comma-separated (1,2,3)");
  auto* file = cmd->add_option("--prompt-ids-file", o->prompt_file, "File of prompt token ids (commas or whitespace)");
  add_text_input_options(*cmd, o->text);
  cmd->add_option("--tokenizer", o->tokenizer, "Tokenizer directory for text prompts (default: --model)");
  cmd->add_flag("--stream", o->stream, "Print the text as blocks complete (default when stdout is a terminal)");
  cmd->callback([o, ids, file] {
    detail::require(ids->count() + file->count() + (o->text.given() ? 1 : 0) == 1,
                    "give the prompt with one of --prompt, --prompt-file, --prompt-ids, --prompt-ids-file");
    detail::require(o->text.given() || !o->text.chat, "--chat needs a text prompt (--prompt or --prompt-file)");
    run_generate(*o);
  });
  cmd->add_option("--gen-length", o->gen_length, "Tokens to generate")->capture_default_str();
  cmd->add_option("--block-length", o->block_length, "Semi-autoregressive block length (default: --gen-length)");
  cmd->add_option("--steps", o->steps,
                  "Model calls (default: --gen-length for llada-* / dream-* policies, adaptive for the others)");
  std::string names;
  for (const auto& [name, p] : policy_names()) names += (names.empty() ? "" : ", ") + name;
  cmd->add_option("--policy", o->policy, "Unmasking policy: " + names)->capture_default_str();
  o->policy_params = {
      {"--lambda", cmd->add_option("--lambda", o->lambda, "med: entropy threshold (nats)")->capture_default_str()},
      {"--k-max", cmd->add_option("--k-max", o->k_max, "med: most tokens per step")->capture_default_str()},
      {"--gamma", cmd->add_option("--gamma", o->gamma, "eb: error budget (nats)")->capture_default_str()},
      {"--tau", cmd->add_option("--tau", o->tau, "fast-dllm-threshold: confidence threshold")->capture_default_str()},
      {"--factor", cmd->add_option("--factor", o->factor, "fast-dllm-factor: factor f")->capture_default_str()},
  };
  cmd->add_option("--temperature", o->temperature, "Sampling temperature (0 = argmax)")->capture_default_str();
  cmd->add_option("--top-p", o->top_p, "Nucleus filter in (0, 1] (default: off)");
  cmd->add_option("--top-k", o->top_k, "Top-k filter >= 1 (default: off)");
  cmd->add_option("--seed", o->seed, "Random seed")->capture_default_str();
  cmd->add_flag("--json", o->json, "Print one JSON object instead of a table");
  add_device_option(cmd, o->device);
  add_weights_option(cmd, o->weights);
}

}  // namespace mdlm::tool
#endif
