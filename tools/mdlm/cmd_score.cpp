// SPDX-License-Identifier: MIT
// `mdlm score`: answer-score and H_UB curves of given reasoning traces (arXiv 2510.19990 eq. 4 and
// eq. 3, appendix E; trace_score.hpp), and how well the scores separate correct from incorrect traces
// (AUC, auc.hpp).
//
// Input (--traces): JSON lines with "id" (a problem id of --problems) and "reasoning_ids" (the
// reasoning span of the template, as written by `mdlm posterior` and by `mdlm eval --records` with the
// template), plus the label field (--label, default all_steps_correct; answer_correct for eval
// records). Reasoning positions still masked (an early exit skipped them) are scored as EOS. The answer
// scored is the problem's gold answer (--answer gold, default) or the record's own "answer" field
// (--answer own; records without one are skipped and counted).
//
// Each trace is unmasked left to right, one token per model call (R + 1 calls, R = reasoning length),
// reading phi_t = sum_j log p(a_j = a*_j | c, r_<t) and H_UB_t over the masked answer block.
// Output: per trace (--out FILE): the curves, their means and the label; summary on stdout: AUC of
// mean phi (the paper's trace score), of the final phi, of -mean H_UB, and of phi at 25/50/75 % of the
// trace (intermediate-step scores vs correctness, the paper's figure 3); an AUC is null when one class
// is empty.
#include "commands.hpp"
#if MDLM_TOOL_HAVE_TASKS
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "harness.hpp"
#include "mdlm/infilling/auc.hpp"
#include "mdlm/infilling/trace_score.hpp"

