// SPDX-License-Identifier: MIT
#pragma once
// Policy selection shared by the harness commands (`mdlm eval`, `mdlm posterior`): a policy name plus
// its parameters, registered on a CLI11 sub-command, validated, and dispatched to a typed
// `decode_options<Policy>` for a callable.
//
// Names (the same spellings as `mdlm generate`, plus the paper's fixed-k families):
//   entropy               fixed_count{neg_entropy, per_step = --k}   sigma_{ENTROPY,k} (arXiv 2510.19990 table 1)
//   confidence            fixed_count{confidence, per_step = --k}    top-k by p(x0) per call
//   left-to-right         fixed_count{left_to_right, per_step = --k} the leftmost k masks per call
//   random                fixed_count{random, per_step = --k}        k uniformly random masks per call
//   llada-low-confidence  fixed_count{confidence, llada_blocks}      LLaDA generate.py (needs --steps)
//   med                   med{--lambda, --k-max}                     MED (arXiv 2510.19990 eq. 5)
//   eb                    eb_sampler{--gamma}                        EB-Sampler
//   fast-dllm-threshold   fast_dllm_threshold{--tau}                 Fast-dLLM
//   fast-dllm-factor      fast_dllm_factor{--factor}                 Fast-dLLM (dynamic)
// A parameter flag that the chosen policy does not read is rejected (std::invalid_argument).

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "mdlm/decode.hpp"
#include "mdlm/detail/errors.hpp"
#include "mdlm/policies/eb_sampler.hpp"
#include "mdlm/policies/fast_dllm.hpp"
#include "mdlm/policies/fixed_count.hpp"
#include "mdlm/policies/med.hpp"
#include "mdlm/token_choice.hpp"

