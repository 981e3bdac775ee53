// SPDX-License-Identifier: MIT
// `mdlm eval`: accuracy, mean NFE, wall time and tokens/s of one decoding setting over N problems of
// the arithmetic task with the shipped model (or any checkpoint with a task tokenizer).
//
// Setting: any harness policy (policy_options.hpp) and block length; the reasoning template or the
// plain canvas (--no-template) or the template with its reasoning block given as EOS, so that only the
// answer block is decoded (--answer-only: answering without reasoning); early exit on the
// answer-entropy bound H_UB < gamma (--early-exit, template only, arXiv 2510.19990 section 4.1) or
// Prophet's gap exit (--prophet). Problems are decoded in batches of equal canvas length; each canvas's
// random numbers are keyed by its problem id, so the results do not depend on --batch-size or --threads.
//
// Output: one JSON line on stdout with the summary; --records FILE writes one JSON line per problem
// (response text, graded answer and steps, NFE, exit, table-8 analytics, reasoning-span ids).
// kl_bound: per problem, the sum over steps of EB-Sampler's bound on the KL that parallel unmasking
// loses against one-token decoding (see kl_bound_observer); the paper's table 6 reports such a KL.
// Definitions: NFE = model calls of the decode (an early exit's filling call included, nothing else);
// wall time = time of the batched decode calls divided over the batch's problems; tokens/s =
// generation-region positions (gen_length per problem, whether decoded or skipped by an exit) per
// second of decode wall time.
#include "commands.hpp"
#if MDLM_TOOL_HAVE_TASKS
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "harness.hpp"
#include "mdlm/bounds.hpp"
#include "mdlm/decode.hpp"
#include "mdlm/infilling/analytics.hpp"
#include "mdlm/infilling/early_exit.hpp"
#include "mdlm/infilling/prophet_exit.hpp"
#include "mdlm/reference/tasks/checker.hpp"
#include "policy_options.hpp"