namespace mdlm::tool {

namespace {

struct score_options {
  std::string traces;
  std::string model = harness::default_model;
  std::string problems = harness::default_problems;
  std::string tokenizer;
  std::string label = "all_steps_correct";
  std::string answer = "gold";
  std::string out;
  std::size_t limit = 0;
  int threads = 0;
};

nlohmann::json auc_or_null(const std::vector<double>& pos, const std::vector<double>& neg) {
  if (pos.empty() || neg.empty()) return nullptr;
  return auc(pos, neg);
}

// phi at fraction f of the trace (entry round(f * R) of a curve of R + 1 entries).
double at_fraction(const std::vector<double>& curve, double f) {
  const auto r = static_cast<double>(curve.size() - 1);
  return curve[static_cast<std::size_t>(std::lround(f * r))];
}

void run_score(const score_options& o) {
  detail::require(o.answer == "gold" || o.answer == "own", "--answer ", o.answer, " must be gold or own");
  harness::data_options d;
  d.model = o.model;
  d.problems = o.problems;
  d.tokenizer = o.tokenizer;
  d.n = 0;
  d.threads = o.threads;
  auto data = harness::load_task_data(d);
  const auto& tok = data.tok;
  std::map<std::int64_t, const harness::tasks::problem*> by_id;
  for (const auto& p : data.problems) by_id[p.id] = &p;

  std::ifstream in(o.traces);
  detail::require(in.good(), "--traces ", o.traces, ": cannot read the file");
  struct item {
    nlohmann::json record;
    const harness::tasks::problem* problem;
    std::int64_t answer;
    bool label;
  };
  std::vector<item> items;
  std::size_t skipped = 0, line_no = 0;
  std::string line;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty()) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
      const auto id = j.at("id").get<std::int64_t>();
      const auto it = by_id.find(id);
      detail::require(it != by_id.end(), "--traces ", o.traces, " line ", line_no, ": problem id ", id, " is not in ",
                      o.problems);
      detail::require(j.contains("reasoning_ids"), "--traces ", o.traces, " line ", line_no,
                      ": no reasoning_ids (traces need the reasoning template)");
      detail::require(j.contains(o.label), "--traces ", o.traces, " line ", line_no, ": no label field ", o.label);
      std::int64_t answer = it->second->answer;
      if (o.answer == "own") {
        if (!j.contains("answer") || j.at("answer").is_null()) {
          ++skipped;
          continue;
        }
        answer = j.at("answer").get<std::int64_t>();
        // An answer that does not fit the answer block cannot be scored.
        if (tok.encode(std::to_string(answer)).size() > tok.spec().answer_block) {
          ++skipped;
          continue;
        }
      }
      const bool label = j.at(o.label).get<bool>();
      items.push_back({std::move(j), it->second, answer, label});
    } catch (const nlohmann::json::exception& e) {
      detail::throw_invalid("--traces ", o.traces, " line ", line_no, ": ", e.what());
    }
    if (o.limit > 0 && items.size() >= o.limit) break;
  }
  detail::require(!items.empty(), "--traces ", o.traces, ": no trace to score");

  std::unique_ptr<std::ofstream> out;
  if (!o.out.empty()) {
    out = std::make_unique<std::ofstream>(o.out);
    detail::require(out->good(), "--out ", o.out, ": cannot write the file");
  }
  harness::check_canvases_fit(data, true);
  device_model m = harness::load_model(d, tok);
  std::vector<double> pos_mean, neg_mean, pos_final, neg_final, pos_h, neg_h;
  std::vector<double> pos_q[3], neg_q[3];
  constexpr double fractions[3] = {0.25, 0.5, 0.75};
  harness::progress bar("score", items.size());
  std::size_t done = 0;
  for (const auto& it : items) {
    const auto t = harness::problem_template(data, *it.problem, true);
    auto trace = it.record.at("reasoning_ids").get<std::vector<token_id>>();
    detail::require(trace.size() == t.spans.reasoning.size(), "trace of problem ", it.problem->id, " has ",
                    trace.size(), " reasoning ids but the template's reasoning block has ", t.spans.reasoning.size());
    for (auto& x : trace)
      if (x == tok.mask()) x = tok.eos();
    const auto answer = harness::answer_tokens(tok, it.answer);
    const trace_scores s = score_trace(m, t, trace, answer);
    (it.label ? pos_mean : neg_mean).push_back(s.mean_phi);
    (it.label ? pos_final : neg_final).push_back(s.phi.back());
    (it.label ? pos_h : neg_h).push_back(-s.mean_h_ub);
    for (std::size_t q = 0; q < 3; ++q) (it.label ? pos_q[q] : neg_q[q]).push_back(at_fraction(s.phi, fractions[q]));
    if (out) {
      nlohmann::json j;
      j["id"] = it.problem->id;
      if (it.record.contains("sample")) j["sample"] = it.record.at("sample");
      j["label"] = it.label;
      j["answer"] = it.answer;
      j["mean_phi"] = s.mean_phi;
      j["mean_h_ub"] = s.mean_h_ub;
      j["phi"] = s.phi;
      j["h_ub"] = s.h_ub;
      *out << j.dump() << '\n';
    }
    bar.update(++done);
  }
  bar.finish();
  nlohmann::json sum;
  sum["command"] = "score";
  sum["traces_file"] = o.traces;
  sum["label"] = o.label;
  sum["answer"] = o.answer;
  sum["traces"] = items.size();
  sum["skipped"] = skipped;
  sum["positives"] = pos_mean.size();
  sum["negatives"] = neg_mean.size();
  sum["auc_mean_phi"] = auc_or_null(pos_mean, neg_mean);
  sum["auc_final_phi"] = auc_or_null(pos_final, neg_final);
  sum["auc_neg_mean_h_ub"] = auc_or_null(pos_h, neg_h);
  sum["auc_phi_at_25"] = auc_or_null(pos_q[0], neg_q[0]);
  sum["auc_phi_at_50"] = auc_or_null(pos_q[1], neg_q[1]);
  sum["auc_phi_at_75"] = auc_or_null(pos_q[2], neg_q[2]);
  std::printf("%s\n", sum.dump().c_str());
  std::fflush(stdout);
}

}  // namespace

void register_score(CLI::App& app) {
  auto* cmd = app.add_subcommand("score", "Answer-score and H_UB curves of reasoning traces, AUC against a label");
  auto o = std::make_shared<score_options>();
  cmd->add_option("--traces", o->traces, "JSONL traces (mdlm posterior, or mdlm eval --records)")->required();
  cmd->add_option("--model", o->model, "Checkpoint directory")->capture_default_str();
  cmd->add_option("--problems", o->problems, "Problem split (JSONL)")->capture_default_str();
  cmd->add_option("--tokenizer", o->tokenizer, "tokenizer.json (default: <model>/tokenizer.json)");
  cmd->add_option("--label", o->label, "Boolean field of a record used as its class")->capture_default_str();
  cmd->add_option("--answer", o->answer, "Score the gold answer or the record's own answer (gold, own)")
      ->capture_default_str();
  cmd->add_option("--limit", o->limit, "Score at most this many traces (0 = all)")->capture_default_str();
  cmd->add_option("--out", o->out, "Write per-trace curves (JSONL) here");
  cmd->add_option("--threads", o->threads, "Forward threads (0 = OMP_NUM_THREADS or all cores)")
      ->check(CLI::Range(0, cpu::model::max_threads))
      ->capture_default_str();
  cmd->callback([o] { run_score(*o); });
}

}  // namespace mdlm::tool
#endif