namespace mdlm::tool {

// A policy and the decode settings of a harness run.
struct policy_spec {
  std::string name = "entropy";
  std::size_t k = 1;  // tokens per call of the fixed-k families
  double lambda = med{}.lambda;
  std::size_t k_max = med{}.k_max;
  double gamma = eb_sampler{}.gamma;
  double tau = fast_dllm_threshold{}.tau;
  double factor = fast_dllm_factor{}.factor;
  std::size_t block_length = 0;  // 0 = the whole generation region
  std::size_t steps = 0;         // scheduled policies only; 0 = adaptive
  double temperature = 0.0;
  std::uint64_t seed = 0;
  std::vector<std::pair<std::string, CLI::Option*>> given;  // parameter flags, to reject unused ones
};

inline const std::vector<std::string>& harness_policy_names() {
  static const std::vector<std::string> names{"entropy",    "confidence",          "left-to-right",
                                              "random",     "llada-low-confidence", "med",
                                              "eb",         "fast-dllm-threshold", "fast-dllm-factor"};
  return names;
}

// Registers --policy, its parameters, --block-length, --steps, --temperature and --seed on `cmd`.
inline void add_policy_options(CLI::App* cmd, policy_spec& s) {
  std::string names;
  for (const auto& n : harness_policy_names()) names += (names.empty() ? "" : ", ") + n;
  cmd->add_option("--policy", s.name, "Unmasking policy: " + names)->capture_default_str();
  s.given = {
      {"--k", cmd->add_option("--k", s.k, "entropy / confidence / left-to-right / random: tokens per call")
                  ->capture_default_str()},
      {"--lambda", cmd->add_option("--lambda", s.lambda, "med: entropy threshold (nats)")->capture_default_str()},
      {"--k-max", cmd->add_option("--k-max", s.k_max, "med: most tokens per call")->capture_default_str()},
      {"--gamma", cmd->add_option("--gamma", s.gamma, "eb: error budget (nats)")->capture_default_str()},
      {"--tau", cmd->add_option("--tau", s.tau, "fast-dllm-threshold: confidence threshold")->capture_default_str()},
      {"--factor", cmd->add_option("--factor", s.factor, "fast-dllm-factor: factor")->capture_default_str()},
  };
  cmd->add_option("--block-length", s.block_length, "Semi-autoregressive block length (0 = whole region)")
      ->capture_default_str();
  cmd->add_option("--steps", s.steps, "Model calls for llada-low-confidence (required there)")->capture_default_str();
  cmd->add_option("--temperature", s.temperature, "Sampling temperature (0 = argmax)")->capture_default_str();
  cmd->add_option("--seed", s.seed, "Random seed")->capture_default_str();
}

// Rejects an unknown name and parameter flags the policy does not read.
inline void validate_policy_spec(const policy_spec& s) {
  const auto& names = harness_policy_names();
  detail::require(std::find(names.begin(), names.end(), s.name) != names.end(), "--policy ", s.name,
                  " is not a policy name (see --help)");
  const std::map<std::string, std::vector<std::string>> users{
      {"--k", {"entropy", "confidence", "left-to-right", "random"}},
      {"--lambda", {"med"}},
      {"--k-max", {"med"}},
      {"--gamma", {"eb"}},
      {"--tau", {"fast-dllm-threshold"}},
      {"--factor", {"fast-dllm-factor"}},
  };
  for (const auto& [flag, opt] : s.given) {
    if (opt == nullptr || opt->count() == 0) continue;
    const auto& u = users.at(flag);
    detail::require(std::find(u.begin(), u.end(), s.name) != u.end(), flag, " does not apply to --policy ", s.name);
  }
  detail::require(s.k >= 1, "--k ", s.k, " must be >= 1");
  detail::require(s.name != "llada-low-confidence" || s.steps > 0,
                  "--policy llada-low-confidence needs --steps > 0");
  detail::require(s.name == "llada-low-confidence" || s.steps == 0, "--steps ", s.steps,
                  " applies to --policy llada-low-confidence only (the others are adaptive)");
  detail::require(s.temperature >= 0.0, "--temperature ", s.temperature, " must be >= 0");
}

// A short label of the policy and its parameters, e.g. "med(lambda=0.2)".
inline std::string policy_label(const policy_spec& s) {
  if (s.name == "entropy" || s.name == "confidence" || s.name == "left-to-right" || s.name == "random")
    return detail::concat(s.name, "(k=", s.k, ")");
  if (s.name == "med") return detail::concat("med(lambda=", s.lambda, ",k_max=", s.k_max, ")");
  if (s.name == "eb") return detail::concat("eb(gamma=", s.gamma, ")");
  if (s.name == "fast-dllm-threshold") return detail::concat("fast-dllm-threshold(tau=", s.tau, ")");
  if (s.name == "fast-dllm-factor") return detail::concat("fast-dllm-factor(factor=", s.factor, ")");
  return detail::concat(s.name, "(steps=", s.steps, ")");
}

// Calls `f(decode_options<P>)` with the typed options of the chosen policy.
template <class F>
void with_policy(const policy_spec& s, F&& f) {
  token_choice choice;
  choice.temperature = s.temperature;
  choice.validate();
  const auto run = [&](auto policy) {
    decode_options<decltype(policy)> opt;
    opt.policy = policy;
    opt.choice = choice;
    opt.block_length = s.block_length;
    opt.steps = s.steps;
    f(opt);
  };
  const auto fixed_k = [&](score_kind score) {
    run(fixed_count{.score = score, .schedule = count_schedule::per_step, .per_step = s.k});
  };
  if (s.name == "entropy") fixed_k(score_kind::neg_entropy);
  else if (s.name == "confidence") fixed_k(score_kind::confidence);
  else if (s.name == "left-to-right") fixed_k(score_kind::left_to_right);
  else if (s.name == "random") fixed_k(score_kind::random);
  else if (s.name == "llada-low-confidence")
    run(fixed_count{.score = score_kind::confidence, .schedule = count_schedule::llada_blocks});
  else if (s.name == "med") run(med{.lambda = s.lambda, .k_max = s.k_max});
  else if (s.name == "eb") run(eb_sampler{.gamma = s.gamma});
  else if (s.name == "fast-dllm-threshold") run(fast_dllm_threshold{.tau = s.tau});
  else if (s.name == "fast-dllm-factor") run(fast_dllm_factor{.factor = s.factor});
  else detail::throw_invalid("--policy ", s.name, " is not a policy name (see --help)");
}

}  // namespace mdlm::tool
