// SPDX-License-Identifier: MIT
// `mdlm solve`: the README's main command. Solves a handful of test problems of the arithmetic task
// with the shipped model (reference/models/arith-llada-3m) and shows, side by side, one-token entropy
// decoding (sigma_ENTROPY,1 of arXiv 2510.19990 table 1) and MED + early exit (its section 4): for
// each problem the question, the infilled reasoning template (positions still masked when the early
// exit fired are shown as "_", runs of more than three as "[n masked]"), the answer, whether it is
// correct, and the model calls (NFE).
#include "commands.hpp"
#if MDLM_TOOL_HAVE_TASKS
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <memory>
#include <string>
#include <vector>

#include "harness.hpp"
#include "mdlm/decode.hpp"
#include "mdlm/infilling/early_exit.hpp"
#include "mdlm/policies/fixed_count.hpp"
#include "mdlm/policies/med.hpp"
#include "mdlm/reference/tasks/checker.hpp"

namespace mdlm::tool {

namespace {

struct solve_options {
  harness::data_options data;
  double lambda = 0.2;  // MED's threshold (nats), the paper's setting
  double gamma = 0.1;   // early-exit threshold on H_UB (nats), the paper's LLaDA GSM8K setting
};

// The generation region as text; EOS padding dropped, a mask shown as "_" (a run of more than three
// as "[n masked]").
std::string render(const harness::tasks::tokenizer& tok, std::span<const token_id> region) {
  std::string out;
  std::size_t masks = 0;
  const auto flush = [&] {
    if (masks > 3) out += detail::concat("[", masks, " masked]");
    else out.append(masks, '_');
    masks = 0;
  };
  for (const token_id t : region) {
    if (t == tok.mask()) {
      ++masks;
      continue;
    }
    flush();
    out += tok.decode(std::span<const token_id>(&t, 1));
  }
  flush();
  return out;
}

void print_indented(const std::string& text) {
  std::string line;
  for (const char c : text + "\n") {
    if (c != '\n') {
      line += c;
      continue;
    }
    if (!line.empty()) std::printf("      %s\n", line.c_str());
    line.clear();
  }
}

struct tally {
  std::size_t correct = 0, nfe = 0;
};

void report(const char* label, const harness::tasks::tokenizer& tok, const reasoning_template& t,
            const decode_result& r, std::int64_t gold, const char* exit_note, tally& sum) {
  // A model with invalid logits has no answer to grade: say so instead of "answer none (WRONG)".
  if (r.status == decode_status::invalid_logits)
    throw std::runtime_error(detail::concat(label, ": ", r.message));
  const std::span<const token_id> region(r.tokens.data() + t.canvas.region_begin, t.canvas.region_length());
  const auto v = harness::tasks::grade(tok.decode(region), gold);
  sum.correct += v.answer_correct ? 1U : 0U;
  sum.nfe += r.nfe;
  std::printf("  %s: answer %s (%s), %zu model calls%s\n", label,
              v.answer ? std::to_string(*v.answer).c_str() : "none", v.answer_correct ? "correct" : "WRONG", r.nfe,
              exit_note);
  print_indented(render(tok, region));
}

void run_solve(const solve_options& o) {
  detail::require(std::isfinite(o.lambda) && o.lambda >= 0.0, "--lambda ", o.lambda, " must be finite and >= 0");
  detail::require(std::isfinite(o.gamma) && o.gamma > 0.0, "--gamma ", o.gamma, " must be finite and > 0");
  const auto data = harness::load_task_data(o.data);
  const auto& tok = data.tok;
  harness::check_canvases_fit(data, true);
  device_model m = harness::load_model(o.data, tok);
  std::printf("mdlm solve: %zu test problems, model %s\n", data.problems.size(), o.data.model.c_str());
  std::printf("  one-token: entropy decoding, one token per model call\n");
  std::printf("  MED+exit:  MED (lambda = %g nats) with early exit when H_UB < gamma = %g nats\n\n", o.lambda, o.gamma);

  decode_options<fixed_count> one;
  one.policy = fixed_count{.score = score_kind::neg_entropy, .schedule = count_schedule::per_step, .per_step = 1};
  decode_options<med> fast;
  fast.policy = med{.lambda = o.lambda};
  const counter_rng rng{0};
  tally a, b;
  for (const auto& p : data.problems) {
    const auto t = harness::problem_template(data, p, true);
    std::printf("Problem %lld: %s\n  gold answer: %lld\n", static_cast<long long>(p.id), p.question.c_str(),
                static_cast<long long>(p.answer));
    report("one-token", tok, t, decode(m, t.canvas, one, rng), p.answer, "", a);
    early_exit ex(t, o.gamma);
    const auto r = decode(m, t.canvas, fast, rng, ex);
    const auto& er = ex.result(0);
    const std::string note = er.exited ? detail::concat(" (early exit after step ", er.exit_step, ")") : "";
    report("MED+exit ", tok, t, r, p.answer, note.c_str(), b);
    std::printf("\n");
  }
  const std::size_t n = data.problems.size();
  std::printf("Total: one-token %zu/%zu correct, %zu model calls; MED+exit %zu/%zu correct, %zu model calls (%.2fx fewer)\n",
              a.correct, n, a.nfe, b.correct, n, b.nfe,
              b.nfe > 0 ? static_cast<double>(a.nfe) / static_cast<double>(b.nfe) : 0.0);
}

}  // namespace

void register_solve(CLI::App& app) {
  auto* cmd = app.add_subcommand("solve", "Solve test problems with the shipped model: one-token vs MED + early exit");
  auto o = std::make_shared<solve_options>();
  o->data.n = 5;
  harness::add_data_options(cmd, o->data);
  cmd->add_option("--lambda", o->lambda, "MED entropy threshold (nats)")->capture_default_str();
  cmd->add_option("--gamma", o->gamma, "Early exit when H_UB < gamma (nats)")->capture_default_str();
  cmd->callback([o] { run_solve(*o); });
}

}  // namespace mdlm::tool
#endif