namespace mdlm::tool {

namespace {

struct eval_options {
  harness::data_options data;
  policy_spec policy;
  bool no_template = false;
  bool answer_only = false;
  std::optional<double> early_exit_gamma;
  bool prophet = false;
  std::size_t batch_size = 16;
  std::string records;
};

// Per-problem outcome of one batch.
struct outcome {
  decode_result result;
  bool exited = false;
  std::size_t exit_step = 0;
  std::vector<double> h_ub;
  double kl_bound = 0.0;
};

// Sums, over the steps of each canvas, EB-Sampler's bound sum_i H_i - max_i H_i over the positions the
// policy unmasked at that step (bounds.hpp, `parallel_decoding_error_bound`): an upper bound on the KL
// between the step's product of marginals and the model's joint over those positions, i.e. on what
// the step loses against decoding them one at a time. 0 for one-token decoding.
struct kl_bound_observer {
  std::vector<double> total;
  std::vector<double> entropies;
  void on_step(step_event& e) {
    if (e.batch_index >= total.size()) total.resize(e.batch_index + 1, 0.0);
    entropies.clear();
    for (const std::size_t i : e.unmasked) entropies.push_back(e.candidates[i].entropy);
    total[e.batch_index] += parallel_decoding_error_bound(entropies);
  }
};

template <class Options>
std::vector<outcome> decode_group(device_model& m, const std::vector<reasoning_template>& templates,
                                  const std::vector<std::size_t>& idx, const Options& opt, const eval_options& o) {
  std::vector<canvas> canvases;
  canvases.reserve(idx.size());
  for (const std::size_t i : idx) canvases.push_back(templates[i].canvas);
  const counter_rng rng{o.policy.seed};
  std::vector<outcome> out(idx.size());
  const reasoning_template& first = templates[idx.front()];
  kl_bound_observer kl;
  kl.total.assign(idx.size(), 0.0);
  if (o.early_exit_gamma) {
    early_exit ex(first, *o.early_exit_gamma);
    auto results = decode_batch(m, std::span<const canvas>(canvases), opt, rng, kl, ex);
    for (std::size_t b = 0; b < idx.size(); ++b) {
      out[b].result = std::move(results[b]);
      const auto& r = ex.result(b);
      out[b].exited = r.exited;
      out[b].exit_step = r.exit_step;
      out[b].h_ub = r.h_ub;
    }
  } else if (o.prophet) {
    // Prophet's phases are measured against the step budget: --steps when scheduled, else gen_length
    // (the NFE of one-token decoding).
    const std::size_t budget = o.policy.steps > 0 ? o.policy.steps : first.canvas.region_length();
    prophet_exit ex(first, budget);
    auto results = decode_batch(m, std::span<const canvas>(canvases), opt, rng, kl, ex);
    for (std::size_t b = 0; b < idx.size(); ++b) {
      out[b].result = std::move(results[b]);
      const auto& r = ex.result(b);
      out[b].exited = r.exited;
      out[b].exit_step = r.exit_step;
    }
  } else {
    auto results = decode_batch(m, std::span<const canvas>(canvases), opt, rng, kl);
    for (std::size_t b = 0; b < idx.size(); ++b) out[b].result = std::move(results[b]);
  }
  for (std::size_t b = 0; b < idx.size(); ++b) out[b].kl_bound = kl.total[b];
  return out;
}

void run_eval(const eval_options& o) {
  validate_policy_spec(o.policy);
  const bool with_template = !o.no_template;
  detail::require(!o.early_exit_gamma || with_template, "--early-exit needs the reasoning template (drop --no-template)");
  detail::require(!o.prophet || with_template, "--prophet needs the reasoning template (drop --no-template)");
  detail::require(!(o.prophet && o.early_exit_gamma), "--prophet and --early-exit are alternatives; give one");
  detail::require(!o.answer_only || (with_template && !o.early_exit_gamma && !o.prophet),
                  "--answer-only decodes the template's answer block alone; drop --no-template, --early-exit and --prophet");
  if (o.early_exit_gamma)
    detail::require(std::isfinite(*o.early_exit_gamma) && *o.early_exit_gamma > 0.0, "--early-exit ",
                    *o.early_exit_gamma, " must be a finite gamma > 0 (nats)");
  detail::require(o.batch_size >= 1, "--batch-size ", o.batch_size, " must be >= 1");
  auto data = harness::load_task_data(o.data);
  const auto& tok = data.tok;
  const std::size_t gen = harness::tasks::make_canvas(tok, with_template).tokens.size();
  if (o.policy.block_length > 0)
    detail::require(gen % o.policy.block_length == 0, "--block-length ", o.policy.block_length,
                    " does not divide the generation length ", gen);
  std::unique_ptr<staged_output> rec;
  if (!o.records.empty())
    rec = std::make_unique<staged_output>("--records", o.records,
                                          std::vector<std::string>{o.data.problems, o.data.model});

  harness::check_canvases_fit(data, with_template);
  device_model m = harness::load_model(o.data, tok, o.batch_size);
  std::vector<reasoning_template> templates;
  templates.reserve(data.problems.size());
  for (const auto& p : data.problems) templates.push_back(harness::problem_template(data, p, with_template));
  if (o.answer_only) {
    // The reasoning block holds EOS, as in a training example whose reasoning is empty: the delimiter
    // and the answer block stay where the template puts them, and only the answer block is masked.
    for (auto& t : templates)
      std::fill(t.canvas.tokens.begin() + static_cast<std::ptrdiff_t>(t.spans.reasoning.begin),
                t.canvas.tokens.begin() + static_cast<std::ptrdiff_t>(t.spans.reasoning.end), tok.eos());
  }
  const auto batches = harness::equal_length_batches(templates, o.batch_size);

  const std::size_t n = data.problems.size();
  std::size_t correct = 0, steps_ok = 0, nfe_sum = 0, exits = 0, invalid = 0, done = 0;
  std::size_t analytics_unmasks = 0, analytics_leftmost = 0, non_eos = 0, answer_step_n = 0;
  double distance_sum = 0.0, answer_step_sum = 0.0, wall = 0.0, kl_sum = 0.0;
  std::string first_error;
  harness::progress bar("eval", n);
  for (const auto& idx : batches) {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<outcome> outs;
    with_policy(o.policy, [&](const auto& opt) { outs = decode_group(m, templates, idx, opt, o); });
    const double batch_wall = harness::seconds_since(t0);
    wall += batch_wall;
    for (std::size_t b = 0; b < idx.size(); ++b) {
      const auto& t = templates[idx[b]];
      const auto& p = data.problems[idx[b]];
      const auto& r = outs[b].result;
      if (!r.ok()) {
        ++invalid;
        if (first_error.empty()) first_error = detail::concat("problem ", p.id, ": ", r.message);
      }
      const std::span<const token_id> region(r.tokens.data() + t.canvas.region_begin, t.canvas.region_length());
      const std::string text = tok.decode(region);
      const auto v = harness::tasks::grade(text, p.answer);
      analytics_options aopt;
      aopt.answer = t.spans.answer;
      aopt.eos = tok.eos();
      const auto a = analyze_decoding(t.canvas, r, tok.mask(), aopt);
      correct += v.answer_correct ? 1U : 0U;
      steps_ok += v.all_steps_correct ? 1U : 0U;
      nfe_sum += r.nfe;
      kl_sum += outs[b].kl_bound;
      exits += outs[b].exited ? 1U : 0U;
      analytics_unmasks += a.unmasks;
      analytics_leftmost += a.leftmost_unmasks;
      distance_sum += a.mean_distance_from_leftmost * static_cast<double>(a.unmasks);
      non_eos += a.non_eos_tokens;
      if (a.answer_step) {
        answer_step_sum += static_cast<double>(*a.answer_step);
        ++answer_step_n;
      }
      if (rec) {
        nlohmann::json j;
        j["id"] = p.id;
        j["gold_answer"] = p.answer;
        j["answer"] = v.answer ? nlohmann::json(*v.answer) : nlohmann::json(nullptr);
        j["answer_correct"] = v.answer_correct;
        j["n_steps"] = v.n_steps;
        j["n_correct_steps"] = v.n_correct_steps;
        j["all_steps_correct"] = v.all_steps_correct;
        j["nfe"] = r.nfe;
        j["kl_bound"] = outs[b].kl_bound;
        j["status"] = to_string(r.status);
        j["exited"] = outs[b].exited;
        if (outs[b].exited) j["exit_step"] = outs[b].exit_step;
        if (!outs[b].h_ub.empty()) j["h_ub"] = outs[b].h_ub;
        j["wall_s"] = batch_wall / static_cast<double>(idx.size());
        j["leftmost_fraction"] = a.leftmost_fraction;
        j["mean_distance_from_leftmost"] = a.mean_distance_from_leftmost;
        j["non_eos_tokens"] = a.non_eos_tokens;
        j["answer_step"] = a.answer_step ? nlohmann::json(*a.answer_step) : nlohmann::json(nullptr);
        j["response"] = text;
        if (with_template) {
          const auto& rs = t.spans.reasoning;
          j["reasoning_ids"] = std::vector<token_id>(r.tokens.begin() + static_cast<std::ptrdiff_t>(rs.begin),
                                                     r.tokens.begin() + static_cast<std::ptrdiff_t>(rs.end));
        }
        rec->stream() << j.dump() << '\n';
      }
    }
    done += idx.size();
    bar.update(done, detail::concat("acc ", static_cast<double>(correct) / static_cast<double>(done)));
  }
  bar.finish();
  if (rec) rec->commit();

  const auto dn = static_cast<double>(n);
  nlohmann::json s;
  s["command"] = "eval";
  s["model"] = o.data.model;
  s["problems_file"] = o.data.problems;
  s["offset"] = o.data.offset;
  s["problems"] = n;
  s["policy"] = policy_label(o.policy);
  s["block_length"] = o.policy.block_length == 0 ? gen : o.policy.block_length;
  s["steps"] = o.policy.steps;
  s["temperature"] = o.policy.temperature;
  s["seed"] = o.policy.seed;
  s["template"] = with_template;
  s["answer_only"] = o.answer_only;
  s["early_exit_gamma"] = o.early_exit_gamma ? nlohmann::json(*o.early_exit_gamma) : nlohmann::json(nullptr);
  s["prophet"] = o.prophet;
  s["gen_length"] = gen;
  s["accuracy"] = static_cast<double>(correct) / dn;
  s["all_steps_correct"] = static_cast<double>(steps_ok) / dn;
  s["mean_nfe"] = static_cast<double>(nfe_sum) / dn;
  s["exit_rate"] = static_cast<double>(exits) / dn;
  s["mean_kl_bound"] = kl_sum / dn;
  s["wall_s"] = wall;
  s["mean_wall_s"] = wall / dn;
  s["tokens_per_s"] = wall > 0.0 ? static_cast<double>(gen) * dn / wall : 0.0;
  s["leftmost_fraction"] =
      analytics_unmasks > 0 ? static_cast<double>(analytics_leftmost) / static_cast<double>(analytics_unmasks) : 0.0;
  s["mean_distance_from_leftmost"] = analytics_unmasks > 0 ? distance_sum / static_cast<double>(analytics_unmasks) : 0.0;
  s["mean_non_eos_tokens"] = static_cast<double>(non_eos) / dn;
  s["mean_answer_step"] = answer_step_n > 0 ? nlohmann::json(answer_step_sum / static_cast<double>(answer_step_n))
                                            : nlohmann::json(nullptr);
  s["batch_size"] = o.batch_size;
  s["threads"] = m.threads();
  s["device"] = m.device();
  s["invalid"] = invalid;
  std::printf("%s\n", s.dump().c_str());
  std::fflush(stdout);
  if (invalid > 0)
    throw std::runtime_error(detail::concat(invalid, " decode(s) failed; first: ", first_error));
}

}  // namespace

void register_eval(CLI::App& app) {
  auto* cmd = app.add_subcommand("eval", "Accuracy, NFE and speed of a decoding setting on the arithmetic task");
  auto o = std::make_shared<eval_options>();
  harness::add_data_options(cmd, o->data);
  add_policy_options(cmd, o->policy);
  cmd->add_flag("--no-template", o->no_template, "Plain canvas instead of the reasoning template");
  cmd->add_flag("--answer-only", o->answer_only,
                "Template with its reasoning block filled with EOS: only the answer block is decoded (no reasoning)");
  cmd->add_option("--early-exit", o->early_exit_gamma, "Early exit when H_UB < gamma (nats; template only)");
  cmd->add_flag("--prophet", o->prophet, "Prophet's gap exit instead (template only)");
  cmd->add_option("--batch-size", o->batch_size, "Canvases per batched model call")->capture_default_str();
  cmd->add_option("--records", o->records, "Write one JSON line per problem to this file");
  cmd->callback([o] { run_eval(*o); });
}

}  // namespace mdlm::tool
#endif
