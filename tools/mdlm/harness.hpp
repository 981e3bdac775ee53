// SPDX-License-Identifier: MIT
#pragma once
// Shared pieces of the harness commands (`mdlm eval`, `mdlm posterior`, `mdlm score`) that run the
// shipped arithmetic model (reference/models/arith-llada-3m) through the CPU backend: loading the
// model, tokenizer and problem split, writing problems as reasoning templates or plain canvases
// (reference/tasks/mdlm_tasks/formats.py), grouping problems into batches of equal canvas length (the
// model has no attention mask, so a batch cannot mix prompt lengths), and progress reporting.

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "device_model.hpp"
#include "mdlm/cpu/model.hpp"
#include "mdlm/detail/errors.hpp"
#include "mdlm/infilling/posterior.hpp"
#include "mdlm/infilling/template.hpp"
#include "mdlm/reference/tasks/problems.hpp"
#include "mdlm/reference/tasks/tokenizer.hpp"

namespace mdlm::tool::harness {

namespace tasks = mdlm::reference::tasks;

// Default paths, relative to the repository root (where the README's commands run).
inline constexpr const char* default_model = "reference/models/arith-llada-3m";
inline constexpr const char* default_problems = "reference/tasks/data/arith_test.jsonl";

// Where the data comes from and which problems to take.
struct data_options {
  std::string model = default_model;
  std::string problems = default_problems;
  std::string tokenizer;  // empty = <model>/tokenizer.json
  std::size_t n = 100;    // problems to take (0 = all from offset)
  std::size_t offset = 0;
  int threads = 0;  // forward threads (0 = OMP_NUM_THREADS / all)
  std::string device = "cpu";  // --device (device_model.hpp)
  std::string weights = "file";  // --weights (device_model.hpp)
};

inline void add_data_options(CLI::App* cmd, data_options& d) {
  cmd->add_option("--model", d.model, "Checkpoint directory")->capture_default_str();
  cmd->add_option("--problems", d.problems, "Problem split (JSONL)")->capture_default_str();
  cmd->add_option("--tokenizer", d.tokenizer, "tokenizer.json (default: <model>/tokenizer.json)");
  cmd->add_option("-n,--n", d.n, "Problems to use (0 = all after --offset)")->capture_default_str();
  cmd->add_option("--offset", d.offset, "Index of the first problem")->capture_default_str();
  cmd->add_option("--threads", d.threads, "Forward threads (0 = OMP_NUM_THREADS or all cores)")
      ->check(CLI::Range(0, cpu::model::max_threads))
      ->capture_default_str();
  add_device_option(cmd, d.device);
  add_weights_option(cmd, d.weights);
}

// Tokenizer and problems, validated; the model is loaded separately (it is the expensive part).
struct task_data {
  tasks::tokenizer tok;
  std::vector<tasks::problem> problems;  // the selected ones
  std::size_t max_length = 0;            // the model's max_sequence_length (config.json; 0 = unbounded)
};

inline task_data load_task_data(const data_options& d) {
  const std::filesystem::path model_dir(d.model);
  detail::require(std::filesystem::is_directory(model_dir), "--model ", d.model, " is not a directory");
  const std::filesystem::path tok_path = d.tokenizer.empty() ? model_dir / "tokenizer.json" : std::filesystem::path(d.tokenizer);
  auto tok = tasks::tokenizer::load(tok_path);
  auto all = tasks::read_problems(d.problems);
  detail::require(d.offset < all.size(), "--offset ", d.offset, " is past the ", all.size(), " problems of ",
                  d.problems);
  const std::size_t end = d.n == 0 ? all.size() : std::min(all.size(), d.offset + d.n);
  detail::require(d.n == 0 || d.offset + d.n <= all.size(), "-n ", d.n, " from --offset ", d.offset, " exceeds the ",
                  all.size(), " problems of ", d.problems);
  std::vector<tasks::problem> chosen(all.begin() + static_cast<std::ptrdiff_t>(d.offset),
                                     all.begin() + static_cast<std::ptrdiff_t>(end));
  const std::size_t max_length = cpu::read_model_config(model_dir).max_sequence_length;
  return {std::move(tok), std::move(chosen), max_length};
}

// On --device cuda the memory check assumes batches of `batch` canvases of up to the model's
// max_sequence_length positions.
inline device_model load_model(const data_options& d, const tasks::tokenizer& tok, std::size_t batch = 1) {
  cpu::model_options mo;
  mo.threads = d.threads;
  mo.weights = weight_storage_of(d.weights);
  const std::size_t length = std::max<std::size_t>(1, cpu::read_model_config(d.model).max_sequence_length);
  device_model m = load_on_device(d.model, d.device, batch, length, mo);
  detail::require(m.vocab_size() == tok.embedding_size(), "the model's vocabulary (", m.vocab_size(),
                  " rows) differs from the tokenizer's embedding_size ", tok.embedding_size());
  detail::require(m.mask_token() == tok.mask(), "the model's mask token ", m.mask_token(),
                  " differs from the tokenizer's ", tok.mask());
  return m;
}

// A problem written as the reasoning template (prompt, reasoning masks, "The answer is ", answer
// masks) or as the plain canvas (prompt, gen_length masks). The canvas's random-number key is the
// problem id (plus `sample` * 2^20 for repeated samples), so results do not depend on batching.
// A canvas longer than the model's max_sequence_length is refused (std::invalid_argument naming the
// problem), as `generate` refuses a prompt that does not fit: positions past the maximum were never
// trained, and every command of the harness shares this check.
inline reasoning_template problem_template(const task_data& data, const tasks::problem& p, bool with_template,
                                           std::uint32_t sample = 0) {
  const auto& tok = data.tok;
  const auto prompt = tasks::prompt_ids(tok, p.question);
  const auto key = static_cast<std::uint32_t>(p.id) + (sample << 20U);
  reasoning_template t;
  if (!with_template) {
    t = plain_template(prompt, tok.spec().gen_length, tok.mask(), key);
  } else {
    template_layout layout;
    layout.prompt = prompt;
    layout.reasoning_length = tasks::reasoning_block_length(tok);
    layout.delimiter = tok.encode(tok.spec().answer_delimiter);
    layout.answer_length = tok.spec().answer_block;
    t = make_template(layout, tok.mask(), key);
  }
  detail::require(data.max_length == 0 || t.canvas.size() <= data.max_length, "problem id ", p.id, ": its question (",
                  prompt.size(), " tokens) makes a canvas of ", t.canvas.size(),
                  " positions, more than the model's max_sequence_length ", data.max_length);
  return t;
}

// Checks, before the model loads, that every selected problem's canvas fits the model.
inline void check_canvases_fit(const task_data& data, bool with_template) {
  for (const auto& p : data.problems) (void)problem_template(data, p, with_template);
}

// The answer block tokens of `answer` (digits, then EOS).
inline std::vector<token_id> answer_tokens(const tasks::tokenizer& tok, std::int64_t answer) {
  auto ids = tok.encode(std::to_string(answer));
  detail::require(ids.size() <= tok.spec().answer_block, "answer ", answer, " does not fit the answer block of ",
                  tok.spec().answer_block, " tokens");
  ids.resize(tok.spec().answer_block, tok.eos());
  return ids;
}

// Indices of `templates` grouped into batches of equal canvas length, at most `batch_size` each, in
// order of canvas length then index.
inline std::vector<std::vector<std::size_t>> equal_length_batches(const std::vector<reasoning_template>& templates,
                                                                  std::size_t batch_size) {
  detail::require(batch_size >= 1, "--batch-size ", batch_size, " must be >= 1");
  std::map<std::size_t, std::vector<std::size_t>> by_length;
  for (std::size_t i = 0; i < templates.size(); ++i) by_length[templates[i].canvas.size()].push_back(i);
  std::vector<std::vector<std::size_t>> out;
  for (const auto& [len, idx] : by_length) {
    for (std::size_t s = 0; s < idx.size(); s += batch_size)
      out.emplace_back(idx.begin() + static_cast<std::ptrdiff_t>(s),
                       idx.begin() + static_cast<std::ptrdiff_t>(std::min(idx.size(), s + batch_size)));
  }
  return out;
}

// A progress line on stderr ("[eval] 40/100 problems, 12.3 s"), drawn only when stderr is a terminal.
class progress {
 public:
  progress(const char* what, std::size_t total)
      : what_(what), total_(total), tty_(::isatty(STDERR_FILENO) != 0), start_(std::chrono::steady_clock::now()) {}
  void update(std::size_t done, const std::string& extra = {}) const {
    if (!tty_) return;
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    constexpr std::size_t width = 30;
    const std::size_t filled = total_ == 0 ? width : done * width / total_;
    std::string bar(filled, '#');
    bar.append(width - filled, '.');
    std::fprintf(stderr, "\r[%s] [%s] %zu/%zu problems, %.1f s %s", what_, bar.c_str(), done, total_, s, extra.c_str());
    std::fflush(stderr);
  }
  void finish() const {
    if (tty_) std::fputc('\n', stderr);
  }

 private:
  const char* what_;
  std::size_t total_;
  bool tty_;
  std::chrono::steady_clock::time_point start_;
};

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace mdlm::tool::harness
