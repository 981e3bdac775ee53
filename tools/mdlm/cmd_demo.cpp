// SPDX-License-Identifier: MIT
// `mdlm demo`: the paper's bounds and decoders on exact reference models, no weights needed.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <numeric>
#include <string>
#include <vector>

#include <mdlm/bounds.hpp>
#include <mdlm/canvas.hpp>
#include <mdlm/decode.hpp>
#include <mdlm/policies/eb_sampler.hpp>
#include <mdlm/policies/fixed_count.hpp>
#include <mdlm/policies/med.hpp>
#include <mdlm/reference/exact_decode.hpp>
#include <mdlm/reference/hmm.hpp>
#include <mdlm/reference/joint_table.hpp>

#include "commands.hpp"

namespace mdlm::tool {
namespace {

double entropy_of(const std::vector<double>& p) {
  double h = 0.0;
  for (double x : p)
    if (x > 0.0) h -= x * std::log(x);
  return h;
}

// Section 1: eq. 5 on random subsets A of a random joint table: KL(p(x_A|s) || prod_i p(x_i|s))
// computed by enumeration, next to sum H_i - H(x_A|s) (equal by the identity), the EB bound
// sum H - max H and H_UB = sum H (eq. 3 applied to A).
void print_bounds_table(std::uint64_t seed) {
  constexpr std::size_t vocab = 4, length = 8;
  const auto model = reference::joint_table::random(vocab, length, 0.02, seed);
  const token_id mask = model.mask_token();
  sequential_rng rng{seed, rng_stream::user, 7};
  std::printf("1. Exact joint table: V = %zu, L = %zu, Dirichlet(0.02), seed %llu\n", vocab, length,
              static_cast<unsigned long long>(seed));
  std::printf("   random subsets A of masked positions given the unmasked tokens s (eq. 5, eq. 3)\n\n");
  std::printf("   %-14s %4s %14s %14s %14s %14s\n", "A", "|A|", "KL(joint||prod)", "sumH-H(x_A|s)",
              "sumH-maxH", "H_UB=sumH");
  for (int row = 0; row < 8; ++row) {
    // A random partially observed sequence: each position observed with probability 1/3, its token
    // drawn from the exact conditional given what is already observed (so the evidence is possible).
    std::vector<token_id> tokens(length, mask);
    for (std::size_t i = 0; i < length; ++i) {
      if (rng.uniform() >= 1.0 / 3.0) continue;
      const std::vector<double> p = model.conditional(tokens, i);
      double u = rng.uniform(), c = 0.0;
      token_id t = static_cast<token_id>(vocab - 1);
      for (std::size_t v = 0; v < vocab; ++v)
        if ((c += p[v]) > u) {
          t = static_cast<token_id>(v);
          break;
        }
      tokens[i] = t;
    }
    std::vector<std::size_t> masked;
    for (std::size_t i = 0; i < length; ++i)
      if (tokens[i] == mask) masked.push_back(i);
    if (masked.size() < 2) continue;
    // A: a random subset of 2..min(4, |masked|) masked positions.
    for (std::size_t i = masked.size(); i > 1; --i)
      std::swap(masked[i - 1], masked[static_cast<std::size_t>(rng.uniform() * static_cast<double>(i))]);
    const std::size_t k = 2 + static_cast<std::size_t>(rng.uniform() * static_cast<double>(std::min<std::size_t>(3, masked.size() - 1)));
    std::vector<std::size_t> a(masked.begin(), masked.begin() + static_cast<std::ptrdiff_t>(k));
    std::sort(a.begin(), a.end());

    const auto joint = model.conditional_joint(tokens, a);
    std::vector<std::vector<double>> marg(k);
    std::vector<double> h(k);
    for (std::size_t j = 0; j < k; ++j) {
      marg[j] = model.conditional(tokens, a[j]);
      h[j] = entropy_of(marg[j]);
    }
    double kl = 0.0, h_joint = 0.0;
    std::vector<std::size_t> digit(k, 0);
    for (std::size_t flat = 0; flat < joint.size(); ++flat) {
      const double p = joint.data()[flat];
      if (p > 0.0) {
        double q = 1.0;
        for (std::size_t j = 0; j < k; ++j) q *= marg[j][digit[j]];
        kl += p * std::log(p / q);
        h_joint -= p * std::log(p);
      }
      for (std::size_t j = k; j-- > 0;)
        if (++digit[j] < vocab) break;
        else digit[j] = 0;
    }
    std::string name = "{";
    for (std::size_t j = 0; j < k; ++j) name += (j ? "," : "") + std::to_string(a[j]);
    name += "}";
    std::printf("   %-14s %4zu %14.6f %14.6f %14.6f %14.6f\n", name.c_str(), k, kl,
                entropy_upper_bound(h) - h_joint, parallel_decoding_error_bound(h), entropy_upper_bound(h));
  }
  std::printf("\n   KL equals sumH - H(x_A|s) (the identity behind eq. 5) and never exceeds sumH - maxH <= H_UB.\n\n");
}

// Section 2: decoding a 64-token region of an HMM with one model call per token versus MED and
// EB-Sampler, which unmask several low-entropy positions per call.
void print_decoding_table(std::uint64_t seed) {
  constexpr std::size_t prompt_length = 8, gen_length = 64;
  const auto model = reference::hmm::random(8, 8, prompt_length + gen_length, seed, 0.05);
  // The prompt: the first tokens of a sequence drawn from the HMM itself, left to right.
  std::vector<token_id> all(prompt_length + gen_length, model.mask_token());
  sequential_rng rng{seed, rng_stream::user, 8};
  for (std::size_t i = 0; i < prompt_length; ++i) {
    const std::vector<double> p = model.conditional(all, i);
    double u = rng.uniform(), cum = 0.0;
    all[i] = static_cast<token_id>(p.size() - 1);
    for (std::size_t v = 0; v < p.size(); ++v)
      if ((cum += p[v]) > u) {
        all[i] = static_cast<token_id>(v);
        break;
      }
  }
  const std::vector<token_id> prompt(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(prompt_length));
  std::printf("2. Decoding %zu tokens of a random HMM (8 states, 8 symbols, Dirichlet(0.05)) after an %zu-token prompt\n",
              gen_length, prompt_length);
  std::printf("   temperature 1 (ancestral), seed %llu, 32 sequences; exact log-likelihood under the HMM\n\n",
              static_cast<unsigned long long>(seed));
  std::printf("   %-34s %10s %14s\n", "policy", "mean NFE", "mean log p(x)");
  constexpr std::uint32_t runs = 32;
  auto row = [&](const char* name, const auto& options) {
    double nfe = 0.0, logp = 0.0;
    for (std::uint32_t r = 0; r < runs; ++r) {
      const canvas cr = make_canvas(prompt, gen_length, model.mask_token(), r);
      const decode_result out = decode(model, cr, options, counter_rng{seed});
      nfe += static_cast<double>(out.nfe);
      logp += model.log_probability(out.tokens);
    }
    std::printf("   %-34s %10.2f %14.3f\n", name, nfe / runs, logp / runs);
  };
  token_choice sample{.temperature = 1.0};
  row("one token per call (entropy order)",
      decode_options<fixed_count>{.policy = {.score = score_kind::neg_entropy, .schedule = count_schedule::per_step, .per_step = 1}, .choice = sample});
  for (double lambda : {0.05, 0.2, 0.5, 1.0}) {
    const std::string name = "MED lambda = " + std::to_string(lambda).substr(0, 4) + ", k_max = 32";
    row(name.c_str(), decode_options<med>{.policy = {.lambda = lambda, .k_max = 32}, .choice = sample});
  }
  for (double gamma : {0.01, 0.1, 1.0}) {
    const std::string name = "EB-Sampler gamma = " + std::to_string(gamma).substr(0, 4);
    row(name.c_str(), decode_options<eb_sampler>{.policy = {.gamma = gamma}, .choice = sample});
  }
  std::printf("\n   Far from the prompt an HMM's conditionals all approach its stationary law, so MED unmasks them\n   together once that entropy is below lambda (k_max = 32 per call caps it). MED's KL error per call is\n   at most lambda * k_max (eq. 5), EB-Sampler's at most gamma; see docs/theory.md.\n\n");
}

// Section 3: the exact output distribution of each sampler on a joint table, by enumerating every
// trajectory (mdlm::reference::exact_output_distribution), against the model's own joint.
void print_exact_table(std::uint64_t seed) {
  constexpr std::size_t vocab = 3, length = 6;
  const auto model = reference::joint_table::random(vocab, length, 0.1, seed);
  const std::vector<token_id> prompt{static_cast<token_id>(seed % vocab)};
  const canvas c = make_canvas(prompt, length - 1, model.mask_token());
  const auto target = reference::model_output_distribution(model, c);
  std::printf("3. Exact output distributions: every trajectory enumerated on a joint table\n");
  std::printf("   (V = %zu, L = %zu, Dirichlet(0.1), seed %llu, prompt of 1 token, 5 masks, temperature 1)\n\n", vocab,
              length, static_cast<unsigned long long>(seed));
  std::printf("   %-38s %10s %16s %16s\n", "policy", "E[NFE]", "KL(model||out)", "trajectory bound");
  const token_choice sample{.temperature = 1.0};
  // The trajectory bound holds for selections that do not depend on the sampled tokens.
  auto row = [&](const std::string& name, const auto& options, bool token_independent = true) {
    const auto r = reference::exact_output_distribution(model, c, options);
    char bound[32] = "n/a";
    if (token_independent) std::snprintf(bound, sizeof bound, "%.3e", r.trajectory_bound);
    std::printf("   %-38s %10.3f %16.3e %16s\n", name.c_str(), r.expected_nfe,
                reference::kl_divergence(target, r.outputs), bound);
  };
  const auto one = [](score_kind k) {
    return fixed_count{.score = k, .schedule = count_schedule::per_step, .per_step = 1};
  };
  row("one per step, entropy order", decode_options<fixed_count>{.policy = one(score_kind::neg_entropy), .choice = sample});
  row("one per step, random order", decode_options<fixed_count>{.policy = one(score_kind::random), .choice = sample});
  row("one per step, LLaDA confidence", decode_options<fixed_count>{.policy = one(score_kind::confidence), .choice = sample},
      false);
  row("two per step, entropy order",
      decode_options<fixed_count>{.policy = {.score = score_kind::neg_entropy, .schedule = count_schedule::per_step, .per_step = 2},
                                  .choice = sample});
  for (double lambda : {0.1, 0.5, 1.0})
    row("MED lambda = " + std::to_string(lambda).substr(0, 3) + ", k_max = 5",
        decode_options<med>{.policy = {.lambda = lambda, .k_max = 5}, .choice = sample});
  for (double gamma : {0.01, 0.1})
    row("EB-Sampler gamma = " + std::to_string(gamma).substr(0, 4), decode_options<eb_sampler>{.policy = {.gamma = gamma}, .choice = sample});
  std::printf("\n   Token-independent orders at one position per step are exact (KL = 0 up to rounding); ranking by the\n"
              "   sampled token's confidence is not. MED and EB stay within their trajectory bound (docs/samplers.md).\n\n");
}

}  // namespace

void register_demo(CLI::App& app) {
  auto* cmd = app.add_subcommand("demo", "The paper's bounds, MED and reasoning-as-infilling on exact reference models");
  static std::uint64_t seed = 2026;
  cmd->add_option("--seed", seed, "seed of the random reference models and of decoding")->capture_default_str();
  cmd->callback([] {
    print_bounds_table(seed);
    print_decoding_table(seed);
    print_exact_table(seed);
    print_infilling_demo(std::cout);
  });
}
}  // namespace mdlm::tool
