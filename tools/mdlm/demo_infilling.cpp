// SPDX-License-Identifier: MIT
// `mdlm demo`, reasoning-as-infilling part: early exit on the answer-entropy bound with MED, and
// posterior sampling given an answer, on an exact reference HMM whose last positions act as the
// answer block. Deterministic (fixed seeds); well under a second.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <ostream>
#include <span>
#include <string>
#include <vector>

#include <mdlm/decode.hpp>
#include <mdlm/infilling/analytics.hpp>
#include <mdlm/infilling/answer_score.hpp>
#include <mdlm/infilling/early_exit.hpp>
#include <mdlm/infilling/posterior.hpp>
#include <mdlm/infilling/template.hpp>
#include <mdlm/infilling/trace_score.hpp>
#include <mdlm/policies/fixed_count.hpp>
#include <mdlm/policies/med.hpp>
#include <mdlm/reference/hmm.hpp>

#include "commands.hpp"

namespace mdlm::tool {
namespace {

// Demo model and template: a random HMM (K = 4 states, V = 6 symbols, L = 24, Dirichlet(0.05) rows,
// so neighbouring symbols are strongly dependent); [prompt 2][reasoning 17][delimiter 1][answer 4].
constexpr std::size_t demo_states = 4, demo_vocab = 6, demo_length = 24;
constexpr std::uint64_t demo_seed = 16;
constexpr double demo_alpha = 0.05;
constexpr double demo_gamma = 0.3;

std::string format(const char* fmt, double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, x);
  return buf;
}

std::string show(std::span<const token_id> tokens, token_span s, token_id mask) {
  std::string out;
  for (std::size_t p = s.begin; p < s.end; ++p) out += tokens[p] == mask ? '_' : static_cast<char>('0' + tokens[p]);
  return out;
}

std::string show_canvas(std::span<const token_id> tokens, const template_spans& sp, token_id mask) {
  return show(tokens, sp.prompt, mask) + " | " + show(tokens, sp.reasoning, mask) + " | " +
         show(tokens, sp.delimiter, mask) + " | " + show(tokens, sp.answer, mask);
}

}  // namespace

void print_infilling_demo(std::ostream& out) {
  const auto model = reference::hmm::random(demo_states, demo_vocab, demo_length, demo_seed, demo_alpha);
  const token_id mask = model.mask_token();
  const reasoning_template t =
      make_template({.prompt = {0, 1}, .reasoning_length = 17, .delimiter = {2}, .answer_length = 4}, mask);
  const template_spans& sp = t.spans;

  out << "Reasoning-as-infilling on an exact HMM (K = " << demo_states << ", V = " << demo_vocab
      << ", L = " << demo_length << ", Dirichlet(" << demo_alpha << "), seed " << demo_seed << ")\n"
      << "   template [prompt 2 | reasoning 17 | delimiter 1 | answer 4]; '_' = mask\n"
      << "   start:   " << show_canvas(t.canvas.tokens, sp, mask) << "\n\n";

  // Early exit with MED: the same decode with and without the observer.
  const decode_options<med> opt{.policy = {.lambda = 0.2}, .block_length = 11};
  const counter_rng rng{1};
  const decode_result full = decode(model, t.canvas, opt, rng);
  early_exit exit(t, demo_gamma);
  const decode_result fast = decode(model, t.canvas, opt, rng, exit);
  const early_exit_result& e = exit.result();
  out << "1. Early exit on H_UB = sum_j H(a_j | c, r_unmasked) < gamma = " << demo_gamma
      << " (MED lambda 0.2, 2 blocks of 11, greedy)\n";
  out << "   step  H_UB (nats)\n";
  for (std::size_t s = 0; s < e.h_ub.size(); ++s)
    out << "   " << format("%4.0f", static_cast<double>(s)) << "  " << format("%.4f", e.h_ub[s])
        << (e.exited && s == e.exit_step ? (e.reason == exit_reason::bound ? "  < gamma: exit" : "  answer complete: exit")
                                         : "")
        << "\n";
  out << "   no exit:   NFE " << full.nfe << "   " << show_canvas(full.tokens, sp, mask) << "\n";
  out << "   with exit: NFE " << fast.nfe << "   " << show_canvas(fast.tokens, sp, mask) << "\n";
  if (e.exited)
    out << "   exit at step " << e.exit_step << ": " << e.answer_filled << " answer positions filled with their argmax, "
        << e.reasoning_left_masked << " reasoning positions skipped; same answer as without exit: "
        << (show(full.tokens, sp.answer, mask) == show(fast.tokens, sp.answer, mask) ? "yes" : "no") << "\n";
  else
    out << "   the bound never fell below gamma before the end\n";
  const decoding_analytics a = analyze_decoding(t, full, mask);
  out << "   no-exit run (table 8): " << format("%.0f%%", 100.0 * a.leftmost_fraction)
      << " of unmasks at the leftmost mask, mean distance " << format("%.2f", a.mean_distance_from_leftmost)
      << ", answer complete after step " << (a.answer_step ? std::to_string(*a.answer_step) : std::string("-"))
      << "\n\n";

  // Posterior sampling given the answer of the no-exit run.
  const std::vector<token_id> answer(full.tokens.begin() + static_cast<std::ptrdiff_t>(sp.answer.begin),
                                     full.tokens.begin() + static_cast<std::ptrdiff_t>(sp.answer.end));
  out << "2. Posterior sampling r ~ p(r | c, a) given the answer a = " << show(full.tokens, sp.answer, mask)
      << "\n   (random order, one position per step, temperature 1: exact by the chain rule)\n";
  std::vector<reasoning_template> batch;
  for (std::uint32_t s = 0; s < 4; ++s) {
    reasoning_template b = t;
    b.canvas.sequence = s;
    batch.push_back(posterior_template(b, answer, mask));
  }
  const std::vector<canvas> canvases = batch_canvases(batch);
  const decode_options<fixed_count> exact{
      .policy = {.score = score_kind::random, .schedule = count_schedule::per_step}, .choice = {.temperature = 1.0}};
  const std::vector<decode_result> traces = decode_batch(model, std::span<const canvas>(canvases), exact, counter_rng{7});
  // p(r | c, a) = p(c, r, a) / p(c, a): two exact forward passes of the HMM.
  const double log_ca = model.log_evidence(batch[0].canvas.tokens);
  out << "   sample  reasoning            NFE  p(r | c, a)   mean phi (appendix E)\n";
  for (std::size_t b = 0; b < traces.size(); ++b) {
    const auto& r = traces[b];
    const std::vector<token_id> trace(r.tokens.begin() + static_cast<std::ptrdiff_t>(sp.reasoning.begin),
                                      r.tokens.begin() + static_cast<std::ptrdiff_t>(sp.reasoning.end));
    const double post = std::exp(model.log_evidence(r.tokens) - log_ca);
    const trace_scores sc = score_trace(model, t, trace, answer);
    out << "   " << format("%6.0f", static_cast<double>(b)) << "  " << show(r.tokens, sp.reasoning, mask) << "  "
        << format("%4.0f", static_cast<double>(r.nfe)) << "  " << format("%.4e", post) << "    "
        << format("%.4f", sc.mean_phi) << "\n";
  }
  out << "   phi = sum_j log p(a_j = a*_j | c, r_<t), averaged over t = 0..17 (higher: the trace supports a)\n";
}

}  // namespace mdlm::tool
