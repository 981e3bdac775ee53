// SPDX-License-Identifier: MIT
// `mdlm posterior`: reasoning traces conditioned on the gold answer (arXiv 2510.19990 section 4.1,
// posterior.hpp): the reasoning template's answer block is pre-filled with the problem's gold answer
// and only the reasoning block is decoded, r ~ p(r | c, a*).
//
// Default policy: left-to-right, one token per call, temperature 1 -- ancestral sampling from the
// exact conditionals, so a trace is an exact draw from the model's posterior (see posterior.hpp); any
// harness policy can be given instead. --samples S draws S traces per problem (independent random
// numbers: the canvas key includes the sample index). --only-wrong RECORDS restricts the problems to
// those an `mdlm eval --records` file marks answer_correct = false (the paper samples posterior traces
// for the problems the model gets wrong).
//
// Output: one JSON line per trace on stdout or --out: id, sample, gold answer, the trace text, its
// reasoning-span ids (what `mdlm score` reads), its exact step grading, and NFE.
#include "commands.hpp"
#if MDLM_TOOL_HAVE_TASKS
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "harness.hpp"
#include "mdlm/decode.hpp"
#include "mdlm/reference/tasks/checker.hpp"
#include "policy_options.hpp"

namespace mdlm::tool {

namespace {

struct posterior_options {
  harness::data_options data;
  policy_spec policy;
  std::size_t samples = 1;
  std::size_t batch_size = 16;
  std::string only_wrong;
  std::string out;
};

std::set<std::int64_t> wrong_ids(const std::string& path) {
  std::ifstream in(path);
  detail::require(in.good(), "--only-wrong ", path, ": cannot read the file");
  std::set<std::int64_t> ids;
  std::string line;
  std::size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty()) continue;
    try {
      const auto j = nlohmann::json::parse(line);
      if (!j.at("answer_correct").get<bool>()) ids.insert(j.at("id").get<std::int64_t>());
    } catch (const nlohmann::json::exception& e) {
      detail::throw_invalid("--only-wrong ", path, " line ", line_no, ": ", e.what());
    }
  }
  return ids;
}

void run_posterior(posterior_options o) {
  validate_policy_spec(o.policy);
  detail::require(o.samples >= 1 && o.samples < (1U << 11U), "--samples ", o.samples, " must lie in [1, 2047]");
  std::unique_ptr<staged_output> file;
  if (!o.out.empty())
    file = std::make_unique<staged_output>("--out", o.out,
                                           std::vector<std::string>{o.data.problems, o.data.model, o.only_wrong});
  auto data = harness::load_task_data(o.data);
  const auto& tok = data.tok;
  if (!o.only_wrong.empty()) {
    const auto ids = wrong_ids(o.only_wrong);
    std::erase_if(data.problems, [&](const harness::tasks::problem& p) { return ids.count(p.id) == 0; });
  }
  harness::check_canvases_fit(data, true);
  device_model m = harness::load_model(o.data, tok, o.batch_size);

  std::vector<reasoning_template> templates;
  std::vector<std::size_t> problem_of;
  for (std::size_t i = 0; i < data.problems.size(); ++i) {
    const auto& p = data.problems[i];
    const auto answer = harness::answer_tokens(tok, p.answer);
    for (std::size_t s = 0; s < o.samples; ++s) {
      const auto t = harness::problem_template(data, p, true, static_cast<std::uint32_t>(s));
      templates.push_back(posterior_template(t, answer, tok.mask()));
      problem_of.push_back(i);
    }
  }
  const auto batches = harness::equal_length_batches(templates, o.batch_size);
  harness::progress bar("posterior", templates.size());
  std::size_t done = 0, all_correct = 0, invalid = 0;
  for (const auto& idx : batches) {
    std::vector<canvas> canvases;
    for (const std::size_t i : idx) canvases.push_back(templates[i].canvas);
    std::vector<decode_result> results;
    with_policy(o.policy, [&](const auto& opt) {
      results = decode_batch(m, std::span<const canvas>(canvases), opt, counter_rng{o.policy.seed});
    });
    for (std::size_t b = 0; b < idx.size(); ++b) {
      const auto& t = templates[idx[b]];
      const auto& p = data.problems[problem_of[idx[b]]];
      const auto& r = results[b];
      invalid += r.ok() ? 0U : 1U;
      const auto& rs = t.spans.reasoning;
      const std::vector<token_id> trace(r.tokens.begin() + static_cast<std::ptrdiff_t>(rs.begin),
                                        r.tokens.begin() + static_cast<std::ptrdiff_t>(rs.end));
      const std::string text = tok.decode(trace);
      const auto steps = harness::tasks::grade_steps(text);
      const auto v = harness::tasks::grade(text, p.answer);
      all_correct += v.all_steps_correct ? 1U : 0U;
      nlohmann::json j;
      j["id"] = p.id;
      j["sample"] = (t.canvas.sequence >> 20U);
      j["gold_answer"] = p.answer;
      j["trace"] = text;
      j["reasoning_ids"] = trace;
      j["n_steps"] = v.n_steps;
      j["n_correct_steps"] = v.n_correct_steps;
      j["all_steps_correct"] = v.all_steps_correct;
      // The answer the trace itself computes (its last number), against the gold answer it was
      // conditioned on.
      j["trace_answer"] = v.answer ? nlohmann::json(*v.answer) : nlohmann::json(nullptr);
      j["trace_answer_matches"] = v.answer_correct;
      j["nfe"] = r.nfe;
      j["ok"] = r.ok();
      const std::string line = j.dump();
      if (file) file->stream() << line << '\n';
      else std::printf("%s\n", line.c_str());
    }
    done += idx.size();
    bar.update(done);
  }
  bar.finish();
  if (file) file->commit();
  std::fflush(stdout);
  std::fprintf(stderr, "[posterior] %zu traces of %zu problems (policy %s): %zu with every step correct\n",
               templates.size(), data.problems.size(), policy_label(o.policy).c_str(), all_correct);
  if (invalid > 0) throw std::runtime_error(detail::concat(invalid, " decode(s) returned invalid logits"));
}

}  // namespace

void register_posterior(CLI::App& app) {
  auto* cmd = app.add_subcommand("posterior", "Reasoning traces conditioned on the gold answer (JSONL)");
  auto o = std::make_shared<posterior_options>();
  o->policy.name = "left-to-right";
  o->policy.temperature = 1.0;
  harness::add_data_options(cmd, o->data);
  add_policy_options(cmd, o->policy);
  cmd->add_option("--samples", o->samples, "Traces per problem")->capture_default_str();
  cmd->add_option("--batch-size", o->batch_size, "Canvases per batched model call")->capture_default_str();
  cmd->add_option("--only-wrong", o->only_wrong, "Keep only problems an `mdlm eval --records` file got wrong");
  cmd->add_option("--out", o->out, "Write the JSONL here instead of stdout");
  cmd->callback([o] { run_posterior(*o); });
}

}  // namespace mdlm::tool
#endif
